"""Operations on the event log: claiming events for delivery, writing outcomes, releasing lost
claims. Every status change of an event happens here, by conditional update."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef, Q
from django.utils import timezone

from replay.models import DeliveryAttempt, DeliveryRecord, Event

S = Event.Status
CLAIMABLE = [S.PENDING, S.DEFERRED]
IN_PLAY = [S.PENDING, S.DEFERRED, S.DISPATCHED]  # not final yet (keep in step with the index)
# A task may run a moment before next_attempt_at (clock skew between machines, countdowns).
DUE_SLACK = timedelta(seconds=1)


def new_claim_token() -> str:
    return uuid.uuid4().hex


def heads_only() -> Q:
    """An event without an ordering key, or the head of its key: no earlier event of the same
    (service, ordering_key) is still pending, deferred or in flight. Unkeyed events match the
    first arm and never run the subquery; keyed ones probe the small partial index."""
    earlier = Event.objects.filter(
        ~Q(ordering_key=""),
        service_id=OuterRef("service_id"),
        ordering_key=OuterRef("ordering_key"),
        pk__lt=OuterRef("pk"),
        status__in=IN_PLAY,
    )
    return Q(ordering_key="") | ~Exists(earlier)


def claim_events(pks: list[int], *, token: str, node: str) -> list[Event]:
    """Takes the events that are due and not taken: one UPDATE whose WHERE re-checks the status,
    so of two workers racing for an event exactly one gets it. Returns them with service.

    A keyed event is taken only at the head of its key. Two workers racing for consecutive
    events of a key cannot both win: the second's subquery sees the first still pending or
    already dispatched (both in play), whichever snapshot it reads. A batch holding several
    events of one key takes only the first; the others wait for it to finish."""
    now = timezone.now()
    claimed = Event.objects.filter(
        heads_only(), pk__in=pks, status__in=CLAIMABLE, next_attempt_at__lte=now + DUE_SLACK
    ).update(
        status=S.DISPATCHED,
        claim_token=token,
        claimed_by=node,
        claimed_until=now + timedelta(seconds=settings.CLAIM_SECONDS),
        claims=F("claims") + 1,  # reset when an outcome is written; see release_lost_claims
    )
    if not claimed:
        return []
    return list(Event.objects.filter(claim_token=token).select_related("service"))


@dataclass
class Outcome:
    """What one attempt came to. `status` is the event's next status."""

    event: Event
    route_id: int | None
    started_at: datetime
    duration_ms: float
    attempt_outcome: str  # DeliveryAttempt.Outcome
    status: str  # Event.Status: delivered, pending (retry), deferred, dead
    error: str = ""
    dead_reason: str = ""
    next_attempt_at: datetime | None = None
    counts_as_attempt: bool = True
    # Fallback deliveries (breakers/dispatch.py): the primary route the fallback served, and
    # the route that was called when it is not `route_id` (a failed fallback call defers the
    # event for its primary).
    served_for: int | None = None
    attempt_route_id: int | None = None
    # What schema tolerance did to the payload the handler got (breakers/dispatch.py).
    note: str = ""


def apply_outcomes(outcomes: list[Outcome], *, token: str, node: str) -> list[Outcome]:
    """Writes attempts, delivery records and event statuses in one transaction, by conditional
    update on our claim token (an event whose claim we lost is not overwritten). Returns the
    outcomes that were applied."""
    if not outcomes:
        return []
    now = timezone.now()
    applied: list[Outcome] = []
    with transaction.atomic():
        delivered = [o for o in outcomes if o.status == S.DELIVERED]
        groups: dict[tuple[bool, int | None, int | None], list[Outcome]] = {}
        for o in delivered:  # one UPDATE per route in the batch, not one per event
            groups.setdefault((o.counts_as_attempt, o.route_id, o.served_for), []).append(o)
        for (counted, route_id, served_for), group in groups.items():
            applied.extend(_mark_delivered(group, token, now, counted, route_id, served_for))
        DeliveryRecord.objects.bulk_create(
            [
                DeliveryRecord(route_id=o.route_id, event_id=o.event.pk, delivered_at=now)
                for o in applied
                if o.route_id is not None
            ],
            ignore_conflicts=True,
        )
        for o in outcomes:
            if o.status == S.DELIVERED:
                continue
            fields = {
                "status": o.status,
                "last_error": o.error[:2000],
                "claim_token": "",
                "claimed_until": None,
                "route_id": o.route_id,
                "claims": 0,  # the claim ended normally: `claims` counts only lost ones in a row
            }
            if o.counts_as_attempt:
                fields["attempts"] = F("attempts") + 1
            if o.status == S.DEAD:
                fields.update(dead_reason=o.dead_reason, finished_at=now)
            else:
                fields["next_attempt_at"] = o.next_attempt_at or now
            if Event.objects.filter(pk=o.event.pk, claim_token=token).update(**fields):
                applied.append(o)
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    event_id=o.event.pk,
                    route_id=o.attempt_route_id or o.route_id,
                    number=o.event.attempts + (1 if o.counts_as_attempt else 0),
                    started_at=o.started_at,
                    duration_ms=o.duration_ms,
                    outcome=o.attempt_outcome,
                    error=o.error[:2000],
                    note=o.note[:2000],
                    node=node,
                )
                for o in applied
            ]
        )
    return applied


def _mark_delivered(
    group: list[Outcome],
    token: str,
    now,
    counted: bool,
    route_id: int | None,
    served_for: int | None = None,
) -> list[Outcome]:
    pks = [o.event.pk for o in group]
    fields = {
        "status": S.DELIVERED,
        "finished_at": now,
        "last_error": "",
        "claim_token": "",
        "claimed_until": None,
        "route_id": route_id,
        "served_for_id": served_for,
    }
    if counted:
        fields["attempts"] = F("attempts") + 1
    if Event.objects.filter(pk__in=pks, claim_token=token).update(**fields) == len(group):
        return group
    # rare: some claims were lost to the relay meanwhile; keep only the rows we wrote
    ours = set(
        Event.objects.filter(pk__in=pks, status=S.DELIVERED, finished_at=now).values_list(
            "pk", flat=True
        )
    )
    return [o for o in group if o.event.pk in ours]


@dataclass
class Released:
    """What giving back lost claims did: events due again now, and events that became dead
    letters (their service ids, for the SLI ledger)."""

    pending: list[tuple[int, str]]  # (pk, priority), to enqueue after commit
    dead_services: list[int]
    dead_keys: set[tuple[int, str]] = field(default_factory=set)  # (service, ordering_key)


def release_claim(token: str, pks: list[int], *, reason: str) -> Released:
    """These events, if still held under this claim, go back to pending, due now: their worker
    could not write an outcome for them. Only these: other events of the same claim may still
    be in flight (a concurrent pool records a claim's outcomes in several batches)."""
    return _give_back(Q(claim_token=token, pk__in=pks), reason=reason)


def release_lost_claims(dead_nodes: list[str]) -> Released:
    """Events held by a dead node, or whose claim expired, go back to pending; an event taken
    too many times without an outcome is dead (a poison event must not loop forever)."""
    now = timezone.now()
    return _give_back(
        Q(claimed_until__lt=now) | Q(claimed_by__in=dead_nodes),
        reason="worker lost while delivering",
    )


def _give_back(which: Q, *, reason: str) -> Released:
    """A lost claim counts as an attempt started (its handler may have been called), so the
    next delivery carries the next `X-Attempt` and a receiver never sees one number twice for
    one event; the attempt log gets a `lost` row for it. Rows a worker is writing an outcome
    for right now are skipped (they are not lost), so this never waits on a worker."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(Q(status=S.DISPATCHED) & which)
            .values_list(
                "pk",
                "priority",
                "service_id",
                "route_id",
                "attempts",
                "claims",
                "claimed_by",
                "ordering_key",
            )
        )
        if not rows:
            return Released([], [])
        dead = [row for row in rows if row[5] >= settings.MAX_CLAIMS]
        back = [row for row in rows if row[5] < settings.MAX_CLAIMS]
        common = {
            "claim_token": "",
            "claimed_until": None,
            "attempts": F("attempts") + 1,
        }
        if dead:
            Event.objects.filter(pk__in=[row[0] for row in dead]).update(
                **common,
                status=S.DEAD,
                dead_reason="redelivery_cap",
                finished_at=now,
                last_error=f"taken {settings.MAX_CLAIMS} times by workers that never finished it",
            )
        if back:
            Event.objects.filter(pk__in=[row[0] for row in back]).update(
                **common, status=S.PENDING, next_attempt_at=now, last_error=reason
            )
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    event_id=pk,
                    route_id=route_id,
                    number=attempts + 1,
                    started_at=now,
                    outcome=DeliveryAttempt.Outcome.LOST,
                    error=reason,
                    node=node,
                )
                for pk, _, _, route_id, attempts, _, node, _ in rows
            ]
        )
    return Released(
        [(row[0], row[1]) for row in back],
        [row[2] for row in dead],
        {(row[2], row[7]) for row in dead if row[7]},
    )


def due_for_relay(limit: int = 5000) -> list[tuple[int, str]]:
    """Pending or deferred events whose dispatch task should have run a while ago: the commit
    happened but the enqueue was lost, or the task message was. Pushes their next attempt
    forward so the next sweep does not send them again at once."""
    now = timezone.now()
    overdue = now - timedelta(seconds=settings.RELAY_GRACE_SECONDS)
    with transaction.atomic():
        rows = list(
            Event.objects.filter(heads_only(), status__in=CLAIMABLE, next_attempt_at__lt=overdue)
            .order_by("next_attempt_at")
            .values_list("pk", "priority")[:limit]
        )
        if rows:
            Event.objects.filter(pk__in=[pk for pk, _ in rows], status__in=CLAIMABLE).update(
                next_attempt_at=now
            )
    return rows


def next_of_keys(keys: set[tuple[int, str]]) -> list[tuple[int, str, datetime]]:
    """The new head of each (service, ordering_key) whose head just finished: the earliest
    event of the key still waiting, as (pk, priority, next_attempt_at). Two queries whatever
    the number of keys."""
    if not keys:
        return []
    which = Q()
    for service_id, ordering_key in keys:
        which |= Q(service_id=service_id, ordering_key=ordering_key)
    firsts = (
        Event.objects.filter(which, ~Q(ordering_key=""), status__in=IN_PLAY)
        .values("service_id", "ordering_key")
        .annotate(first=Min("pk"))
        .values_list("first", flat=True)
    )
    return list(
        Event.objects.filter(pk__in=list(firsts), status__in=CLAIMABLE).values_list(
            "pk", "priority", "next_attempt_at"
        )
    )


def purge_attempts(older_than_days: int) -> int:
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = DeliveryAttempt.objects.filter(started_at__lt=cutoff).delete()
    return deleted
