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
    "fallback_route",
]


class RouteError(ValueError):
    """A route change that breaks a rule checked here; `field` names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def fallback_error(route: Route | None, service: Any, fallback: Route | None) -> str | None:
    """Why `fallback` may not be the fallback of `route` (None: a new route) in `service`, or
    None. One hop only: a fallback has no fallback of its own, and a route that is some
    route's fallback takes none."""
    if fallback is None:
        return None
    service_id = getattr(service, "pk", service)
    if route is not None and fallback.pk == route.pk:
        return "A route cannot be its own fallback."
    if fallback.service_id != service_id:
        return f"The fallback route {fallback.name} belongs to another service."
    if fallback.fallback_route_id is not None:
        return f"The fallback route {fallback.name} has a fallback itself (one hop only)."
    if route is not None and Route.objects.filter(fallback_route=route).exists():
        return f"Route {route.name} is another route's fallback; it cannot have one (one hop only)."
    return None


def _check_fallback(route: Route | None, fields: dict[str, Any]) -> None:
    if "fallback_route" not in fields and "service" not in fields:
        return
    service = fields.get("service", getattr(route, "service_id", None))
    fallback = fields.get("fallback_route", getattr(route, "fallback_route", None))
    if error := fallback_error(route, service, fallback):
        raise RouteError("fallback_route", error)


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
    _check_fallback(None, fields)
    with transaction.atomic():
        route = Route.objects.create(**fields)
        CircuitBreaker.objects.create(route=route)
        audit.record(actor, "route.create", route, after=audit.snapshot(route, ROUTE_FIELDS))
    return route


def update_route(route: Route, *, actor: Any, **changes: Any) -> Route:
    _check_fallback(route, changes)
    return audit.update_audited(
        route, changes, actor=actor, action="route.update", fields=ROUTE_FIELDS
    )


def delete_route(route: Route, *, actor: Any) -> None:
    audit.delete_audited(route, actor=actor, action="route.delete", fields=ROUTE_FIELDS)
