"""API tokens: created with their secret shown once, stored as SHA-256, checked per request.

Tokens are 256-bit random strings, so a fast hash is enough: nobody can brute-force the input.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from controlplane import audit
from controlplane.models import ApiToken

TOKEN_PREFIX = "cp_"


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def may_grant_scopes(user) -> bool:
    """A scope lets a token do what its user's role does not (ingest as a viewer), so only
    operators grant scopes in the API and pages; admins grant them to service accounts with
    `manage.py create_api_token USER --scope ingest`."""
    from controlplane.roles import Role, has_role

    return has_role(user, Role.OPERATOR)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    user: AbstractBaseUser,
    *,
    name: str,
    expires_at: datetime | None = None,
    scopes: list[str] | None = None,
    actor: AbstractBaseUser | None = None,
) -> IssuedToken:
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("expires_at must be in the future")
    unknown = set(scopes or []) - set(ApiToken.Scope.values)
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=secret[:10],
            token_hash=hash_secret(secret),
            expires_at=expires_at,
            scopes=sorted(scopes or []),
        )
        audit.record(
            actor or user,
            "token.create",
            token,
            after={"name": name, "user": user.get_username(), "scopes": token.scopes},
        )
    return IssuedToken(token=token, secret=secret)


def revoke_token(token: ApiToken, *, actor: AbstractBaseUser) -> ApiToken:
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if updated:
            token.refresh_from_db(fields=["revoked_at"])
            audit.record(actor, "token.revoke", token, before={"revoked": False})
    return token


def authenticate_secret(secret: str) -> ApiToken | None:
    """The usable token for this secret, with its user; touches last_used_at at most once a
    minute so the hot path (ingest) does not write a row per request."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    try:
        token = ApiToken.objects.select_related("user").get(token_hash=hash_secret(secret))
    except ApiToken.DoesNotExist:
        return None
    now = timezone.now()
    if not token.is_usable(now) or not token.user.is_active:
        return None
    stale = now - timedelta(seconds=settings.API_TOKEN_TOUCH_INTERVAL)
    if token.last_used_at is None or token.last_used_at < stale:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
