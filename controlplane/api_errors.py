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
        first = next(iter(errors), "non_field_errors")
        response.data = {
            "detail": f"Invalid input: {first}."
            if first != "non_field_errors"
            else "Invalid input.",
            "code": "invalid",
            "errors": errors,
        }
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = getattr(detail, "code", None) or code_for_status(response.status_code)
        response.data = {"detail": str(detail), "code": code}
    return response


def json_error(status_code: int, detail: str, code: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code, **extra}, status=status_code)
