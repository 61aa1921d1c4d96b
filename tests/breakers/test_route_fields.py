"""One list of route fields (breakers.routes.ROUTE_FIELDS) for the API, the page form and the
admin, so a field cannot be settable through one door and refused by another."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

from breakers.api import RouteSerializer
from breakers.forms import RouteForm
from breakers.models import Route
from breakers.routes import ROUTE_FIELDS

pytestmark = pytest.mark.smoke  # also on the embedded default


def writable_api_fields() -> set[str]:
    return {name for name, field in RouteSerializer().fields.items() if not field.read_only}


def admin_fields(user) -> set[str]:
    request = RequestFactory().get("/admin/breakers/route/add/")
    request.user = user
    model_admin = admin.site._registry[Route]
    return set(model_admin.get_form(request)().fields)


def test_the_api_the_page_form_and_the_admin_expose_the_same_route_fields(admin):
    admin.user.is_staff = admin.user.is_superuser = True
    assert writable_api_fields() == set(ROUTE_FIELDS)
    assert set(RouteForm().fields) == set(ROUTE_FIELDS)
    assert admin_fields(admin.user) == set(ROUTE_FIELDS)


def test_a_route_posted_with_when_open_keeps_it(operator, checkout, test_handlers):
    api = operator.client()
    body = {
        "name": "orders",
        "service": "checkout",
        "event_type": "*",
        "kind": "python",
        "target": "tests.handlers.record",
        "when_open": "dead_letter",
    }
    created = api.post("/api/v1/routes", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["when_open"] == "dead_letter"
    assert Route.objects.get(name="orders").when_open == "dead_letter"
    changed = api.patch("/api/v1/routes/orders", {"when_open": "defer"}, format="json")
    assert changed.status_code == 200 and changed.json()["when_open"] == "defer"


def test_a_bad_when_open_is_refused_naming_the_field(operator, checkout, test_handlers):
    body = {
        "name": "orders",
        "service": "checkout",
        "event_type": "*",
        "kind": "python",
        "target": "tests.handlers.record",
        "when_open": "drop",
    }
    refused = operator.client().post("/api/v1/routes", body, format="json")
    assert refused.status_code == 400 and "when_open" in refused.json()["errors"]
