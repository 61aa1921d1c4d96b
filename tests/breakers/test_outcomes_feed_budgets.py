"""Final delivery outcomes land in the service's SLI ledger through the outcome hook."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from breakers.dispatch import dispatch_events
from budgets.ledger import read_counts
from budgets.slos import create_slo
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_delivered_is_good_dead_is_bad_and_retries_wait(checkout, operator, target):
    slo = create_slo(
        actor=operator.user,
        service=checkout,
        name="delivery",
        sli="events",
        target="0.99",
        window="rolling:30d",
    )
    latency = create_slo(
        actor=operator.user,
        service=checkout,
        name="fast",
        sli="latency",
        target="0.99",
        window="rolling:30d",
        latency_threshold_ms=60_000,
    )
    make_route(checkout, operator, target=target.url)
    target.scripts["bad"] = [400]
    target.scripts["later"] = [503]
    ingest_events([event_body(i) for i in ("ok-1", "ok-2", "bad", "later")])
    dispatch_events(list(Event.objects.values_list("pk", flat=True)))

    now = timezone.now().replace(second=0, microsecond=0)
    spans = [(s.pk, now - timedelta(hours=1), now + timedelta(minutes=2)) for s in (slo, latency)]
    counts = read_counts(spans)
    events, fast = counts[spans[0]], counts[spans[1]]
    assert (events.good, events.total) == (2, 3)  # "later" is retrying: not an outcome yet
    assert (fast.good, fast.total) == (2, 3)
