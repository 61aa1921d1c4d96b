"""A delivery error may quote the downstream's answer: operators read it, viewers do not."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from breakers.dispatch import dispatch_events
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

LEAK = "db password=hunter2"


@pytest.fixture
def leaky_downstream():
    """Answers 404 with an internal detail in the body (a permanent failure: dead letter)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(404)
            self.end_headers()
            self.wfile.write(f"not found; {LEAK}".encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_event(checkout, operator, leaky_downstream) -> Event:
    make_route(checkout, operator, target=leaky_downstream)
    ingest_events([event_body("leak-1")])
    event = Event.objects.get(event_id="leak-1")
    dispatch_events([event.pk])
    event.refresh_from_db()
    assert event.status == "dead" and LEAK in event.last_error
    return event


def _logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def test_viewers_get_delivery_errors_redacted_in_the_api(viewer, dead_event):
    api = viewer.client()
    for url in ("/api/v1/events", "/api/v1/dead-letters/", f"/api/v1/events/{dead_event.pk}"):
        response = api.get(url)
        assert response.status_code == 200, url
        assert LEAK not in response.content.decode(), url
    [row] = api.get("/api/v1/dead-letters/").json()["results"]
    assert row["last_error"] == "HTTP 404: (details visible to operators)"
    attempts = api.get(f"/api/v1/events/{dead_event.pk}").json()["attempts_log"]
    assert attempts and all(LEAK not in a["error"] for a in attempts)


def test_operators_read_delivery_errors_in_full_in_the_api(operator, dead_event):
    api = operator.client()
    for url in ("/api/v1/events", "/api/v1/dead-letters/", f"/api/v1/events/{dead_event.pk}"):
        response = api.get(url)
        assert response.status_code == 200 and LEAK in response.content.decode(), url


def test_the_pages_show_delivery_errors_to_operators_only(viewer, operator, dead_event):
    pages = ("/events/", "/dead-letters/", f"/events/{dead_event.pk}/")
    for url in pages:
        seen = _logged_in(viewer).get(url)
        assert seen.status_code == 200, url
        assert "hunter2" not in seen.content.decode(), url
        assert "hunter2" in _logged_in(operator).get(url).content.decode(), url
