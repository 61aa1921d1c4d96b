"""The pipeline end to end: the ingest API, a real Celery worker on the real broker, the real
database, and a real HTTP receiver."""

from __future__ import annotations

import pytest

from replay.models import Event
from tests.conftest import event_body, make_route
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.smoke, pytest.mark.django_db(transaction=True)]

FAST = {
    "CONTROLPLANE_RETRY_BASE_SECONDS": "0.05",
    "CONTROLPLANE_ROUTE_REFRESH_SECONDS": "0.2",
    "CONTROLPLANE_PYTHON_HANDLERS": "tests.handlers.permanent,breakers.builtin_handlers.noop",
}


def test_events_flow_retry_dead_letter_and_redrive(operator, checkout, target, tmp_path):
    make_route(checkout, operator, target=target.url, max_attempts=3)
    target.scripts["retry-me"] = [500, 503]
    target.scripts["doomed"] = [500, 500, 500]
    target.scripts["reject"] = [422]
    api = operator.client()
    batch = [event_body(i) for i in ("happy", "retry-me", "doomed", "reject")]
    assert api.post("/api/v1/events", {"events": batch}, format="json").status_code == 202

    log = tmp_path / "worker.log"
    with celery_worker(extra_env=FAST, log_path=log, pool="prefork", concurrency=2):
        settled = wait_for(
            lambda: (
                not Event.objects.filter(status__in=["pending", "dispatched", "deferred"]).exists()
            )
        )
        assert settled, log.read_text()[-3000:]
        status = dict(Event.objects.values_list("event_id", "status"))
        assert status == {
            "happy": "delivered",
            "retry-me": "delivered",
            "doomed": "dead",
            "reject": "dead",
        }
        assert Event.objects.get(event_id="retry-me").attempts == 3
        assert Event.objects.get(event_id="doomed").dead_reason == "max_attempts"
        assert Event.objects.get(event_id="reject").dead_reason == "permanent"

        listed = api.get("/api/v1/dead-letters?reason=max_attempts").json()
        assert [e["event_id"] for e in listed["results"]] == ["doomed"]
        response = api.post(
            "/api/v1/dead-letters/redrive", {"filter": {"reason": "max_attempts"}}, format="json"
        )
        assert response.status_code == 202 and response.json()["redriven"] == 1
        assert wait_for(lambda: Event.objects.get(event_id="doomed").status == "delivered"), (
            log.read_text()[-3000:]
        )
    assert target.calls_per_event() == {"happy": 1, "retry-me": 3, "doomed": 4, "reject": 1}
