"""Verb functions for routes: validated, audited, in one transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from breakers.handlers import python_handler_allowed
from breakers.models import CircuitBreaker, Route
from controlplane import audit, egress

ROUTE_FIELDS = [
    "service",
    "name",
    "event_type",
    "kind",
    "target",
    "timeout_seconds",
    "max_concurrent_calls",
    "max_wait_ms",
    "max_attempts",
    "enabled",
    "when_open",
]


def target_error(kind: str, target: str) -> str | None:
    """Why a target may not be used, or None. Both allow-lists come from settings only."""
    if kind == Route.Kind.WEBHOOK and (reason := egress.refusal(target, resolve=True)):
        return (
            "Webhook targets must be http(s) URLs whose host and port are in "
            f"CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS ({reason})."
        )
    if kind == Route.Kind.PYTHON and not python_handler_allowed(target):
        return "Python handlers must be listed in CONTROLPLANE_PYTHON_HANDLERS."
    return None


def create_route(*, actor: Any, **fields: Any) -> Route:
    with transaction.atomic():
        route = Route.objects.create(**fields)
        CircuitBreaker.objects.create(route=route)
        audit.record(actor, "route.create", route, after=audit.snapshot(route, ROUTE_FIELDS))
    return route


def update_route(route: Route, *, actor: Any, **changes: Any) -> Route:
    return audit.update_audited(
        route, changes, actor=actor, action="route.update", fields=ROUTE_FIELDS
    )


def delete_route(route: Route, *, actor: Any) -> None:
    audit.delete_audited(route, actor=actor, action="route.delete", fields=ROUTE_FIELDS)
