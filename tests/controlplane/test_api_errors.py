"""Bad input the fuzzer (tests/controlplane/test_schema_fuzz.py) turned into 500s, pinned here
as plain regression tests, and the shape and logging of API errors."""

from __future__ import annotations

import logging

import pytest
from rest_framework import serializers

from controlplane import services, tokens
from controlplane.models import ApiToken, Service
from controlplane.observability import request_id_var
from controlplane.serializers import StrictSerializer

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.mark.parametrize("param", ["action", "object_type", "object_id", "page"])
def test_a_nul_in_a_query_parameter_is_400_naming_it(admin, param):
    response = admin.client().get(f"/api/v1/audit/?{param}=a%00b")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"] == {param: ["Null characters are not allowed."]}


def test_a_nul_in_the_path_is_400(admin):
    response = admin.client().get("/api/v1/services/a%00b")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_audit_filters_still_filter(admin):
    services.create_service(actor=admin.user, slug="pay", name="Pay", team="t")
    api = admin.client()
    created = api.get("/api/v1/audit/?action=service.create").json()
    assert [e["object_repr"] for e in created["results"]] == ["pay"]
    assert api.get("/api/v1/audit/?action=nothing").json()["count"] == 0
    assert api.get("/api/v1/audit/?action=").json()["count"] >= 2  # blank: no filter
    too_long = api.get("/api/v1/audit/?object_id=" + "x" * 101)
    assert too_long.status_code == 400 and "object_id" in too_long.json()["errors"]


class LookupAndPayload(StrictSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    payload = serializers.JSONField(required=False)


@pytest.mark.parametrize(
    "data, field",
    [
        ({"service": "pay\x00"}, "service"),  # a lookup: PostgreSQL fails on NUL
        ({"service": "pay", "payload": {"a": ["ok", "b\x00"]}}, "payload"),  # jsonb refuses it
        ({"service": "pay", "payload": {"k\x00": 1}}, "payload"),
    ],
)
def test_the_strict_bases_refuse_a_nul_anywhere_naming_the_field(operator, data, field):
    services.create_service(actor=operator.user, slug="pay", name="Pay", team="t")
    serializer = LookupAndPayload(data=data)
    assert not serializer.is_valid()
    assert serializer.errors == {field: ["Null characters are not allowed."]}
    assert LookupAndPayload(data={"service": "pay", "payload": {"a": [1, "ok"]}}).is_valid()


def test_deeply_nested_json_is_400_not_500(operator):
    response = operator.client().post(
        "/api/v1/services", data="[" * 100_000, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": "JSON parse error - the body is nested too deeply.",
        "code": "parse_error",
    }


def test_losing_a_race_for_a_slug_is_400_not_500(operator, monkeypatch):
    real = services.create_service

    def another_request_wins_first(*, actor, **fields):
        real(actor=actor, **fields)  # commits between validation and our insert
        return real(actor=actor, **fields)

    monkeypatch.setattr(services, "create_service", another_request_wins_first)
    response = operator.client().post(
        "/api/v1/services", {"slug": "pay", "name": "Pay", "team": "t"}, format="json"
    )
    assert response.status_code == 400, response.content
    assert "slug" in response.json()["errors"]
    assert Service.objects.filter(slug="pay").count() == 1


def test_losing_a_race_for_a_token_name_is_400_not_500(viewer, monkeypatch):
    real = tokens.issue_token

    def another_request_wins_first(user, **kwargs):
        real(user, **kwargs)
        return real(user, **kwargs)

    monkeypatch.setattr(tokens, "issue_token", another_request_wins_first)
    response = viewer.client().post("/api/v1/tokens", {"name": "ci"}, format="json")
    assert response.status_code == 400, response.content
    assert "name" in response.json()["errors"]
    assert ApiToken.objects.filter(user=viewer.user, name="ci").count() == 1


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def emit(self, record):
        self.seen.append((record.getMessage(), request_id_var.get()))


@pytest.fixture
def request_log():
    handler = Records()
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield handler.seen
    logger.removeHandler(handler)


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/services/nope"])
def test_an_api_error_is_logged_once_with_its_request_id(viewer, request_log, path):
    response = viewer.client().get(path, HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "req-42"
    assert request_log == [(f"Not Found: {path}", "req-42")]


def test_the_schema_documents_bearer_auth_and_typed_parameters(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    token_id = schema["paths"]["/api/v1/tokens/{id}/"]["get"]["parameters"][0]
    assert token_id["schema"]["type"] == "integer"
    audit_params = {p["name"] for p in schema["paths"]["/api/v1/audit/"]["get"]["parameters"]}
    assert {"action", "object_type", "object_id", "page", "page_size"} <= audit_params
    created = schema["paths"]["/api/v1/tokens/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "token" in schema["components"]["schemas"][ref]["properties"]
