"""Role-based permission for every API view (the DRF default permission class).

A view states `read_role` (safe methods) and `write_role` (everything else); the defaults are
viewer and operator. A view may set `action_roles` ({"approve": Role.APPROVER}) for viewset
actions, and `token_scopes` (("ingest",)) for scopes that let a viewer's token through.
"""

from __future__ import annotations

from rest_framework import permissions

from controlplane.roles import Role, has_role


def required_role(request, view) -> Role:
    # A token scope (e.g. "ingest") stands in for the operator role on the views that name it.
    scopes = getattr(request.auth, "scopes", None) or ()
    if set(scopes) & set(getattr(view, "token_scopes", ())):
        return Role.VIEWER
    action = getattr(view, "action", None)
    action_roles = getattr(view, "action_roles", {})
    if action in action_roles:
        return action_roles[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", Role.VIEWER)
    return getattr(view, "write_role", Role.OPERATOR)


class RolePermission(permissions.BasePermission):
    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False  # DRF turns this into 401 because an authenticator names a header
        role = required_role(request, view)
        if not has_role(request.user, role):
            self.message = f"This needs the {role.name.lower()} role."
            return False
        return True
