"""Bodies without Content-Length (Transfer-Encoding: chunked) are read within the limit, and
event times must carry a zone."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from replay.models import Event
from tests.conftest import event_body
from tests.workers import ROOT, worker_env

CHUNKED = {"HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_LENGTH": ""}


def post_chunked(actor, body: bytes, *, terminated: bool = True):
    """As gunicorn hands a chunked request to Django: decoded body, no Content-Length."""
    environ = {**CHUNKED, "wsgi.input": io.BytesIO(body)}
    if terminated:
        environ["wsgi.input_terminated"] = True
    return actor.client().post(
        "/api/v1/events", data=body, content_type="application/json", **environ
    )


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_chunked_body_is_read(operator, checkout):
    response = post_chunked(operator, json.dumps(event_body("chunked-1")).encode())
    assert response.status_code == 202, response.content
    assert Event.objects.filter(event_id="chunked-1").exists()


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_chunked_body_over_the_limit_is_413(operator, checkout, settings):
    settings.API_MAX_BODY_BYTES = 1024
    events = [event_body(f"big-{i}") for i in range(20)]
    response = post_chunked(operator, json.dumps({"events": events}).encode())
    assert response.status_code == 413 and response.json()["code"] == "too_large"
    assert not Event.objects.exists()


@pytest.mark.smoke
@pytest.mark.django_db
def test_a_chunked_body_on_a_server_that_cannot_delimit_it_is_411(operator, checkout):
    response = post_chunked(operator, json.dumps(event_body("c-2")).encode(), terminated=False)
    assert response.status_code == 411
    assert response.json()["code"] == "length_required"


def _raw_chunked_request(port: int, token: str, body: bytes) -> bytes:
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 50]), body[i : i + 50]) for i in range(0, len(body), 50)
    )
    request = (
        b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
        conn.sendall(request)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    return answer


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_gunicorn_delivers_a_chunked_body_to_the_api(operator, checkout):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # an ephemeral port, handed to gunicorn as a descriptor
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "controlplane.wsgi:application",
            f"--bind=fd://{fd}",
            "--workers=1",
            "--log-level=warning",
        ],
        cwd=ROOT,
        env=worker_env(),
        pass_fds=[fd],
    )
    try:
        body = json.dumps({"events": [event_body("g-1"), event_body("g-2")]}).encode()
        answer = _raw_chunked_request(port, operator.token, body)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        listener.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 202"), answer[:500]
    assert set(Event.objects.values_list("event_id", flat=True)) == {"g-1", "g-2"}


@pytest.mark.smoke
@pytest.mark.django_db
@pytest.mark.parametrize("when", ["2026-11-28T12:00:00", "2026-11-28", "2026-11-28 12:00"])
def test_an_event_time_without_a_zone_is_rejected_naming_it(operator, checkout, when):
    events = [event_body("ok"), event_body("naive", occurred_at=when)]
    response = operator.client().post("/api/v1/events", {"events": events}, format="json")
    ok, naive = response.json()["results"]
    assert ok["status"] == "accepted"
    assert naive["status"] == "rejected" and "occurred_at" in naive["errors"]
    assert naive["reason"].startswith("occurred_at: Give a time zone")
    single = operator.client().post(
        "/api/v1/events", event_body("one", occurred_at=when), format="json"
    )
    assert single.status_code == 400 and "occurred_at" in single.json()["errors"]


@pytest.mark.smoke
@pytest.mark.django_db
def test_an_event_time_with_an_offset_is_stored_in_utc(operator, checkout):
    body = event_body("tz", occurred_at="2026-11-28T13:00:00+01:00")
    assert operator.client().post("/api/v1/events", body, format="json").status_code == 202
    assert Event.objects.get().occurred_at == datetime(2026, 11, 28, 12, tzinfo=UTC)
