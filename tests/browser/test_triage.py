"""Real Chromium: the Overview during an outage (an open breaker is red, first), at 390 px
and in the dark theme, and a live panel whose session ends sends the browser to the login.

Screenshots are kept under CONTROLPLANE_VAR_DIR (settings.VAR_DIR) by the run.
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from breakers.engine import State, Transition
from breakers.registry import record_transition
from budgets import slos
from controlplane.roles import Role, grant_role
from controlplane.services import create_service
from tests.browser.test_login_overview import page  # noqa: F401  (the Chromium fixture)

# ruff: noqa: F811  (pytest passes the imported fixture by name)

pytestmark = [pytest.mark.browser]


@pytest.fixture
def outage(transactional_db):
    from breakers.routes import create_route

    user = get_user_model().objects.create_user(username="olive", password="s3cret-pass-42")
    grant_role(user, Role.OPERATOR)
    for slug, tier in (("checkout", "tier-1"), ("inventory", "tier-2"), ("search", "tier-3")):
        service = create_service(actor=user, slug=slug, name=slug.title(), team="t", tier=tier)
        slos.create_slo(
            actor=user,
            service=service,
            name="delivery",
            sli="events",
            target="0.999",
            window="rolling:30d",
        )
        create_route(
            actor=user,
            service=service,
            name=f"{slug}-hook",
            event_type="*",
            kind="webhook",
            target="https://hooks.example.com/x",
            timeout_seconds=2.0,
            max_attempts=5,
        )
    record_transition(
        Transition(
            name="inventory-hook",
            from_state=State.CLOSED,
            to_state=State.OPEN,
            reason="failure rate 100 %",
            at=time.time(),
            calls=50,
            failures=50,
            slow_calls=0,
            failure_rate=100.0,
            slow_call_rate=0.0,
            version=1,
            origin="test",
        )
    )
    return user


def log_in(page, live_server) -> None:
    page.goto("/accounts/login/?next=/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", "s3cret-pass-42")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def shot(page, name: str) -> None:
    path = settings.VAR_DIR / "screenshots" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def test_the_overview_shows_the_outage_in_red_first(page, live_server, outage):
    from playwright.sync_api import expect

    log_in(page, live_server)
    first = page.locator("table.overview-table tbody tr").first
    expect(first).to_have_attribute("data-service", "inventory")
    link = first.get_by_role("link", name="inventory-hook open")
    expect(link).to_have_css("color", "rgb(212, 60, 60)")  # var(--bad)
    expect(page.locator(".updated time")).to_contain_text("UTC")
    shot(page, "overview-outage.png")

    # Live: the poll swaps the table in place (no reload) and stamps a new time.
    page.evaluate("window.notReloaded = true")
    overview_url = f"{live_server.url}/"
    with page.expect_response(
        lambda r: r.url == overview_url and r.request.headers.get("hx-request") == "true"
    ):
        pass
    expect(page.locator("table.overview-table tbody tr").first).to_have_attribute(
        "data-service", "inventory"
    )
    assert page.evaluate("window.notReloaded") is True

    link.click()
    page.wait_for_url(f"{live_server.url}/breakers/inventory-hook/")

    # The service's page is the hub: its breaker links to the breaker's page.
    page.goto("/services/inventory/")
    hub_link = page.locator("#section-routes-and-breakers a[href='/breakers/inventory-hook/']")
    expect(hub_link).to_contain_text("open")
    shot(page, "service-hub-outage.png")
    assert page.js_errors == []


def test_the_overview_fits_390_px_and_follows_the_dark_scheme(page, live_server, outage):
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    log_in(page, live_server)
    expect(page.locator("table.overview-table")).to_be_visible()
    # The page itself does not scroll sideways; the wide table scrolls inside its card.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 19, 27)"
    shot(page, "overview-390-dark.png")
    assert page.js_errors == []


def test_a_live_panel_whose_session_ended_goes_to_the_login(page, live_server, outage):
    log_in(page, live_server)
    page.context.clear_cookies()  # the session ends (as on expiry or a logout elsewhere)
    page.wait_for_url(f"{live_server.url}/accounts/login/?next=/", timeout=20_000)
    assert page.locator("#id_username").is_visible()
    assert page.locator("table.overview-table").count() == 0  # a full page, not swapped in
    shot(page, "overview-session-ended.png")


def test_the_viewer_switches_to_the_browsers_zone(page, live_server, outage):
    from playwright.sync_api import expect

    log_in(page, live_server)
    page.goto("/services/checkout/")
    expect(page.locator(".facts time")).to_contain_text("UTC")
    page.get_by_role("link", name="Show my zone").click()
    expect(page.locator("[data-zone]")).to_have_text("Europe/Berlin")
    expect(page.locator(".facts time")).to_contain_text("CET")
    page.goto("/")  # remembered
    expect(page.locator(".updated time")).to_contain_text("CET")
    assert page.js_errors == []


def test_the_demo_approver_approves_the_admins_change_in_the_browser(
    page, live_server, transactional_db, settings, tmp_path
):
    import re
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone
    from playwright.sync_api import expect

    from budgets import gates
    from budgets.models import GateDecision
    from budgets.policy import create_freeze_window
    from controlplane.models import Service

    screenshots_dir = settings.VAR_DIR
    settings.VAR_DIR = tmp_path  # the demo's secrets: not the developer's var/
    out = StringIO()
    call_command("seed_demo", stdout=out)
    settings.VAR_DIR = screenshots_dir
    admin_pw = re.search(r"username admin  password (\S+)", out.getvalue()).group(1)
    approver_pw = re.search(r"username approver  password (\S+)", out.getvalue()).group(1)
    admin = get_user_model().objects.get(username="admin")
    checkout = Service.objects.get(slug="checkout")
    now = timezone.now()
    create_freeze_window(
        actor=admin,
        name="demo freeze",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        service=checkout,
    )
    decision = gates.check_change(
        service=checkout,
        change_id="demo-42",
        version="1.2.3",
        kind="urgent",
        description="",
        requested_by="admin",
        actor=admin,
    ).decision

    def log_in_as(username: str, password: str) -> None:
        page.context.clear_cookies()
        page.goto("/accounts/login/?next=/changes/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/changes/")

    log_in_as("admin", admin_pw)
    row = page.locator(f"#decision-{decision.pk}-queue")
    expect(row).to_contain_text("You cannot approve your own request.")
    log_in_as("approver", approver_pw)
    row.get_by_role("button", name="Approve").click()
    expect(row).to_contain_text("Approved")
    expect(row).to_contain_text("by approver")
    shot(page, "changes-approved-by-demo-approver.png")
    decision.refresh_from_db()
    assert decision.status == GateDecision.Status.APPROVED
    assert page.js_errors == []
