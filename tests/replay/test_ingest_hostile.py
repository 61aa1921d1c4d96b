"""Text no database can store (a lone UTF-16 surrogate, NUL) is refused per event and per
field, naming it, and what was stored before cannot break a listing."""

from __future__ import annotations

import json

import pytest

from controlplane.renderers import SafeJSONRenderer
from replay.models import Event
from tests.conftest import event_body, uses_postgres

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

LONE = "\\ud800"  # as JSON text: Python's json turns it into a lone surrogate


def _raw(body: str) -> str:
    """JSON text with every `@@` replaced by an escaped lone surrogate."""
    return body.replace("@@", LONE)


def post_raw(actor, text: str):
    return actor.client().post("/api/v1/events", data=text, content_type="application/json")


def test_a_lone_surrogate_rejects_that_event_alone_naming_the_field(operator, checkout):
    events = [event_body("ok-1"), event_body("bad-1", payload={"s": "@@"}), event_body("ok-2")]
    response = post_raw(operator, _raw(json.dumps({"events": events})))
    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["status"] for r in body["results"]] == ["accepted", "rejected", "accepted"]
    rejected = body["results"][1]
    assert rejected["id"] == "bad-1"
    assert "payload.s" in rejected["reason"] and "payload" in rejected["errors"]
    assert set(Event.objects.values_list("event_id", flat=True)) == {"ok-1", "ok-2"}


@pytest.mark.parametrize(
    ("fields", "field", "where"),
    [
        ({"payload": {"a": {"b": ["x", "y@@z"]}}}, "payload", "payload.a.b.1"),
        ({"payload": {"k@@": 1}}, "payload", "payload.k"),
        ({"type": "order.@@"}, "type", "type"),
        ({"id": "id-@@"}, "id", "id"),
        ({"service": "check@@out"}, "service", "service"),
    ],
)
def test_a_lone_surrogate_anywhere_in_an_event_is_rejected_naming_it(
    operator, checkout, fields, field, where
):
    events = [event_body("ok-1"), {**event_body("bad-1"), **fields}]
    response = post_raw(operator, _raw(json.dumps({"events": events})))
    assert response.status_code == 202, response.content
    result = response.json()["results"][1]
    assert result["status"] == "rejected"
    assert field in result["errors"] and where in result["reason"]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["ok-1"]


def test_a_single_event_with_a_lone_surrogate_is_400_naming_the_field(operator, checkout):
    response = post_raw(operator, _raw(json.dumps(event_body("one", payload={"s": "@@"}))))
    assert response.status_code == 400, response.content
    assert "payload.s" in response.json()["errors"]["payload"][0]


def test_a_valid_surrogate_pair_is_text_and_accepted(operator, checkout):
    response = post_raw(
        operator,
        json.dumps({"events": [event_body("emoji")]}).replace('"n": 1', '"n": "\\ud83d\\ude00"'),
    )
    assert response.json()["results"][0]["status"] == "accepted"
    assert Event.objects.get().payload == {"n": "\U0001f600"}


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/services", {"slug": "pay", "name": "P@@", "team": "t"}, "name"),
        ("/api/v1/services", {"slug": "pay", "name": "P", "team": "t", "x@@": 1}, "x"),
        (
            "/api/v1/routes",
            {
                "name": "r@@",
                "service": "checkout",
                "event_type": "*",
                "kind": "webhook",
                "target": "http://127.0.0.1:9/",
            },
            "name",
        ),
        ("/api/v1/services/checkout/alert-hooks", {"url": "http://127.0.0.1:9/@@"}, "url"),
        ("/api/v1/dead-letters/redrive", {"filter": {"reason": "r@@"}}, "filter"),
    ],
)
def test_other_text_that_reaches_the_database_refuses_lone_surrogates(
    operator, checkout, url, body, field
):
    response = operator.client().post(
        url, data=_raw(json.dumps(body)), content_type="application/json"
    )
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(key.startswith(field) for key in errors), errors


def test_the_json_renderer_escapes_a_stored_lone_surrogate_instead_of_failing():
    rendered = SafeJSONRenderer().render({"s": "\ud800", "ok": "caf\u00e9"})
    assert json.loads(rendered) == {"s": "\ud800", "ok": "caf\u00e9"}
    assert SafeJSONRenderer().render({"ok": "caf\u00e9"}) == '{"ok":"caf\u00e9"}'.encode()


@pytest.mark.skipif(uses_postgres(), reason="PostgreSQL cannot store a lone surrogate at all")
def test_a_lone_surrogate_stored_earlier_does_not_break_the_listings(operator, viewer, checkout):
    post_raw(operator, json.dumps({"events": [event_body("old"), event_body("fine")]}))
    Event.objects.filter(event_id="old").update(
        payload={"s": "\ud800"}, status="dead", dead_reason="max_attempts", last_error="x"
    )
    for url in ("/api/v1/events", "/api/v1/dead-letters/"):
        response = viewer.client().get(url)
        assert response.status_code == 200, url
        assert response.json()["count"] >= 1
