"""Real Chromium against a real HTTP server: log in through the form, see the overview, and
revoke a token with htmx (the row is swapped in place; the page does not reload).

Playwright drives Debian's chromium (/usr/bin/chromium); it never downloads a browser.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from controlplane.models import ApiToken
from controlplane.roles import Role, grant_role
from controlplane.services import create_service
from controlplane.tokens import issue_token

pytestmark = [pytest.mark.browser, pytest.mark.smoke]

CHROMIUM = os.environ.get("CONTROLPLANE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(tempfile.gettempdir()) / "controlplane-overview.png"  # to look at by eye


def _require_chromium() -> None:
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true" or os.environ.get("CONTROLPLANE_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + "; CI requires the browser tests")
    pytest.skip(reason)


@pytest.fixture
def page(live_server, monkeypatch):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, and Django refuses
    # database calls from a thread with a running loop. The test's own queries are plain
    # synchronous ones (the server runs in its own thread), so allow them while it runs.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url, timezone_id="Europe/Berlin")
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def on_console(msg):
            where = msg.location.get("url", "")
            # Browsers ask for /favicon.ico on their own; we serve none, and that is no error.
            if msg.type == "error" and not where.endswith("/favicon.ico"):
                errors.append(f"{msg.text} ({where})")

        page.on("console", on_console)
        page.js_errors = errors
        try:
            yield page
        finally:
            browser.close()


@pytest.fixture
def operator_with_data(transactional_db):
    user = get_user_model().objects.create_user(username="olive", password="s3cret-pass-42")
    grant_role(user, Role.OPERATOR)
    create_service(
        actor=user,
        slug="checkout",
        name="Checkout",
        team="payments",
        tier="tier-1",
        description="Takes orders and payments.",
    )
    token = issue_token(user, name="ci-deploy").token
    return user, token


def test_log_in_see_the_overview_and_revoke_a_token(page, live_server, operator_with_data):
    from playwright.sync_api import expect

    _user, token = operator_with_data

    # Every page needs a login: the overview sends us to the form, which sends us back.
    page.goto("/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/")
    page.fill("#id_username", "olive")
    page.fill("#id_password", "s3cret-pass-42")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    row = page.locator("table.table tbody tr", has_text="checkout")
    expect(row).to_contain_text("Checkout")
    expect(row).to_contain_text("payments")
    expect(row).to_contain_text("Tier 1")
    expect(page.locator(".who")).to_contain_text("olive · operator")
    expect(page.locator("[data-local-zone]")).to_have_text("Europe/Berlin")  # our JS ran
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # htmx: revoking swaps the token's row in place, without a full page load.
    page.goto("/tokens/")
    page.evaluate("window.notReloaded = true")
    token_row = page.locator(f"#token-{token.pk}")
    expect(token_row.locator(".badge")).to_have_text("active")
    page.once("dialog", lambda dialog: dialog.accept())  # hx-confirm
    with page.expect_response(f"**/tokens/{token.pk}/revoke") as revoked:
        token_row.get_by_role("button", name="Revoke").click()
    assert revoked.value.request.headers.get("hx-request") == "true"
    expect(token_row.locator(".badge")).to_have_text("revoked")
    expect(token_row.get_by_role("button", name="Revoke")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert page.js_errors == []
