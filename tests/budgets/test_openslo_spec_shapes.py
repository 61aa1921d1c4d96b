"""OpenSLO documents shaped like the four examples of the specification repository.

Own names and values, the same shapes: a threshold metric of another system over a
two-week rolling window; RatioTimeslices; two objectives on a calendar month in a time
zone; a weekly calendar window anchored at a local Saturday noon. Each imports, exports
and imports back to the same SLOs.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest
import yaml

from budgets import openslo
from budgets.models import SLO
from budgets.slos import SLO_FIELDS
from budgets.windows import period_bounds
from tests.budgets.conftest import make_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

THRESHOLD_TWO_WEEKS = textwrap.dedent(
    """\
    # a threshold metric of another system
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: checkout-latency
      displayName: Checkout latency
    spec:
      description: Checkout answers in under 400 ms.
      service: shop
      indicator:
        metadata:
          name: checkout-p99
          displayName: Checkout request latency
        spec:
          thresholdMetric:
            metricSource:
              type: Datadog
              spec:
                query: p99:checkout.latency{*}
      timeWindow:
        - duration: 2w
          isRolling: true
      budgetingMethod: Occurrences
      objectives:
        - displayName: Snappy checkout
          op: lt
          value: 400
          target: 0.99
      alertPolicies:
    """
)

RATIO_TIMESLICES = textwrap.dedent(
    """\
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: home-page
      displayName: Home page answers
    spec:
      description: The home page answers 2xx
      service: shop
      indicator:
        metadata:
          name: home-2xx
          displayName: 2xx answers of the home page
        spec:
          ratioMetric:
            good:
              metricSource:
                type: Prometheus
                spec:
                  query: sum(rate(home_requests{code=~"2.."}[1m]))
            total:
              metricSource:
                type: Prometheus
                spec:
                  query: sum(rate(home_requests[1m]))
      timeWindow:
       - duration: 2w
         isRolling: true
      budgetingMethod: RatioTimeslices
      objectives:
        - displayName: Mostly up
          op: gt
          timeSliceWindow: 1m
          target: 0.995
    """
)

TWO_OBJECTIVES_ZONED_MONTH = textwrap.dedent(
    """\
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: uplink
      displayName: Uplink availability
    spec:
      description: Watch the contract before it is breached.
      service: shop
      indicator:
        metadata:
          name: uplink-up
          displayName: Minutes the uplink answered
        spec:
          ratioMetric:
            good:
              metricSource:
                type: Zabbix
                spec:
                  query: uplink.up
            total:
              metricSource:
                type: Zabbix
                spec:
                  query: uplink.all
      timeWindow:
        - duration: 1M
          isRolling: false
          calendar:
            startTime: 2023-01-01 12:00:00
            timeZone: Europe/Berlin
      budgetingMethod: Timeslices
      objectives:
        - displayName: Internal goal
          op: gt
          target: 0.997
          timeSliceTarget: 0.99
          timeSliceWindow: 1m
        - displayName: Contract
          target: 0.99
          timeSliceTarget: 0.99
          timeSliceWindow: 1m
      alertPolicies:
    """
)

WEEKLY_LOCAL_NOON = textwrap.dedent(
    """\
    apiVersion: openslo/v1
    kind: SLO
    metadata:
      name: quiet-hours
      displayName: Every minute counts
    spec:
      service: shop
      indicator:
        metadata:
          name: quiet-hours-ok
          displayName: Minutes that went well
        spec:
          ratioMetric:
            good:
              metricSource:
                type: Graphite
                spec:
                  query: ok.count
            total:
              metricSource:
                type: Graphite
                spec:
                  query: all.count
      timeWindow:
        - duration: 1w
          isRolling: false
          calendar:
            startTime: 2023-07-01 12:00:00
            timeZone: America/Chicago
      budgetingMethod: Timeslices
      objectives:
        - displayName: Good minutes
          op: gt
          target: 0.9995
          timeSliceTarget: 0.9
          timeSliceWindow: 1m
    """
)

FIELDS = ["service__slug", *[f for f in SLO_FIELDS if f != "service"], "openslo"]


@pytest.fixture
def shop(operator):
    return make_service(operator, "shop")


def _import(text: str, actor) -> list[openslo.ImportResult]:
    return openslo.import_documents(text, actor=actor.user)


def _slos() -> list[tuple]:
    return list(SLO.objects.order_by("service__slug", "name").values_list(*FIELDS))


def _round_trip(actor) -> None:
    """Export, delete, import the export: the same SLOs; the export again is identical."""
    before = _slos()
    exported = openslo.export_documents()
    SLO.objects.all().delete()
    results = _import(exported, actor)
    assert {r.action for r in results if r.kind == "SLO"} == {"created"}
    assert _slos() == before
    assert openslo.export_documents() == exported


def test_a_threshold_metric_of_another_system_over_two_weeks_imports(operator, shop):
    results = _import(THRESHOLD_TWO_WEEKS, operator)
    assert [(r.name, r.action) for r in results] == [("shop/checkout-latency", "created")]
    slo = SLO.objects.get()
    assert (slo.sli, slo.window, str(slo.target)) == ("external", "rolling:14d", "0.990000")
    assert slo.openslo["objective"] == {"op": "lt", "value": 400, "displayName": "Snappy checkout"}
    docs = list(yaml.safe_load_all(openslo.export_documents()))
    assert [d["kind"] for d in docs] == ["Service", "SLO"]
    objective = docs[1]["spec"]["objectives"][0]
    assert objective == {"displayName": "Snappy checkout", "op": "lt", "value": 400, "target": 0.99}
    assert docs[1]["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"]["type"] == (
        "Datadog"
    )
    _round_trip(operator)


def test_ratio_timeslices_import_as_occurrences_with_a_note_and_export_back(operator, shop):
    results = _import(RATIO_TIMESLICES, operator)
    assert results[0].notes == (openslo.RATIO_TIMESLICES_NOTE,)
    slo = SLO.objects.get()
    assert (slo.budgeting_method, slo.slice_minutes, slo.window) == (
        "occurrences",
        None,
        "rolling:14d",
    )
    doc = list(yaml.safe_load_all(openslo.export_documents()))[1]
    assert doc["spec"]["budgetingMethod"] == "RatioTimeslices"
    assert doc["spec"]["objectives"][0] == {
        "displayName": "Mostly up",
        "op": "gt",
        "target": 0.995,
        "timeSliceWindow": "1m",
    }
    _round_trip(operator)


def test_two_objectives_become_two_slos_on_a_zoned_calendar_month(operator, shop):
    results = _import(TWO_OBJECTIVES_ZONED_MONTH, operator)
    assert [r.name for r in results] == ["shop/uplink-internal-goal", "shop/uplink-contract"]
    internal, contract = (
        SLO.objects.get(name="uplink-internal-goal"),
        SLO.objects.get(name="uplink-contract"),
    )
    assert internal.display_name == "Uplink availability / Internal goal"
    assert (str(internal.target), str(contract.target)) == ("0.997000", "0.990000")
    assert internal.window == "calendar:month;start=2020-01-01T12:00;tz=Europe/Berlin"
    assert (contract.budgeting_method, contract.slice_minutes) == ("timeslices", 1)
    # honoured: noon on the 1st in Berlin, 11:00 UTC in winter and 10:00 UTC in summer
    assert period_bounds(internal.window, datetime(2024, 3, 20, tzinfo=UTC)) == (
        datetime(2024, 3, 1, 11, tzinfo=UTC),
        datetime(2024, 4, 1, 10, tzinfo=UTC),
    )
    docs = list(yaml.safe_load_all(openslo.export_documents()))
    names = {d["metadata"]["name"]: d for d in docs if d["kind"] == "SLO"}
    assert names["uplink-contract"]["spec"]["objectives"][0]["displayName"] == "Contract"
    assert names["uplink-internal-goal"]["spec"]["timeWindow"] == [
        {
            "duration": "1M",
            "isRolling": False,
            "calendar": {"startTime": "2020-01-01 12:00:00", "timeZone": "Europe/Berlin"},
        }
    ]
    assert {r.action for r in _import(TWO_OBJECTIVES_ZONED_MONTH, operator)} == {"unchanged"}
    _round_trip(operator)


def test_a_weekly_window_anchored_at_a_local_saturday_noon_imports(operator, shop):
    _import(WEEKLY_LOCAL_NOON, operator)
    slo = SLO.objects.get()
    assert slo.name == "quiet-hours"
    assert slo.window == "calendar:week;start=2020-01-11T12:00;tz=America/Chicago"
    # Saturday 2024-06-15 12:00 CDT is 17:00 UTC
    assert period_bounds(slo.window, datetime(2024, 6, 18, tzinfo=UTC)) == (
        datetime(2024, 6, 15, 17, tzinfo=UTC),
        datetime(2024, 6, 22, 17, tzinfo=UTC),
    )
    assert (str(slo.target), str(slo.slice_target), slo.slice_minutes) == (
        "0.999500",
        "0.900000",
        1,
    )
    _round_trip(operator)


@pytest.mark.parametrize(
    ("start_time", "zone", "window"),
    [
        ("2024-01-01T00:00:00-05:00", "America/New_York", "calendar:month;tz=America/New_York"),
        ("2024-01-01T02:00:00+02:00", "UTC", "calendar:month"),
        ("2024-01-01T01:00:00+01:00", "America/New_York", None),  # 19:00 on Dec 31 in NY
    ],
)
def test_a_start_time_with_an_offset_is_converted_to_the_zone(
    operator, shop, start_time, zone, window
):
    text = WEEKLY_LOCAL_NOON.replace("duration: 1w", "duration: 1M").replace(
        "startTime: 2023-07-01 12:00:00", f"startTime: {start_time}"
    )
    text = text.replace("timeZone: America/Chicago", f"timeZone: {zone}")
    if window is None:
        with pytest.raises(openslo.OpenSLOError) as caught:
            _import(text, operator)
        assert caught.value.path == "documents[0].spec.timeWindow[0].calendar.startTime"
        assert "day 1 to 28" in caught.value.message
        return
    _import(text, operator)
    assert SLO.objects.get().window == window


def test_a_calendar_window_of_one_minute_is_refused_with_a_hint(operator, shop):
    text = TWO_OBJECTIVES_ZONED_MONTH.replace("duration: 1M", "duration: 1m")
    with pytest.raises(openslo.OpenSLOError) as caught:
        _import(text, operator)
    assert caught.value.path == "documents[0].spec.timeWindow[0].duration"
    assert "a month is 1M" in caught.value.message


@pytest.mark.parametrize(
    ("duration", "window"),
    [("1M", "rolling:30d"), ("72h", "rolling:3d"), ("1Q", "rolling:90d"), ("4w", "rolling:28d")],
)
def test_rolling_durations_in_any_unit_become_whole_days(operator, shop, duration, window):
    _import(THRESHOLD_TWO_WEEKS.replace("duration: 2w", f"duration: {duration}"), operator)
    assert SLO.objects.get().window == window


def test_a_time_slice_window_given_as_a_number_is_minutes(operator, shop):
    _import(WEEKLY_LOCAL_NOON.replace("timeSliceWindow: 1m", "timeSliceWindow: 5"), operator)
    assert SLO.objects.get().slice_minutes == 5
