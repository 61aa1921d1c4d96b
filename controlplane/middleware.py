"""Request ids and JSON errors for the API.

Login for every page is Django's own LoginRequiredMiddleware (settings.MIDDLEWARE); the few
public views are marked `login_not_required` where they are defined (DRF views mark
themselves and answer 401 JSON).
"""

from __future__ import annotations

import io
import re
import uuid

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import JsonResponse
from django.utils.log import log_response

from controlplane.api_errors import code_for_status, describe_errors, json_error
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
            if response.status_code >= 400:
                # Django's handler would log this after every middleware has returned, when
                # the request id is gone from the log context; log it here, once, with it.
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


def nul_in_url(request) -> JsonResponse | None:
    """A 400 naming the part of the URL that holds a NUL character, else None.

    PostgreSQL cannot store or compare NUL in text, so a filter or lookup given one fails in
    the database (fuzzing found `?action=%00` on /api/v1/audit answering 500). No identifier
    or filter of ours can contain NUL, so the URL is refused before any view sees it.
    """
    if "\x00" in request.path:
        return json_error(400, "The URL path contains a NUL character.", "invalid")
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            field = name.replace("\x00", "\\x00")
            errors = {field: ["Null characters are not allowed."]}
            return json_error(400, describe_errors(errors), "invalid", errors=errors)
    return None


def read_unsized_body(request) -> JsonResponse | None:
    """A body sent without Content-Length (Transfer-Encoding: chunked) is read here, within
    the size limit (413 beyond it), so the view sees it; Django would otherwise read nothing
    and the request would fail as if empty. Servers that hand over the decoded body up to its
    end (gunicorn, which sets ``wsgi.input_terminated``) allow this; on any other server the
    request gets 411 rather than a guess at where the body ends."""
    meta = request.META
    if (
        meta.get("CONTENT_LENGTH")
        or "chunked" not in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
    ):
        return None
    if not request.environ.get("wsgi.input_terminated"):
        return json_error(
            411, "Send a Content-Length: this server cannot read a chunked body.", "length_required"
        )
    limit = settings.API_MAX_BODY_BYTES
    stream, chunks, total = request.environ["wsgi.input"], [], 0
    while chunk := stream.read(min(64 * 1024, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            return json_error(413, f"Request body is over the limit of {limit} bytes.", "too_large")
    body = b"".join(chunks)
    request._stream = LimitedStream(io.BytesIO(body), len(body))
    meta["CONTENT_LENGTH"] = str(len(body))
    return None


class ApiErrorsMiddleware:
    """Under /api/: bodies over the limit get 413 before anything reads them, URLs holding NUL
    get 400, chunked bodies are read or refused (read_unsized_body), and Django's own HTML
    error pages (unknown URL, CSRF, server error) become the API's JSON error shape."""

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
        refused = nul_in_url(request) or read_unsized_body(request)
        if refused is not None:
            return refused
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if response.status_code >= 400 and "json" not in content_type:
            code = code_for_status(response.status_code)
            replacement = json_error(
                response.status_code, code.replace("_", " ").capitalize() + ".", code
            )
            # Django logs each 4xx/5xx once and marks the response; carry the mark over, or
            # the handler logs the replacement a second time (without the request id).
            if getattr(response, "_has_been_logged", False):
                replacement._has_been_logged = True
            return replacement
        return response
