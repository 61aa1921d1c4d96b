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


def require_redis() -> str:
    """The REDIS_URL under test, DB number included (tests never pick their own DB: engineers
    and CI runs share one Redis). Skips when there is none or it does not answer, unless
    CONTROLPLANE_REQUIRE_SERVICES=1: then it fails."""
    import redis

    url = os.environ.get("REDIS_URL", "")
    why = "REDIS_URL is not set (or Redis was unreachable when the run started)"
    if url:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
            return url
        except redis.RedisError as exc:
            why = f"Redis at {url} is unreachable ({exc})"
        finally:
            client.close()
    if os.environ.get("CONTROLPLANE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{why} and CONTROLPLANE_REQUIRE_SERVICES=1")
    pytest.skip(f"{why}; set CONTROLPLANE_REQUIRE_SERVICES=1 to make this a failure")


# --- the pipeline's cast: a service, a webhook receiver, routes ---------------------------------


@pytest.fixture
def checkout(operator):
    from controlplane.services import create_service

    return create_service(
        actor=operator.user, slug="checkout", name="Checkout", team="payments", tier="tier-1"
    )


@pytest.fixture
def target():
    from tests.http_target import Target

    with Target() as t:
        yield t


def make_route(service, actor, **fields):
    from breakers.routes import create_route

    defaults = {
        "name": f"{service.slug}-route",
        "event_type": "*",
        "kind": "webhook",
        "timeout_seconds": 2.0,
        "max_attempts": 5,
    }
    return create_route(actor=actor.user, service=service, **{**defaults, **fields})


def event_body(event_id: str, service: str = "checkout", **fields) -> dict:
    return {
        "id": event_id,
        "service": service,
        "type": fields.pop("type", "order.created"),
        "occurred_at": "2026-11-28T12:00:00Z",
        "payload": {"n": 1},
        **fields,
    }


@pytest.fixture
def test_handlers(settings):
    """Allow-lists the python handlers in tests/handlers.py."""
    from tests import handlers

    settings.PYTHON_HANDLERS = [*settings.PYTHON_HANDLERS, *handlers.ALL]
    return handlers


@pytest.fixture(autouse=True)
def _fresh_route_table_breakers_and_node():
    from breakers.admission import reset as forget_admission
    from breakers.nodes import forget_current_node
    from breakers.registry import forget_guard
    from breakers.route_table import forget_routes
    from breakers.schema_table import forget_schemas

    forget_routes()
    forget_admission()  # in-process buckets keyed by service id, and the cached delivery lag
    forget_schemas()
    yield
    forget_current_node()
    forget_guard()


@pytest.fixture(autouse=True)
def _no_redis_keys_from_earlier_runs():
    """Test databases restart their ids; keys from an earlier run would name other events."""
    from controlplane.redis import get_redis

    client = get_redis()
    if client is not None:
        for pattern in ("cp:idem:*", "cp:breaker:*", "cp:admission:*"):
            keys = list(client.scan_iter(pattern, count=1000))
            if keys:
                client.delete(*keys)
    yield
