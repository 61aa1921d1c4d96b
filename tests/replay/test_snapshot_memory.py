"""Flat memory: the export's peak RSS does not grow with the number of events.

Each export runs in a child process (a fresh interpreter, so one export's high-water mark does
not hide the other's) that reports how far its peak RSS rose above where it stood just before
exporting. N and 4N events of ~2 KB each: buffering the rows or the file would add tens of MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from replay.models import Event
from tests.conftest import uses_postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not uses_postgres(), reason="server-side cursors: Postgres"),
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM"),
]

N = 5000
ROOT = Path(__file__).resolve().parents[2]
# The peak is the kernel's VmHWM of the child's own address space: getrusage's ru_maxrss
# would report the parent's (pytest's) peak, which Linux carries across fork and exec.
CHILD = """
import json, sys
from datetime import datetime
import django
django.setup()
from replay import snapshots

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

start, end = (datetime.fromisoformat(x) for x in sys.argv[1:3])
before = peak_kb()
snap = snapshots.create_snapshot(actor="memory-test", start=start, end=end)
peak = peak_kb()
print(json.dumps({"count": snap.event_count, "bytes": snap.byte_size, "rise_kb": peak - before}))
"""


def fill(service, start: datetime, count: int) -> None:
    batch = uuid.uuid4()
    rows = (
        Event(
            service=service,
            event_id=f"{start:%H}-{i}",
            type="order.created",
            occurred_at=start,
            received_at=start + timedelta(microseconds=i),
            # Random hex: gzip cannot shrink it away, so the file is as large as the data.
            payload={"i": i, "blob": os.urandom(1024).hex()},
            batch_id=batch,
        )
        for i in range(count)
    )
    Event.objects.bulk_create(rows, batch_size=1000)


def export_in_child(start: datetime, end: datetime, tmp_path: Path) -> dict:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CONTROLPLANE_SNAPSHOT_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, start.isoformat(), end.isoformat()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_does_not_grow_with_the_number_of_events(checkout, tmp_path):
    small = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
    large = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    fill(checkout, small, N)
    fill(checkout, large, 4 * N)
    one = export_in_child(small, small + timedelta(hours=1), tmp_path)
    four = export_in_child(large, large + timedelta(hours=1), tmp_path)
    assert (one["count"], four["count"]) == (N, 4 * N)
    grown_mb = (four["bytes"] - one["bytes"]) / 2**20
    assert grown_mb > 10  # the data did grow: 3N more events of ~2 KB (~1 KB gzipped)
    # Peak memory may differ by noise, not by anything that scales with the data.
    assert four["rise_kb"] - one["rise_kb"] < 6 * 1024, (one, four)
