"""What the OpenAPI schema (/api/schema/) says beyond what drf-spectacular infers from views.

Every API error has one JSON shape (controlplane/api_errors.py), the `Error` component here.
`document_errors` (a spectacular postprocessing hook) adds to every operation the error
statuses that the layers in front of the views can give it, so a client and a fuzzer find
every status documented. Statuses that only some views give (409, 423) are declared on those
views with `extend_schema(responses=...)`, using `ERROR` from here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx answer of the API."""

    detail = serializers.CharField(help_text="A sentence naming every bad field.")
    code = serializers.CharField(help_text="Machine-readable, e.g. invalid, not_found.")
    errors = serializers.DictField(
        required=False,
        help_text="Bad input only: field name -> list of messages (nested for nested fields).",
    )


def error(description: str) -> OpenApiResponse:
    """An error response for `extend_schema(responses={409: error("...")})`."""
    return OpenApiResponse(ErrorSerializer, description=description)


ERROR_REF = {"$ref": "#/components/schemas/Error"}

# Why each status can answer any operation, whatever its view does.
EVERY_OPERATION = {
    "400": "Bad input (the field is named in `errors`), or a URL holding a NUL character.",
    "401": "No credentials, or a token that is unknown, expired or revoked.",
    "403": "The role (or the token's scopes) does not allow this.",
    "406": "The Accept header asks for a type this operation cannot give.",
}
WITH_A_BODY = {
    "411": "A chunked body on a server that cannot tell where it ends (send Content-Length).",
    "413": "The request body is over API_MAX_BODY_BYTES (or a batch over its limit).",
    "415": "The body is not application/json.",
}
NOT_FOUND = "No such object (a path parameter names nothing), or a page past the last."

# Read-only fields that the API leaves out for some roles: not `required` in responses.
ROLE_DEPENDENT_FIELDS = {"Route": {"secret"}}

METHODS = {"get", "put", "patch", "post", "delete"}


def error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": ErrorSerializer.__doc__,
        "required": ["detail", "code"],
        "properties": {
            "detail": {"type": "string", "description": "A sentence naming every bad field."},
            "code": {"type": "string", "description": "e.g. invalid, not_found, too_large."},
            "errors": {
                "type": "object",
                "additionalProperties": True,
                "description": "Bad input only: field name -> list of messages "
                "(nested for nested fields, a list of per-item maps for batches).",
            },
        },
    }


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def document_errors(result: dict, generator, request, public) -> dict:
    """Postprocessing hook: the Error component and the error statuses of every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = error_schema()
    for name, fields in ROLE_DEPENDENT_FIELDS.items():
        component = schemas.get(name)
        if component and "required" in component:
            component["required"] = [f for f in component["required"] if f not in fields]
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            responses = operation.setdefault("responses", {})
            statuses = dict(EVERY_OPERATION)
            if "requestBody" in operation:
                statuses |= WITH_A_BODY
            parameters = operation.get("parameters", [])
            if any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
                statuses["404"] = NOT_FOUND
            for code, description in statuses.items():
                responses.setdefault(code, error_response(description))
            for code, response in responses.items():
                # A view's own error statuses declared without a body get the Error body.
                if code.startswith("4") and "content" not in response:
                    response["content"] = error_response("")["content"]
    return result
