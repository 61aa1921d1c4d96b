"""Ingest: validate each event on its own, admit it (the admission hook), write the accepted
ones in one transaction, and hand them to the dispatchers only after the commit. Nothing is
acknowledged before it is on disk; a shed event is not written anywhere."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from controlplane.models import Service
from controlplane.serializers import bad_text
from replay.enqueue import enqueue_dispatch
from replay.models import Event
from replay.serializers import EventInSerializer


@dataclass
class IngestResult:
    index: int
    id: str | None
    status: str  # accepted | duplicate | rejected | shed
    reason: str = ""
    errors: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None  # shed only: whole seconds

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "id": self.id, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.errors:
            out["errors"] = self.errors
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


# --- admission: breakers decides, replay only asks (replay never imports breakers) -----------


@dataclass(frozen=True)
class Candidate:
    """A valid, new-in-this-batch event of a known service, before it is written."""

    index: int
    service_id: int
    service_slug: str
    priority: str
    rate: float | None  # the service's admission_rate (None: no bucket)
    burst: int | None


@dataclass(frozen=True)
class Shed:
    reason: str  # rate_limited | overloaded
    retry_after: int  # whole seconds, at least 1


# Given the candidates in ingest order, returns the shed ones by index; the rest are admitted.
AdmissionFn = Callable[[Sequence[Candidate]], dict[int, Shed]]


def _admit_everything(candidates: Sequence[Candidate]) -> dict[int, Shed]:
    return {}


_admission: AdmissionFn = _admit_everything


def set_admission(fn: AdmissionFn | None) -> None:
    """Registered by breakers' AppConfig.ready(); None restores admitting everything."""
    global _admission
    _admission = fn or _admit_everything


def _first_error(errors: dict[str, Any]) -> str:
    name, messages = next(iter(errors.items()))
    message = messages[0] if isinstance(messages, list) and messages else messages
    return f"{name}: {message}"


def ingest_events(
    items: list[Any], *, is_replay: bool = False, admission: bool = True
) -> list[IngestResult]:
    """Returns one result per item, in order. One bad event does not spoil the others.
    Producers' events pass admission; `admission=False` (or a replay) skips it: operator
    actions have their own pacing."""
    results: list[IngestResult] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    # One serializer validates every item, as DRF's ListSerializer does: building its fields
    # once instead of per event is most of ingest's CPU time.
    validator = EventInSerializer()
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            results.append(
                IngestResult(
                    index,
                    None,
                    "rejected",
                    "event must be a JSON object",
                    {"non_field_errors": ["Expected an object."]},
                )
            )
            continue
        try:
            data = validator.run_validation(item)
        except ValidationError as exc:
            errors = (
                exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            )
            raw_id = item.get("id")
            results.append(
                IngestResult(
                    index,
                    raw_id if isinstance(raw_id, str) and bad_text(raw_id) is None else None,
                    "rejected",
                    _first_error(errors),
                    errors,
                )
            )
            continue
        valid.append((index, data))
        results.append(IngestResult(index, data["id"], "accepted"))
    if not valid:
        return results

    slugs = {data["service"] for _, data in valid}
    # The bucket's settings come with the query ingest makes anyway: admission adds none.
    known = {
        slug: (pk, rate, burst)
        for slug, pk, rate, burst in Service.objects.filter(slug__in=slugs).values_list(
            "slug", "pk", "admission_rate", "admission_burst"
        )
    }
    services = {slug: pk for slug, (pk, _, _) in known.items()}
    batch_id = uuid.uuid4()
    now = timezone.now()
    fresh: list[tuple[int, dict[str, Any], int]] = []
    seen: set[tuple[int, str]] = set()
    for index, data in valid:
        service_pk = services.get(data["service"])
        if service_pk is None:
            results[index] = IngestResult(
                index,
                data["id"],
                "rejected",
                f"service: unknown service {data['service']!r}",
                {"service": [f"Unknown service {data['service']!r}."]},
            )
            continue
        key = (service_pk, data["id"])
        if key in seen:  # a duplicate within the batch takes no token
            results[index].status = "duplicate"
            continue
        seen.add(key)
        fresh.append((index, data, service_pk))

    shed: dict[int, Shed] = {}
    if fresh and admission and not is_replay:
        shed = _admission(
            [
                Candidate(
                    index,
                    pk,
                    data["service"],
                    data["priority"],
                    known[data["service"]][1],
                    known[data["service"]][2],
                )
                for index, data, pk in fresh
            ]
        )
    rows: list[Event] = []
    for index, data, service_pk in fresh:
        decision = shed.get(index)
        if decision is not None:
            result = results[index]
            result.status = "shed"
            result.reason = decision.reason
            result.retry_after = decision.retry_after
            continue
        rows.append(
            Event(
                service_id=service_pk,
                event_id=data["id"],
                type=data["type"],
                schema_version=data["schema_version"],
                priority=data["priority"],
                ordering_key=data.get("ordering_key") or "",
                occurred_at=data["occurred_at"],
                payload=data["payload"],
                received_at=now,
                next_attempt_at=now,
                batch_id=batch_id,
                is_replay=is_replay,
            )
        )
    if not rows:
        return results

    with transaction.atomic():
        # A concurrent ingest of the same id may win the race: ignore_conflicts keeps this batch
        # whole, and reading back by batch_id tells which rows are ours.
        Event.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        mine = {
            (service_id, event_id): (pk, priority)
            for pk, service_id, event_id, priority in Event.objects.filter(
                batch_id=batch_id
            ).values_list("pk", "service_id", "event_id", "priority")
        }
        transaction.on_commit(lambda: enqueue_dispatch(mine.values()))

    for index, data in valid:
        result = results[index]
        if result.status != "accepted":
            continue
        if (services[data["service"]], data["id"]) not in mine:
            result.status = "duplicate"
    return results
