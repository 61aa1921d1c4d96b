"""SLO charts mark what happened within their range: breaker transitions of the service's
routes, gate decisions, redrives (through providers the breakers and replay apps register)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from breakers.engine import State, Transition
from breakers.registry import record_transition
from budgets import gates
from replay.dead_letters import redrive
from replay.ingest import ingest_events
from replay.models import Event
from tests.budgets.conftest import logged_in, make_service, make_slo
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def transition(name: str, from_state: State, to_state: State, at) -> None:
    record_transition(
        Transition(
            name=name,
            from_state=from_state,
            to_state=to_state,
            reason="failure_rate",
            at=at.timestamp(),
            calls=20,
            failures=12,
            slow_calls=0,
            failure_rate=60.0,
            slow_call_rate=0.0,
            version=1,
            origin="node-a",
        )
    )


def markers(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<g class="marker marker-(\w+)"[^>]*><title>([^<]*)</title>', svg)


def charts_of(page: str) -> list[str]:
    return [part.split("</svg>")[0] for part in page.split('<svg class="chart"')[1:]]


def test_the_slo_charts_mark_transitions_decisions_and_redrives_in_range(operator, viewer):
    service = make_service(operator, "checkout")
    slo = make_slo(operator, service, target="0.99")
    other = make_service(operator, "billing")
    route = make_route(service, operator, name="checkout-pay", target="http://127.0.0.1:1/x")
    make_route(other, operator, name="billing-pay", target="http://127.0.0.1:1/x")
    now = timezone.now()
    transition(route.name, State.CLOSED, State.OPEN, now - timedelta(minutes=20))
    transition(route.name, State.OPEN, State.HALF_OPEN, now - timedelta(hours=3))  # out of 1 h
    transition("billing-pay", State.CLOSED, State.OPEN, now - timedelta(minutes=10))  # not ours
    gates.check_change(
        service=service,
        change_id="rel-42",
        version="2.1",
        kind="normal",
        description="",
        requested_by="ci",
        actor=operator.user,
    )
    ingest_events([event_body("dl-1"), event_body("dl-2")])
    Event.objects.update(status=Event.Status.DEAD, dead_reason="max_attempts")
    redrive(Event.objects.all(), actor=operator.user)

    page = logged_in(viewer).get(f"/budgets/slos/{slo.pk}/", {"range": "1h"}).content.decode()
    burn_down, burn_rate = charts_of(page)
    assert markers(burn_down) == markers(burn_rate)
    found = markers(burn_rate)
    assert [kind for kind, _ in found] == ["breaker", "gate", "redrive"]
    (_, breaker), (_, gate), (_, redriven) = found
    assert "breaker checkout-pay: closed → open" in breaker and "UTC" in breaker
    assert "gate: allowed normal change rel-42 (2.1)" in gate
    assert "2 dead letters redriven by operator" in redriven
    assert "1 breaker transition" in page and "1 gate decision" in page and "1 redrive" in page

    wider = logged_in(viewer).get(f"/budgets/slos/{slo.pk}/", {"range": "6h"}).content.decode()
    assert [k for k, _ in markers(charts_of(wider)[1])] == ["breaker", "breaker", "gate", "redrive"]


def test_an_slo_with_nothing_in_range_has_no_markers(operator, viewer):
    service = make_service(operator, "checkout")
    slo = make_slo(operator, service, target="0.99")
    page = logged_in(viewer).get(f"/budgets/slos/{slo.pk}/", {"range": "1h"}).content.decode()
    assert 'class="marker' not in page and "Marked on both charts" not in page
