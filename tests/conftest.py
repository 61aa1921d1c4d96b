"""The cast of actors, one per role plus an outsider, each with an API token."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from controlplane.roles import Role, grant_role
from controlplane.tokens import issue_token


@dataclass
class Actor:
    user: object
    token: str

    def client(self) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.token}")
        return client


def make_actor(username: str, role: Role | None) -> Actor:
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if role is not None:
        grant_role(user, role)
    return Actor(user=user, token=issue_token(user, name="test").secret)


@pytest.fixture
def viewer(db) -> Actor:
    return make_actor("viewer", Role.VIEWER)


@pytest.fixture
def operator(db) -> Actor:
    return make_actor("operator", Role.OPERATOR)


@pytest.fixture
def approver(db) -> Actor:
    return make_actor("approver", Role.APPROVER)


@pytest.fixture
def admin(db) -> Actor:
    return make_actor("admin", Role.ADMIN)


@pytest.fixture
def outsider(db) -> Actor:
    """Logged in, but holding no role."""
    return make_actor("outsider", None)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def uses_postgres() -> bool:
    return bool(os.environ.get("DATABASE_URL", "").startswith("postgres"))


def uses_redis() -> bool:
    return bool(os.environ.get("REDIS_URL"))
