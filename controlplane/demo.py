"""Demo data for `make run`: an admin and an approver with known passwords, the admin's
token, the role groups and a few services.

Safe to run again: existing rows are kept, and the demo credentials are read back from var/.
"""

from __future__ import annotations

import importlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from controlplane import services, tokens
from controlplane.models import Service
from controlplane.roles import Role, grant_role

DEMO_SERVICES = [
    {
        "slug": "checkout",
        "name": "Checkout",
        "team": "payments",
        "tier": "tier-1",
        "description": "Takes orders and payments.",
    },
    {
        "slug": "inventory",
        "name": "Inventory",
        "team": "fulfilment",
        "tier": "tier-2",
        "description": "Stock levels and reservations.",
    },
    {
        "slug": "notifications",
        "name": "Notifications",
        "team": "growth",
        "tier": "tier-3",
        "description": "E-mail and push messages.",
    },
]


@dataclass
class DemoCredentials:
    username: str
    password: str
    token: str
    approver_username: str = "approver"
    approver_password: str = ""


def _kept_secret(name: str, make) -> str:
    path = settings.VAR_DIR / name
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


def _demo_user(username: str, role: Role, secret_name: str, **defaults) -> tuple[object, str]:
    """A demo login with its password kept under var/ (read back on the next run)."""
    User = get_user_model()
    password = _kept_secret(secret_name, lambda: secrets.token_urlsafe(12))
    user, created = User.objects.get_or_create(username=username, defaults=defaults)
    if created or not user.check_password(password):
        user.set_password(password)
        user.save()
    grant_role(user, role)
    return user, password


def seed() -> DemoCredentials:
    # Every role's group exists from the start, so the admin can hand roles out in /admin/.
    for role in Role:
        Group.objects.get_or_create(name=role.group_name)
    # A second person to approve the admin's requests: nobody approves their own.
    _approver, approver_password = _demo_user("approver", Role.APPROVER, "demo_approver_password")
    User = get_user_model()
    password = _kept_secret("demo_admin_password", lambda: secrets.token_urlsafe(12))
    admin, created = User.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created or not admin.check_password(password):
        admin.set_password(password)
        admin.save()
    grant_role(admin, Role.ADMIN)
    token_path = settings.VAR_DIR / "demo_api_token"
    token = token_path.read_text().strip() if token_path.exists() else ""
    if not token or tokens.authenticate_secret(token) is None:
        admin.api_tokens.filter(name="demo").delete()
        token = tokens.issue_token(admin, name="demo", scopes=["ingest"]).secret
        token_path.write_text(token)
        token_path.chmod(0o600)
    for spec in DEMO_SERVICES:
        if not Service.objects.filter(slug=spec["slug"]).exists():
            services.create_service(actor=admin, **spec)
    for app in ("replay", "breakers", "budgets"):
        try:
            module = importlib.import_module(f"{app}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app}.demo":
                raise
            continue
        module.seed(admin)
    return DemoCredentials(
        username="admin", password=password, token=token, approver_password=approver_password
    )
