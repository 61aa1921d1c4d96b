"""Verb functions for services: each runs in one transaction and writes its audit row in it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

from controlplane import audit
from controlplane.models import Service, validate_admission_burst, validate_admission_rate

SERVICE_FIELDS = [
    "slug",
    "name",
    "team",
    "tier",
    "description",
    "admission_rate",
    "admission_burst",
]


def _check_admission(fields: dict[str, Any]) -> None:
    """The bucket's bounds, checked here too: every door (a management command, a shell)
    gets them, not only those that run the model's validators. Raises ValidationError naming
    the field."""
    errors = {}
    for name, validate in (
        ("admission_rate", validate_admission_rate),
        ("admission_burst", validate_admission_burst),
    ):
        if name in fields:
            try:
                validate(fields[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)


def create_service(*, actor: Any, **fields: Any) -> Service:
    _check_admission(fields)
    with transaction.atomic():
        service = Service.objects.create(**fields)
        audit.record(
            actor, "service.create", service, after=audit.snapshot(service, SERVICE_FIELDS)
        )
    return service


def update_service(service: Service, *, actor: Any, **changes: Any) -> Service:
    _check_admission(changes)
    return audit.update_audited(
        service, changes, actor=actor, action="service.update", fields=SERVICE_FIELDS
    )


def delete_service(service: Service, *, actor: Any) -> None:
    audit.delete_audited(service, actor=actor, action="service.delete", fields=SERVICE_FIELDS)


# --------------------------------------------------------------------------- accounts
# Users and groups (a role is a group, see controlplane.roles) are managed in the admin; these
# verbs make each change one transaction with its audit row, as for every other object.

USER_FIELDS = [
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
]


def _user_snapshot(user: AbstractBaseUser) -> dict[str, Any]:
    data = audit.snapshot(user, USER_FIELDS)
    data["groups"] = sorted(user.groups.values_list("name", flat=True))
    data["permissions"] = _permission_names(user.user_permissions.all())
    return data


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def save_user(
    user: AbstractBaseUser,
    *,
    actor: Any,
    groups: Iterable[Group] | None = None,
    permissions: Iterable[Permission] | None = None,
) -> AbstractBaseUser:
    """Create ``user`` (no pk yet) or save the changes made to it, with its groups and
    permissions when given. The password is never logged, only that it changed."""
    model = type(user)
    with transaction.atomic():
        created = user.pk is None
        stored = None if created else model.objects.select_for_update().get(pk=user.pk)
        before = None if stored is None else _user_snapshot(stored)
        user.save()
        if groups is not None:
            user.groups.set(groups)
        if permissions is not None:
            user.user_permissions.set(permissions)
        after = _user_snapshot(user)
        if stored is not None and stored.password != user.password:
            after["password"] = "changed"
        if after != before:
            action = "user.create" if created else "user.update"
            audit.record(actor, action, user, before=before, after=after)
    return user


def set_user_password(user: AbstractBaseUser, raw: str | None, *, actor: Any) -> AbstractBaseUser:
    """Set a new password, or with ``raw=None`` disable password login for the user."""
    with transaction.atomic():
        if raw is None:
            user.set_unusable_password()
        else:
            user.set_password(raw)
        user.save(update_fields=["password"])
        audit.record(actor, "user.password", user, after={"usable": user.has_usable_password()})
    return user


def delete_user(user: AbstractBaseUser, *, actor: Any) -> None:
    with transaction.atomic():
        audit.record(actor, "user.delete", user, before=_user_snapshot(user))
        user.delete()


def _group_snapshot(group: Group) -> dict[str, Any]:
    return {"name": group.name, "permissions": _permission_names(group.permissions.all())}


def save_group(
    group: Group, *, actor: Any, permissions: Iterable[Permission] | None = None
) -> Group:
    """Create ``group`` (no pk yet) or save its changes, with its permissions when given."""
    with transaction.atomic():
        created = group.pk is None
        before = None if created else _group_snapshot(Group.objects.get(pk=group.pk))
        group.save()
        if permissions is not None:
            group.permissions.set(permissions)
        after = _group_snapshot(group)
        if after != before:
            action = "group.create" if created else "group.update"
            audit.record(actor, action, group, before=before, after=after)
    return group


def delete_group(group: Group, *, actor: Any) -> None:
    with transaction.atomic():
        audit.record(actor, "group.delete", group, before=_group_snapshot(group))
        group.delete()
