"""Request ids, JSON errors for the API, and login for every page."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib.auth.views import redirect_to_login

from controlplane.api_errors import code_for_status, json_error
from controlplane.observability import request_id_var

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller when it is sane, else makes one; logs carry it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


class ApiErrorsMiddleware:
    """Under /api/: bodies over the limit get 413 before anything reads them, and Django's own
    HTML error pages (unknown URL, CSRF, server error) become the API's JSON error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path):
            return self.get_response(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error(400, "Content-Length is not a number.", "bad_request")
        if length > settings.API_MAX_BODY_BYTES:
            return json_error(
                413,
                f"Request body is {length} bytes; the limit is {settings.API_MAX_BODY_BYTES}.",
                "too_large",
            )
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if response.status_code >= 400 and "json" not in content_type:
            code = code_for_status(response.status_code)
            return json_error(response.status_code, code.replace("_", " ").capitalize() + ".", code)
        return response


PUBLIC_PREFIXES = ("/api/", "/static/", "/admin/", "/accounts/", "/healthz", "/readyz", "/metrics")


class LoginRequiredPagesMiddleware:
    """Every page needs a login. The API answers 401 JSON itself; the admin has its own login."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated and not request.path.startswith(PUBLIC_PREFIXES):
            return redirect_to_login(request.get_full_path())
        return self.get_response(request)
