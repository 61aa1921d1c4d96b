"""Real Chromium: the Reports page draws its table and charts, the period picker swaps the
report with htmx (no reload), a work item is added with htmx, and the print layout hides the
navigation. Screenshots go under $CONTROLPLANE_VAR_DIR/screenshots/."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from budgets.ledger import record_outcomes
from budgets.models import WorkItem
from controlplane.roles import Role, grant_role
from tests.budgets import test_browser
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.browser, pytest.mark.smoke]

page = test_browser.page  # the Chromium fixture


@pytest.fixture
def world(transactional_db, operator):
    user = get_user_model().objects.create_user(username="ops", password="s3cret-pass-42")
    grant_role(user, Role.OPERATOR)
    service = make_service(operator, "orders")
    make_slo(operator, service, target="0.99")
    now = timezone.now()
    at = now.replace(minute=0, second=0, microsecond=0)
    if at.day == 1 and at.hour == 0:
        at = now  # keep the data in the current month
    else:
        at -= timedelta(hours=1)
    record_outcomes([(service.pk, at, i >= 30, 1.0) for i in range(300)])
    return service


def shot(page, name: str) -> None:
    folder = Path(settings.VAR_DIR) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def login(page) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", "s3cret-pass-42")
    page.click("button[type=submit]")


def test_the_reports_page_draws_and_the_picker_swaps_with_htmx(page, world):
    login(page)
    page.goto("/reports/")
    assert page.locator("nav.nav >> text=Reports").count() == 1
    assert page.locator(".report-table tr.over").count() >= 1  # orders is over budget
    assert page.locator("text=postmortem").count() >= 1
    assert page.locator("#report-body svg.chart").count() >= 2
    shot(page, "reports")
    page.evaluate("window.__notReloaded = true")
    page.fill("input[name=quarter]", "2025-Q1")
    page.click(".period-picker button")
    page.wait_for_selector("#report-body >> text=2025-Q1")
    assert page.evaluate("window.__notReloaded") is True
    assert page.js_errors == []


def test_a_work_item_is_added_with_htmx(page, world):
    login(page)
    page.goto("/reports/work-items/")
    page.evaluate("window.__notReloaded = true")
    page.fill("input[name=key]", "OPS-12")
    page.fill("input[name=title]", "Cap retries")
    page.fill("input[name=service]", "orders")
    page.click("#work-item-add")
    page.wait_for_selector("#work-items-body >> text=OPS-12")
    assert page.evaluate("window.__notReloaded") is True
    assert WorkItem.objects.get().key == "OPS-12"
    shot(page, "work-items")
    assert page.js_errors == []


def test_the_print_layout_hides_the_navigation(page, world):
    login(page)
    page.goto("/reports/")
    page.emulate_media(media="print")
    assert page.locator(".period-picker").is_hidden()
    assert page.locator("header.topbar").is_hidden()
    page.goto("/reports/print")
    assert page.locator("svg.chart").count() >= 2
    shot(page, "report-print")
    assert page.js_errors == []
