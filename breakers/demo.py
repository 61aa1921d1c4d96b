"""The demo that `make run` seeds: routes from the demo services to built-in downstreams whose
failure rate and latency are set on the demo page, and traffic emitted by a beat task."""

from __future__ import annotations

import random
import uuid

from django.conf import settings
from django.utils import timezone

from breakers.models import DemoDownstream, Route
from breakers.routes import create_route
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


def seed(admin) -> None:
    for service_slug, name, pattern, downstream in DEMO_ROUTES:
        service = Service.objects.filter(slug=service_slug).first()
        if service is None or Route.objects.filter(name=name).exists():
            continue
        if downstream:
            DemoDownstream.objects.get_or_create(name=downstream)
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
