from __future__ import annotations

import pytest
from django.test import Client

from breakers.dispatch import dispatch_events
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


@pytest.fixture
def dead(checkout):
    """Three dead letters (no route): two order.created, one refund.created."""
    ingest_events([event_body("a"), event_body("b"), event_body("c", type="refund.created")])
    dispatch_events(list(Event.objects.values_list("pk", flat=True)))
    assert Event.objects.filter(status="dead").count() == 3
    return Event.objects.order_by("pk")


def test_the_dead_letter_page_filters_with_htmx(viewer, dead):
    client = logged_in(viewer)
    full = client.get("/dead-letters/").content.decode()
    assert "3 dead letters" in full and "<html" in full
    part = client.get("/dead-letters/?type=refund.created", HTTP_HX_REQUEST="true")
    html = part.content.decode()
    assert "<html" not in html and "1 dead letter" in html and "refund.created" in html


def test_viewers_see_no_redrive_buttons_and_may_not_post(viewer, dead):
    client = logged_in(viewer)
    assert "Redrive selected" not in client.get("/dead-letters/").content.decode()
    assert client.post("/dead-letters/", {"ids": [dead[0].pk]}).status_code == 403
    assert Event.objects.filter(status="dead").count() == 3


def test_operators_redrive_the_selection_without_a_reload(operator, dead):
    client = logged_in(operator)
    selection = {"ids": [dead[0].pk, dead[1].pk], "scope": "selected"}
    asked = client.post("/dead-letters/", selection, HTTP_HX_REQUEST="true").content.decode()
    assert "Redrive 2 dead letters (the selection)?" in asked and "<html" not in asked
    assert Event.objects.filter(status="dead").count() == 3  # nothing before the answer
    response = client.post(
        "/dead-letters/", {**selection, "confirmed": "yes"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert "Redrove 2 events" in html and "<html" not in html
    assert "1 dead letter" in html
    assert set(Event.objects.filter(status="pending").values_list("event_id", flat=True)) == {
        "a",
        "b",
    }
    from controlplane.models import AuditEntry as Audit

    assert Audit.objects.filter(action="dead_letters.redrive").count() == 1


def test_redrive_all_matching_uses_the_filter(operator, dead):
    client = logged_in(operator)
    client.post(
        "/dead-letters/",
        {"scope": "all", "type": "order.created", "confirmed": "yes"},
        HTTP_HX_REQUEST="true",
    )
    assert list(Event.objects.filter(status="dead").values_list("event_id", flat=True)) == ["c"]


def test_the_event_pages_show_status_counts_and_attempts(viewer, dead):
    client = logged_in(viewer)
    page = client.get("/events/").content.decode()
    assert "Dead letter" in page and "order.created" in page
    detail = client.get(f"/events/{dead[0].pk}/").content.decode()
    assert "no_route" in detail and "Not called: no route" in detail
    summary = client.get("/events/summary").content.decode()
    assert "checkout" in summary


def test_the_overview_loads_the_event_summary(viewer, checkout):
    assert "/events/summary" in logged_in(viewer).get("/").content.decode()


def test_redrive_all_asks_with_the_count_through_htmx(operator, dead):
    page = logged_in(operator).get("/dead-letters/", {"type": "order.created"}).content.decode()
    button = page.split('value="all"')[1].split("</button>")[0]
    assert 'hx-confirm="Redrive all 2 matching dead letters?"' in button
    assert 'hx-vals=\'{"confirmed": "yes"}\'' in button  # the dialog was the question


def test_without_javascript_a_bulk_redrive_asks_first_saying_how_many(operator, dead):
    client = logged_in(operator)
    asked = client.post("/dead-letters/", {"scope": "all", "type": "order.created"})
    html = asked.content.decode()
    assert asked.status_code == 200 and "<html" in html
    assert "Redrive 2 dead letters (all matching the filter)?" in html
    assert 'name="confirmed" value="yes"' in html and 'name="scope" value="all"' in html
    assert Event.objects.filter(status="dead").count() == 3
    done = client.post(
        "/dead-letters/", {"scope": "all", "type": "order.created", "confirmed": "yes"}
    )
    assert done.status_code == 200 and "Redrove 2 events" in done.content.decode()
    assert list(Event.objects.filter(status="dead").values_list("event_id", flat=True)) == ["c"]


def test_redriving_an_empty_selection_says_so_and_changes_nothing(operator, dead):
    html = (
        logged_in(operator)
        .post("/dead-letters/", {"scope": "selected"}, HTTP_HX_REQUEST="true")
        .content.decode()
    )
    assert "Nothing to redrive: select dead letters first." in html
    assert Event.objects.filter(status="dead").count() == 3


def test_the_dead_letters_poll_answers_with_its_stamp_and_waits_for_a_selection(viewer, dead):
    client = logged_in(viewer)
    page = client.get("/dead-letters/").content.decode()
    assert "every 10s [document.visibilityState==&#x27;visible&#x27;" in page or (
        "every 10s [document.visibilityState=='visible' && " in page
    )
    assert "input[name=ids]:checked" in page and 'hx-include="#dead-letters"' in page
    poll = client.get("/dead-letters/", {"type": "refund.created"}, HTTP_HX_REQUEST="true")
    html = poll.content.decode()
    assert poll.status_code == 200 and "<html" not in html
    assert '<small class="updated">updated <time' in html and "1 dead letter" in html
