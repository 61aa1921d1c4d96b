from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from replay import replay_runs, snapshots
from replay.models import ReplayRun
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


@pytest.fixture
def snap(operator, checkout, snapshot_storage):
    for i in range(3):
        ingest_at(f"e-{i}", T0 + timedelta(minutes=i))
    return snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))


def test_an_operator_starts_a_replay_from_the_form(operator, snap):
    response = logged_in(operator).post(
        "/replays/", {"snapshot": snap.pk, "mode": "dry_run", "rate": "20"}
    )
    run = ReplayRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/replays/{run.pk}/"
    assert (run.mode, run.rate, run.force) == ("dry_run", 20.0, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate": "0"}, "Must be above 0 events per second."),
        ({"rate": "5", "route": "nope"}, "Unknown route"),
        (
            {"rate": "5", "window_start": "2026-11-28T12:30", "window_end": "2026-11-28T12:10"},
            "Must be after the start.",
        ),
    ],
)
def test_the_form_names_what_is_wrong(operator, snap, data, message):
    response = logged_in(operator).post("/replays/", {"snapshot": snap.pk, "mode": "live", **data})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ReplayRun.objects.exists()


def test_forcing_from_the_page_needs_an_admin(operator, admin, snap):
    body = {"snapshot": snap.pk, "mode": "live", "rate": "5", "force": "on"}
    assert logged_in(operator).post("/replays/", body).status_code == 403
    assert "Also re-deliver" not in logged_in(operator).get("/replays/").content.decode()
    assert logged_in(admin).post("/replays/", body).status_code == 302


def test_the_progress_bar_polls_until_the_run_ends(operator, snap):
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=100)
    client = logged_in(operator)
    page = client.get(f"/replays/{run.pk}/").content.decode()
    assert "every 1s" in page and "<progress" in page
    polled = client.get(f"/replays/{run.pk}/", HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and "<html" not in polled.content.decode()
    replay_runs.work(run.pk, sleep=lambda s: None)
    ended = client.get(f"/replays/{run.pk}/", HTTP_HX_REQUEST="true")
    assert ended.status_code == 286  # htmx stops polling
    html = ended.content.decode()
    assert "Summary" in html and "3 would be delivered" in html


def test_pause_and_cancel_buttons_steer_the_run(operator, viewer, snap):
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=100)
    assert logged_in(viewer).post(f"/replays/{run.pk}/pause").status_code == 403
    client = logged_in(operator)
    response = client.post(f"/replays/{run.pk}/pause", HTTP_HX_REQUEST="true")
    assert "Paused" in response.content.decode() and "Resume" in response.content.decode()
    assert client.post(f"/replays/{run.pk}/cancel").status_code == 302
    assert ReplayRun.objects.get(pk=run.pk).status == "cancelled"
    assert client.post(f"/replays/{run.pk}/explode").status_code == 404
