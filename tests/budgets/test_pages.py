"""Budgets and Changes pages: content, fixed query counts, approver buttons, htmx swaps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from budgets import gates, policy
from budgets.ledger import record_outcomes
from budgets.models import GateDecision
from tests.budgets.conftest import logged_in, make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def burn(service, bad: int, total: int = 1000, hours_ago: float = 30) -> None:
    at = timezone.now() - timedelta(hours=hours_ago)
    record_outcomes([(service.pk, at, i >= bad, 1.0) for i in range(total)])


def urgent_request(operator, service, change_id="rel-1", requested_by="ci-bot"):
    return gates.check_change(
        service=service,
        change_id=change_id,
        version="1.0",
        kind="urgent",
        description="",
        requested_by=requested_by,
        actor=operator.user,
    ).decision


@pytest.fixture
def frozen(operator):
    service = make_service(operator, "orders", tier="tier-1")
    make_slo(operator, service, target="0.99")
    burn(service, 9)  # 90 % of a 99 % budget
    return service


def test_pages_need_a_login(client):
    for path in ("/budgets/", "/changes/"):
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_budget_list_shows_every_slo_with_its_state(viewer, operator, frozen):
    calm = make_service(operator, "calm")
    make_slo(operator, calm, "latency", sli="latency", latency_threshold_ms=100)
    page = logged_in(viewer).get("/budgets/").content.decode()
    assert "orders" in page and "calm" in page
    assert "10.0 %" in page  # remaining of orders' budget
    assert "frozen" in page and "open" in page
    assert "every 30s [document.visibilityState==&#x27;visible&#x27;]" in page or (
        "every 30s [document.visibilityState=='visible']" in page
    )


def test_the_budget_list_costs_a_fixed_number_of_queries(
    viewer, operator, django_assert_max_num_queries
):
    for i in range(12):
        service = make_service(operator, f"svc{i}")
        make_slo(operator, service, "a")
        make_slo(
            operator,
            service,
            "b",
            window="calendar:month",
            budgeting_method="timeslices",
            slice_minutes=5,
            slice_target="0.9",
        )
        burn(service, i)
    client = logged_in(viewer)
    client.get("/budgets/")  # warm the session
    # session, user, roles; services, policies, SLOs, the ledger (one SELECT, wrapped on
    # Postgres in a savepoint with a SET LOCAL), freeze windows, canaries, alerts
    with django_assert_max_num_queries(14):
        response = client.get("/budgets/")
    assert response.status_code == 200  # an error page is cheap too
    assert response.content.decode().count('id="slo-') == 24


def test_the_htmx_poll_gets_only_the_table(viewer, frozen):
    response = logged_in(viewer).get("/budgets/", HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="card" id="budget-table"')
    assert "<html" not in body


def test_the_slo_page_draws_its_charts_alerts_and_policy(viewer, frozen):
    slo = frozen.slos.get()
    page = logged_in(viewer).get(f"/budgets/slos/{slo.pk}/").content.decode()
    assert page.count('<svg class="chart"') == 2
    assert "Budget burn-down" in page and "remaining budget" in page and "even burn" in page
    assert "page-fast" in page and "14.4x" in page
    assert "Freeze at" in page and "80 %" in page
    assert "has consumed 90.0 %" in page


def test_approvers_see_buttons_and_others_do_not(viewer, operator, approver, frozen):
    urgent_request(operator, frozen)
    for actor, sees in ((viewer, False), (operator, False), (approver, True)):
        page = logged_in(actor).get("/changes/").content.decode()
        assert "rel-1" in page
        assert ("Approve</button>" in page) is sees, actor.user.username


def test_an_approver_sees_no_buttons_on_their_own_request(approver, frozen):
    urgent_request(approver, frozen)
    page = logged_in(approver).get("/changes/").content.decode()
    assert "rel-1" in page and "Approve</button>" not in page


def test_approve_by_plain_form_post(operator, approver, frozen):
    decision = urgent_request(operator, frozen)
    response = logged_in(approver).post(f"/changes/decisions/{decision.pk}/approve")
    assert response.status_code == 302
    decision.refresh_from_db()
    assert decision.status == GateDecision.Status.APPROVED


def test_reject_by_htmx_swaps_the_row(operator, approver, frozen):
    decision = urgent_request(operator, frozen)
    response = logged_in(approver).post(
        f"/changes/decisions/{decision.pk}/reject", HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith("<tr") and "Rejected" in body and "Approve" not in body


def test_self_approval_on_the_page_is_refused(approver, frozen):
    decision = urgent_request(approver, frozen)
    response = logged_in(approver).post(
        f"/changes/decisions/{decision.pk}/approve", HTTP_HX_REQUEST="true"
    )
    assert "own request" in response.content.decode()
    decision.refresh_from_db()
    assert decision.status == GateDecision.Status.APPROVAL_REQUIRED


def test_operators_cannot_approve_on_the_page(operator, frozen):
    decision = urgent_request(operator, frozen, requested_by="someone")
    response = logged_in(operator).post(f"/changes/decisions/{decision.pk}/approve")
    assert response.status_code == 403


def test_the_changes_page_draws_the_impact_graph(viewer, operator, frozen):
    web = make_service(operator, "web")
    db = make_service(operator, "db")
    policy.set_dependencies(web, [frozen], actor=operator.user)
    policy.set_dependencies(frozen, [db], actor=operator.user)
    decision = gates.check_change(
        service=web,
        change_id="w1",
        version="1",
        kind="normal",
        description="",
        requested_by="x",
        actor=operator.user,
    ).decision
    page = logged_in(viewer).get(f"/changes/?decision={decision.pk}").content.decode()
    assert '<svg class="graph"' in page
    assert page.count('<g class="node') == 3
    assert 'class="node frozen critical impacted"' in page
    assert 'class="node ok focus"' in page
    assert page.count('class="edge"') == 2


def test_the_changes_page_costs_a_fixed_number_of_queries(
    viewer, operator, frozen, django_assert_max_num_queries
):
    for i in range(15):
        urgent_request(operator, frozen, change_id=f"r{i}")
    client = logged_in(viewer)
    client.get("/changes/")
    with django_assert_max_num_queries(16):
        response = client.get("/changes/")
    assert response.status_code == 200  # an error page is cheap too
    assert "r14" in response.content.decode()


def test_the_changes_page_is_live_and_its_poll_answers_with_its_stamp(viewer, operator, frozen):
    client = logged_in(viewer)
    page = client.get("/changes/").content.decode()
    assert 'hx-get="/changes/?part=live"' in page
    assert "every 10s [document.visibilityState=='visible']" in page
    urgent_request(operator, frozen, change_id="rel-live")  # arrives after the page loaded
    poll = client.get("/changes/", {"part": "live"}, HTTP_HX_REQUEST="true")
    html = poll.content.decode()
    assert poll.status_code == 200 and "<html" not in html
    assert '<small class="updated">updated <time' in html
    assert 'id="decision-' in html and "rel-live" in html and "1 waiting" in html
    assert '<svg class="graph"' not in html  # the graph is not redrawn every poll
