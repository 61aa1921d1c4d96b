"""Which route takes an event: cached per process and reloaded when any route changes, so an
edit reaches running workers within ROUTE_REFRESH_SECONDS without a restart and the hot path
costs no query."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from breakers.models import Route
from breakers.refreshed import Refreshed


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


_cache: Refreshed[RouteTable] = Refreshed(Route, load_table)


def route_table() -> RouteTable:
    return _cache.get()


def forget_routes() -> None:
    """Drop the cached table (tests roll back rows behind its back)."""
    _cache.forget()
