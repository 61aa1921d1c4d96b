"""Every breaker setting, the half-open policy ones (issue 8 item 6) among them, can be set
through every door: the page's thresholds form, the API and the admin; each goes through
control.update_thresholds."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

import pytest
from django.test import Client

from breakers.engine import BreakerConfig
from breakers.forms import CONFIG_FIELDS, ThresholdsForm
from breakers.models import CircuitBreaker
from controlplane.models import AuditEntry
from tests.conftest import make_route

NEW = {
    "half_open_policy": "failure_rate",
    "half_open_permitted_calls": 5,
    "half_open_max_wait_s": 20.0,
}


@pytest.fixture
def breaker(checkout, operator) -> CircuitBreaker:
    return make_route(checkout, operator, target="http://127.0.0.1:1/x").breaker


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def test_the_thresholds_form_offers_every_breaker_setting():
    settings = [f.name for f in dataclass_fields(BreakerConfig)]
    assert settings == CONFIG_FIELDS
    assert set(settings) <= set(ThresholdsForm().fields)


def test_the_page_saves_failure_outcomes(breaker, operator):
    data = {**ThresholdsForm.initial_for(breaker), "failure_outcomes": ["TIMEOUT"]}
    data = {k: "" if v is None else v for k, v in data.items()}
    response = logged_in(operator).post("/breakers/checkout-route/thresholds", data)
    assert response.status_code == 302
    breaker.refresh_from_db()
    assert breaker.config == {"failure_outcomes": ["TIMEOUT"]}


def test_the_page_saves_the_half_open_policy(breaker, operator):
    data = {**ThresholdsForm.initial_for(breaker), **NEW}
    data = {k: "" if v is None else v for k, v in data.items()}
    response = logged_in(operator).post("/breakers/checkout-route/thresholds", data)
    assert response.status_code == 302
    breaker.refresh_from_db()
    assert breaker.config == NEW
    assert AuditEntry.objects.filter(action="breaker.thresholds").count() == 1


def test_the_api_saves_the_half_open_policy_and_names_a_bad_one(breaker, operator):
    api = operator.client()
    ok = api.patch("/api/v1/breakers/checkout-route", {"config": NEW}, format="json")
    assert ok.status_code == 200, ok.json()
    assert {k: ok.json()["config"][k] for k in NEW} == NEW
    bad = api.patch(
        "/api/v1/breakers/checkout-route",
        {"config": {"half_open_policy": "resilience4j"}},
        format="json",
    )
    assert bad.status_code == 400
    assert "half_open_policy" in str(bad.json())


def test_the_admin_saves_the_half_open_policy(breaker, admin):
    admin.user.is_staff = admin.user.is_superuser = True
    admin.user.save()
    url = f"/admin/breakers/circuitbreaker/{breaker.pk}/change/"
    data = {
        "config": '{"half_open_policy": "failure_rate", "half_open_permitted_calls": 5}',
        "forced_state": "",
        "reason": "",
        "dynamic_field": "",
        "dynamic_k": "2.0",
        "dynamic_window_s": "300",
        "dynamic_query": "",
    }
    response = logged_in(admin).post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    breaker.refresh_from_db()
    assert breaker.config == {"half_open_policy": "failure_rate", "half_open_permitted_calls": 5}
    assert AuditEntry.objects.filter(action="breaker.thresholds").count() == 1
