from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest

from replay import snapshots
from replay.models import Snapshot
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
URL = "/api/v1/snapshots"


def window(**extra) -> dict:
    return {"window_start": "2026-11-28T12:00:00Z", "window_end": "2026-11-28T13:00:00Z", **extra}


def test_an_operator_creates_a_snapshot_and_a_worker_exports_it(
    operator, checkout, snapshot_storage, django_capture_on_commit_callbacks
):
    ingest_at("e-1", T0, type="order.paid")
    ingest_at("e-2", T0, type="order.created")
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator.client().post(
            URL, window(service="checkout", types=["order.paid"]), format="json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["service"], body["types"]) == (
        "pending",
        "checkout",
        ["order.paid"],
    )
    assert len(callbacks) == 1  # the export is enqueued after commit
    snapshots.export_snapshot(body["id"])  # what the task does
    detail = operator.client().get(body["links"]["self"]).json()
    assert (detail["status"], detail["event_count"], detail["manifest"]["count"]) == ("ready", 1, 1)


def test_the_list_shows_snapshots_newest_first_to_a_viewer(
    viewer, operator, checkout, snapshot_storage
):
    first = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    second = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=2))
    response = viewer.client().get(URL)
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [second.pk, first.pk]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (window(window_end="2026-11-28T11:00:00Z"), "window_end"),
        (window(window_end="2026-11-28T12:00:00Z"), "window_end"),  # empty window
        (window(service="nowhere"), "service"),
        (window(types="order.paid"), "types"),
        (window(types=["has space"]), "types"),
        (window(types=[""]), "types"),
        (window(window_start="yesterday"), "window_start"),
        (window(colour="blue"), "colour"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(operator, checkout, body, field):
    response = operator.client().post(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Snapshot.objects.exists()


def test_a_viewer_cannot_create_download_or_verify(viewer, operator, checkout, snapshot_storage):
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    client = viewer.client()
    assert client.post(URL, window(), format="json").status_code == 403
    assert client.get(f"{URL}/{snap.pk}/download").status_code == 403
    assert client.post(f"{URL}/{snap.pk}/verify").status_code == 403
    assert client.get(f"{URL}/{snap.pk}").status_code == 200


def test_an_operator_downloads_the_signed_file(operator, checkout, snapshot_storage):
    ingest_at("e-1", T0)
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    response = operator.client().get(f"{URL}/{snap.pk}/download")
    assert response.status_code == 200
    raw = b"".join(response.streaming_content)
    assert response["X-Snapshot-SHA256"] == snap.sha256
    assert [json.loads(line)["id"] for line in gzip.decompress(raw).splitlines()] == ["e-1"]


def test_verify_through_the_api_reports_tampering(operator, checkout, snapshot_storage):
    ingest_at("e-1", T0)
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    assert operator.client().post(f"{URL}/{snap.pk}/verify").json()["status"] == "ready"
    path = snapshot_storage / snap.file_name
    path.write_bytes(path.read_bytes()[:-4])
    body = operator.client().post(f"{URL}/{snap.pk}/verify").json()
    assert (body["status"], body["status_reason"].split(":")[0]) == ("invalid", "truncated")


def test_a_pending_snapshot_can_be_neither_verified_nor_downloaded(operator, checkout):
    pending = snapshots.request_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    assert operator.client().post(f"{URL}/{pending.pk}/verify").status_code == 409
    assert operator.client().get(f"{URL}/{pending.pk}/download").status_code == 409
    assert operator.client().get(f"{URL}/999999").status_code == 404
