"""The event schema API: operators write, viewers read, 400s name the field, every change is
audited; and the check endpoint answers what a handler would get."""

from __future__ import annotations

import pytest

from breakers.models import EventSchema
from controlplane.models import AuditEntry
from tests.conftest import Actor

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

ORDER = {
    "amount": {"type": "integer", "required": True},
    "currency": {"type": "string", "default": "EUR"},
}


def body(**fields) -> dict:
    return {
        "service": "checkout",
        "event_type": "order.created",
        "version": 1,
        "mode": "coercive",
        "fields": ORDER,
        **fields,
    }


def test_an_operator_creates_a_schema_and_a_viewer_reads_it(checkout, operator, viewer):
    response = operator.client().post("/api/v1/schemas", body(), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert (created["service"], created["mode"], created["fields"]) == (
        "checkout",
        "coercive",
        ORDER,
    )
    listed = viewer.client().get("/api/v1/schemas?service=checkout&type=order.created").json()
    assert [s["id"] for s in listed["results"]] == [created["id"]]
    assert viewer.client().get(f"/api/v1/schemas/{created['id']}").json()["version"] == 1
    entry = AuditEntry.objects.get(action="schema.create")
    assert entry.actor == operator.user and entry.after["mode"] == "coercive"


def test_a_viewer_cannot_write(checkout, viewer):
    assert viewer.client().post("/api/v1/schemas", body(), format="json").status_code == 403


def test_update_and_delete_are_audited(checkout, operator):
    client = operator.client()
    pk = client.post("/api/v1/schemas", body(), format="json").json()["id"]
    response = client.patch(f"/api/v1/schemas/{pk}", {"mode": "strict"}, format="json")
    assert response.status_code == 200 and response.json()["mode"] == "strict"
    entry = AuditEntry.objects.get(action="schema.update")
    assert (entry.before["mode"], entry.after["mode"]) == ("coercive", "strict")
    assert client.delete(f"/api/v1/schemas/{pk}").status_code == 204
    assert not EventSchema.objects.exists()
    assert AuditEntry.objects.filter(action="schema.delete").count() == 1


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"fields": {"amount": {"type": "money"}}}, {"fields": {"amount": {"type": ...}}}),
        (
            {"fields": {"n": {"type": "integer", "default": "1"}}},
            {"fields": {"n": {"default": ["is not of the type integer"]}}},
        ),
        (
            {"fields": {"n": {"type": "string", "required": True, "default": "x"}}},
            {"fields": {"n": {"default": ["a required field takes no default"]}}},
        ),
        ({"fields": {"n": {"type": "string", "min": 1}}}, {"fields": {"n": {"min": ...}}}),
        ({"fields": ["amount"]}, {"fields": ...}),
        ({"version": 0}, {"version": ...}),
        ({"version": "2"}, {"version": ...}),
        ({"mode": "loose"}, {"mode": ...}),
        ({"event_type": "order.*"}, {"event_type": ...}),
        ({"service": "nope"}, {"service": ...}),
        ({"colour": "red"}, {"colour": ...}),
    ],
)
def test_a_bad_schema_is_a_400_naming_the_field(checkout, operator, change, errors):
    response = operator.client().post("/api/v1/schemas", body(**change), format="json")
    assert response.status_code == 400
    got = response.json()["errors"]

    def matches(want, have):
        if want is ...:
            return True
        if isinstance(want, dict):
            return (
                isinstance(have, dict)
                and set(want) == set(have)
                and all(matches(want[k], have[k]) for k in want)
            )
        return want == have

    assert matches(errors, got), got
    assert not EventSchema.objects.exists()


def test_a_version_registered_twice_is_a_400_on_version(checkout, operator):
    client = operator.client()
    assert client.post("/api/v1/schemas", body(), format="json").status_code == 201
    response = client.post("/api/v1/schemas", body(mode="strict"), format="json")
    assert response.status_code == 400
    assert "already registered" in response.json()["errors"]["version"][0]
    second = client.post("/api/v1/schemas", body(version=2), format="json").json()["id"]
    response = client.patch(f"/api/v1/schemas/{second}", {"version": 1}, format="json")
    assert response.status_code == 400 and "version" in response.json()["errors"]


def check(actor: Actor, **fields):
    payload = {"service": "checkout", "type": "order.created", "payload": {}, **fields}
    return actor.client().post("/api/v1/schemas/check", payload, format="json")


def test_the_check_answers_what_the_handler_would_get(checkout, operator, viewer):
    operator.client().post("/api/v1/schemas", body(), format="json")
    response = check(viewer, payload={"amount": "42", "extra": [1]})
    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is True
    assert answer["payload"] == {"amount": 42, "currency": "EUR", "extra": [1]}
    assert answer["notes"] == [
        "amount: coerced '42' to 42",
        "currency: missing, defaulted to 'EUR'",
    ]
    assert (answer["schema"]["version"], answer["schema"]["mode"]) == (1, "coercive")


def test_the_check_answers_422_with_the_violation(checkout, operator, viewer):
    operator.client().post("/api/v1/schemas", body(mode="strict"), format="json")
    response = check(viewer, payload={"amount": 1, "extra": 1})
    assert response.status_code == 422
    assert response.json()["violation"] == {
        "field": "extra",
        "why": "unknown field 'extra' (strict)",
    }
    response = check(viewer, payload={"amount": 1}, schema_version=2)
    assert response.status_code == 422
    assert response.json()["violation"]["field"] == "schema_version"


def test_without_a_schema_the_check_says_it_goes_as_sent(checkout, viewer):
    answer = check(viewer, payload=[1, "x"]).json()
    assert answer == {"ok": True, "schema": None, "payload": [1, "x"], "notes": []}


def test_anyone_with_a_role_may_check_and_outsiders_may_not(checkout, viewer, outsider):
    assert check(viewer).status_code == 200
    assert check(outsider).status_code == 403


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"service": "nope"}, "service"),
        ({"type": "a b"}, "type"),
        ({"schema_version": 0}, "schema_version"),
        ({"payload": None, "extra": 1}, "extra"),
    ],
)
def test_a_bad_check_is_a_400_naming_the_field(checkout, viewer, fields, field):
    response = check(viewer, **fields)
    assert response.status_code == 400 and field in response.json()["errors"]
