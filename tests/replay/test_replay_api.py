from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from replay import replay_runs, snapshots
from replay.models import ReplayRun, Snapshot
from tests.conftest import make_route
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
URL = "/api/v1/replays"


@pytest.fixture
def snap(operator, checkout, snapshot_storage):
    for i in range(4):
        ingest_at(f"e-{i}", T0 + timedelta(minutes=i))
    return snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))


def test_an_operator_starts_a_dry_run_and_reads_its_progress(
    operator, snap, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = operator.client().post(URL, {"snapshot": snap.pk, "rate": 50}, format="json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["mode"], body["status"], body["snapshot"]) == ("dry_run", "pending", snap.pk)
    assert len(callbacks) == 1  # the task starts after commit
    replay_runs.work(body["id"], sleep=lambda s: None)
    detail = operator.client().get(body["links"]["self"]).json()
    assert (detail["status"], detail["total"], detail["done"]) == ("done", 4, 4)
    assert operator.client().get(URL).json()["results"][0]["id"] == body["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "rate": 10,
                "window_start": "2026-11-28T12:30:00Z",
                "window_end": "2026-11-28T12:00:00Z",
            },
            "window_end",
        ),
        (
            {
                "rate": 10,
                "window_start": "2026-11-29T00:00:00Z",
                "window_end": "2026-11-29T01:00:00Z",
            },
            "window_start",  # entirely after the snapshot's window
        ),
        ({"rate": 0}, "rate"),
        ({"rate": -3}, "rate"),
        ({"rate": "fast"}, "rate"),
        ({"rate": 10, "route": "no-such-route"}, "route"),
        ({"rate": 10, "mode": "loud"}, "mode"),
        ({"rate": 10, "types": ["bad type"]}, "types"),
        ({"rate": 10, "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_rejected_naming_the_field(operator, snap, body, field):
    response = operator.client().post(URL, {"snapshot": snap.pk, **body}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ReplayRun.objects.exists()


def test_an_unknown_or_invalid_snapshot_is_rejected_naming_it(operator, snap):
    response = operator.client().post(URL, {"snapshot": 999999, "rate": 5}, format="json")
    assert response.json()["errors"]["snapshot"] == ["Unknown snapshot 999999."]
    Snapshot.objects.filter(pk=snap.pk).update(status="invalid", status_reason="truncated")
    response = operator.client().post(URL, {"snapshot": snap.pk, "rate": 5}, format="json")
    assert response.status_code == 400
    assert "invalid: truncated" in response.json()["errors"]["snapshot"][0]


def test_a_route_of_another_service_is_rejected(operator, checkout, snap):
    from controlplane.services import create_service

    other = create_service(actor=operator.user, slug="search", name="S", team="t", tier="tier-2")
    make_route(other, operator, name="search-route", target="http://127.0.0.1:9/hook")
    of_checkout = snapshots.create_snapshot(
        actor=operator.user, service=checkout, start=T0, end=T0 + timedelta(hours=1)
    )
    body = {"snapshot": of_checkout.pk, "rate": 5, "route": "search-route"}
    response = operator.client().post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["route"] == ["Not a route of the snapshot's service."]
    # A snapshot of all services takes any service's route (its events of that service).
    assert (
        operator.client().post(URL, {**body, "snapshot": snap.pk}, format="json").status_code == 202
    )


def test_forcing_needs_the_admin_role(operator, admin, snap):
    body = {"snapshot": snap.pk, "rate": 5, "force": True}
    response = operator.client().post(URL, body, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]
    assert admin.client().post(URL, body, format="json").status_code == 202


def test_a_viewer_reads_but_cannot_start_or_steer(viewer, operator, snap):
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=5)
    client = viewer.client()
    assert client.get(f"{URL}/{run.pk}").status_code == 200
    assert client.post(URL, {"snapshot": snap.pk, "rate": 5}, format="json").status_code == 403
    assert client.post(f"{URL}/{run.pk}/pause").status_code == 403


def test_pause_resume_and_cancel_through_the_api(operator, snap):
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=5)
    client = operator.client()
    assert client.post(f"{URL}/{run.pk}/pause").json()["status"] == "paused"
    assert client.post(f"{URL}/{run.pk}/pause").status_code == 409
    assert client.post(f"{URL}/{run.pk}/resume").json()["status"] == "running"
    assert client.post(f"{URL}/{run.pk}/cancel").json()["status"] == "cancelled"
    response = client.post(f"{URL}/{run.pk}/resume")
    assert response.status_code == 409 and "cancelled" in response.json()["detail"]
    assert client.post(f"{URL}/999999/cancel").status_code == 404
