"""The Overview: one row per service from every app's provider, worst first, in a fixed
number of queries; the service page as the hub; htmx requests after the session ended."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from breakers.engine import State, Transition
from breakers.registry import record_transition
from budgets import slos
from budgets.ledger import record_outcomes
from controlplane.services import create_service
from replay.ingest import ingest_events
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

# session, user, role groups, services; budgets: policies, SLOs, ledger (window and now; 4
# statements with its savepoint and SET LOCAL), freeze windows, canaries, ledger (1 h; 4),
# alerts, hour rows (sparklines); breakers: one; replay: one. SQLite reads the ledger in one
# statement each (no savepoint, no SET LOCAL).
POSTGRES_QUERIES, SQLITE_QUERIES = 20, 14


def overview_queries() -> int:
    return POSTGRES_QUERIES if connection.vendor == "postgresql" else SQLITE_QUERIES


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def make_services(actor, n: int, start: int = 0) -> list:
    made = []
    for i in range(start, start + n):
        service = create_service(actor=actor.user, slug=f"svc{i}", name=f"Svc {i}", team="t")
        slos.create_slo(
            actor=actor.user,
            service=service,
            name="delivery",
            sli="events",
            target="0.999",
            window="rolling:30d",
        )
        make_route(service, actor, name=f"svc{i}-hook", target="https://hooks.example.com/x")
        made.append(service)
    return made


def open_breaker(name: str) -> None:
    record_transition(
        Transition(
            name=name,
            from_state=State.CLOSED,
            to_state=State.OPEN,
            reason="failure rate",
            at=time.time(),
            calls=20,
            failures=20,
            slow_calls=0,
            failure_rate=100.0,
            slow_call_rate=0.0,
            version=1,
            origin="test",
        )
    )


def test_the_overview_costs_the_same_queries_for_2_and_10_services(
    operator, django_assert_num_queries
):
    client = logged_in(operator)
    make_services(operator, 2)
    with django_assert_num_queries(overview_queries()):
        assert client.get("/").status_code == 200
    make_services(operator, 8, start=2)
    open_breaker("svc3-hook")
    with django_assert_num_queries(overview_queries()):
        response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('data-service="svc') == 10
    assert "<title>Overview · controlplane</title>" in page  # no template pasted into it


def test_the_live_table_costs_the_same_queries(operator, django_assert_num_queries):
    client = logged_in(operator)
    make_services(operator, 10)
    with django_assert_num_queries(overview_queries()):
        response = client.get("/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" not in response.content.decode()  # the partial alone


def test_an_open_breaker_puts_its_service_first_in_red(operator):
    make_services(operator, 3)
    open_breaker("svc2-hook")
    page = logged_in(operator).get("/").content.decode()
    rows = page.split('<tr class="row-')[1:]
    assert rows[0].startswith("bad") and 'data-service="svc2"' in rows[0]
    assert 'class="bad" href="/breakers/svc2-hook/"' in rows[0]
    assert all(not r.startswith("bad") for r in rows[1:])


def test_a_burning_slo_and_dead_letters_show_on_the_overview(operator):
    (service,) = make_services(operator, 1)
    now = timezone.now() - timedelta(minutes=2)  # the ledger reads whole minutes
    record_outcomes([(service.pk, now, False, 5.0)] * 50 + [(service.pk, now, True, 5.0)] * 50)
    page = logged_in(operator).get("/").content.decode()
    row = page.split('<tr class="row-')[1]
    assert row.startswith("bad")  # budget spent: 50 % errors against a 0.1 % budget
    assert "500.0x · window 500.0x" in row  # burn over the last hour: 0.5 / 0.001
    assert '<svg class="spark burn"' in row and "<polyline" in row
    assert f'href="/budgets/slos/{service.slos.get().pk}/"' in row


def test_every_cell_is_a_link(operator):
    make_services(operator, 2)
    open_breaker("svc0-hook")
    page = logged_in(operator).get("/").content.decode()
    body = page.split('<table class="table overview-table">')[1].split("</tbody>")[0]
    cells = body.split('<td class="cell')[1:]
    assert len(cells) == 2 * 8  # two services, eight columns from the three apps
    for cell in cells:
        assert "<a " in cell.split("</td>")[0], cell


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "admin"])
def test_the_triage_pages_render_for_every_role(role, request, operator):
    actor = request.getfixturevalue(role)
    (service,) = make_services(operator, 1)
    open_breaker("svc0-hook")
    slo = service.slos.get()
    client = logged_in(actor)
    for path in (
        "/",
        "/services/svc0/",
        "/changes/",
        "/budgets/",
        f"/budgets/slos/{slo.pk}/",
        f"/budgets/slos/{slo.pk}/?range=1h",
        "/tokens/",
    ):
        assert client.get(path).status_code == 200, path
        assert client.get(path, HTTP_HX_REQUEST="true").status_code == 200, path
    assert client.get("/audit/").status_code == (200 if role == "admin" else 403)


def test_the_service_page_links_slos_routes_breakers_and_events(operator):
    (service,) = make_services(operator, 1)
    open_breaker("svc0-hook")
    page = logged_in(operator).get("/services/svc0/").content.decode()
    assert f'href="/budgets/slos/{service.slos.get().pk}/"' in page
    assert 'href="/breakers/svc0-hook/"' in page
    assert "open</span>" in page
    assert 'href="/dead-letters/?service=svc0"' in page
    assert 'href="/events/?service=svc0"' in page
    assert "Depends on" in page


def test_an_htmx_request_after_the_session_ended_gets_hx_redirect(client):
    response = client.get(
        "/", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="http://testserver/breakers/?x=1"
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/breakers/%3Fx%3D1"


def test_a_plain_request_after_the_session_ended_still_gets_a_302(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_every_live_panel_says_when_it_was_updated(viewer):
    page = logged_in(viewer).get("/", HTTP_HX_REQUEST="true").content.decode()
    assert 'class="updated">updated <time datetime=' in page


def test_times_follow_the_viewers_zone_cookie(operator):
    make_services(operator, 1)
    client = logged_in(operator)
    assert " UTC</time>" in client.get("/services/svc0/").content.decode()
    client.cookies["cp_tz"] = "Asia/Tokyo"
    page = client.get("/services/svc0/").content.decode()
    assert " JST</time>" in page and "Asia/Tokyo" in page
    budgets = client.get("/budgets/").content.decode()  # another app's |date follows it too
    assert "updated <time" in budgets and " JST</time>" in budgets and " UTC</time>" not in budgets
    client.cookies["cp_tz"] = "Not/AZone"
    assert " UTC</time>" in client.get("/services/svc0/").content.decode()


def test_the_service_page_costs_the_same_queries_with_more_routes_and_events(
    operator, django_assert_max_num_queries
):
    (service,) = make_services(operator, 1)
    client = logged_in(operator)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/services/svc0/").status_code == 200
    for i in range(5):
        make_route(service, operator, name=f"svc0-more{i}", target="https://hooks.example.com/x")
    other = create_service(actor=operator.user, slug="other", name="Other", team="t")
    slos.create_slo(
        actor=operator.user,
        service=other,
        name="delivery",
        sli="events",
        target="0.99",
        window="rolling:30d",
    )
    open_breaker("svc0-more1")
    ingest_events([event_body(f"e-{i}", service="svc0") for i in range(15)])
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/services/svc0/")
    assert response.status_code == 200
    assert "e-14" in response.content.decode() and "svc0-more4" in response.content.decode()
