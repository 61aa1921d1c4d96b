"""The ledger: batched upserts into minute buckets with consistent roll-ups, and flat-cost reads."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from budgets.ledger import read_counts, record_outcomes
from budgets.models import LedgerBucket
from tests.budgets.conftest import NOW, make_service, make_slo

pytestmark = [pytest.mark.django_db]

MINUTE = timedelta(minutes=1)


def rows(slo, granularity):
    return {
        b.bucket: (b.good, b.total, b.bad_slices)
        for b in LedgerBucket.objects.filter(slo=slo, granularity=granularity, label="")
    }


@pytest.mark.smoke
def test_it_counts_outcomes_into_minute_hour_and_day_rows(shop):
    service, slo = shop
    at = NOW + timedelta(seconds=15)
    record_outcomes([(service.pk, at, True, 10.0), (service.pk, at, False, 10.0)])
    record_outcomes([(service.pk, at + timedelta(seconds=30), True, 10.0)])
    record_outcomes([(service.pk, at + timedelta(minutes=45), False, 10.0)])
    assert rows(slo, "m") == {NOW: (2, 3, 0), NOW + timedelta(minutes=45): (0, 1, 0)}
    assert rows(slo, "h") == {
        NOW.replace(minute=0): (2, 3, 0),
        NOW.replace(minute=0) + timedelta(hours=1): (0, 1, 0),
    }
    assert rows(slo, "d") == {NOW.replace(hour=0, minute=0): (2, 4, 0)}


@pytest.mark.smoke
def test_a_latency_slo_counts_fast_successes_as_good(operator, shop):
    service, events = shop
    latency = make_slo(operator, service, "fast", sli="latency", latency_threshold_ms=250)
    external = make_slo(operator, service, "pushed", sli="external")
    record_outcomes(
        [
            (service.pk, NOW, True, 100.0),
            (service.pk, NOW, True, 250.0),  # at the threshold: good
            (service.pk, NOW, True, 251.0),
            (service.pk, NOW, False, 5.0),  # a fast failure is not a good delivery
        ]
    )
    assert rows(events, "m") == {NOW: (3, 4, 0)}
    assert rows(latency, "m") == {NOW: (2, 4, 0)}
    assert rows(external, "m") == {}


@pytest.mark.smoke
def test_outcomes_of_services_without_slos_are_dropped(operator, shop):
    _, slo = shop
    other = make_service(operator, "other")
    record_outcomes([(other.pk, NOW, True, 1.0), (999_999, NOW, False, 1.0)])
    assert not LedgerBucket.objects.exists()
    record_outcomes([])
    assert rows(slo, "m") == {}


@pytest.mark.smoke
def test_it_refuses_naive_times_and_converts_other_offsets(shop):
    service, slo = shop
    with pytest.raises(ValueError, match="occurred_at"):
        record_outcomes([(service.pk, NOW.replace(tzinfo=None), True, 1.0)])
    from zoneinfo import ZoneInfo

    paris = NOW.astimezone(ZoneInfo("Europe/Paris"))
    record_outcomes([(service.pk, paris, True, 1.0)])
    assert rows(slo, "m") == {NOW: (1, 1, 0)}


@pytest.mark.smoke
def test_a_big_batch_costs_a_few_queries(operator, shop, django_assert_max_num_queries):
    service, _ = shop
    make_slo(operator, service, "fast", sli="latency", latency_threshold_ms=100)
    make_slo(
        operator,
        service,
        "sliced",
        budgeting_method="timeslices",
        slice_minutes=5,
        slice_target="0.9",
    )
    outcomes = [
        (service.pk, NOW + timedelta(seconds=7 * i), i % 10 != 0, float(i % 200))
        for i in range(5000)
    ]
    # SLO lookup, counts upsert, slice-flip upsert (plus savepoint statements)
    with django_assert_max_num_queries(5) as captured:
        record_outcomes(outcomes)
    writes = [q for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(writes) <= 2
    day = NOW.replace(hour=0, minute=0)
    assert LedgerBucket.objects.get(slo__name="delivery", granularity="d", bucket=day).total == 5000


@pytest.mark.smoke
def test_reads_match_a_brute_force_sum_over_any_span(shop):
    service, slo = shop
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    outcomes = [
        (service.pk, start + timedelta(seconds=rng.randrange(3 * 86400)), rng.random() < 0.9, 1.0)
        for _ in range(3000)
    ]
    record_outcomes(outcomes)
    spans = []
    for _ in range(25):
        a = start + MINUTE * rng.randrange(3 * 1440)
        b = start + MINUTE * rng.randrange(3 * 1440)
        spans.append((slo.pk, min(a, b), max(a, b)))
    spans.append((slo.pk, start, start + timedelta(days=3)))
    counts = read_counts(spans)
    for _, low, high in spans:
        inside = [o for o in outcomes if low <= o[1].replace(second=0, microsecond=0) < high]
        got = counts[(slo.pk, low, high)]
        assert (got.good, got.total) == (sum(o[2] for o in inside), len(inside)), (low, high)


@pytest.mark.smoke
def test_many_spans_are_read_in_one_query(operator, shop):
    service, slo = shop
    other = make_slo(operator, service, "other", window="rolling:90d")
    record_outcomes([(service.pk, NOW - timedelta(days=d), d % 2 == 0, 1.0) for d in range(1, 81)])
    end = NOW
    spans = [
        (slo.pk, end - timedelta(days=30), end),
        (other.pk, end - timedelta(days=90), end),
        (slo.pk, end - timedelta(hours=1), end),
        (other.pk, end - timedelta(hours=1), end),
    ]
    with CaptureQueriesContext(connection) as captured:
        counts = read_counts(spans)
    reads = [q for q in captured.captured_queries if "budgets_ledgerbucket" in q["sql"]]
    assert len(reads) == 1  # (on Postgres, plus a SET LOCAL in its own small transaction)
    assert counts[(slo.pk, end - timedelta(days=30), end)].total == 30
    assert counts[(other.pk, end - timedelta(days=90), end)].total == 80
    assert counts[(other.pk, end - timedelta(days=90), end)].good == 40
    assert counts[(slo.pk, end - timedelta(hours=1), end)].total == 0


@pytest.mark.smoke
def test_one_minute_slices_flip_between_good_and_bad(operator, shop):
    service, _ = shop
    sliced = make_slo(
        operator,
        service,
        "sliced",
        budgeting_method="timeslices",
        slice_minutes=1,
        slice_target="0.9",
    )
    record_outcomes([(service.pk, NOW, i < 5, 1.0) for i in range(10)])  # 50 %: bad
    assert rows(sliced, "m")[NOW] == (5, 10, 1)
    assert rows(sliced, "h")[NOW.replace(minute=0)][2] == 1
    record_outcomes([(service.pk, NOW, True, 1.0) for _ in range(40)])  # 45/50 = 90 %: good
    assert rows(sliced, "m")[NOW] == (45, 50, 0)
    assert rows(sliced, "h")[NOW.replace(minute=0)][2] == 0
    assert rows(sliced, "d")[NOW.replace(hour=0, minute=0)][2] == 0
    record_outcomes([(service.pk, NOW + MINUTE, False, 1.0)])
    record_outcomes([(service.pk, NOW + 2 * MINUTE, False, 1.0)])
    assert rows(sliced, "d")[NOW.replace(hour=0, minute=0)][2] == 2
    counts = read_counts([(sliced.pk, NOW - timedelta(days=1), NOW + 3 * MINUTE)])
    assert counts[(sliced.pk, NOW - timedelta(days=1), NOW + 3 * MINUTE)].bad_slices == 2


@pytest.mark.smoke
def test_five_minute_slices_are_judged_on_the_whole_slice(operator, shop):
    service, _ = shop
    sliced = make_slo(
        operator,
        service,
        "sliced",
        budgeting_method="timeslices",
        slice_minutes=5,
        slice_target="0.5",
    )
    record_outcomes([(service.pk, NOW + MINUTE, False, 1.0)])  # 0/1: bad
    slice_rows = {
        b.bucket: (b.good, b.total, b.bad_slices)
        for b in LedgerBucket.objects.filter(slo=sliced, granularity="s")
    }
    assert slice_rows == {NOW: (0, 1, 1)}
    record_outcomes([(service.pk, NOW + 4 * MINUTE, True, 1.0)])  # 1/2 in the slice: good
    slice_rows = {
        b.bucket: (b.good, b.total, b.bad_slices)
        for b in LedgerBucket.objects.filter(slo=sliced, granularity="s")
    }
    assert slice_rows == {NOW: (1, 2, 0)}
    assert rows(sliced, "m") == {NOW + MINUTE: (0, 1, 0), NOW + 4 * MINUTE: (1, 1, 0)}
    span = (sliced.pk, NOW, NOW + timedelta(minutes=10))
    assert read_counts([span])[span] == type(read_counts([span])[span])(1, 2, 0)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers: Postgres")
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_neither_lose_counts_nor_deadlock(operator):
    service = make_service(operator, "busy")
    slo = make_slo(
        operator, service, budgeting_method="timeslices", slice_minutes=1, slice_target="0.5"
    )
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(20):
                batch = [
                    (service.pk, NOW + MINUTE * rng.randrange(120), rng.random() < 0.5, 1.0)
                    for _ in range(50)
                ]
                record_outcomes(batch)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    minutes = LedgerBucket.objects.filter(slo=slo, granularity="m")
    assert sum(m.total for m in minutes) == 6 * 20 * 50
    expected_bad = sum(1 for m in minutes if m.good * 2 < m.total)
    assert sum(m.bad_slices for m in minutes) == expected_bad
    hours = LedgerBucket.objects.filter(slo=slo, granularity="h")
    assert sum(h.bad_slices for h in hours) == expected_bad
    assert sum(h.total for h in hours) == 6 * 20 * 50


@pytest.mark.smoke
def test_purge_keeps_what_the_longest_window_needs(shop, settings):
    from budgets.ledger import purge

    service, slo = shop
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    for days in (10, 99, 101, 399, 401):
        record_outcomes([(service.pk, now - timedelta(days=days), True, 1.0)])
    purged = purge(now)
    assert purged["fine_rows"] == 3 * 2  # minute and hour rows of days 101, 399 and 401
    kept_minutes = {
        (now - b.bucket).days for b in LedgerBucket.objects.filter(slo=slo, granularity="m")
    }
    assert kept_minutes == {10, 99}  # retention: 100 days
    kept_days = {
        (now.replace(hour=0) - b.bucket).days
        for b in LedgerBucket.objects.filter(slo=slo, granularity="d")
    }
    assert kept_days == {10, 99, 101, 399}  # day rows stay 400 days
