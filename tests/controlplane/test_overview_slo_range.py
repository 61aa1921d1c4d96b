"""The SLO page's time range (1 h .. window), and burn rates above the chart's scale marked
rather than clipped silently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from budgets.ledger import record_outcomes
from tests.budgets.conftest import logged_in, make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def incident(operator):
    """A 99.9 % SLO with a 10-minute incident 20 minutes ago: 20 % errors, a 200x burn."""
    service = make_service(operator, "orders")
    slo = make_slo(operator, service)
    start = timezone.now() - timedelta(minutes=30)
    outcomes = []
    for minute in range(10):
        at = start + timedelta(minutes=minute)
        outcomes += [(service.pk, at, i >= 20, 1.0) for i in range(100)]
    record_outcomes(outcomes)
    return slo


@pytest.mark.parametrize("chosen", ["1h", "6h", "24h", "7d", "window"])
def test_every_range_draws_both_charts(viewer, incident, chosen):
    response = logged_in(viewer).get(f"/budgets/slos/{incident.pk}/?range={chosen}")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<svg class="chart"') == 2
    assert f'href="?range={chosen}" aria-current="true"' in page


def test_the_last_hour_shows_the_incident_in_minutes_and_marks_it_off_scale(viewer, incident):
    page = logged_in(viewer).get(f"/budgets/slos/{incident.pk}/?range=1h").content.decode()
    assert "1-minute buckets" in page
    # 14.4x is the highest alert rate, so the scale ends at 17.3x; 200x is marked, not cut
    assert "▲ 200.0x off scale" in page
    assert page.count('<path class="offscale"') == 10  # one per minute of the incident


def test_the_window_chart_marks_off_scale_too(viewer, incident):
    page = logged_in(viewer).get(f"/budgets/slos/{incident.pk}/").content.decode()
    assert "off scale</text>" in page


def test_an_unknown_range_is_refused_naming_the_field(viewer, incident):
    response = logged_in(viewer).get(f"/budgets/slos/{incident.pk}/?range=2w")
    assert response.status_code == 400
    assert response.content.decode().startswith("range: must be one of 1h, 6h, 24h, 7d, window")
