from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controlplane.models import AuditEntry
from controlplane.services import create_service
from replay import snapshots
from replay.models import Event, Snapshot
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def read_back(snapshot: Snapshot) -> list[dict]:
    return [event for _, event in snapshots.read_lines(snapshot)]


def test_export_and_reread_give_the_same_events(operator, checkout, snapshot_storage):
    payloads = [{"n": 1}, {"nested": {"list": [1, 2.5, None, True]}, "text": 'ünï "q" \n'}, {}]
    made = [
        ingest_at(f"e-{i}", T0 + timedelta(seconds=i), payload=p, priority="HIGH")
        for i, p in enumerate(payloads)
    ]
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(minutes=1))
    assert snap.status == Snapshot.Status.READY
    lines = read_back(snap)
    assert [line["payload"] for line in lines] == payloads
    assert [(line["log_id"], line["id"], line["service"], line["type"]) for line in lines] == [
        (e.pk, e.event_id, "checkout", e.type) for e in made
    ]
    assert {line["priority"] for line in lines} == {"HIGH"}
    assert datetime.fromisoformat(lines[0]["occurred_at"]) == made[0].occurred_at
    assert datetime.fromisoformat(lines[2]["received_at"]) == made[2].received_at


def test_the_manifest_is_signed_and_describes_the_file(operator, checkout, snapshot_storage):
    ingest_at("e-1", T0)
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    raw = (snapshot_storage / snap.file_name).read_bytes()
    m = snap.manifest
    assert (m["count"], m["bytes"], m["key_id"], m["created_by"]) == (
        1,
        len(raw),
        "local",
        "operator",
    )
    assert m["sha256"] == snap.sha256 == hashlib.sha256(raw).hexdigest()
    assert (m["window_start"], m["window_end"]) == (
        T0.isoformat(),
        (T0 + timedelta(hours=1)).isoformat(),
    )
    assert len(gzip.decompress(raw).splitlines()) == 1
    assert snap.signature == snapshots.sign(m, dict(snapshots.settings.SNAPSHOT_KEYS)["local"])
    actions = list(
        AuditEntry.objects.filter(
            object_type="replay.snapshot", object_id=str(snap.pk)
        ).values_list("action", flat=True)
    )
    assert sorted(actions) == ["snapshot.export", "snapshot.request"]


def test_the_window_includes_its_start_and_excludes_its_end(operator, checkout, snapshot_storage):
    end = T0 + timedelta(hours=1)
    ingest_at("before", T0 - timedelta(microseconds=1))
    ingest_at("at-start", T0)
    ingest_at("inside", T0 + timedelta(minutes=30))
    ingest_at("just-before-end", end - timedelta(microseconds=1))
    ingest_at("at-end", end)
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=end)
    assert [e["id"] for e in read_back(snap)] == ["at-start", "inside", "just-before-end"]
    assert snap.event_count == 3


def test_a_window_given_in_another_zone_means_the_same_instant(
    operator, checkout, snapshot_storage
):
    ingest_at("at-start", T0)
    plus_two = datetime(2026, 11, 28, 14, 0, tzinfo=ZoneInfo("Europe/Athens"))
    snap = snapshots.create_snapshot(
        actor=operator.user, start=plus_two, end=plus_two + timedelta(hours=1)
    )
    assert [e["id"] for e in read_back(snap)] == ["at-start"]


def test_service_and_type_filters_pick_only_those_events(operator, checkout, snapshot_storage):
    create_service(actor=operator.user, slug="search", name="Search", team="x", tier="tier-2")
    ingest_at("c-a", T0, type="order.created")
    ingest_at("c-b", T0, type="order.paid")
    ingest_at("c-c", T0, type="order.shipped")
    ingest_at("s-a", T0, service="search", type="order.created")
    Event.objects.filter(event_id="c-c").update(is_replay=True)  # replay copies are not history
    window = {"start": T0, "end": T0 + timedelta(seconds=1)}
    only = snapshots.create_snapshot(
        actor=operator.user, service=checkout, types=["order.paid", "order.created"], **window
    )
    everything = snapshots.create_snapshot(actor=operator.user, **window)
    assert [e["id"] for e in read_back(only)] == ["c-a", "c-b"]
    assert only.manifest["types"] == ["order.created", "order.paid"]
    assert only.manifest["service"] == "checkout"
    assert [e["id"] for e in read_back(everything)] == ["c-a", "c-b", "s-a"]


def test_the_default_window_is_the_last_24_hours(operator, checkout, snapshot_storage):
    now = datetime.now(UTC)
    ingest_at("recent", now - timedelta(hours=23))
    ingest_at("old", now - timedelta(hours=25))
    snap = snapshots.create_snapshot(actor=operator.user)
    assert [e["id"] for e in read_back(snap)] == ["recent"]
    assert snap.window_end - snap.window_start == timedelta(hours=24)


def test_an_empty_window_gives_a_valid_empty_snapshot(operator, checkout, snapshot_storage):
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    assert (snap.status, snap.event_count, read_back(snap)) == ("ready", 0, [])
    assert snapshots.verify_snapshot(snap, actor=operator.user).status == "ready"


def test_retention_deletes_old_snapshots_and_their_files(
    operator, checkout, snapshot_storage, django_capture_on_commit_callbacks
):
    old = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    Snapshot.objects.filter(pk=old.pk).update(created_at=datetime.now(UTC) - timedelta(days=31))
    new = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):  # files go after the rows commit
        assert snapshots.purge_snapshots(30) == 1
    assert list(Snapshot.objects.values_list("pk", flat=True)) == [new.pk]
    assert not (snapshot_storage / old.file_name).exists()
    assert (snapshot_storage / new.file_name).exists()
    assert AuditEntry.objects.filter(action="snapshot.expire", object_id=str(old.pk)).exists()


def test_the_daily_export_covers_the_24_hours_before_its_minute(
    operator, checkout, snapshot_storage
):
    now = datetime(2026, 11, 29, 2, 0, 17, tzinfo=UTC)
    ingest_at("yesterday", now - timedelta(hours=3))
    snap = snapshots.daily_snapshot(now=now)
    assert (snap.window_start, snap.window_end) == (
        datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 2, 0, tzinfo=UTC),
    )
    assert (snap.created_by, [e["id"] for e in read_back(snap)]) == ("beat", ["yesterday"])
    assert json.loads(json.dumps(snap.manifest)) == snap.manifest
