"""Real Chromium: the breaker board with an open breaker: open first, the state filter
through htmx, and forcing a breaker from its row with a reason (CSRF from hx-headers)."""

from __future__ import annotations

import pytest

from controlplane.models import AuditEntry
from tests.browser.test_login_overview import page  # noqa: F401  (the Chromium fixture)
from tests.browser.test_triage import log_in, outage, shot  # noqa: F401

# ruff: noqa: F811  (pytest passes the imported fixtures by name)

pytestmark = [pytest.mark.browser]


def shown(page) -> list[str]:
    return page.eval_on_selector_all(
        "#breaker-board tr.breaker-row", "rows => rows.map(r => r.id.replace('breaker-', ''))"
    )


def test_the_board_filters_and_forces_from_a_row_without_a_reload(page, live_server, outage):
    log_in(page, live_server)
    page.goto("/breakers/")
    page.evaluate("window.__notReloaded = true")
    assert shown(page)[0] == "inventory-hook"  # open first
    shot(page, "board-outage.png")

    page.select_option("#board-state", "open")
    page.wait_for_function("document.querySelectorAll('#breaker-board tr.breaker-row').length == 1")
    assert shown(page) == ["inventory-hook"] and "state=open" in page.url
    page.select_option("#board-state", "")
    page.wait_for_function("document.querySelectorAll('#breaker-board tr.breaker-row').length == 3")

    row = page.locator("#breaker-checkout-hook")
    row.locator("select[name=mode]").select_option("forced_open")
    row.locator("input[name=reason]").fill("drain before failover")
    row.locator("button", has_text="Apply").click()
    page.wait_for_selector("#breaker-checkout-hook [data-state=forced_open]")
    assert "Force open: done" in page.inner_text("#breaker-board")
    assert page.evaluate("window.__notReloaded") is True
    entry = AuditEntry.objects.get(action="breaker.force")
    assert (entry.reason, entry.actor.username) == ("drain before failover", "olive")
    shot(page, "board-forced.png")
    assert page.js_errors == []
