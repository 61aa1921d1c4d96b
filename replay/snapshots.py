"""Signed snapshots of the event log: export, verify, read back, expire.

A snapshot is gzip-compressed JSON Lines, one event a line, streamed from a server-side cursor
through gzip into a temporary file and then handed to the "snapshots" storage, so memory stays
flat whatever the count. Its manifest (count, window, types, size, SHA-256, creator, time, key
id) is signed with HMAC-SHA256; `verify_snapshot` recomputes both, and a snapshot that fails is
marked invalid with the reason and cannot be replayed (`open_for_replay`).

Every state change is a verb here that writes its audit row in the transaction of the change.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.db import connection, models, transaction
from django.db.models import F
from django.db.models.functions import Cast, JSONObject
from django.utils import timezone

from controlplane import audit
from controlplane.models import Service
from replay.models import Event, Snapshot

log = logging.getLogger(__name__)

FORMAT = "controlplane.snapshot/1"
GZIP_LEVEL = 6  # gzip(1)'s default: the same work as the COPY | gzip anchor in bench/
READ_CHUNK = 1 << 20
AUDIT_FIELDS = ["status", "status_reason", "event_count", "byte_size", "sha256", "key_id"]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class SnapshotError(Exception):
    """A snapshot that cannot be used for what was asked (not exported, invalid)."""


def storage():
    return storages["snapshots"]


# --------------------------------------------------------------------------- keys and signing


def signing_key() -> tuple[str, str]:
    """The key that signs new snapshots: the first of SNAPSHOT_KEYS."""
    return settings.SNAPSHOT_KEYS[0]


def canonical(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(manifest: dict[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), canonical(manifest), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- export


def events_in_window(
    *, service: Service | None, types: list[str], start: datetime, end: datetime
) -> models.QuerySet[Event]:
    """Events received in [start, end), of the service and types (empty: all), oldest first.
    Replay copies are not part of what happened, so they are left out."""
    qs = Event.objects.filter(received_at__gte=start, received_at__lt=end, is_replay=False)
    if service is not None:
        qs = qs.filter(service=service)
    if types:
        qs = qs.filter(type__in=types)
    return qs.order_by("pk")


def _lines_in_database(qs: models.QuerySet[Event]) -> Iterator[str]:
    # Postgres builds each line itself (a jsonb object of the columns, as text): Python then
    # only joins and compresses, which keeps the export near a plain COPY piped to gzip.
    line = Cast(
        JSONObject(
            log_id=F("pk"),
            id=F("event_id"),
            service=F("service__slug"),
            type=F("type"),
            schema_version=F("schema_version"),
            priority=F("priority"),
            occurred_at=F("occurred_at"),
            received_at=F("received_at"),
            payload=F("payload"),
        ),
        models.TextField(),
    )
    rows = qs.annotate(line=line).values_list("line", flat=True)
    return (text + "\n" for text in rows.iterator(chunk_size=settings.SNAPSHOT_CHUNK_ROWS))


def _lines_in_python(qs: models.QuerySet[Event]) -> Iterator[str]:
    # Elsewhere (SQLite, the embedded default) datetimes would come out in the database's own
    # text form, so Python writes the line; the payload is still spliced in as stored text.
    rows = (
        qs.annotate(payload_text=Cast("payload", models.TextField()))
        .values_list(
            "pk",
            "event_id",
            "service__slug",
            "type",
            "schema_version",
            "priority",
            "occurred_at",
            "received_at",
            "payload_text",
        )
        .iterator(chunk_size=settings.SNAPSHOT_CHUNK_ROWS)
    )
    for pk, event_id, slug, type_, version, priority, occurred, received, payload in rows:
        head = _dumps(
            {
                "log_id": pk,
                "id": event_id,
                "service": slug,
                "type": type_,
                "schema_version": version,
                "priority": priority,
                "occurred_at": occurred.isoformat(),
                "received_at": received.isoformat(),
            }
        )
        yield f'{head[:-1]},"payload":{payload or "{}"}}}\n'


def event_lines(qs: models.QuerySet[Event]) -> Iterator[str]:
    """One JSON object a line per event of `qs`, streamed from a server-side cursor."""
    if connection.vendor == "postgresql":
        return _lines_in_database(qs)
    return _lines_in_python(qs)


class _HashingWriter:
    """What gzip writes into: counts and hashes the compressed bytes on their way to the file,
    so the manifest needs no second pass."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        self.target.flush()


@dataclass
class Written:
    count: int
    size: int
    sha256: str


def write_jsonl_gz(qs: models.QuerySet[Event], target: Any) -> Written:
    """Stream the events of `qs` as gzip JSON Lines into the binary file `target`."""
    writer = _HashingWriter(target)
    count = 0
    chunk = settings.SNAPSHOT_CHUNK_ROWS
    with gzip.GzipFile(
        fileobj=writer, mode="wb", compresslevel=GZIP_LEVEL, filename="", mtime=0
    ) as gz:
        lines: list[str] = []
        for line in event_lines(qs):
            lines.append(line)
            if len(lines) >= chunk:
                gz.write("".join(lines).encode())
                count += len(lines)
                lines.clear()
        if lines:
            gz.write("".join(lines).encode())
            count += len(lines)
    return Written(count=count, size=writer.size, sha256=writer.sha.hexdigest())


def request_snapshot(
    *,
    actor: Any,
    service: Service | None = None,
    types: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Snapshot:
    """Record a snapshot to be exported (default window: the last 24 h); the export task is
    enqueued after commit. Returns the pending row."""
    snapshot = _new_snapshot(actor=actor, service=service, types=types, start=start, end=end)
    from replay.tasks import export_snapshot_task  # tasks import this module

    transaction.on_commit(lambda: export_snapshot_task.delay(snapshot.pk))
    return snapshot


def create_snapshot(
    *,
    actor: Any,
    service: Service | None = None,
    types: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Snapshot:
    """Request and export in this process (beat, management, tests, bench)."""
    snapshot = _new_snapshot(actor=actor, service=service, types=types, start=start, end=end)
    return export_snapshot(snapshot.pk)


def _new_snapshot(*, actor, service, types, start, end) -> Snapshot:
    end = end or timezone.now()
    start = start or end - timedelta(hours=24)
    if start >= end:
        raise ValueError("window_end must be after window_start")
    label = actor.get_username() if getattr(actor, "is_authenticated", False) else str(actor)
    with transaction.atomic():
        snapshot = Snapshot.objects.create(
            service=service,
            types=sorted(set(types or [])),
            window_start=start,
            window_end=end,
            created_by=label[:150],
        )
        audit.record(
            actor,
            "snapshot.request",
            snapshot,
            after=audit.snapshot(snapshot, ["service", "types", "window_start", "window_end"]),
        )
    return snapshot


def export_snapshot(snapshot_id: int) -> Snapshot:
    """Write the file of a pending snapshot, store it, sign the manifest. Quiet when the row is
    gone or no longer pending (a redelivered task)."""
    snapshot = Snapshot.objects.select_related("service").filter(pk=snapshot_id).first()
    if snapshot is None or snapshot.status != Snapshot.Status.PENDING:
        return snapshot
    qs = events_in_window(
        service=snapshot.service,
        types=snapshot.types,
        start=snapshot.window_start,
        end=snapshot.window_end,
    )
    name = f"{snapshot.created_at:%Y/%m/%d}/snapshot-{snapshot.pk}.jsonl.gz"
    try:
        with tempfile.TemporaryFile(dir=settings.VAR_DIR) as tmp:
            written = write_jsonl_gz(qs, tmp)
            tmp.seek(0)
            stored = storage().save(name, File(tmp, name=name))
    except Exception as exc:
        log.exception("snapshot %s export failed", snapshot.pk)
        _set_status(snapshot, Snapshot.Status.FAILED, f"export failed: {exc}", "snapshot.fail")
        return snapshot
    key_id, secret = signing_key()
    exported_at = timezone.now()
    manifest = {
        "format": FORMAT,
        "snapshot": snapshot.pk,
        "service": snapshot.service.slug if snapshot.service else None,
        "types": snapshot.types,
        "window_start": snapshot.window_start.isoformat(),
        "window_end": snapshot.window_end.isoformat(),
        "count": written.count,
        "bytes": written.size,
        "sha256": written.sha256,
        "created_by": snapshot.created_by,
        "created_at": exported_at.isoformat(),
        "key_id": key_id,
        "file": stored,
    }
    with transaction.atomic():
        locked = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
        if locked.status != Snapshot.Status.PENDING:  # another worker finished first
            transaction.on_commit(lambda: storage().delete(stored))
            return locked
        before = audit.snapshot(locked, AUDIT_FIELDS)
        locked.status = Snapshot.Status.READY
        locked.file_name = stored
        locked.event_count = written.count
        locked.byte_size = written.size
        locked.sha256 = written.sha256
        locked.key_id = key_id
        locked.manifest = manifest
        locked.signature = sign(manifest, secret)
        locked.exported_at = exported_at
        locked.save()
        audit.record(
            "system",
            "snapshot.export",
            locked,
            before=before,
            after=audit.snapshot(locked, AUDIT_FIELDS),
        )
    return locked


def _set_status(
    snapshot: Snapshot, status: str, reason: str, action: str, actor: Any = "system", **extra: Any
) -> Snapshot:
    with transaction.atomic():
        locked = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
        before = audit.snapshot(locked, ["status", "status_reason"])
        locked.status = status
        locked.status_reason = reason
        for name, value in extra.items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", "status_reason", *extra, "updated_at"])
        audit.record(
            actor,
            action,
            locked,
            before=before,
            after=audit.snapshot(locked, ["status", "status_reason"]),
            reason=reason,
        )
    return locked


# --------------------------------------------------------------------------- verify


def _metadata_mismatch(snapshot: Snapshot, manifest: dict[str, Any]) -> str | None:
    expected = {
        "format": FORMAT,
        "snapshot": snapshot.pk,
        "service": snapshot.service.slug if snapshot.service else None,
        "types": snapshot.types,
        "window_start": snapshot.window_start.isoformat(),
        "window_end": snapshot.window_end.isoformat(),
        "count": snapshot.event_count,
        "bytes": snapshot.byte_size,
        "sha256": snapshot.sha256,
        "key_id": snapshot.key_id,
        "file": snapshot.file_name,
    }
    for name, value in expected.items():
        if manifest.get(name) != value:
            return name
    return None


def check_snapshot(snapshot: Snapshot) -> str | None:
    """Why the snapshot cannot be trusted, or None when its manifest, signature and file hold.
    Reads the whole file (streamed) to recompute its hash."""
    manifest = snapshot.manifest
    if not isinstance(manifest, dict):
        return "no manifest"
    key_id = manifest.get("key_id")
    keys = dict(settings.SNAPSHOT_KEYS)
    if key_id not in keys:
        return f"unknown key id {key_id!r}"
    if not hmac.compare_digest(sign(manifest, keys[key_id]), snapshot.signature or ""):
        return "signature does not match the manifest (edited manifest or wrong key)"
    field = _metadata_mismatch(snapshot, manifest)
    if field:
        return f"manifest does not match the snapshot's metadata: {field}"
    try:
        handle = storage().open(snapshot.file_name, "rb")
    except (FileNotFoundError, OSError):
        return "file missing from storage"
    sha, size = hashlib.sha256(), 0
    with handle:
        while block := handle.read(READ_CHUNK):
            sha.update(block)
            size += len(block)
    if size < manifest["bytes"]:
        return f"truncated: {size} of {manifest['bytes']} bytes"
    if size != manifest["bytes"]:
        return f"size differs: {size} bytes, the manifest says {manifest['bytes']}"
    if not hmac.compare_digest(sha.hexdigest(), manifest["sha256"]):
        return "SHA-256 does not match: the file was changed"
    return None


def verify_snapshot(snapshot: Snapshot, *, actor: Any) -> Snapshot:
    """Recompute hash and signature; mark the snapshot ready (verified now) or invalid with the
    reason. Audited either way: a verification is a fact operators want to see."""
    if snapshot.status in (Snapshot.Status.PENDING, Snapshot.Status.FAILED):
        raise SnapshotError(f"snapshot {snapshot.pk} is {snapshot.status}: nothing to verify")
    reason = check_snapshot(snapshot)
    status = Snapshot.Status.INVALID if reason else Snapshot.Status.READY
    return _set_status(
        snapshot,
        status,
        reason or "",
        "snapshot.verify",
        actor=actor,
        verified_at=timezone.now(),
    )


# --------------------------------------------------------------------------- read back


def read_lines(snapshot: Snapshot, *, start_line: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) from `start_line` on, streamed from storage."""
    with (
        storage().open(snapshot.file_name, "rb") as raw,
        gzip.GzipFile(fileobj=raw, mode="rb") as gz,
    ):
        for number, line in enumerate(io.TextIOWrapper(gz, encoding="utf-8")):
            if number >= start_line:
                yield number, json.loads(line)


def open_for_replay(snapshot: Snapshot, *, actor: Any) -> Snapshot:
    """Verify now and refuse an invalid snapshot: a replay must not trust a changed file."""
    snapshot = verify_snapshot(snapshot, actor=actor)
    if snapshot.status != Snapshot.Status.READY:
        raise SnapshotError(f"snapshot {snapshot.pk} is invalid: {snapshot.status_reason}")
    return snapshot


# --------------------------------------------------------------------------- delete, expire


def delete_snapshot(snapshot: Snapshot, *, actor: Any, action: str = "snapshot.delete") -> None:
    """Delete the row and, after commit, its file (a failed delete leaves an orphan file, never
    a row whose file is gone)."""
    name = snapshot.file_name
    with transaction.atomic():
        audit.record(actor, action, snapshot, before=audit.snapshot(snapshot, AUDIT_FIELDS))
        snapshot.delete()
        if name:
            transaction.on_commit(lambda: storage().delete(name))


def purge_snapshots(retention_days: int, *, now: datetime | None = None) -> int:
    """Delete snapshots (and files) created more than `retention_days` ago."""
    cutoff = (now or timezone.now()) - timedelta(days=retention_days)
    expired = list(Snapshot.objects.filter(created_at__lt=cutoff))
    for snapshot in expired:
        delete_snapshot(snapshot, actor="retention", action="snapshot.expire")
    return len(expired)


def daily_snapshot(*, now: datetime | None = None) -> Snapshot:
    """The beat's export: every event of the 24 h ending at this minute, then expiry."""
    end = (now or timezone.now()).replace(second=0, microsecond=0)
    snapshot = create_snapshot(actor="beat", start=end - timedelta(hours=24), end=end)
    purge_snapshots(settings.SNAPSHOT_RETENTION_DAYS, now=now)
    return snapshot
