"""The breaker board and a breaker's page: live list, timeline, controls, thresholds, admin."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from breakers import control
from breakers.dispatch import dispatch_events
from breakers.engine import Outcome, State, Transition
from breakers.forms import ThresholdsForm
from breakers.models import CircuitBreaker
from breakers.registry import breaker_for, guard, record_transition
from controlplane.models import AuditEntry
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

# Session, user, role, then the board's own four: breakers with the id of their last
# transition, those transitions, the 60-minute series, the calls in flight per route from the
# live nodes. The window figures come from the breaker state store (one round trip), not the
# database.
BOARD_QUERIES = 7
HALF_OPENED = (
    '<span class="state-open">open</span> → <span class="state-half_open">half_open</span>'
)


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def breaker_of(route) -> CircuitBreaker:
    return CircuitBreaker.objects.get(route=route)


def transition(name: str, from_state: State, to_state: State, at, reason: str = "x") -> None:
    """Written the way a worker writes it (breakers.registry.record_transition)."""
    record_transition(
        Transition(
            name=name,
            from_state=from_state,
            to_state=to_state,
            reason=reason,
            at=at.timestamp(),
            calls=20,
            failures=12,
            slow_calls=0,
            failure_rate=60.0,
            slow_call_rate=0.0,
            version=1,
            origin="node-a",
        )
    )


def deliver(route_target, prefix: str, n: int, failing: int = 0) -> None:
    for i in range(failing):
        route_target.scripts[f"{prefix}-{i}"] = [503]
    ingest_events([event_body(f"{prefix}-{i}") for i in range(n)])
    pks = Event.objects.filter(event_id__startswith=prefix).values_list("pk", flat=True)
    dispatch_events(list(pks))


def thresholds_post(breaker: CircuitBreaker, **changes) -> dict:
    data = {**ThresholdsForm.initial_for(breaker), **changes}
    return {k: "" if v is None else v for k, v in data.items()}


def test_the_board_lists_breakers_with_state_failure_rate_and_dynamic_threshold(
    checkout, operator, viewer, target
):
    route = make_route(checkout, operator, target=target.url)
    deliver(target, "b", 4, failing=1)
    forced = make_route(checkout, operator, name="checkout-forced", target=target.url)
    control.force_breaker(breaker_of(forced), "forced_open", actor=operator.user, reason="fire")
    control.update_thresholds(
        breaker_of(route),
        {},
        actor=operator.user,
        dynamic={"dynamic_field": "slow_call_duration_s"},
    )
    control.set_dynamic_value(breaker_of(route), 0.75, source="push", actor=operator.user)

    page = logged_in(viewer).get("/breakers/").content.decode()
    row = page.split('id="breaker-checkout-route"')[1].split("</tr>")[0]
    assert 'data-state="closed"' in row and "badge good" in row
    assert ">4<" in row and "25.0 %" in row
    assert '<svg class="spark state-closed"' in row and "<circle" in row  # one minute: a dot
    assert "0.75 s" in row and "pushed through the API" in row
    forced_row = page.split('id="breaker-checkout-forced"')[1].split("</tr>")[0]
    assert 'data-state="forced_open"' in forced_row and "badge grey" in forced_row
    assert "forced open" in forced_row and "by operator" in forced_row


def test_an_htmx_poll_gets_the_table_alone_while_the_page_polls_only_when_visible(
    checkout, operator, viewer
):
    make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(viewer)
    page = client.get("/breakers/").content.decode()
    assert "<html" in page and 'hx-get="/breakers/"' in page
    assert "every 3s [document.visibilityState=='visible' && " in page  # and no reason typed
    partial = client.get("/breakers/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and 'id="breaker-checkout-route"' in partial


def test_the_board_costs_the_same_queries_for_one_breaker_or_many(
    checkout, operator, viewer, target, django_assert_max_num_queries
):
    client = logged_in(viewer)
    route = make_route(checkout, operator, target=target.url)
    deliver(target, "q", 3, failing=1)
    transition(route.name, State.CLOSED, State.OPEN, timezone.now() - timedelta(minutes=3))
    with django_assert_max_num_queries(BOARD_QUERIES):
        one = client.get("/breakers/")
    for i in range(7):
        other = make_route(checkout, operator, name=f"more-{i}", target=target.url)
        transition(other.name, State.CLOSED, State.OPEN, timezone.now() - timedelta(minutes=2))
        transition(other.name, State.OPEN, State.HALF_OPEN, timezone.now() - timedelta(minutes=1))
    with django_assert_max_num_queries(BOARD_QUERIES):
        many = client.get("/breakers/")
    assert one.status_code == many.status_code == 200  # an error page is cheap too
    assert one.content.decode().count('class="breaker-row"') == 1
    assert many.content.decode().count('class="breaker-row"') == 8
    assert many.content.decode().count(HALF_OPENED) == 7


def test_viewers_see_no_controls_and_may_not_act(checkout, operator, viewer):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(viewer)
    page = client.get("/breakers/checkout-route/").content.decode()
    assert 'id="breaker-controls"' in page
    assert 'name="mode"' not in page and "Save thresholds" not in page
    forced = client.post("/breakers/checkout-route/force", {"mode": "forced_open", "reason": "x"})
    edited = client.post(
        "/breakers/checkout-route/thresholds",
        thresholds_post(breaker_of(route), consecutive_failures=9),
    )
    assert (forced.status_code, edited.status_code) == (403, 403)
    breaker = breaker_of(route)
    assert (breaker.forced_state, breaker.config) == ("", {})
    assert not AuditEntry.objects.filter(action__startswith="breaker.").exists()


def test_an_operator_forces_a_breaker_open_with_a_reason_and_back(checkout, operator):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(operator)
    assert 'value="forced_open"' in client.get("/breakers/checkout-route/").content.decode()

    partial = client.post(
        "/breakers/checkout-route/force",
        {"mode": "forced_open", "reason": "payments maintenance"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<html" not in partial and 'id="breaker-controls"' in partial
    assert 'data-state="forced_open"' in partial and "payments maintenance" in partial
    breaker = breaker_of(route)
    assert (breaker.forced_state, breaker.forced_by) == ("forced_open", "operator")
    entry = AuditEntry.objects.get(action="breaker.force")
    assert (entry.reason, entry.after) == ("payments maintenance", {"forced_state": "forced_open"})

    back = client.post("/breakers/checkout-route/force", {"mode": "automatic", "reason": "done"})
    assert back.status_code == 302 and back["Location"] == "/breakers/checkout-route/"
    assert breaker_of(route).forced_state == ""


def test_forcing_without_a_reason_changes_nothing(checkout, operator):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(operator)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.post(
            "/breakers/checkout-route/force", {"mode": "forced_open", "reason": "  "}, **headers
        )
        assert response.status_code == 200
        assert "This field is required." in response.content.decode()
    assert breaker_of(route).forced_state == ""
    assert not AuditEntry.objects.filter(action="breaker.force").exists()


def test_the_thresholds_form_puts_engine_errors_on_their_field_and_saves_changes_only(
    checkout, operator
):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(operator)
    url = "/breakers/checkout-route/thresholds"
    bad = client.post(url, thresholds_post(breaker_of(route), window_size=10, minimum_calls=20))
    errors = bad.context["thresholds_form"].errors
    assert list(errors) == ["minimum_calls"] and "window_size" in errors["minimum_calls"][0]
    assert breaker_of(route).config == {}

    ok = client.post(url, thresholds_post(breaker_of(route), consecutive_failures=9))
    assert ok.status_code == 302
    assert breaker_of(route).config == {"consecutive_failures": 9}
    assert AuditEntry.objects.filter(action="breaker.thresholds").count() == 1
    page = client.get("/breakers/checkout-route/").content.decode()
    assert re.search(r"<code>consecutive_failures</code></td>\s*<td>9</td>", page)


def test_the_detail_page_draws_one_band_per_transition(checkout, operator, viewer):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    now = timezone.now()
    transition(route.name, State.CLOSED, State.OPEN, now - timedelta(minutes=50), "failure_rate")
    transition(route.name, State.OPEN, State.HALF_OPEN, now - timedelta(minutes=40), "wait over")
    transition(route.name, State.HALF_OPEN, State.CLOSED, now - timedelta(minutes=39), "probe ok")
    page = logged_in(viewer).get("/breakers/checkout-route/").content.decode()
    svg = page.split('<svg class="timeline"')[1].split("</svg>")[0]
    bands = re.findall(r'<rect class="band state-(\w+)( lead)?"( data-at="[^"]+")?', svg)
    assert [(state, bool(lead), bool(at)) for state, lead, at in bands] == [
        ("closed", True, False),  # the hour before the first transition
        ("open", False, True),
        ("half_open", False, True),
        ("closed", False, True),
    ]
    assert "UTC" in svg and "failure_rate" in svg
    assert page.count(HALF_OPENED) == 1  # the transition table


def test_the_timeline_covers_24_hours_when_the_history_is_older(checkout, operator, viewer):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    now = timezone.now()
    transition(route.name, State.CLOSED, State.OPEN, now - timedelta(hours=30))
    transition(route.name, State.OPEN, State.HALF_OPEN, now - timedelta(hours=2))
    page = logged_in(viewer).get("/breakers/checkout-route/").content.decode()
    svg = page.split('<svg class="timeline"')[1].split("</svg>")[0]
    bands = re.findall(r'<rect class="band state-(\w+)( lead)?"', svg)
    assert bands == [("open", " lead"), ("half_open", "")]
    lead_width = float(
        re.search(r'class="band state-open lead" x="[\d.]+" y="\d+" width="([\d.]+)"', svg)[1]
    )
    assert lead_width > 500  # 22 of the 24 hours


@pytest.fixture
def staff(admin):
    admin.user.is_staff = admin.user.is_superuser = True
    admin.user.save()
    return admin


def admin_form(breaker: CircuitBreaker, **changes) -> dict:
    data = {
        "config": "{}",
        "forced_state": "",
        "reason": "",
        "dynamic_field": "",
        "dynamic_k": "2.0",
        "dynamic_window_s": "300",
        "dynamic_query": "",
        "_save": "Save",
    }
    return {**data, **changes}


def test_the_admin_validates_the_config_and_saves_through_the_audited_verbs(
    checkout, operator, staff
):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    breaker = breaker_of(route)
    client = logged_in(staff)
    url = f"/admin/breakers/circuitbreaker/{breaker.pk}/change/"
    assert client.get(url).status_code == 200

    bad = client.post(url, admin_form(breaker, config='{"window_size": 5, "minimum_calls": 10}'))
    assert bad.status_code == 200
    assert "minimum_calls: must not exceed window_size" in str(
        bad.context["adminform"].form.errors["config"]
    )
    unknown = client.post(url, admin_form(breaker, config='{"colour": 1}'))
    assert "colour: unknown breaker setting" in str(
        unknown.context["adminform"].form.errors["config"]
    )
    assert breaker_of(route).config == {}

    ok = client.post(url, admin_form(breaker, config='{"window_size": 50, "minimum_calls": 10}'))
    assert ok.status_code == 302
    assert breaker_of(route).config == {"window_size": 50, "minimum_calls": 10}
    assert AuditEntry.objects.get(action="breaker.thresholds").actor == staff.user

    no_reason = client.post(
        url,
        admin_form(
            breaker, config='{"window_size": 50, "minimum_calls": 10}', forced_state="disabled"
        ),
    )
    assert no_reason.status_code == 200 and breaker_of(route).forced_state == ""
    client.post(
        url,
        admin_form(
            breaker,
            config='{"window_size": 50, "minimum_calls": 10}',
            forced_state="disabled",
            reason="noisy",
        ),
    )
    assert breaker_of(route).forced_state == "disabled"
    assert AuditEntry.objects.get(action="breaker.force").reason == "noisy"


def test_the_admin_lists_routes_transitions_and_nodes(checkout, operator, staff):
    from breakers.nodes import current_node

    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    transition(route.name, State.CLOSED, State.OPEN, timezone.now())
    current_node()
    client = logged_in(staff)
    for path in ("route", "circuitbreaker", "breakertransition", "workernode", "demodownstream"):
        assert client.get(f"/admin/breakers/{path}/").status_code == 200, path
    assert "checkout-route" in client.get("/admin/breakers/breakertransition/").content.decode()
    assert client.get("/admin/breakers/breakertransition/add/").status_code == 403


def test_a_route_added_in_the_admin_gets_its_breaker_and_an_audit_row(checkout, staff):
    client = logged_in(staff)
    form = {
        "service": checkout.pk,
        "name": "admin-made",
        "event_type": "order.*",
        "kind": "webhook",
        "target": "http://127.0.0.1:9000/hook",
        "timeout_seconds": "2",
        "max_attempts": "3",
        "enabled": "on",
        "when_open": "defer",
        "_save": "Save",
    }
    bad = client.post("/admin/breakers/route/add/", {**form, "target": "http://evil.example/x"})
    assert bad.status_code == 200 and not CircuitBreaker.objects.exists()
    assert client.post("/admin/breakers/route/add/", form).status_code == 302
    assert CircuitBreaker.objects.get().route.name == "admin-made"
    assert AuditEntry.objects.filter(action="route.create", actor=staff.user).exists()


def row_of(page: str, name: str) -> str:
    return page.split(f'id="breaker-{name}"')[1].split("</tr>")[0]


def trip_through_the_engine(route, calls: int = 20) -> None:
    """Calls recorded by the route's own breaker (two failures in three, never five in a
    row), so its window, not the attempt log, holds them: no event is delivered."""
    breaker = breaker_for(route)
    for i in range(calls):
        permit = breaker.acquire()
        breaker.record(permit, Outcome.SUCCESS if i % 3 == 0 else Outcome.FAILURE, 0.01)
    breaker.flush()


def test_the_board_shows_the_breakers_own_window_as_the_engine_counts_it(
    checkout, operator, viewer
):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    trip_through_the_engine(route)
    snapshot = guard().store.load(route.name)
    assert snapshot.state is State.OPEN and snapshot.calls == 20  # the figures that tripped it

    row = row_of(logged_in(viewer).get("/breakers/").content.decode(), route.name)
    assert 'data-state="open"' in row
    assert f">{snapshot.calls}<br>" in row and "last 100 calls" in row
    assert f"{snapshot.failure_rate:.1f} %" in row and "65.0 %" in row
    assert f"{snapshot.slow_call_rate:.1f} %" in row
    assert 'class="rate bad"' in row  # at its threshold with enough calls: what tripped it


def test_open_breakers_come_first_and_the_state_filter_keeps_one_state(checkout, operator, viewer):
    for name in ("a-closed", "b-half", "c-open"):
        make_route(checkout, operator, name=name, target="http://127.0.0.1:1/x")
    now = timezone.now()
    transition("c-open", State.CLOSED, State.OPEN, now - timedelta(minutes=1))
    transition("b-half", State.CLOSED, State.OPEN, now - timedelta(minutes=2))
    transition("b-half", State.OPEN, State.HALF_OPEN, now - timedelta(minutes=1))
    client = logged_in(viewer)

    page = client.get("/breakers/").content.decode()
    order = re.findall(r'<tr id="breaker-([\w-]+)" class="breaker-row"', page)
    assert order == ["c-open", "b-half", "a-closed"]
    assert '<svg class="spark state-open"' in row_of(page, "c-open")
    assert 'hx-include="#board-filter"' in page and 'name="state"' in page

    for state, shown in (("open", ["c-open"]), ("half_open", ["b-half"]), ("closed", ["a-closed"])):
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):  # the form without JS, and htmx
            body = client.get("/breakers/", {"state": state}, **headers).content.decode()
            assert re.findall(r'<tr id="breaker-([\w-]+)" class="breaker-row"', body) == shown
            assert ("<html" in body) is not bool(headers)
    bad = client.get("/breakers/", {"state": "purple"})
    assert bad.status_code == 400 and "state: must be one of" in bad.content.decode()


def test_the_sparkline_is_scaled_to_its_maximum_and_labelled(checkout, operator, viewer, target):
    make_route(checkout, operator, target=target.url)
    deliver(target, "s", 5, failing=1)  # 20 %: drawn on a 50 % scale (the threshold)
    row = row_of(logged_in(viewer).get("/breakers/").content.decode(), "checkout-route")
    spark = row.split("<svg")[1].split("</svg>")[0]
    assert '<text class="scale"' in spark and ">50%</text>" in spark


def test_an_operator_forces_a_breaker_from_the_board_with_a_reason(checkout, operator, viewer):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(operator)
    page = client.get("/breakers/").content.decode()
    row = row_of(page, route.name)
    assert 'class="board-force"' in row and 'name="reason" required' in row
    assert 'hx-headers=\'{"X-CSRFToken": ' in page  # htmx posts carry the CSRF token

    refused = client.post(
        f"/breakers/{route.name}/force",
        {"mode": "forced_open", "reason": " ", "back": "board"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "reason: This field is required." in row_of(refused, route.name)
    assert breaker_of(route).forced_state == ""

    board = client.post(
        f"/breakers/{route.name}/force",
        {"mode": "forced_open", "reason": "drain for failover", "back": "board", "state": "open"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<html" not in board and "Force open: done" in board
    assert 'data-state="forced_open"' in row_of(board, route.name)  # the filter is kept
    entry = AuditEntry.objects.get(action="breaker.force")
    assert (entry.reason, entry.actor) == ("drain for failover", operator.user)

    no_js = client.post(
        f"/breakers/{route.name}/force",
        {"mode": "automatic", "reason": "over", "back": "board", "state": "open"},
    )
    assert no_js.status_code == 302 and no_js["Location"] == "/breakers/?state=open"
    assert breaker_of(route).forced_state == ""


def test_viewers_get_no_force_controls_on_the_board_and_are_refused(checkout, operator, viewer):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    client = logged_in(viewer)
    page = client.get("/breakers/").content.decode()
    assert 'class="board-force"' not in page and 'name="reason"' not in page
    refused = client.post(
        f"/breakers/{route.name}/force",
        {"mode": "forced_open", "reason": "x", "back": "board"},
        HTTP_HX_REQUEST="true",
    )
    assert refused.status_code == 403 and breaker_of(route).forced_state == ""
    assert not AuditEntry.objects.filter(action="breaker.force").exists()
