"""Bad input the fuzzer (tests/controlplane/test_schema_fuzz.py) turned into 500s, pinned here
as plain regression tests, and the shape and logging of API errors."""

from __future__ import annotations

import functools
import logging

import pytest
from django.test import Client
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


# --- every bad field named (issue 8 item 10) -----------------------------------------------


def test_a_400_names_every_bad_field_in_detail_not_only_the_first(operator):
    body = {"change_id": "c-1", "version": "1", "kind": "normal", "requested_by": ""}
    response = operator.client().post("/api/v1/gates/check", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == {
        "detail": "Invalid input: service: This field is required; "
        "requested_by: This field may not be blank.",
        "code": "invalid",
        "errors": {
            "service": ["This field is required."],
            "requested_by": ["This field may not be blank."],
        },
    }


def test_detail_names_nested_and_listed_fields_by_their_path():
    from controlplane.api_errors import describe_errors

    errors = {
        "config": {"failure_rate": ["Too high."]},
        "events": [{}, {"id": ["This field is required.", "Too long."]}],
        "non_field_errors": ["Give either ids or a filter."],
    }
    assert describe_errors(errors) == (
        "Invalid input: config.failure_rate: Too high; "
        "events[1].id: This field is required. Too long; Give either ids or a filter."
    )


def test_detail_stays_short_for_a_body_of_many_bad_fields(operator):
    body = {f"field{i:02}": 1 for i in range(25)}
    response = operator.client().post("/api/v1/services", body, format="json")
    assert response.status_code == 400
    assert len(response.json()["errors"]) == 25  # the full map stays
    assert response.json()["detail"].endswith("field19: Unknown field; and 5 more.")


def test_a_nul_in_the_query_names_the_parameter_in_detail(admin):
    response = admin.client().get("/api/v1/audit/?action=a%00b")
    assert response.json()["detail"] == "Invalid input: action: Null characters are not allowed."


# --- what the fuzzer found once the schema was checked (issue 8 item S5) --------------------


@pytest.mark.parametrize("page_size", ["abc", "null", "0", "-1", "501", "1.5"])
def test_a_page_size_the_schema_refuses_is_400_naming_it(viewer, page_size):
    response = viewer.client().get(f"/api/v1/services?page_size={page_size}")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"page_size": ["A whole number from 1 to 500."]}


@pytest.mark.parametrize("page", ["", "last", "0", "-1", "x", "1.0", "\u0661"])
def test_a_page_that_is_not_a_positive_integer_is_400_naming_it(viewer, page):
    response = viewer.client().get("/api/v1/services", {"page": page})
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {"page": ["A whole number from 1."]}


def test_a_page_past_the_end_is_still_404(viewer):
    response = viewer.client().get("/api/v1/services?page=2")
    assert response.status_code == 404
    assert viewer.client().get("/api/v1/services?page=1").status_code == 200


def test_a_page_size_in_range_is_honoured(viewer):
    for slug in ("a", "b", "c"):
        services.create_service(actor=viewer.user, slug=slug, name=slug, team="t")
    body = viewer.client().get("/api/v1/services?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("description", 0, "Not a valid string."),
        ("name", 1.5, "Not a valid string."),
        ("team", ["t"], "Not a valid string."),
    ],
)
def test_a_value_of_another_json_type_is_400_not_coerced(operator, field, value, message):
    body = {"slug": "pay", "name": "Pay", "team": "t", field: value}
    response = operator.client().post("/api/v1/services", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {field: [message]}
    assert not Service.objects.exists()


@pytest.mark.parametrize(
    "field, value, ok",
    [
        ("max_attempts", "3", False),
        ("max_attempts", 3.0, True),
        ("max_attempts", True, False),
        ("timeout_seconds", "2", False),
        ("timeout_seconds", 2, True),
        ("enabled", 1, False),
        ("enabled", False, True),
    ],
)
def test_numbers_and_booleans_take_their_json_type(operator, field, value, ok):
    from controlplane.serializers import StrictSerializer as Strict

    class Body(Strict):
        max_attempts = serializers.IntegerField(required=False)
        timeout_seconds = serializers.FloatField(required=False)
        enabled = serializers.BooleanField(required=False)

    serializer = Body(data={field: value})
    assert serializer.is_valid() is ok, serializer.errors
    if not ok:
        assert list(serializer.errors) == [field]


@functools.cache
def openapi() -> dict:
    # Generated once per run: the schema depends on the code only, and generating it is slow.
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return response.json()


def test_the_schema_documents_the_error_statuses_of_every_operation():
    schema = openapi()
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail", "code"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "401", "403", "406"):
                body = responses[code]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            if "requestBody" in operation:
                assert {"413", "415"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
    gate = schema["paths"]["/api/v1/gates/check/"]["post"]["responses"]
    assert {"200", "202", "409", "423"} <= set(gate)
    assert gate["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


@pytest.mark.parametrize("path", ["/api/v1/events/", "/api/v1/dead-letters/"])
def test_the_schema_says_the_event_lists_are_pages(path):
    schema = openapi()
    ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    page = schema["components"]["schemas"][ok["schema"]["$ref"].rsplit("/", 1)[1]]
    assert page["type"] == "object" and {"count", "results"} <= set(page["required"])
    assert page["properties"]["results"]["type"] == "array"
    params = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
    assert {"page", "page_size"} <= params


def test_the_schema_does_not_promise_what_some_roles_do_not_get():
    components = openapi()["components"]["schemas"]
    assert "secret" in components["Route"]["properties"]
    assert "secret" not in components["Route"]["required"]  # viewers never get it
    assert components["EventOut"]["properties"]["route"]["nullable"] is True
