from __future__ import annotations

import pytest

from controlplane.tokens import issue_token
from replay.models import Event
from tests.conftest import event_body

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_a_single_event_is_committed_and_accepted(operator, checkout):
    response = operator.client().post("/api/v1/events", event_body("e-1"), format="json")
    assert response.status_code == 202, response.content
    assert response.json()["results"] == [{"index": 0, "id": "e-1", "status": "accepted"}]
    event = Event.objects.get(event_id="e-1")
    assert (event.status, event.priority, event.payload) == ("pending", "MEDIUM", {"n": 1})


def test_one_bad_event_does_not_spoil_the_batch(operator, checkout):
    batch = [
        event_body("ok-1", priority="HIGH"),
        {k: v for k, v in event_body("no-type").items() if k != "type"},
        event_body("bad-time", occurred_at="yesterday"),
        event_body("ghost", service="nowhere"),
        event_body("bad-priority", priority="URGENT"),
        "not an object",
        event_body("ok-2"),
    ]
    response = operator.client().post("/api/v1/events", {"events": batch}, format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (2, 5)
    statuses = [(r["id"], r["status"], r.get("reason", "").split(":")[0]) for r in body["results"]]
    assert statuses == [
        ("ok-1", "accepted", ""),
        ("no-type", "rejected", "type"),
        ("bad-time", "rejected", "occurred_at"),
        ("ghost", "rejected", "service"),
        ("bad-priority", "rejected", "priority"),
        (None, "rejected", "event must be a JSON object"),
        ("ok-2", "accepted", ""),
    ]
    assert "nowhere" in body["results"][3]["reason"]
    assert set(Event.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


def test_the_same_id_is_a_duplicate_and_stored_once(operator, checkout):
    api = operator.client()
    first = api.post(
        "/api/v1/events", {"events": [event_body("d"), event_body("d")]}, format="json"
    ).json()
    assert [r["status"] for r in first["results"]] == ["accepted", "duplicate"]
    again = api.post("/api/v1/events", event_body("d"), format="json").json()
    assert again["results"][0]["status"] == "duplicate"
    assert Event.objects.filter(event_id="d").count() == 1


def test_a_single_bad_event_is_400_naming_the_field(operator, checkout):
    response = operator.client().post(
        "/api/v1/events", event_body("x", schema_version="two"), format="json"
    )
    assert response.status_code == 400
    assert "schema_version" in response.json()["errors"]


def test_unknown_fields_are_named(operator, checkout):
    response = operator.client().post(
        "/api/v1/events", event_body("x", colour="red"), format="json"
    )
    assert response.status_code == 400 and "colour" in response.json()["errors"]
    envelope = operator.client().post("/api/v1/events", {"events": [], "extra": 1}, format="json")
    assert envelope.status_code == 400 and "extra" in envelope.json()["errors"]


def test_an_oversized_batch_is_413(operator, checkout, settings):
    settings.INGEST_BATCH_LIMIT = 3
    batch = [event_body(f"e{i}") for i in range(4)]
    response = operator.client().post("/api/v1/events", {"events": batch}, format="json")
    assert response.status_code == 413
    assert "events" in response.json()["errors"]
    assert not Event.objects.exists()


def test_an_oversized_payload_is_rejected_and_the_rest_accepted(operator, checkout, settings):
    settings.MAX_EVENT_BYTES = 300
    batch = [event_body("big", payload={"blob": "x" * 400}), event_body("small")]
    body = operator.client().post("/api/v1/events", {"events": batch}, format="json").json()
    assert [r["status"] for r in body["results"]] == ["rejected", "accepted"]
    assert body["results"][0]["reason"].startswith("payload:")


def test_malformed_json_is_400(operator, checkout):
    response = operator.client().post(
        "/api/v1/events", data="{oops", content_type="application/json"
    )
    assert response.status_code == 400


def test_ingest_needs_the_ingest_scope_or_the_operator_role(viewer, checkout):
    assert viewer.client().post("/api/v1/events", event_body("v"), format="json").status_code == 403
    # a viewer may not give their own token a scope...
    refused = viewer.client().post(
        "/api/v1/tokens", {"name": "mine", "scopes": ["ingest"]}, format="json"
    )
    assert refused.status_code == 400 and "scopes" in refused.json()["errors"]
    # ...an admin gives one to a service account (manage.py create_api_token --scope ingest)
    scoped = issue_token(viewer.user, name="ingest", scopes=["ingest"]).secret
    viewer.token = scoped
    response = viewer.client().post("/api/v1/events", event_body("v"), format="json")
    assert response.status_code == 202
    # the scope opens ingest only, not other writes
    other = viewer.client().post(
        "/api/v1/services", {"slug": "x", "name": "x", "team": "t"}, format="json"
    )
    assert other.status_code == 403


def test_events_are_listed_and_shown_with_attempts(viewer, operator, checkout):
    operator.client().post("/api/v1/events", event_body("l-1"), format="json")
    listed = viewer.client().get("/api/v1/events?service=checkout&status=pending").json()
    assert [e["event_id"] for e in listed["results"]] == ["l-1"]
    detail = viewer.client().get(f"/api/v1/events/{listed['results'][0]['id']}").json()
    assert detail["attempts_log"] == []
