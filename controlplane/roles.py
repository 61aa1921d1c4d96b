"""Roles, ordered viewer < operator < approver < admin, held as Django groups.

Pages and the API both ask `has_role`; nothing else decides who may do what.
"""

from __future__ import annotations

from enum import IntEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    APPROVER = 3
    ADMIN = 4

    @property
    def group_name(self) -> str:
        return self.name.lower()

    @classmethod
    def from_name(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown role {name!r}") from None


_CACHE_ATTR = "_controlplane_role"


def role_of(user: AbstractBaseUser | AnonymousUser | None) -> Role | None:
    """The highest role the user holds; superusers are admins. Cached on the user object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if hasattr(user, _CACHE_ATTR):
        return getattr(user, _CACHE_ATTR)
    if user.is_superuser:
        role: Role | None = Role.ADMIN
    else:
        names = {r.group_name: r for r in Role}
        held = [names[n] for n in user.groups.values_list("name", flat=True) if n in names]
        role = max(held) if held else None
    setattr(user, _CACHE_ATTR, role)
    return role


def has_role(user: AbstractBaseUser | AnonymousUser | None, role: Role) -> bool:
    held = role_of(user)
    return held is not None and held >= role


def grant_role(user: AbstractBaseUser, role: Role) -> None:
    """Give the user exactly this role (replacing any other role group)."""
    from django.contrib.auth.models import Group

    role_groups = Group.objects.filter(name__in=[r.group_name for r in Role])
    user.groups.remove(*role_groups)
    group, _ = Group.objects.get_or_create(name=role.group_name)
    user.groups.add(group)
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)
