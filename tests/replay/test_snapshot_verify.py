from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controlplane.models import AuditEntry
from replay import snapshots
from replay.models import Snapshot
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def snap(operator, checkout, snapshot_storage, settings):
    settings.SNAPSHOT_KEYS = [("k1", "secret-one")]
    for i in range(50):
        ingest_at(f"e-{i}", T0 + timedelta(seconds=i), payload={"i": i, "pad": "x" * 100})
    return snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))


def verify(snap, actor) -> Snapshot:
    return snapshots.verify_snapshot(Snapshot.objects.get(pk=snap.pk), actor=actor)


def test_an_untouched_snapshot_verifies(snap, operator):
    checked = verify(snap, operator.user)
    assert (checked.status, checked.status_reason) == ("ready", "")
    assert checked.verified_at is not None
    entry = AuditEntry.objects.get(action="snapshot.verify", object_id=str(snap.pk))
    assert entry.after == {"status": "ready", "status_reason": ""}


def test_one_flipped_byte_makes_it_invalid(snap, operator, snapshot_storage):
    path = snapshot_storage / snap.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    checked = verify(snap, operator.user)
    assert (checked.status, checked.status_reason) == (
        "invalid",
        "SHA-256 does not match: the file was changed",
    )
    assert AuditEntry.objects.get(action="snapshot.verify").reason == checked.status_reason


def test_a_truncated_file_makes_it_invalid(snap, operator, snapshot_storage):
    path = snapshot_storage / snap.file_name
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    checked = verify(snap, operator.user)
    assert checked.status == "invalid"
    assert checked.status_reason == f"truncated: {len(data) - 10} of {len(data)} bytes"


def test_a_missing_file_makes_it_invalid(snap, operator, snapshot_storage):
    (snapshot_storage / snap.file_name).unlink()
    assert verify(snap, operator.user).status_reason == "file missing from storage"


def test_an_edited_manifest_makes_it_invalid(snap, operator):
    manifest = {**snap.manifest, "count": 49}
    Snapshot.objects.filter(pk=snap.pk).update(manifest=manifest)
    checked = verify(snap, operator.user)
    assert checked.status == "invalid"
    assert checked.status_reason.startswith("signature does not match the manifest")


def test_metadata_edited_apart_from_the_manifest_makes_it_invalid(snap, operator):
    Snapshot.objects.filter(pk=snap.pk).update(event_count=10)
    checked = verify(snap, operator.user)
    assert checked.status_reason == "manifest does not match the snapshot's metadata: count"


def test_a_wrong_key_under_the_same_id_makes_it_invalid(snap, operator, settings):
    settings.SNAPSHOT_KEYS = [("k1", "another-secret")]
    assert verify(snap, operator.user).status_reason.startswith("signature does not match")


def test_an_unknown_key_id_makes_it_invalid(snap, operator, settings):
    settings.SNAPSHOT_KEYS = [("k2", "secret-two")]
    assert verify(snap, operator.user).status_reason == "unknown key id 'k1'"


def test_after_rotation_the_new_key_signs_and_the_old_still_verifies(snap, operator, settings):
    settings.SNAPSHOT_KEYS = [("k2", "secret-two"), ("k1", "secret-one")]
    assert verify(snap, operator.user).status == "ready"
    newer = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    assert newer.key_id == "k2"
    assert verify(newer, operator.user).status == "ready"
    settings.SNAPSHOT_KEYS = [("k2", "secret-two")]  # k1 retired
    assert verify(snap, operator.user).status_reason == "unknown key id 'k1'"
    assert verify(newer, operator.user).status == "ready"


def test_an_invalid_snapshot_cannot_be_opened_for_replay(snap, operator, snapshot_storage):
    assert snapshots.open_for_replay(snap, actor=operator.user).status == "ready"
    path = snapshot_storage / snap.file_name
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(snapshots.SnapshotError, match="is invalid: truncated"):
        snapshots.open_for_replay(Snapshot.objects.get(pk=snap.pk), actor=operator.user)
