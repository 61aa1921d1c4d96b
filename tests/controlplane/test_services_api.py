from __future__ import annotations

import pytest

from controlplane.models import AuditEntry, Service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

CHECKOUT = {"slug": "checkout", "name": "Checkout", "team": "payments", "tier": "tier-1"}


def test_viewer_reads_but_may_not_write(viewer):
    api = viewer.client()
    assert api.get("/api/v1/services").status_code == 200
    response = api.post("/api/v1/services", CHECKOUT, format="json")
    assert response.status_code == 403
    assert "operator" in response.json()["detail"]
    assert not Service.objects.exists()


def test_operator_creates_updates_and_deletes_with_an_audit_trail(operator):
    api = operator.client()
    created = api.post("/api/v1/services", CHECKOUT, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "checkout"

    patched = api.patch("/api/v1/services/checkout", {"team": "orders"}, format="json")
    assert patched.status_code == 200
    assert Service.objects.get(slug="checkout").team == "orders"

    assert api.delete("/api/v1/services/checkout").status_code == 204
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["service.create", "service.update", "service.delete"]
    update = AuditEntry.objects.get(action="service.update")
    assert update.before["team"] == "payments" and update.after["team"] == "orders"
    assert update.actor_label == "operator"


def test_the_list_is_paginated(viewer, operator):
    for i in range(3):
        operator.client().post("/api/v1/services", {**CHECKOUT, "slug": f"svc-{i}"}, format="json")
    body = viewer.client().get("/api/v1/services?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CHECKOUT, "colour": "blue"}, "colour"),
        ({**CHECKOUT, "tier": "platinum"}, "tier"),
        ({**CHECKOUT, "slug": "no spaces"}, "slug"),
        ({k: v for k, v in CHECKOUT.items() if k != "name"}, "name"),
        ({**CHECKOUT, "name": ["not", "a", "string"]}, "name"),
    ],
)
def test_bad_input_is_400_naming_the_field(operator, body, field):
    response = operator.client().post("/api/v1/services", body, format="json")
    assert response.status_code == 400
    payload = response.json()
    assert field in payload["errors"], payload
    assert payload["code"] == "invalid"


def test_malformed_json_is_400(operator):
    response = operator.client().post(
        "/api/v1/services", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_a_body_over_the_limit_is_413(operator, settings):
    settings.API_MAX_BODY_BYTES = 2048
    response = operator.client().post(
        "/api/v1/services", {**CHECKOUT, "description": "x" * 4096}, format="json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


def test_unknown_paths_and_methods_answer_json(viewer):
    api = viewer.client()
    missing = api.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api.get("/api/v1/services/nope").json()["code"] == "not_found"


def test_method_not_allowed_is_405_json(operator):
    response = operator.client().put("/api/v1/services", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_duplicate_slug_is_400_naming_slug(operator):
    api = operator.client()
    api.post("/api/v1/services", CHECKOUT, format="json")
    response = api.post("/api/v1/services", CHECKOUT, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["errors"]
