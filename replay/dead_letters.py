"""Dead letters: finding them, and redriving them into dispatch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from controlplane import audit
from replay.enqueue import enqueue_dispatch
from replay.models import Event

FILTERS = ("service", "type", "route", "reason", "since", "until")


def dead_letters(
    *,
    service: str | None = None,
    type: str | None = None,
    route: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Event]:
    qs = Event.objects.filter(status=Event.Status.DEAD).select_related("service", "route")
    if service:
        qs = qs.filter(service__slug=service)
    if type:
        qs = qs.filter(type=type)
    if route:
        qs = qs.filter(route__name=route)
    if reason:
        qs = qs.filter(dead_reason=reason)
    if since:
        qs = qs.filter(finished_at__gte=since)
    if until:
        qs = qs.filter(finished_at__lt=until)
    return qs.order_by("-finished_at", "-pk")


def redrive(events: QuerySet[Event], *, actor: Any, limit: int = 10_000) -> list[int]:
    """Puts dead events back to pending with a fresh attempt count, audited, and dispatches them
    after the commit. Returns the pks redriven (at most `limit`)."""
    with transaction.atomic():
        rows = list(
            events.filter(status=Event.Status.DEAD)
            .order_by("pk")
            .values_list("pk", "priority", "service__slug")[:limit]
        )
        pks = [pk for pk, _, _ in rows]
        if not pks:
            return []
        Event.objects.filter(pk__in=pks, status=Event.Status.DEAD).update(
            status=Event.Status.PENDING,
            attempts=0,
            claims=0,
            dead_reason="",
            last_error="",
            next_attempt_at=timezone.now(),
            finished_at=None,
        )
        first = Event.objects.get(pk=pks[0])
        audit.record(
            actor,
            "dead_letters.redrive",
            first,
            after={
                "count": len(pks),
                "event_pks": pks[:100],
                "services": sorted({slug for _, _, slug in rows}),
            },
        )
        pairs = [(pk, priority) for pk, priority, _ in rows]
        transaction.on_commit(lambda: enqueue_dispatch(pairs))
    return pks
