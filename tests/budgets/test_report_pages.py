"""Report pages: the report renders for each role, its query count is pinned and does not
grow with the number of services, bad periods are a 400 that says why, the printable page,
and the work-item page (create, edit, CSV upload with bad rows listed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from breakers.engine import State, Transition
from breakers.registry import record_transition
from budgets import work_items
from budgets.ledger import record_outcomes
from budgets.models import WorkItem
from tests.budgets.conftest import logged_in, make_service, make_slo
from tests.conftest import make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _hour_ago() -> datetime:
    now = timezone.now()
    moment = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    if moment.month != now.month:  # keep it in the current month (the default period)
        moment = now.replace(minute=0, second=0, microsecond=0)
    return moment


def add_service(operator, slug: str):
    service = make_service(operator, slug)
    make_slo(operator, service, target="0.99")
    make_slo(
        operator,
        service,
        "slices",
        budgeting_method="timeslices",
        slice_minutes=5,
        slice_target="0.9",
        target="0.99",
    )
    when = _hour_ago()
    record_outcomes([(service.pk, when, True, 1.0)] * 8 + [(service.pk, when, False, 1.0)] * 2)
    route = make_route(service, operator, name=f"{slug}-route", target="http://127.0.0.1:9/")
    opened = when + timedelta(minutes=1)
    for frm, to, at in (
        (State.CLOSED, State.OPEN, opened),
        (State.OPEN, State.CLOSED, opened + timedelta(minutes=2)),
    ):
        record_transition(
            Transition(route.name, frm, to, "t", at.timestamp(), 1, 1, 0, 100.0, 0.0, 1, "n")
        )
    work_items.create_work_item(
        actor=operator.user,
        key=f"OPS-{service.pk}",
        title="fix",
        service=service,
        assignee="ana",
        status="done",
        saved_share=0.1,
        episode_start=when,
    )
    return service


def _queries(client) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/reports/")
    assert response.status_code == 200
    return len(captured), response.content.decode()


def test_the_report_page_costs_a_fixed_number_of_queries(viewer, operator):
    add_service(operator, "one")
    client = logged_in(viewer)
    client.get("/reports/")  # warm the session
    few, page = _queries(client)
    assert "one" in page and "OPS-" in page and "breaker one-route" in page
    for i in range(6):
        add_service(operator, f"svc{i}")
    many, page = _queries(client)
    assert page.count("breaker svc") == 12  # each service: two SLOs, each with its episode
    # session, user, roles; SLOs, ledger totals (wrapped on Postgres in a savepoint with a SET
    # LOCAL), hour rows, freeze windows, gate decisions, breaker transitions, failed minutes,
    # work items
    assert few == many
    # Postgres adds three around the ledger read: SAVEPOINT, SET LOCAL, RELEASE
    assert many == (14 if connection.vendor == "postgresql" else 11), many


def test_every_role_sees_the_report_and_an_outsider_does_not(viewer, operator, outsider):
    add_service(operator, "pay")
    assert logged_in(viewer).get("/reports/").status_code == 200
    page = logged_in(operator).get("/reports/").content.decode()
    assert "Send to tracker" in page
    assert "Send to tracker" not in logged_in(viewer).get("/reports/").content.decode()
    assert logged_in(outsider).get("/reports/").status_code == 403


def test_the_nav_links_the_reports_page(viewer):
    page = logged_in(viewer).get("/budgets/").content.decode()
    assert 'href="/reports/"' in page


def test_a_bad_period_is_a_400_that_says_why(viewer):
    response = logged_in(viewer).get("/reports/", {"month": "2025-13"})
    assert response.status_code == 400
    assert "month must be YYYY-MM" in response.content.decode()


def test_htmx_gets_only_the_report_body(viewer):
    response = logged_in(viewer).get("/reports/", {"month": "2025-03"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert "<html" not in body and "2025-03" in body


def test_the_printable_page_has_print_css_and_no_navigation(viewer, operator):
    add_service(operator, "pay")
    response = logged_in(viewer).get("/reports/print")
    assert response.status_code == 200
    body = response.content.decode()
    assert "reports.css" in body and "@page" in body
    assert 'class="nav"' not in body
    assert "<svg" in body


def test_an_operator_adds_a_work_item_on_the_page(operator):
    make_service(operator, "pay")
    client = logged_in(operator)
    response = client.post(
        "/reports/work-items/",
        {"key": "OPS-5", "title": "Tune timeout", "service": "pay", "status": "open"},
    )
    assert response.status_code == 302
    assert WorkItem.objects.get().key == "OPS-5"
    bad = client.post(
        "/reports/work-items/",
        {"key": "bad", "title": "Tune timeout", "service": "pay", "status": "open"},
    )
    assert bad.status_code == 400
    assert "key must match" in bad.content.decode()


def test_a_viewer_cannot_add_or_edit_on_the_page(viewer, operator):
    make_service(operator, "pay")
    made = work_items.create_work_item(actor=operator.user, key="OPS-1", title="x", service="pay")
    client = logged_in(viewer)
    data = {"key": "OPS-5", "title": "t", "service": "pay"}
    assert client.post("/reports/work-items/", data).status_code == 403
    assert client.post(f"/reports/work-items/{made.pk}/", data).status_code == 403
    assert WorkItem.objects.count() == 1


def test_an_operator_edits_a_work_item_on_the_page(operator):
    make_service(operator, "pay")
    made = work_items.create_work_item(actor=operator.user, key="OPS-1", title="x", service="pay")
    client = logged_in(operator)
    assert client.get(f"/reports/work-items/{made.pk}/").status_code == 200
    response = client.post(
        f"/reports/work-items/{made.pk}/",
        {"key": "OPS-1", "title": "x", "service": "pay", "status": "done", "saved_share": "0.3"},
    )
    assert response.status_code == 302
    made.refresh_from_db()
    assert (made.status, made.saved_share) == ("done", 0.3)


def test_a_csv_upload_on_the_page_lists_bad_rows_and_keeps_good_ones(operator):
    make_service(operator, "pay")
    text = b"key,title,service\nOPS-1,Fine,pay\nOPS-2,Lost,nowhere\n"
    upload = SimpleUploadedFile("items.csv", text, content_type="text/csv")
    response = logged_in(operator).post("/reports/work-items/import", {"file": upload})
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 created" in body and "1 rows refused" in body
    assert "<td>3</td><td>service</td>" in body
    assert list(WorkItem.objects.values_list("key", flat=True)) == ["OPS-1"]


def test_the_report_page_period_is_utc(viewer):
    response = logged_in(viewer).get("/reports/", {"start": "2025-03-01", "end": "2025-03-02"})
    assert response.status_code == 200
    assert datetime(2025, 3, 1, tzinfo=UTC).isoformat() in response.content.decode()


def test_htmx_gets_a_bad_period_explained_in_the_body(viewer):
    response = logged_in(viewer).get("/reports/", {"quarter": "2025-Q9"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx would not swap a 400
    assert "quarter must be YYYY-Qn" in response.content.decode()


def test_an_operator_sends_the_report_from_the_page(operator, viewer, settings):
    from budgets.models import ReportDelivery
    from tests.budgets.receiver import Receiver

    add_service(operator, "pay")
    with Receiver() as receiver:
        settings.BUDGETS_REPORT_WEBHOOK_URL = receiver.url
        assert logged_in(viewer).post("/reports/send?month=2025-03").status_code == 403
        response = logged_in(operator).post("/reports/send?month=2025-03")
    assert response.status_code == 302
    assert response["Location"] == "/reports/?month=2025-03"
    assert ReportDelivery.objects.get().period == "2025-03"
    assert receiver.posts[0]["json"]["report"]["period"]["label"] == "2025-03"


def test_an_episode_links_to_a_work_item_form_filled_with_it(operator):
    add_service(operator, "pay")
    page = logged_in(operator).get("/reports/").content.decode()
    start = _hour_ago().strftime("%Y-%m-%dT%H:%M")
    link = f"/reports/work-items/?service=pay&amp;episode_start={start}Z"
    assert link in page
    form = logged_in(operator).get(link.replace("&amp;", "&")).content.decode()
    assert f'name="episode_start" value="{start}Z"' in form
    assert 'name="service" required value="pay"' in form
