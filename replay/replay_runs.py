"""Replay runs: re-deliver a verified snapshot's events through the normal dispatch.

A live run writes *replay copies* into the event log (Event rows with `is_replay` and the run,
event id `<id>~replay-<run>`) and hands them to dispatch by task name, so breakers, bulkheads,
retries, idempotency and dead letters apply as to any event. The copies' ids are unique per
service, and the checkpoint (the next line of the file) is saved with the counts in the
transaction that writes them: a run resumed after a worker died continues where it committed,
and the unique id keeps even a repeated chunk from delivering an event twice within the run.

Every state change is a verb here, audited in the transaction of the change.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from controlplane import audit
from controlplane.models import Service
from replay import snapshots
from replay.enqueue import enqueue_dispatch
from replay.models import DeliveryRecord, Event, ReplayRun, Snapshot

S = ReplayRun.Status
AUDIT_FIELDS = ["status", "status_reason", "total", "done", "skipped", "failed", "checkpoint"]
MAX_CHUNK = 500
LEASE_SECONDS = 5.0  # more than one chunk's work and pause (a chunk is at most ~1 s at the rate)
# A task works this long, then hands over to a fresh task (well inside the time limits).
SLICE_SECONDS = 20.0


class ReplayError(Exception):
    """A replay request or state change that cannot be done (the message says why)."""


def copy_id(event_id: str, run_id: int) -> str:
    return f"{event_id}~replay-{run_id}"


def _label(actor: Any) -> str:
    return actor.get_username() if getattr(actor, "is_authenticated", False) else str(actor)


# --------------------------------------------------------------------------- verbs


def create_replay(
    *,
    actor: Any,
    snapshot: Snapshot,
    mode: str = ReplayRun.Mode.DRY_RUN,
    rate: float,
    start: datetime | None = None,
    end: datetime | None = None,
    types: list[str] | None = None,
    route: Any = None,
    force: bool = False,
) -> ReplayRun:
    """Record a run over the snapshot's window (or a sub-window of it) and start it after commit.
    Callers check roles (forcing is for admins); this checks what holds whoever calls."""
    if rate <= 0:
        raise ReplayError("rate must be above 0")
    if snapshot.status != Snapshot.Status.READY:
        raise ReplayError(f"snapshot {snapshot.pk} is {snapshot.status}: it cannot be replayed")
    start = start or snapshot.window_start
    end = end or snapshot.window_end
    if start >= end:
        raise ReplayError("window_end must be after window_start")
    if route is not None and snapshot.service_id not in (None, route.service_id):
        raise ReplayError(f"route {route.name} is not a route of the snapshot's service")
    with transaction.atomic():
        run = ReplayRun.objects.create(
            snapshot=snapshot,
            window_start=max(start, snapshot.window_start),
            window_end=min(end, snapshot.window_end),
            types=sorted(set(types or [])),
            route=route,
            mode=mode,
            rate=rate,
            force=force,
            created_by=_label(actor)[:150],
        )
        audit.record(
            actor,
            "replay.create",
            run,
            after=audit.snapshot(
                run,
                [
                    "snapshot",
                    "mode",
                    "rate",
                    "force",
                    "route",
                    "types",
                    "window_start",
                    "window_end",
                ],
            ),
        )
        _start_after_commit(run)
    return run


FALLBACK_RATE = 100.0  # events/s of the one-click "replay what the fallback served"


def fallback_served(route: Any) -> Any:
    """The original events `route`'s fallback served while its breaker was open."""
    return Event.objects.filter(served_for=route, is_replay=False)


def create_fallback_replay(
    *,
    actor: Any,
    route: Any,
    rate: float = FALLBACK_RATE,
    mode: str = ReplayRun.Mode.LIVE,
) -> ReplayRun:
    """Re-deliver to `route` (once it has recovered) the events its fallback served up to now,
    read from the event log; events the route has delivered since (or whose copy is on its way
    to it) are skipped, so a second click delivers nothing twice. Callers check roles."""
    if rate <= 0:
        raise ReplayError("rate must be above 0")
    now = timezone.now()
    first = fallback_served(route).order_by("received_at").values_list("received_at", flat=True)
    start = first.first() or now
    with transaction.atomic():
        run = ReplayRun.objects.create(
            source=ReplayRun.Source.FALLBACK,
            snapshot=None,
            window_start=start,
            window_end=now + timedelta(microseconds=1),  # everything received until now
            route=route,
            mode=mode,
            rate=rate,
            created_by=_label(actor)[:150],
        )
        audit.record(
            actor,
            "replay.create",
            run,
            after=audit.snapshot(run, ["source", "mode", "rate", "route", "window_start"]),
        )
        _start_after_commit(run)
    return run


def _start_after_commit(run: ReplayRun) -> None:
    from replay.tasks import replay_run_task  # tasks import this module

    transaction.on_commit(lambda: replay_run_task.delay(run.pk))


def _transition(
    run: ReplayRun, *, actor: Any, action: str, allowed: tuple, to: str, reason: str = ""
) -> ReplayRun:
    with transaction.atomic():
        locked = ReplayRun.objects.select_for_update().get(pk=run.pk)
        if locked.status not in allowed:
            raise ReplayError(f"replay {run.pk} is {locked.status}: it cannot be {action}d")
        before = audit.snapshot(locked, ["status"])
        locked.status = to
        locked.status_reason = reason
        fields = ["status", "status_reason", "updated_at"]
        if to in ReplayRun.FINISHED:
            locked.finished_at = timezone.now()
            fields.append("finished_at")
        locked.save(update_fields=fields)
        audit.record(
            actor, f"replay.{action}", locked, before=before, after={"status": to}, reason=reason
        )
        if to == S.RUNNING:
            _start_after_commit(locked)
    return locked


def pause_replay(run: ReplayRun, *, actor: Any) -> ReplayRun:
    """The task stops at the next chunk; the checkpoint stays."""
    return _transition(
        run, actor=actor, action="pause", allowed=(S.PENDING, S.RUNNING), to=S.PAUSED
    )


def resume_replay(run: ReplayRun, *, actor: Any) -> ReplayRun:
    return _transition(run, actor=actor, action="resume", allowed=(S.PAUSED,), to=S.RUNNING)


def cancel_replay(run: ReplayRun, *, actor: Any) -> ReplayRun:
    return _transition(
        run, actor=actor, action="cancel", allowed=(S.PENDING, S.RUNNING, S.PAUSED), to=S.CANCELLED
    )


def _finish(run: ReplayRun, status: str, reason: str = "") -> ReplayRun:
    with transaction.atomic():
        locked = ReplayRun.objects.select_for_update().get(pk=run.pk)
        if locked.is_finished:
            return locked
        before = audit.snapshot(locked, AUDIT_FIELDS)
        locked.status, locked.status_reason, locked.finished_at = status, reason, timezone.now()
        locked.save(update_fields=["status", "status_reason", "finished_at", "updated_at"])
        audit.record(
            "replay-worker",
            f"replay.{'finish' if status == S.DONE else 'fail'}",
            locked,
            before=before,
            after=audit.snapshot(locked, AUDIT_FIELDS),
            reason=reason,
        )
    return locked


# --------------------------------------------------------------------------- the work


def _selected(run: ReplayRun, line: dict[str, Any]) -> bool:
    received = datetime.fromisoformat(line["received_at"])
    if not (run.window_start <= received < run.window_end):
        return False
    if run.types and line["type"] not in run.types:
        return False
    return not (run.route is not None and line["service"] != run.route.service.slug)


def _already_delivered(run: ReplayRun, lines: list[dict[str, Any]]) -> set[int]:
    """Log ids of the originals delivered on the target route: the named route, or for
    today's routes, any route (the one the original was routed to)."""
    ids = [line["log_id"] for line in lines]
    records = DeliveryRecord.objects.filter(event_id__in=ids)
    if run.route_id is not None:
        records = records.filter(route_id=run.route_id)
    found = set(records.values_list("event_id", flat=True))
    if run.source == ReplayRun.Source.FALLBACK:
        found |= _copied_to(run.route_id, lines)
    return found


def _copied_to(route_id: int, lines: list[dict[str, Any]]) -> set[int]:
    """Log ids whose replay copy the route has delivered, or is still to deliver (pending,
    deferred, being delivered): an earlier run took care of them. A copy its fallback served
    again, or that died, does not count."""
    wanted = {(line["service"], line["id"]): line["log_id"] for line in lines}
    copies = (
        Event.objects.filter(
            is_replay=True,
            route_id=route_id,
            service__slug__in={service for service, _ in wanted},
            status__in=[
                Event.Status.PENDING,
                Event.Status.DISPATCHED,
                Event.Status.DEFERRED,
                Event.Status.DELIVERED,
            ],
            served_for__isnull=True,
            event_id__contains="~replay-",
        )
        .values_list("service__slug", "event_id")
        .iterator()
    )
    found = set()
    for service, copy in copies:
        log_id = wanted.get((service, copy.rpartition("~replay-")[0]))
        if log_id is not None:
            found.add(log_id)
    return found


def _lines(run: ReplayRun) -> Any:
    """(position, event line) from the checkpoint on: the snapshot's lines, or for a fallback
    run the served events from the log, by pk (the checkpoint is then the next pk)."""
    if run.source != ReplayRun.Source.FALLBACK:
        yield from snapshots.read_lines(run.snapshot, start_line=run.checkpoint)
        return
    rows = (
        _fallback_selection(run)
        .filter(pk__gte=run.checkpoint)
        .order_by("pk")
        .values(
            "pk",
            "event_id",
            "service__slug",
            "type",
            "schema_version",
            "priority",
            "occurred_at",
            "received_at",
            "payload",
        )
    )
    for row in rows.iterator(chunk_size=MAX_CHUNK):
        yield (
            row["pk"],
            {
                "log_id": row["pk"],
                "id": row["event_id"],
                "service": row["service__slug"],
                "type": row["type"],
                "schema_version": row["schema_version"],
                "priority": row["priority"],
                "occurred_at": row["occurred_at"].isoformat(),
                "received_at": row["received_at"].isoformat(),
                "payload": row["payload"],
            },
        )


def _fallback_selection(run: ReplayRun) -> Any:
    qs = fallback_served(run.route_id).filter(
        received_at__gte=run.window_start, received_at__lt=run.window_end
    )
    return qs.filter(type__in=run.types) if run.types else qs


def count_selected(run: ReplayRun) -> int:
    if run.source == ReplayRun.Source.FALLBACK:
        return _fallback_selection(run).count()
    return sum(1 for _, line in snapshots.read_lines(run.snapshot) if _selected(run, line))


def start_run(run_id: int, *, verify: bool = True) -> ReplayRun | None:
    """First step of a run's task: verify the snapshot (an invalid one fails the run), count
    what is selected, mark it running. Quiet when the run is gone or no longer startable.
    `verify` is off only for a task continuing the slice its predecessor verified."""
    run = ReplayRun.objects.select_related("snapshot", "route__service").filter(pk=run_id).first()
    if run is None or run.status not in (S.PENDING, S.RUNNING):
        return run
    from_log = run.source == ReplayRun.Source.FALLBACK
    if run.snapshot is None and not from_log:
        return _finish(run, S.FAILED, "the snapshot was deleted")
    if not from_log and (verify or run.total is None):
        try:
            snapshots.open_for_replay(run.snapshot, actor="replay-worker")
        except snapshots.SnapshotError as exc:
            return _finish(run, S.FAILED, str(exc))
    if run.total is None:
        total = count_selected(run)
        with transaction.atomic():
            locked = ReplayRun.objects.select_for_update().get(pk=run.pk)
            before = audit.snapshot(locked, ["status", "total"])
            if locked.status == S.PENDING:
                locked.status = S.RUNNING
            locked.total, locked.started_at = total, timezone.now()
            locked.save(update_fields=["status", "total", "started_at", "updated_at"])
            audit.record(
                "replay-worker",
                "replay.start",
                locked,
                before=before,
                after=audit.snapshot(locked, ["status", "total"]),
            )
    return ReplayRun.objects.select_related("snapshot", "route__service").get(pk=run.pk)


def _apply_chunk(
    run: ReplayRun, chunk: list[tuple[int, dict[str, Any]]], token: str
) -> ReplayRun | None:
    """Write one chunk's copies (live) or counts (dry run) and advance the checkpoint, in one
    transaction, renewing the lease. Returns None when the run was paused or cancelled
    meanwhile, or another task took the lease over (this one was too slow)."""
    next_line = chunk[-1][0] + 1
    with transaction.atomic():
        locked = ReplayRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != S.RUNNING or locked.lease_token != token:
            return None
        locked.lease_until = timezone.now() + timedelta(seconds=LEASE_SECONDS)
        if locked.checkpoint >= next_line:  # another task did this chunk already
            return locked
        lines = [line for number, line in chunk if number >= locked.checkpoint]
        selected = [line for line in lines if _selected(run, line)]
        delivered = set() if run.force else _already_delivered(run, selected)
        todo = [line for line in selected if line["log_id"] not in delivered]
        skipped = len(selected) - len(todo)
        failed = 0
        if run.mode == ReplayRun.Mode.LIVE and todo:
            written, failed = _write_copies(run, todo)
            transaction.on_commit(lambda: enqueue_dispatch(written))
        locked.done += len(todo) - failed
        locked.skipped += skipped
        locked.failed += failed
        locked.checkpoint = next_line
        locked.save(
            update_fields=["done", "skipped", "failed", "checkpoint", "lease_until", "updated_at"]
        )
    return locked


def _write_copies(run: ReplayRun, lines: list[dict[str, Any]]) -> tuple[list[tuple[int, str]], int]:
    """Insert the replay copies; returns (pk, priority) of those written now, and how many lines
    could not be replayed (their service is gone)."""
    services = dict(
        Service.objects.filter(slug__in={line["service"] for line in lines}).values_list(
            "slug", "pk"
        )
    )
    now = timezone.now()
    batch = uuid.uuid4()
    rows = []
    failed = 0
    for line in lines:
        service_pk = services.get(line["service"])
        if service_pk is None:
            failed += 1
            continue
        rows.append(
            Event(
                service_id=service_pk,
                event_id=copy_id(line["id"], run.pk),
                type=line["type"],
                schema_version=line["schema_version"],
                priority=line["priority"],
                occurred_at=datetime.fromisoformat(line["occurred_at"]),
                payload=line["payload"],
                received_at=now,
                next_attempt_at=now,
                batch_id=batch,
                is_replay=True,
                replay_run=run,
                route_id=run.route_id,  # pinned to the alternate route, when one is named
            )
        )
    # A copy already written (a chunk repeated after a crash) is ignored, not written twice.
    Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    written = list(Event.objects.filter(batch_id=batch).values_list("pk", "priority"))
    return written, failed


def _take_lease(run_id: int, token: str) -> bool:
    # A conditional UPDATE: of two tasks racing for a free (or lapsed) lease, exactly one
    # matches the row; the other sees count 0 and backs off.
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=token)
    taken = (
        ReplayRun.objects.filter(free, pk=run_id)
        .exclude(status__in=ReplayRun.FINISHED)
        .update(lease_token=token, lease_until=now + timedelta(seconds=LEASE_SECONDS))
    )
    return taken == 1


def _release_lease(run_id: int, token: str) -> None:
    ReplayRun.objects.filter(pk=run_id, lease_token=token).update(lease_until=None)


def work(
    run_id: int, *, verify: bool = True, seconds: float = SLICE_SECONDS, sleep=time.sleep
) -> str:
    """Do up to `seconds` of a run, paced at its rate: "continue" (call again), "done",
    "busy" (another task holds the run: try again after LEASE_SECONDS) or "stopped" (paused,
    cancelled, failed, gone)."""
    token = uuid.uuid4().hex
    if not _take_lease(run_id, token):
        exists = ReplayRun.objects.filter(pk=run_id).exclude(status__in=ReplayRun.FINISHED)
        return "busy" if exists.exists() else "stopped"
    try:
        return _work(run_id, token, verify=verify, seconds=seconds, sleep=sleep)
    finally:
        _release_lease(run_id, token)


def _work(run_id: int, token: str, *, verify: bool, seconds: float, sleep) -> str:
    run = start_run(run_id, verify=verify)
    if run is None or run.status != S.RUNNING:
        return "stopped"
    size = max(1, min(MAX_CHUNK, int(run.rate)))
    began = time.monotonic()
    handled = 0
    chunk: list[tuple[int, dict[str, Any]]] = []
    for number, line in _lines(run):
        chunk.append((number, line))
        if len(chunk) < size:
            continue
        if _apply_chunk(run, chunk, token) is None:
            return "stopped"
        handled += len(chunk)
        chunk = []
        # Pace: `handled` lines should take handled / rate seconds.
        ahead = handled / run.rate - (time.monotonic() - began)
        if ahead > 0:
            sleep(ahead)
        if time.monotonic() - began >= seconds:
            return "continue"
    if chunk and _apply_chunk(run, chunk, token) is None:
        return "stopped"
    _finish(run, S.DONE)
    return "done"


def running_runs() -> list[int]:
    return list(ReplayRun.objects.filter(status=S.RUNNING).values_list("pk", flat=True))


def outcomes(run: ReplayRun) -> dict[str, int]:
    """How the copies of a live run fared in dispatch so far, by event status."""
    counts = dict.fromkeys(Event.Status.values, 0)
    counts.update(run.copies.values_list("status").annotate(n=Count("id")).order_by())
    return counts
