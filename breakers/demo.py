"""The demo that `make run` seeds: routes from the demo services to built-in downstreams whose
failure rate and latency are set on the demo page, and traffic emitted by a beat task."""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from breakers.models import DemoDownstream, Route
from breakers.routes import create_route
from controlplane import audit
from controlplane.models import Service
from replay.ingest import ingest_events

DEMO_ROUTES = [
    # service, route name, event type pattern, downstream (None: the python no-op handler)
    ("checkout", "checkout-orders", "order.*", "payments-api"),
    ("inventory", "inventory-stock", "stock.*", None),
    ("notifications", "notifications-all", "*", "mailer"),
]
DEMO_TYPES = {
    "checkout": ["order.created", "order.paid", "order.cancelled"],
    "inventory": ["stock.reserved", "stock.released"],
    "notifications": ["email.requested", "push.requested"],
}
PRIORITIES = ["CRITICAL", "HIGH", "MEDIUM", "MEDIUM", "LOW"]
DOWNSTREAM_FIELDS = ["failure_rate", "latency_ms", "traffic_per_tick"]
# Bounds: the pretend downstream sleeps in a web thread (past 10 s it only ties up gunicorn; the
# demo routes time out at 2 s), and every tick's events are ingested by one beat task.
LIMITS = {"failure_rate": (0.0, 1.0), "latency_ms": (0, 10_000), "traffic_per_tick": (0, 1_000)}


def validate_downstream_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, type-checked and within LIMITS; ValidationError naming each bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in LIMITS:
            errors[name] = "Unknown field."
            continue
        low, high = LIMITS[name]
        kind = float if isinstance(low, float) else int
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            errors[name] = "A number is required."
        elif kind is int and value != int(value):
            errors[name] = "A whole number is required."
        elif not low <= value <= high:
            errors[name] = f"Between {low:g} and {high:g}."
        else:
            clean[name] = kind(value)
    if errors:
        raise ValidationError(errors)
    return clean


def create_downstream(name: str, *, actor: Any) -> DemoDownstream:
    """The pretend downstream `name` with its defaults, audited when it is new."""
    with transaction.atomic():
        obj, created = DemoDownstream.objects.get_or_create(name=name)
        if created:
            after = audit.snapshot(obj, ["name", *DOWNSTREAM_FIELDS])
            audit.record(actor, "demo_downstream.create", obj, after=after)
    return obj


def update_downstream(downstream: DemoDownstream, *, actor: Any, **changes: Any) -> DemoDownstream:
    """Change how a demo downstream answers (failure rate, latency) and how much demo traffic
    is sent: this changes what the workers do, so it is audited, in the change's transaction.
    Every door (the Demo page, the admin) calls this."""
    clean = validate_downstream_changes(changes)
    with transaction.atomic():
        obj = DemoDownstream.objects.select_for_update().get(pk=downstream.pk)
        before = audit.snapshot(obj, DOWNSTREAM_FIELDS)
        for name, value in clean.items():
            setattr(obj, name, value)
        after = audit.snapshot(obj, DOWNSTREAM_FIELDS)
        if after != before:
            obj.save(update_fields=list(clean))
            audit.record(actor, "demo_downstream.update", obj, before=before, after=after)
    return obj


def seed(admin) -> None:
    for service_slug, name, pattern, downstream in DEMO_ROUTES:
        service = Service.objects.filter(slug=service_slug).first()
        if service is None or Route.objects.filter(name=name).exists():
            continue
        if downstream:
            create_downstream(downstream, actor=admin)
            fields = {
                "kind": "webhook",
                "target": f"{settings.DEMO_DOWNSTREAM_URL}/demo/downstream/{downstream}",
            }
        else:
            fields = {"kind": "python", "target": "breakers.builtin_handlers.noop"}
        create_route(
            actor=admin,
            service=service,
            name=name,
            event_type=pattern,
            timeout_seconds=2.0,
            max_attempts=6,
            **fields,
        )


def emit_traffic() -> int:
    """A few events per demo service, as many as the downstreams' traffic settings say."""
    if not settings.DEMO_ENABLED:
        return 0
    per_tick = sum(DemoDownstream.objects.values_list("traffic_per_tick", flat=True))
    if not per_tick:
        return 0
    services = [s for s in DEMO_TYPES if Service.objects.filter(slug=s).exists()]
    if not services:
        return 0
    now = timezone.now().isoformat()
    events = []
    for _ in range(per_tick):
        service = random.choice(services)
        events.append(
            {
                "id": f"demo-{uuid.uuid4().hex[:12]}",
                "service": service,
                "type": random.choice(DEMO_TYPES[service]),
                "priority": random.choice(PRIORITIES),
                "occurred_at": now,
                "payload": {"amount": random.randint(1, 500), "demo": True},
            }
        )
    return sum(1 for r in ingest_events(events) if r.status == "accepted")
