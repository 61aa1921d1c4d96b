"""One JSON shape for every API error: {"detail", "code", "errors": {field: [messages]}}."""

from __future__ import annotations

import traceback

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    429: "throttled",
    500: "server_error",
}


def code_for_status(status_code: int) -> str:
    return STATUS_CODES.get(status_code, "error")


def raised_while_parsing(exc: BaseException) -> bool:
    """Whether `exc` came out of DRF parsing the request body (so the body is to blame)."""
    parse = Request._parse.__code__
    return any(frame.f_code is parse for frame, _ in traceback.walk_tb(exc.__traceback__))


# A batch of hundreds of bad events would otherwise make `detail` as long as the body.
DETAIL_MAX_FIELDS = 20


def flatten_errors(errors: object, path: str = "") -> list[tuple[str, list[str]]]:
    """(dotted field path, messages) for every bad field of a DRF error structure: a dict of
    fields, a list of messages, or a list of per-item dicts (a many=True serializer)."""
    if isinstance(errors, dict):
        found = []
        for name, value in errors.items():
            key = "" if name == "non_field_errors" else str(name)
            found += flatten_errors(value, f"{path}.{key}" if path and key else path or key)
        return found
    if isinstance(errors, list | tuple):
        if any(isinstance(item, dict | list | tuple) for item in errors):
            found = []
            for index, item in enumerate(errors):
                if isinstance(item, dict | list | tuple):
                    found += flatten_errors(item, f"{path}[{index}]")
                elif item:
                    found.append((path, [str(item)]))
            return found
        messages = [str(item) for item in errors if str(item)]
        return [(path, messages)] if messages else []
    return [(path, [str(errors)])]


def describe_errors(errors: object) -> str:
    """One line naming every bad field, e.g. "Invalid input: service: This field is required;
    requested_by: This field may not be blank." (`errors` keeps the full map)."""
    parts = []
    for path, messages in flatten_errors(errors):
        text = " ".join(m.rstrip(".") + "." for m in messages).rstrip(".")
        parts.append(f"{path}: {text}" if path else text)
    if not parts:
        return "Invalid input."
    more = len(parts) - DETAIL_MAX_FIELDS
    shown = "; ".join(parts[:DETAIL_MAX_FIELDS])
    return f"Invalid input: {shown}" + (f"; and {more} more." if more > 0 else ".")


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {"detail": "Request body is too large.", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, RecursionError) and raised_while_parsing(exc):
        # json.loads gives up on deeply nested arrays or objects with RecursionError, which
        # DRF's JSONParser does not turn into a ParseError: it was a 500.
        exc = exceptions.ParseError("JSON parse error - the body is nested too deeply.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {"detail": describe_errors(errors), "code": "invalid", "errors": errors}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = getattr(detail, "code", None) or code_for_status(response.status_code)
        response.data = {"detail": str(detail), "code": code}
    return response


def json_error(status_code: int, detail: str, code: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code, **extra}, status=status_code)
