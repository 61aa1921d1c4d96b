"""The embedded broker (controlplane.broker): kombu's filesystem transport, on real folders,
with its write/read race closed and unreadable files set aside instead of killing the worker."""

from __future__ import annotations

import os
from pathlib import Path
from queue import Empty

import pytest
from kombu import Connection

from controlplane import broker

pytestmark = [pytest.mark.smoke]


@pytest.fixture
def folders(tmp_path: Path) -> dict[str, str]:
    for name in ("queue", "processed"):
        (tmp_path / name).mkdir()
    return {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
    }


def channel(folders: dict[str, str]):
    conn = Connection(
        "filesystem://",
        transport="controlplane.broker:FilesystemTransport",
        transport_options=folders,
    )
    return conn, conn.channel()


def test_a_message_is_invisible_to_consumers_until_it_is_fully_written(folders, monkeypatch):
    producer_conn, producer = channel(folders)
    consumer_conn, consumer = channel(folders)
    seen_before_rename = []
    real_replace = os.replace

    def replace(src, dst):
        # The content is on disk under its partial name: a consumer polling now takes nothing.
        try:
            seen_before_rename.append(consumer._get("celery"))
        except Empty:
            seen_before_rename.append(None)
        real_replace(src, dst)

    monkeypatch.setattr(broker.os, "replace", replace)
    producer._put("celery", {"body": "x" * 100_000})
    monkeypatch.undo()
    assert seen_before_rename == [None]
    assert consumer._get("celery") == {"body": "x" * 100_000}
    producer_conn.release()
    consumer_conn.release()


def test_an_unreadable_message_file_is_set_aside_and_the_next_message_taken(folders):
    conn, chan = channel(folders)
    # What kombu's own producer leaves for a moment: the file created, not yet written.
    Path(folders["data_folder_in"], "1_empty.celery.msg").write_bytes(b"")
    chan._put("celery", {"n": 1})
    assert chan._get("celery") == {"n": 1}
    with pytest.raises(Empty):
        chan._get("celery")
    assert os.listdir(folders["processed_folder"]) == ["1_empty.celery.msg.unreadable"]
    conn.release()


def test_messages_are_taken_in_order_once_each_and_leave_no_file(folders):
    conn, chan = channel(folders)
    for n in range(20):
        chan._put("events.high", {"n": n})
    chan._put("celery", {"n": "other queue"})
    assert chan._size("events.high") == 20
    assert [chan._get("events.high")["n"] for _ in range(20)] == list(range(20))
    with pytest.raises(Empty):
        chan._get("events.high")
    assert chan._get("celery") == {"n": "other queue"}
    assert os.listdir(folders["data_folder_in"]) == os.listdir(folders["processed_folder"]) == []
    conn.release()
