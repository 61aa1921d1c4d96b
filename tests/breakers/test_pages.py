from __future__ import annotations

import pytest
from django.test import Client

from breakers.models import DemoDownstream, Route
from controlplane.demo import seed
from tests.conftest import make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def test_operators_create_routes_only_to_allowed_targets(operator, checkout):
    client = logged_in(operator)
    form = {
        "service": checkout.pk,
        "name": "r1",
        "event_type": "order.*",
        "kind": "webhook",
        "target": "http://evil.example/hook",
        "timeout_seconds": 2,
        "max_attempts": 3,
        "enabled": "on",
        "when_open": "defer",
    }
    page = client.post("/routes/", form).content.decode()
    assert "CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS" in page and not Route.objects.exists()
    client.post("/routes/", {**form, "target": "http://127.0.0.1:9000/hook"})
    assert Route.objects.get(name="r1").event_type == "order.*"


def test_a_route_is_toggled_with_htmx(operator, checkout):
    make_route(checkout, operator, target="http://127.0.0.1:1/x")
    row = logged_in(operator).post("/routes/checkout-route/toggle", HTTP_HX_REQUEST="true")
    assert "off" in row.content.decode() and "<html" not in row.content.decode()
    assert Route.objects.get().enabled is False


def test_the_routes_api_validates_targets_and_hides_secrets_from_viewers(
    operator, viewer, checkout, test_handlers
):
    api = operator.client()
    bad = api.post(
        "/api/v1/routes",
        {
            "name": "x",
            "service": "checkout",
            "event_type": "*",
            "kind": "python",
            "target": "os.system",
        },
        format="json",
    )
    assert bad.status_code == 400 and "target" in bad.json()["errors"]
    ok = api.post(
        "/api/v1/routes",
        {
            "name": "x",
            "service": "checkout",
            "event_type": "*",
            "kind": "python",
            "target": "tests.handlers.record",
        },
        format="json",
    )
    assert ok.status_code == 201 and ok.json()["secret"].startswith("whsec_")
    assert "secret" not in viewer.client().get("/api/v1/routes/x").json()
    unknown = api.post(
        "/api/v1/routes",
        {
            "name": "y",
            "service": "nope",
            "event_type": "*",
            "kind": "python",
            "target": "tests.handlers.record",
        },
        format="json",
    )
    assert "service" in unknown.json()["errors"]


def test_the_demo_seeds_routes_and_a_downstream_page(operator):
    seed()
    seed()  # running it again is safe
    assert Route.objects.count() == 3
    client = logged_in(operator)
    assert "payments-api" in client.get("/demo/").content.decode()
    client.post(
        "/demo/",
        {"name": "payments-api", "failure_rate": "1", "latency_ms": "0", "traffic_per_tick": "0"},
    )
    assert DemoDownstream.objects.get(name="payments-api").failure_rate == 1
    assert Client().post("/demo/downstream/payments-api").status_code == 503


def test_the_worker_page_lists_nodes(viewer):
    from breakers.nodes import current_node

    current_node()
    assert "healthy" in logged_in(viewer).get("/nodes/").content.decode()
