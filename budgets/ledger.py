"""The SLI ledger: batched writes of good/total counts, and reads that cost the same for any window.

Writes aggregate in memory into 1-minute buckets and upsert each (SLO, label, granularity,
bucket) row once per call, adding to what is there (``INSERT .. ON CONFLICT DO UPDATE SET
good = good + excluded.good``, which Postgres and SQLite >= 3.24 both run). The minute row
and its hour and day roll-ups are written by the same statement, so they always agree.

For timeslices SLOs the same statement returns each touched slice's new counts; a slice whose
goodness flipped moves ``bad_slices`` on its slice row (0/1) and on its hour and day rows by
one, in a second statement. Reads plan their ranges with ``windows.plan_ranges`` (whole days
from day rows, whole hours from hour rows, the rest from minute/slice rows): at most about
250 rows per SLO for a 90-day window, in one query for any number of SLOs and spans.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from django.conf import settings
from django.db import connection, transaction

from budgets.maths import InvalidInput, validate_counts
from budgets.models import SLO, ExternalCount, LedgerBucket
from budgets.windows import Granularity, floor_to, plan_ranges

__all__ = [
    "SLICE_MINUTES",
    "Counts",
    "Delta",
    "apply_deltas",
    "purge",
    "read_counts",
    "read_series",
    "record_external",
    "record_outcomes",
]

SLICE_MINUTES = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)  # divisors of an hour
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
G = LedgerBucket.Granularity
_TABLE = LedgerBucket._meta.db_table
_CHUNK = 4000  # rows per statement: 28,000 parameters, under SQLite's 32,766

Key = tuple[int, str, str, datetime]  # (slo_id, label, granularity, bucket)


@dataclass(frozen=True, slots=True)
class Counts:
    """Ledger totals over a span. ``bad_slices`` is 0 for occurrences SLOs."""

    good: int = 0
    total: int = 0
    bad_slices: int = 0

    @property
    def bad(self) -> int:
        return self.total - self.good


@dataclass(frozen=True, slots=True)
class _Slicing:
    minutes: int
    target: Fraction

    @property
    def granularity(self) -> str:
        return G.MINUTE if self.minutes == 1 else G.SLICE

    def is_bad(self, good: int, total: int) -> bool:
        # good / total < target, in integers; a slice with no events is good
        return total > 0 and good * self.target.denominator < self.target.numerator * total


Delta = tuple[int, str, datetime]  # (slo_id, label, minute bucket) -> (good, total) change


def _utc_minute(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"occurred_at must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _slicing(method: str, slice_minutes: int | None, slice_target) -> _Slicing | None:
    if method != SLO.Method.TIMESLICES or not slice_minutes or slice_target is None:
        return None
    return _Slicing(slice_minutes, Fraction(slice_target))


# --------------------------------------------------------------------------- writes


def record_outcomes(outcomes: list[tuple[int, datetime, bool, float]]) -> None:
    """Count delivery outcomes into every ``events`` and ``latency`` SLO of their services.

    Each outcome is ``(service_id, occurred_at, success, latency_ms)`` with ``occurred_at``
    timezone-aware (UTC). An ``events`` SLO counts a success as good; a ``latency`` SLO counts
    a success at or under its threshold as good. Every outcome counts in ``total``. Outcomes
    of services without such SLOs are dropped. Costs one query for the SLOs and one upsert
    (two when a timeslices slice changes state), in one transaction, however many outcomes.
    """
    if not outcomes:
        return
    service_ids = {outcome[0] for outcome in outcomes}
    by_service: dict[int, list[tuple[int, bool, float | None]]] = defaultdict(list)
    slicing: dict[int, _Slicing] = {}
    rows = SLO.objects.filter(service_id__in=service_ids, sli__in=SLO.PIPELINE_SLIS).values_list(
        "id",
        "service_id",
        "sli",
        "latency_threshold_ms",
        "budgeting_method",
        "slice_minutes",
        "slice_target",
    )
    for slo_id, service_id, sli, threshold, method, slice_minutes, slice_target in rows:
        is_latency = sli == SLO.Sli.LATENCY
        by_service[service_id].append((slo_id, is_latency, threshold))
        sliced = _slicing(method, slice_minutes, slice_target)
        if sliced:
            slicing[slo_id] = sliced
    if not by_service:
        return
    sums: dict[Delta, list[int]] = defaultdict(lambda: [0, 0])
    minutes: dict[datetime, datetime] = {}
    for service_id, occurred_at, success, latency_ms in outcomes:
        targets = by_service.get(service_id)
        if not targets:
            continue
        minute = minutes.get(occurred_at)
        if minute is None:
            minute = minutes[occurred_at] = _utc_minute(occurred_at)
        for slo_id, is_latency, threshold in targets:
            cell = sums[(slo_id, "", minute)]
            if is_latency:
                cell[0] += bool(
                    success
                    and threshold is not None
                    and latency_ms is not None
                    and latency_ms <= threshold
                )
            else:
                cell[0] += bool(success)
            cell[1] += 1
    apply_deltas({key: (good, total) for key, (good, total) in sums.items()}, slicing)


def apply_deltas(deltas: dict[Delta, tuple[int, int]], slicing: dict[int, _Slicing]) -> None:
    """Add (good, total) changes per (slo_id, label, minute) to the minute, hour and day rows.

    ``slicing`` names the timeslices SLOs among them; their slice tallies follow. Changes may
    be negative (a replaced external count).
    """
    rows: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for (slo_id, label, minute), (good, total) in deltas.items():
        if good == 0 and total == 0:
            continue
        keys = [
            (slo_id, label, G.MINUTE, minute),
            (slo_id, label, G.HOUR, minute.replace(minute=0)),
            (slo_id, label, G.DAY, minute.replace(hour=0, minute=0)),
        ]
        sliced = slicing.get(slo_id) if label == "" else None
        if sliced and sliced.minutes > 1:
            keys.append(
                (slo_id, label, G.SLICE, floor_to(minute, timedelta(minutes=sliced.minutes)))
            )
        for key in keys:
            cell = rows[key]
            cell[0] += good
            cell[1] += total
    if not rows:
        return
    with transaction.atomic():
        returned = _upsert(
            [(*key, good, total, 0) for key, (good, total) in sorted(rows.items())],
            "good = {t}.good + excluded.good, total = {t}.total + excluded.total",
            returning=bool(slicing),
        )
        if not slicing:
            return
        flips: dict[Key, int] = defaultdict(int)
        for slo_id, label, granularity, bucket, new_good, new_total in returned:
            sliced = slicing.get(slo_id)
            if sliced is None or label != "" or granularity != sliced.granularity:
                continue
            bucket = _as_utc(bucket)
            good, total = rows[(slo_id, label, granularity, bucket)]
            was_bad = sliced.is_bad(new_good - good, new_total - total)
            change = int(sliced.is_bad(new_good, new_total)) - int(was_bad)
            if change:
                flips[(slo_id, "", granularity, bucket)] += change
                flips[(slo_id, "", G.HOUR, bucket.replace(minute=0))] += change
                flips[(slo_id, "", G.DAY, bucket.replace(hour=0, minute=0))] += change
        if flips:
            _upsert(
                [(*key, 0, 0, change) for key, change in sorted(flips.items()) if change],
                "bad_slices = {t}.bad_slices + excluded.bad_slices",
                returning=False,
            )


def _upsert(values: list[tuple], assignments: str, *, returning: bool) -> list[tuple]:
    """INSERT .. ON CONFLICT DO UPDATE of rows in key order (so writers never deadlock).

    Postgres gets the rows as seven arrays (``unnest``): one small statement whatever the
    batch. SQLite gets chunks of VALUES rows.
    """
    quote = connection.ops.quote_name
    table = quote(_TABLE)
    columns = "(slo_id, label, granularity, bucket, good, total, bad_slices)"
    conflict = (
        "ON CONFLICT (slo_id, label, granularity, bucket) DO UPDATE SET "
        + assignments.format(t=table)
    )
    tail = " RETURNING slo_id, label, granularity, bucket, good, total" if returning else ""
    out: list[tuple] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = [list(column) for column in zip(*values, strict=True)]
            cursor.execute(
                f"INSERT INTO {table} {columns} SELECT * FROM unnest(%s::bigint[], "
                "%s::varchar[], %s::varchar[], %s::timestamptz[], %s::bigint[], %s::bigint[], "
                f"%s::integer[]) AS u ORDER BY 1, 2, 3, 4 {conflict}{tail}",
                arrays,
            )
            return cursor.fetchall() if returning else out
        adapt = connection.ops.adapt_datetimefield_value
        for offset in range(0, len(values), _CHUNK):
            chunk = values[offset : offset + _CHUNK]
            params: list = []
            for slo_id, label, granularity, bucket, good, total, bad_slices in chunk:
                params += [slo_id, label, granularity, adapt(bucket), good, total, bad_slices]
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} {columns} VALUES {rows} {conflict}{tail}", params)
            if returning:
                out.extend(cursor.fetchall())
    return out


def _as_utc(value: datetime | str) -> datetime:
    """A bucket as the database hands it back (SQLite: text in UTC) as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def record_external(
    slo: SLO, source: str, counts: Sequence[tuple[datetime, int, int, str]], *, now: datetime
) -> dict[str, int]:
    """Take pushed (bucket, good, total, label) counts for an ``external`` SLO.

    Idempotent per (bucket, source, label): pushing the same key again replaces its counts
    and the ledger moves by the difference, so a retried push never counts twice. A
    labelled count is part of the SLO's traffic and is also kept under its label (for
    canary comparisons). Raises InvalidInput naming the field (``counts[2].bucket``).
    """
    if slo.sli != SLO.Sli.EXTERNAL:
        raise InvalidInput("sli", f"SLO {slo} is fed by the event pipeline, not by pushes")
    oldest = floor_to(now, DAY) - timedelta(days=settings.BUDGETS_LEDGER_RETENTION_DAYS - 1)
    latest = floor_to(now, MINUTE)
    seen: dict[tuple[datetime, str], int] = {}
    clean: list[tuple[datetime, int, int, str]] = []
    for index, (bucket, good, total, label) in enumerate(counts):
        field = f"counts[{index}]"
        if bucket.tzinfo is None:
            raise InvalidInput(f"{field}.bucket", "must include a time zone (UTC)")
        bucket = bucket.astimezone(UTC)
        if bucket != floor_to(bucket, MINUTE):
            raise InvalidInput(f"{field}.bucket", "must be the start of a minute (seconds 00)")
        if bucket > latest:
            raise InvalidInput(f"{field}.bucket", "is in the future")
        if bucket < oldest:
            raise InvalidInput(f"{field}.bucket", "is older than the ledger keeps")
        validate_counts(good, total, good_field=f"{field}.good", total_field=f"{field}.total")
        if (bucket, label) in seen:
            raise InvalidInput(
                field, f"repeats the bucket and label of counts[{seen[bucket, label]}]"
            )
        seen[(bucket, label)] = index
        clean.append((bucket, good, total, label))
    summary = {"accepted": 0, "replaced": 0, "unchanged": 0}
    with transaction.atomic():
        SLO.objects.select_for_update().filter(pk=slo.pk).first()  # one pusher per SLO at once
        existing = {
            (row.bucket, row.label): row
            for row in ExternalCount.objects.filter(
                slo=slo, source=source, bucket__in={bucket for bucket, *_ in clean}
            )
        }
        deltas: dict[Delta, list[int]] = defaultdict(lambda: [0, 0])
        new_rows, changed = [], []
        for bucket, good, total, label in clean:
            row = existing.get((bucket, label))
            if row is None:
                new_rows.append(
                    ExternalCount(
                        slo=slo,
                        bucket=bucket,
                        source=source,
                        label=label,
                        good=good,
                        total=total,
                        received_at=now,
                    )
                )
                d_good, d_total = good, total
                summary["accepted"] += 1
            elif (row.good, row.total) == (good, total):
                summary["unchanged"] += 1
                continue
            else:
                d_good, d_total = good - row.good, total - row.total
                row.good, row.total, row.received_at = good, total, now
                changed.append(row)
                summary["replaced"] += 1
            for key_label in {"", label}:
                cell = deltas[(slo.pk, key_label, bucket)]
                cell[0] += d_good
                cell[1] += d_total
        ExternalCount.objects.bulk_create(new_rows)
        ExternalCount.objects.bulk_update(changed, ["good", "total", "received_at"])
        apply_deltas({k: (g, t) for k, (g, t) in deltas.items()}, slicing_for([slo]))
    return summary


# --------------------------------------------------------------------------- reads


Span = tuple[int, datetime, datetime]  # (slo_id, start, end): whole minutes, UTC


def read_counts(spans: Iterable[Span], *, label: str = "") -> dict[Span, Counts]:
    """Ledger totals for each (slo_id, start, end), in one query whatever the number of spans.

    Each span reads whole days from day rows, whole hours from hour rows and the rest from
    minute rows (and slice rows for the bad-slice tally), so its cost does not grow with the
    span's length or the number of events. Spans without rows get ``Counts()``.
    """
    groups: dict[tuple[datetime, datetime], set[int]] = defaultdict(set)
    for slo_id, start, end in spans:
        groups[(start, end)].add(slo_id)
    result: dict[Span, Counts] = {}
    selects: list[str] = []
    params: list = []
    adapt = connection.ops.adapt_datetimefield_value
    index: list[tuple[datetime, datetime]] = []
    for (start, end), slo_ids in groups.items():
        for slo_id in slo_ids:
            result[(slo_id, start, end)] = Counts()
        conditions: list[str] = []
        range_params: list = []
        for granularity, low, high in plan_ranges(start, end):
            if granularity is Granularity.MINUTE:
                conditions.append("(granularity IN (%s, %s) AND bucket >= %s AND bucket < %s)")
                range_params += [G.MINUTE, G.SLICE, adapt(low), adapt(high)]
            else:
                conditions.append("(granularity = %s AND bucket >= %s AND bucket < %s)")
                code = G.DAY if granularity is Granularity.DAY else G.HOUR
                range_params += [code, adapt(low), adapt(high)]
        if not conditions:
            continue
        ids = sorted(slo_ids)
        selects.append(
            f"SELECT {len(index)} AS grp, slo_id, "
            "SUM(CASE WHEN granularity = 's' THEN 0 ELSE good END), "
            "SUM(CASE WHEN granularity = 's' THEN 0 ELSE total END), SUM(bad_slices) "
            f"FROM {connection.ops.quote_name(_TABLE)} "
            f"WHERE slo_id IN ({', '.join(['%s'] * len(ids))}) AND label = %s "
            f"AND ({' OR '.join(conditions)}) GROUP BY slo_id"
        )
        params += [*ids, label, *range_params]
        index.append((start, end))
    if not selects:
        return result
    postgres = connection.vendor == "postgresql"
    with transaction.atomic() if postgres else nullcontext(), connection.cursor() as cursor:
        if postgres:
            # A few hundred index rows per SLO: Postgres's cost model sometimes picks a
            # parallel plan for it, whose worker start-up costs more than the whole scan.
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(" UNION ALL ".join(selects), params)
        rows = cursor.fetchall()
    for grp, slo_id, good, total, bad_slices in rows:
        start, end = index[grp]
        result[(slo_id, start, end)] = Counts(int(good or 0), int(total or 0), int(bad_slices or 0))
    return result


def read_series(
    slo_id: int, start: datetime, end: datetime, granularity: str
) -> list[tuple[datetime, Counts]]:
    """Rows of one granularity (hour or day) with buckets in [start, end), in time order.

    The still-open hour or day is included with its counts so far: roll-ups are written with
    their minutes, so they are current. For charts.
    """
    rows = (
        LedgerBucket.objects.filter(
            slo_id=slo_id, label="", granularity=granularity, bucket__gte=start, bucket__lt=end
        )
        .order_by("bucket")
        .values_list("bucket", "good", "total", "bad_slices")
    )
    return [(bucket, Counts(good, total, bad)) for bucket, good, total, bad in rows]


# --------------------------------------------------------------------------- retention


def purge(now: datetime) -> dict[str, int]:
    """Delete ledger rows past retention: minute, slice and hour rows, and external counts,
    after BUDGETS_LEDGER_RETENTION_DAYS; day rows after BUDGETS_DAY_RETENTION_DAYS."""
    fine_cutoff = floor_to(now, DAY) - timedelta(days=settings.BUDGETS_LEDGER_RETENTION_DAYS)
    day_cutoff = floor_to(now, DAY) - timedelta(days=settings.BUDGETS_DAY_RETENTION_DAYS)
    fine, _ = LedgerBucket.objects.filter(
        granularity__in=[G.MINUTE, G.SLICE, G.HOUR], bucket__lt=fine_cutoff
    ).delete()
    days, _ = LedgerBucket.objects.filter(granularity=G.DAY, bucket__lt=day_cutoff).delete()
    external, _ = ExternalCount.objects.filter(bucket__lt=fine_cutoff).delete()
    return {"fine_rows": fine, "day_rows": days, "external_counts": external}


def slicing_for(slos: Sequence[SLO]) -> dict[int, _Slicing]:
    """The timeslices settings of those SLOs that use them, for apply_deltas()."""
    out = {}
    for slo in slos:
        sliced = _slicing(slo.budgeting_method, slo.slice_minutes, slo.slice_target)
        if sliced:
            out[slo.pk] = sliced
    return out
