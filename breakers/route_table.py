"""Which route takes an event: cached per process and reloaded when any route changes, so an
edit reaches running workers within ROUTE_REFRESH_SECONDS without a restart and the hot path
costs no query."""

from __future__ import annotations

import fnmatch
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max

from breakers.models import Route


@dataclass(frozen=True)
class RouteTable:
    by_service: dict[int, list[Route]]

    def match(self, service_id: int, event_type: str) -> Route | None:
        """An exact type beats a pattern; a longer pattern beats a shorter one."""
        for route in self.by_service.get(service_id, ()):
            if route.event_type == event_type or fnmatch.fnmatchcase(event_type, route.event_type):
                return route
        return None


def _specificity(route: Route) -> tuple:
    is_pattern = any(ch in route.event_type for ch in "*?[")
    return (is_pattern, -len(route.event_type), route.name)


def load_table() -> RouteTable:
    by_service: dict[int, list[Route]] = {}
    for route in Route.objects.filter(enabled=True):
        by_service.setdefault(route.service_id, []).append(route)
    for routes in by_service.values():
        routes.sort(key=_specificity)
    return RouteTable(by_service)


_lock = threading.Lock()
_table: RouteTable | None = None
_stamp: tuple | None = None
_checked = 0.0


def route_table() -> RouteTable:
    global _table, _stamp, _checked
    now = time.monotonic()
    if _table is not None and now - _checked < settings.ROUTE_REFRESH_SECONDS:
        return _table
    with _lock:
        stamp = tuple(Route.objects.aggregate(n=Count("id"), at=Max("updated_at")).values())
        if _table is None or stamp != _stamp:
            _table, _stamp = load_table(), stamp
        _checked = now
        return _table


def forget_routes() -> None:
    """Drop the cached table (tests roll back rows behind its back)."""
    global _table, _stamp
    with _lock:
        _table, _stamp = None, None
