from controlplane.navigation import nav_items
from controlplane.roles import Role, role_of


def roles(request):
    role = role_of(getattr(request, "user", None))
    return {
        "user_role": role,
        "nav_items": nav_items(request.path, role),
        "is_operator": role is not None and role >= Role.OPERATOR,
        "is_approver": role is not None and role >= Role.APPROVER,
        "is_admin": role is not None and role >= Role.ADMIN,
    }
