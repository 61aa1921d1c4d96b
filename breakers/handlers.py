"""Calling a route's handler within its timeout, and classifying what happened.

webhook: POST the event as JSON, signed with the route's secret. 2xx delivered; 4xx other than
408/429 permanent; 5xx, 408, 429, timeouts and connection errors retry. Redirects are not
followed (they could leave the allow-list).
python: an allow-listed dotted path, called with the event dict. PermanentError = dead letter;
any other exception = retry.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings

from breakers.models import Route
from controlplane import egress, egress_async


class PermanentError(Exception):
    """Raised by a python handler for an event that no retry will fix."""


class HandlerTimeout(Exception):
    pass


@dataclass
class CallResult:
    outcome: str  # delivered | failed | timeout | permanent
    error: str = ""
    status_code: int | None = None


# --- allow-lists (checked when a route is saved and again at call time) -------------------------


def webhook_host_allowed(url: str, *, resolve: bool = False) -> bool:
    """One rule for every outbound URL: see controlplane/egress.py (the pool checks again)."""
    return egress.url_allowed(url, resolve=resolve)


def python_handler_allowed(path: str) -> bool:
    return path in settings.PYTHON_HANDLERS


_handlers: dict[str, Callable[[dict], Any]] = {}


def load_python_handler(path: str) -> Callable[[dict], Any]:
    if not python_handler_allowed(path):
        raise PermanentError(f"handler {path!r} is not in CONTROLPLANE_PYTHON_HANDLERS")
    if path not in _handlers:
        module_name, _, attr = path.rpartition(".")
        _handlers[path] = getattr(importlib.import_module(module_name), attr)
    return _handlers[path]


# --- the event as handlers see it --------------------------------------------------------------


def event_envelope(event, attempt: int) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "service": event.service.slug,
        "type": event.type,
        "schema_version": event.schema_version,
        "priority": event.priority,
        "occurred_at": event.occurred_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "attempt": attempt,
        "replay": event.is_replay,
        "replay_run": event.replay_run_id,
        "payload": event.payload,
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# --- webhook -------------------------------------------------------------------------------------

_pool: urllib3.PoolManager | None = None
_pool_pid: int | None = None


def _http() -> urllib3.PoolManager:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        # One kept-alive connection per call in flight, or the pool would open and drop one per
        # call beyond maxsize.
        _pool = egress.PoolManager(
            num_pools=50, maxsize=settings.DELIVERY_CONCURRENCY, block=False, retries=False
        )
        _pool_pid = os.getpid()
    return _pool


def webhook_request(route: Route, envelope: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of the call; PermanentError when they cannot be sent."""
    if not webhook_host_allowed(route.target):
        raise PermanentError(f"host of {route.target} is not allow-listed")
    if not _header_safe(envelope["id"]):
        raise PermanentError("the event id holds characters an HTTP header cannot carry")
    body = json.dumps(envelope, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "controlplane-webhook/1",
        "X-Event-Id": envelope["id"],
        "X-Event-Type": envelope["type"],
        "X-Attempt": str(envelope["attempt"]),
        "X-Signature": sign(route.secret, body),
    }
    if envelope.get("replay_run"):  # a replay copy: the receiver can tell it from live traffic
        headers["X-Replay-Run"] = str(envelope["replay_run"])
    return body, headers


def _header_safe(value: str) -> bool:
    # What http.client sends too: printable, and Latin-1 on the wire.
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def webhook_result(status: int, body: bytes) -> CallResult:
    """2xx delivered; 4xx other than 408/429 permanent; the rest retry."""
    if 200 <= status < 300:
        return CallResult("delivered", status_code=status)
    error = f"HTTP {status}: {body[:200].decode(errors='replace')}"
    if 400 <= status < 500 and status not in (408, 429):
        return CallResult("permanent", error, status)
    return CallResult("failed", error, status)


def call_webhook(route: Route, envelope: dict[str, Any]) -> CallResult:
    """On this thread, through urllib3 (tools, tests and inline dispatch; the delivery pool
    calls webhooks on its event loop: call_webhook_async)."""
    try:
        body, headers = webhook_request(route, envelope)
    except PermanentError as exc:
        return CallResult("permanent", str(exc))
    try:
        response = _http().request(
            "POST",
            route.target,
            body=body,
            headers=headers,
            redirect=False,
            # connect and each read bounded by the route's timeout, and the whole call too; the
            # pool's hard deadline catches what a trickling server could still stretch.
            timeout=urllib3.Timeout(
                connect=route.timeout_seconds,
                read=route.timeout_seconds,
                total=route.timeout_seconds,
            ),
            preload_content=True,
        )
    except urllib3.exceptions.NewConnectionError as exc:  # before TimeoutError: it subclasses it
        return CallResult("failed", f"connection error: {exc}")
    except urllib3.exceptions.TimeoutError as exc:
        return CallResult("timeout", f"timed out after {route.timeout_seconds}s: {exc}")
    except urllib3.exceptions.HTTPError as exc:
        return CallResult("failed", f"connection error: {exc}")
    return webhook_result(response.status, response.data)


async def call_webhook_async(
    client: egress_async.AsyncClient, route: Route, envelope: dict[str, Any]
) -> CallResult:
    """The same call on an event loop: the route's timeout bounds connect, each read and the
    whole call, and a cancelled call is gone (no thread is left behind)."""
    try:
        body, headers = webhook_request(route, envelope)
    except PermanentError as exc:
        return CallResult("permanent", str(exc))
    timeout = route.timeout_seconds
    try:
        response = await client.post(
            route.target,
            body,
            headers,
            connect_timeout=timeout,
            read_timeout=timeout,
            total_timeout=timeout,
        )
    except TimeoutError:
        return CallResult("timeout", f"timed out after {timeout}s")
    except egress_async.EgressError as exc:
        return CallResult("failed", f"connection error: {exc}")
    except OSError as exc:
        return CallResult("failed", f"connection error: {exc}")
    return webhook_result(response.status, response.body)


# --- python --------------------------------------------------------------------------------------


def call_python(route: Route, envelope: dict[str, Any]) -> CallResult:
    """Runs on a delivery pool thread; the pool enforces the deadline (it settles an overrun
    call as a timeout and abandons its thread: Python cannot stop a thread from outside)."""
    started = time.monotonic()
    try:
        handler = load_python_handler(route.target)
        handler(envelope)
    except PermanentError as exc:
        return CallResult("permanent", f"PermanentError: {exc}")
    except Exception as exc:
        return CallResult("failed", f"{type(exc).__name__}: {exc}")
    if time.monotonic() - started > route.timeout_seconds:
        return CallResult("timeout", f"took longer than {route.timeout_seconds}s")
    return CallResult("delivered")


def call_handler(
    route: Route, envelope: dict[str, Any], *, own_deadline: bool = False
) -> CallResult:
    """own_deadline: the caller does not enforce the route's deadline (it is not a delivery
    pool thread), so a python handler runs on a helper thread that is abandoned at the
    deadline. Webhooks are bounded by their socket timeouts either way."""
    if route.kind == Route.Kind.WEBHOOK:
        return call_webhook(route, envelope)
    if own_deadline:
        return _bounded(route, envelope)
    return call_python(route, envelope)


def _bounded(route: Route, envelope: dict[str, Any]) -> CallResult:
    box: list[CallResult] = []
    thread = threading.Thread(
        target=lambda: box.append(call_python(route, envelope)), name="handler", daemon=True
    )
    thread.start()
    thread.join(route.timeout_seconds)
    if box:
        return box[0]
    return CallResult("timeout", f"no answer within {route.timeout_seconds}s (call abandoned)")
