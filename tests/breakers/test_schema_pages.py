"""The event schemas page: the list, the create form (operators, through the verbs), the
"try a payload" box (htmx partial, or the page without JavaScript), and the attempt note on
the event page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from breakers.dispatch import dispatch_events
from breakers.models import EventSchema
from breakers.schemas import create_schema
from controlplane.models import AuditEntry
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def form(service, **fields) -> dict:
    return {
        "service": service.pk,
        "event_type": "order.created",
        "version": 1,
        "mode": "coercive",
        "fields": json.dumps({"amount": {"type": "integer", "required": True}}),
        **fields,
    }


def test_the_page_is_in_the_navigation_and_lists_schemas(checkout, operator, viewer):
    create_schema(actor=operator.user, service=checkout, event_type="order.paid", mode="strict")
    page = logged_in(viewer).get("/schemas/").content.decode()
    assert 'href="/schemas/"' in page
    assert "order.paid" in page and "strict" in page
    assert "Create schema" not in page  # viewers read


def test_an_operator_creates_a_schema_from_the_page(checkout, operator):
    response = logged_in(operator).post("/schemas/", form(checkout))
    assert response.status_code == 302
    schema = EventSchema.objects.get()
    assert (schema.mode, schema.fields["amount"]["type"]) == ("coercive", "integer")
    assert AuditEntry.objects.filter(action="schema.create", actor=operator.user).exists()


def test_a_bad_definition_is_shown_on_its_field(checkout, operator):
    bad = json.dumps({"amount": {"type": "integer", "required": True, "default": 1}})
    page = logged_in(operator).post("/schemas/", form(checkout, fields=bad)).content.decode()
    assert "amount.default: a required field takes no default" in page
    assert not EventSchema.objects.exists()


def test_a_viewer_cannot_create_or_delete(checkout, operator, viewer):
    schema = create_schema(actor=operator.user, service=checkout, event_type="order.paid")
    client = logged_in(viewer)
    assert client.post("/schemas/", form(checkout)).status_code == 403
    assert client.post(f"/schemas/{schema.pk}/delete").status_code == 403
    assert logged_in(operator).post(f"/schemas/{schema.pk}/delete").status_code == 302
    assert not EventSchema.objects.exists()


def test_the_try_box_answers_with_htmx_and_without(checkout, operator, viewer):
    create_schema(
        actor=operator.user,
        service=checkout,
        event_type="order.created",
        mode="coercive",
        fields={"amount": {"type": "integer", "required": True}},
    )
    client = logged_in(viewer)
    data = {"service": "checkout", "type": "order.created", "schema_version": 1}
    partial = client.post(
        "/schemas/try", {**data, "payload": '{"amount": "7"}'}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in partial and "accepted" in partial
    assert "coerced &#x27;7&#x27; to 7" in partial
    page = client.post("/schemas/try", {**data, "payload": '{"amount": "x"}'}).content.decode()
    assert "<html" in page and "refused" in page and "no unambiguous coercion" in page


def test_the_event_page_shows_what_tolerance_did(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    create_schema(
        actor=operator.user,
        service=checkout,
        event_type="order.created",
        mode="lenient",
        fields={"currency": {"type": "string", "default": "EUR"}},
    )
    ingest_events([event_body("e-1")])
    event = Event.objects.get(event_id="e-1")
    dispatch_events([event.pk])
    page = logged_in(operator).get(f"/events/{event.pk}/").content.decode()
    assert "payload: currency: missing, defaulted to &#x27;EUR&#x27;" in page


def test_an_operator_edits_a_schema_from_its_page(checkout, operator, viewer):
    schema = create_schema(actor=operator.user, service=checkout, event_type="order.paid")
    assert logged_in(viewer).get(f"/schemas/{schema.pk}/").status_code == 403
    client = logged_in(operator)
    assert "Save schema" in client.get(f"/schemas/{schema.pk}/").content.decode()
    bad = form(checkout, event_type="order.paid", fields='{"n": {"type": "money"}}')
    page = client.post(f"/schemas/{schema.pk}/", bad).content.decode()
    assert "n.type: must be one of" in page
    assert (
        client.post(f"/schemas/{schema.pk}/", form(checkout, event_type="order.paid")).status_code
        == 302
    )
    schema.refresh_from_db()
    assert (schema.mode, list(schema.fields)) == ("coercive", ["amount"])
    entry = AuditEntry.objects.get(action="schema.update")
    assert (entry.before["mode"], entry.after["mode"]) == ("lenient", "coercive")
