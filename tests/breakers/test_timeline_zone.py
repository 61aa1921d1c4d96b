"""The breaker page's state timeline follows the page's time zone, like every other axis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from controlplane.charts import Band, timeline

pytestmark = pytest.mark.smoke

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _svg() -> str:
    end = START + timedelta(hours=1)
    return str(timeline([Band("open", START, end)], start=START, end=end))


def test_the_timeline_is_in_utc_by_default():
    with timezone.override("UTC"):
        svg = _svg()
    assert "12:00:00 - 13:00:00 UTC" in svg


def test_the_timeline_follows_the_viewers_zone():
    with timezone.override("Asia/Kolkata"):
        svg = _svg()
    assert "17:30:00 - 18:30:00 Asia/Kolkata" in svg
    assert ">UTC<" not in svg
