"""Real Chromium against a real HTTP server: an approver approves a change on the Changes page
with htmx (both rows swap in place, no reload), and the SLO page's charts render.

Playwright drives Debian's chromium (/usr/bin/chromium); it never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from budgets import gates
from budgets.ledger import record_outcomes
from budgets.models import GateDecision
from controlplane.roles import Role, grant_role
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.browser, pytest.mark.smoke]

CHROMIUM = os.environ.get("CONTROLPLANE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture
def page(live_server, monkeypatch):
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI requires the browser tests")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # see tests/browser
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.js_errors = []
        page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def world(transactional_db, operator):
    approver = get_user_model().objects.create_user(username="ada", password="s3cret-pass-42")
    grant_role(approver, Role.APPROVER)
    service = make_service(operator, "orders", tier="tier-1")
    slo = make_slo(operator, service, target="0.99")
    at = timezone.now() - timedelta(hours=5)
    record_outcomes([(service.pk, at, i >= 9, 1.0) for i in range(1000)])  # 90 % spent
    decision = gates.check_change(
        service=service,
        change_id="hotfix-1",
        version="2.0.1",
        kind="urgent",
        description="",
        requested_by="ci",
        actor=operator.user,
    ).decision
    return slo, decision


def login(page) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "s3cret-pass-42")
    page.click("button[type=submit]")


def test_an_approver_approves_with_htmx_and_the_rows_swap(page, world):
    _, decision = world
    login(page)
    page.goto("/changes/")
    page.evaluate("window.__notReloaded = true")
    page.click(f"#decision-{decision.pk}-queue button.primary")
    page.wait_for_selector(f"#decision-{decision.pk}-queue >> text=Approved")
    page.wait_for_selector(f"#decision-{decision.pk} >> text=Approved")  # the log, out of band
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator(f"#decision-{decision.pk}-queue button").count() == 0
    decision.refresh_from_db()
    assert decision.status == GateDecision.Status.APPROVED
    assert decision.decided_by.username == "ada"
    assert page.js_errors == []


def test_the_slo_page_draws_its_charts(page, world):
    slo, _ = world
    login(page)
    page.goto(f"/budgets/slos/{slo.pk}/")
    assert page.locator("svg.chart").count() == 2
    box = page.locator("svg.chart").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 80
    assert page.locator("svg.chart polyline.actual").count() == 1
    page.goto("/budgets/")
    assert page.locator("#budget-table").get_attribute("hx-trigger") == (
        "every 30s [document.visibilityState=='visible']"
    )
    assert page.js_errors == []
