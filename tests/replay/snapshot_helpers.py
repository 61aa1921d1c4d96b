"""Shared test data for the snapshot tests: events written through ingest, then placed in time."""

from __future__ import annotations

from datetime import datetime

import pytest

from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body


@pytest.fixture
def snapshot_storage(settings, tmp_path):
    """Each test's files in its own directory, through the same STORAGES alias as production."""
    settings.STORAGES = {
        **settings.STORAGES,
        "snapshots": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "snapshots")},
        },
    }
    return tmp_path / "snapshots"


def ingest_at(event_id: str, received_at: datetime, service: str = "checkout", **fields) -> Event:
    """Ingest one event, then set when it was received (the server's clock is not ours)."""
    [result] = ingest_events([event_body(event_id, service=service, **fields)])
    assert result.status == "accepted", result
    Event.objects.filter(service__slug=service, event_id=event_id).update(received_at=received_at)
    return Event.objects.get(service__slug=service, event_id=event_id)
