from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from replay import snapshots
from replay.models import Snapshot
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def test_an_operator_requests_a_snapshot_from_the_form(operator, checkout):
    response = logged_in(operator).post(
        "/snapshots/",
        {
            "service": "checkout",
            "types": "order.created, order.paid",
            "window_start": "2026-11-28T12:00",
            "window_end": "2026-11-28T13:00",
        },
    )
    assert response.status_code == 302
    snap = Snapshot.objects.get()
    assert (snap.service, snap.types, snap.window_start, snap.status) == (
        checkout,
        ["order.created", "order.paid"],
        T0,
        "pending",
    )


def test_the_form_names_a_bad_field_and_keeps_nothing(operator, checkout):
    client = logged_in(operator)
    response = client.post(
        "/snapshots/", {"window_start": "2026-11-28T12:00", "window_end": "2026-11-28T11:00"}
    )
    assert response.status_code == 400
    assert "Must be after the start." in response.content.decode()
    response = client.post("/snapshots/", {"types": "ok.type, has space"})
    assert "Not an event type: has space" in response.content.decode()
    assert not Snapshot.objects.exists()


def test_a_viewer_sees_the_list_but_no_form_or_verify_button(
    viewer, operator, checkout, snapshot_storage
):
    snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    client = logged_in(viewer)
    html = client.get("/snapshots/").content.decode()
    assert "Snapshots" in html and "Ready" in html
    assert "New snapshot" not in html and ">Verify<" not in html
    assert client.post("/snapshots/", {}).status_code == 403


def test_the_verify_button_swaps_the_row_with_the_verdict(operator, checkout, snapshot_storage):
    ingest_at("e-1", T0)
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    path = snapshot_storage / snap.file_name
    path.write_bytes(path.read_bytes()[:-3])
    client = logged_in(operator)
    assert ">Verify<" in client.get("/snapshots/").content.decode()
    response = client.post(f"/snapshots/{snap.pk}/verify", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and f'id="snapshot-{snap.pk}"' in html
    assert "Invalid" in html and "truncated" in html


def test_the_list_polls_only_while_an_export_is_pending(operator, checkout, snapshot_storage):
    client = logged_in(operator)
    done = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    assert "every 3s" not in client.get("/snapshots/").content.decode()
    snapshots.request_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    part = client.get("/snapshots/", HTTP_HX_REQUEST="true").content.decode()
    assert "every 3s" in part and "<html" not in part and f'id="snapshot-{done.pk}"' in part


def test_the_nav_links_the_snapshot_page(viewer):
    assert 'href="/snapshots/"' in logged_in(viewer).get("/").content.decode()
