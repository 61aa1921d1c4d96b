"""Demo SLOs for `make run` (called by controlplane.demo.seed): a few SLOs on the demo
services, their dependencies, and three days of made-up history so the charts have a shape.
Safe to run again: SLOs that exist are left alone."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.utils import timezone

from budgets import ledger, policy, slos
from budgets.maths.windows import floor_to_minute
from budgets.models import SLO
from controlplane.models import Service

DEMO_SLOS = [
    (
        "checkout",
        "delivery",
        {
            "sli": "events",
            "target": "0.999",
            "window": "rolling:30d",
            "display_name": "Orders delivered",
        },
    ),
    (
        "checkout",
        "fast-delivery",
        {
            "sli": "latency",
            "target": "0.99",
            "window": "rolling:7d",
            "latency_threshold_ms": 500,
            "budgeting_method": "timeslices",
            "slice_minutes": 5,
            "slice_target": "0.95",
        },
    ),
    ("inventory", "delivery", {"sli": "events", "target": "0.995", "window": "calendar:month"}),
    ("notifications", "sent", {"sli": "external", "target": "0.99", "window": "calendar:quarter"}),
]
DEPENDENCIES = {"checkout": ["inventory", "notifications"]}


def seed(admin: Any) -> None:
    services = {s.slug: s for s in Service.objects.filter(slug__in={d[0] for d in DEMO_SLOS})}
    created = []
    for slug, name, fields in DEMO_SLOS:
        service = services.get(slug)
        if service is None or SLO.objects.filter(service=service, name=name).exists():
            continue
        created.append(slos.create_slo(actor=admin, service=service, name=name, **fields))
    for slug, targets in DEPENDENCIES.items():
        if slug in services and not services[slug].dependencies.exists():
            policy.set_dependencies(
                services[slug], [services[t] for t in targets if t in services], actor=admin
            )
    if created:
        _history(created)


def _history(created: list[SLO]) -> None:
    """Three days of per-minute counts with a bad hour, written straight into the ledger."""
    rng = random.Random(42)
    now = floor_to_minute(timezone.now())
    deltas = {}
    for slo in created:
        for minute_index in range(3 * 1440):
            minute = now - timedelta(minutes=minute_index + 1)
            total = rng.randint(20, 40)
            bad_share = 0.03 if 600 <= minute_index < 660 else 0.0005
            bad = sum(rng.random() < bad_share for _ in range(total))
            deltas[(slo.pk, "", minute)] = (total - bad, total)
    ledger.apply_deltas(deltas, ledger.slicing_for(created))
