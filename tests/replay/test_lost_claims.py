"""A claim lost with its worker counts as an attempt started: the redelivery carries the next
`X-Attempt`, the attempt log says what happened, and the events move again at once."""

from __future__ import annotations

import pytest
from django.utils import timezone

from breakers.dispatch import dispatch_events
from breakers.models import WorkerNode
from breakers.relay import sweep
from replay.ingest import ingest_events
from replay.log import claim_events, new_claim_token
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _held_by_a_node_that_died(pks: list[int]) -> None:
    """A worker claimed the events and died (it said nothing more), as kill -9 leaves it."""
    WorkerNode.objects.create(
        name="gone:1",
        hostname="gone",
        pid=1,
        started_at=timezone.now(),
        last_heartbeat=timezone.now(),
        stopped_at=timezone.now(),
    )
    assert claim_events(pks, token=new_claim_token(), node="gone:1")


def test_a_redelivery_after_a_lost_claim_carries_the_next_attempt_number(
    checkout, operator, target
):
    make_route(checkout, operator, target=target.url)
    ingest_events([event_body("e-1")])
    pks = list(Event.objects.values_list("pk", flat=True))
    _held_by_a_node_that_died(pks)

    result = sweep()
    assert result.released == 1
    event = Event.objects.get()
    assert (event.status, event.attempts) == (Event.Status.PENDING, 1)
    lost = DeliveryAttempt.objects.get(event=event)
    assert (lost.number, lost.outcome, lost.node) == (1, DeliveryAttempt.Outcome.LOST, "gone:1")

    dispatch_events(pks)
    assert [call["headers"]["X-Attempt"] for call in target.calls] == ["2"]
    assert list(DeliveryAttempt.objects.order_by("number").values_list("number", "outcome")) == [
        (1, "lost"),
        (2, "delivered"),
    ]


def test_an_event_lost_too_often_is_dead_and_counted_bad_in_the_ledger(
    checkout, operator, target, settings
):
    from datetime import timedelta

    from budgets.ledger import read_counts
    from tests.budgets.conftest import make_slo

    settings.MAX_CLAIMS = 1
    slo = make_slo(operator, checkout)
    make_route(checkout, operator, target=target.url)
    ingest_events([event_body("poison")])
    pks = list(Event.objects.values_list("pk", flat=True))
    _held_by_a_node_that_died(pks)

    assert sweep().dead == 1
    assert Event.objects.get().dead_reason == "redelivery_cap"
    now = timezone.now().replace(second=0, microsecond=0)
    span = (slo.pk, now - timedelta(hours=1), now + timedelta(minutes=2))
    counts = read_counts([span])[span]
    assert (counts.good, counts.total) == (0, 1)
