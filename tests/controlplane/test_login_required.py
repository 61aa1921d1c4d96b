"""Django's LoginRequiredMiddleware guards every view; the few public ones say so themselves
(`login_not_required`), so a new view is private wherever it is mounted."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

PAGES = ["/", "/services/", "/breakers/", "/routes/", "/events/", "/budgets/", "/changes/"]


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_page_visit_redirects_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_an_anonymous_post_to_a_page_action_redirects_to_login(client):
    response = client.post("/tokens/1/revoke")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.urls("tests.controlplane.login_urls")
@pytest.mark.parametrize("path", ["/api/report-page", "/healthz-history"])
def test_a_plain_view_is_private_wherever_it_is_mounted(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_is_public(client):
    assert client.get("/accounts/login/").status_code == 200


def test_logging_out_needs_no_login(client):
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"


def test_health_is_public(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readiness_is_public(client):
    response = client.get("/readyz")
    assert response.status_code in (200, 503)  # reachable either way; never a login page
    assert "checks" in response.json() or "status" in response.json()


def test_metrics_are_public(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


def test_the_api_answers_401_json_not_a_redirect(client):
    response = client.get("/api/v1/services")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_an_unknown_api_url_is_a_404_json(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_the_api_schema_is_public(client):
    assert client.get("/api/schema/").status_code == 200


def test_the_admin_sends_anonymous_visitors_to_a_login_page(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "login/?next=/admin/" in response["Location"]
    assert client.get("/admin/login/").status_code == 200


def test_the_demo_downstream_needs_no_login(client):
    # A webhook target: off unless CONTROLPLANE_DEMO (404), never a login redirect.
    response = client.post("/demo/downstream/payments-api")
    assert response.status_code != 302
