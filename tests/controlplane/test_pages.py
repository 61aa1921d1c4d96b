from __future__ import annotations

import pytest
from django.test import Client

from controlplane.models import ApiToken, AuditEntry, Service
from controlplane.services import create_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


@pytest.mark.parametrize("path", ["/", "/services/", "/tokens/", "/audit/"])
def test_every_page_needs_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_overview_lists_services(viewer):
    create_service(actor=viewer.user, slug="checkout", name="Checkout", team="payments")
    page = logged_in(viewer).get("/").content.decode()
    assert "Checkout" in page
    assert "htmx" in page and "X-CSRFToken" in page


def test_the_overview_costs_a_fixed_number_of_queries(viewer, django_assert_max_num_queries):
    for i in range(20):
        create_service(actor=viewer.user, slug=f"s{i}", name=f"S{i}", team="t")
    client = logged_in(viewer)
    with django_assert_max_num_queries(6):
        response = client.get("/")
    # A login redirect or an error page is cheap too: the count means nothing without this.
    assert response.status_code == 200
    assert "<code>s19</code>" in response.content.decode()


def test_a_user_without_a_role_is_forbidden(outsider):
    assert logged_in(outsider).get("/").status_code == 403


def test_operator_creates_a_service_from_the_page(operator):
    client = logged_in(operator)
    response = client.post(
        "/services/",
        {"slug": "pay", "name": "Pay", "team": "t", "tier": "tier-1", "description": ""},
    )
    assert response.status_code == 302
    assert Service.objects.filter(slug="pay").exists()


def test_viewer_may_not_post_the_service_form(viewer):
    response = logged_in(viewer).post(
        "/services/", {"slug": "pay", "name": "Pay", "team": "t", "tier": "tier-1"}
    )
    assert response.status_code == 403
    assert not Service.objects.exists()


def test_pages_enforce_csrf(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator.user)
    response = client.post(
        "/services/", {"slug": "pay", "name": "Pay", "team": "t", "tier": "tier-1"}
    )
    assert response.status_code == 403
    assert not Service.objects.exists()


def test_the_tokens_page_shows_a_new_secret_once_and_revokes_with_htmx(viewer):
    client = logged_in(viewer)
    page = client.post("/tokens/", {"name": "laptop", "expires_in_days": "30"}).content.decode()
    token = ApiToken.objects.get(user=viewer.user, name="laptop")
    assert token.prefix in page and "will not be shown again" in page
    assert "will not be shown again" not in client.get("/tokens/").content.decode()
    row = client.post(f"/tokens/{token.pk}/revoke", HTTP_HX_REQUEST="true")
    assert row.status_code == 200
    assert "revoked" in row.content.decode() and "<html" not in row.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_the_audit_page_is_for_admins(viewer, admin):
    create_service(actor=admin.user, slug="pay", name="Pay", team="t")
    assert logged_in(viewer).get("/audit/").status_code == 403
    page = logged_in(admin).get("/audit/").content.decode()
    assert "service.create" in page
    assert AuditEntry.objects.filter(action="service.create").count() == 1
