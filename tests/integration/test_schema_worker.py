"""Schema tolerance end to end with a real Celery worker and a real receiver: the worker's
delivery pool sends coerced payloads signed as sent, refuses the rest as dead letters without
a call, follows a schema edit without a restart, and a redrive then delivers the refused ones."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from breakers.schemas import create_schema, update_schema
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST = {"CONTROLPLANE_ROUTE_REFRESH_SECONDS": "0.2"}


def settled() -> bool:
    return not Event.objects.filter(status__in=["pending", "dispatched", "deferred"]).exists()


def test_a_worker_delivers_tolerated_payloads_and_dead_letters_the_rest(
    operator, checkout, target, tmp_path
):
    route = make_route(checkout, operator, target=target.url)
    schema = create_schema(
        actor=operator.user,
        service=checkout,
        event_type="order.created",
        mode="coercive",
        fields={
            "amount": {"type": "integer", "required": True},
            "currency": {"type": "string", "default": "EUR"},
        },
    )
    good = [event_body(f"ok-{i}", payload={"amount": str(i)}) for i in range(6)]
    bad = [event_body(f"bad-{i}", payload={"amount": f"{i}.5"}) for i in range(3)]
    api = operator.client()
    assert api.post("/api/v1/events", {"events": good + bad}, format="json").status_code == 202

    log = tmp_path / "worker.log"
    with celery_worker(extra_env=FAST, log_path=log):
        assert wait_for(settled), log.read_text()[-3000:]
        assert target.calls_per_event() == {f"ok-{i}": 1 for i in range(6)}
        for call in target.calls:
            signature = hmac.new(route.secret.encode(), call["body"], hashlib.sha256).hexdigest()
            assert call["headers"]["X-Signature"] == f"sha256={signature}"
            sent = json.loads(call["body"])
            assert sent["payload"] == {"amount": int(sent["id"][3:]), "currency": "EUR"}
        dead = Event.objects.filter(event_id__startswith="bad-")
        assert set(dead.values_list("status", "dead_reason")) == {("dead", "schema")}
        assert set(
            DeliveryAttempt.objects.filter(event__in=dead).values_list("outcome", flat=True)
        ) == {"schema_rejected"}
        assert Event.objects.get(event_id="ok-3").payload == {"amount": "3"}  # as produced

        # The producer sends halves on purpose: the operator widens the field, then redrives.
        fields = {**schema.fields, "amount": {"type": "number", "required": True}}
        update_schema(schema, actor=operator.user, fields=fields)
        time.sleep(0.5)  # the worker reloads schemas every ROUTE_REFRESH_SECONDS
        response = api.post(
            "/api/v1/dead-letters/redrive", {"filter": {"reason": "schema"}}, format="json"
        )
        assert response.status_code == 202 and response.json()["redriven"] == 3
        assert wait_for(settled), log.read_text()[-3000:]
        assert set(dead.values_list("status", flat=True)) == {"delivered"}
        halves = {
            json.loads(c["body"])["payload"]["amount"]
            for c in target.calls
            if c["event_id"].startswith("bad-")
        }
        assert halves == {0.5, 1.5, 2.5}
        assert len(target.calls) == 9
