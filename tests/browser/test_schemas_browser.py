"""Real Chromium: the Schemas page's "try a payload" box answers in place with htmx (the page
does not reload), coerced and refused. A screenshot is kept in the temp dir to look at."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from breakers.schemas import create_schema
from controlplane.roles import Role, grant_role
from controlplane.services import create_service
from tests.browser.test_login_overview import page  # noqa: F401  (the Chromium fixture)

# ruff: noqa: F811  (pytest passes the imported fixture by name)

pytestmark = [pytest.mark.browser]
SCREENSHOT = Path(tempfile.gettempdir()) / "controlplane-schemas.png"


@pytest.fixture
def viewer_with_schema(transactional_db):
    user = get_user_model().objects.create_user(username="vera", password="s3cret-pass-42")
    grant_role(user, Role.VIEWER)
    service = create_service(actor=user, slug="checkout", name="Checkout", team="payments")
    create_schema(
        actor=user,
        service=service,
        event_type="order.created",
        mode="coercive",
        fields={
            "amount": {"type": "integer", "required": True},
            "currency": {"type": "string", "default": "EUR"},
        },
    )
    return user


def test_the_try_box_answers_in_place(page, live_server, viewer_with_schema):
    from playwright.sync_api import expect

    page.goto("/accounts/login/?next=/schemas/")
    page.fill("#id_username", "vera")
    page.fill("#id_password", "s3cret-pass-42")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Event schemas")).to_be_visible()
    expect(page.locator("nav.nav a[aria-current=page]")).to_have_text("Schemas")
    page.evaluate("window.notReloaded = true")
    box = page.locator("#schema-check")
    box.locator("select[name=service]").select_option("checkout")
    box.locator("input[name=type]").fill("order.created")
    box.locator("textarea[name=payload]").fill('{"amount": "42"}')
    with page.expect_response("**/schemas/try") as answered:
        box.get_by_role("button", name="Try it").click()
    assert answered.value.request.headers.get("hx-request") == "true"
    expect(box.locator(".schema-answer")).to_contain_text("accepted")
    expect(box.locator(".schema-answer pre")).to_contain_text('"amount": 42')
    expect(box.locator(".schema-answer")).to_contain_text("currency: missing, defaulted")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    box.locator("textarea[name=payload]").fill('{"amount": "4.5"}')
    box.get_by_role("button", name="Try it").click()
    expect(box.locator(".schema-answer")).to_contain_text("refused")
    expect(box.locator(".schema-answer")).to_contain_text("amount")
    assert page.evaluate("window.notReloaded") is True
    assert page.js_errors == []
