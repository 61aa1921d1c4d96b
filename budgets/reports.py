"""Budget reports for a period: per service and SLO, what the budget was, what spent it
(episodes), what overlapped it (breaker openings, gate decisions, deploys), incident
figures, linked work items and a leaderboard. See docs/budgets.md, "Reports".

Read in a fixed number of queries whatever the number of services: SLOs, ledger totals,
hour rows, freeze windows, gate decisions, breaker transitions (through the registered
source), failed minutes around breaker openings, work items. The episode maths is in
``budgets.episodes`` (pure).

Breaker data comes through ``register_breaker_source``: budgets may not import breakers
(DESIGN.md layers), so the breakers app registers a reader of its transitions in its
``AppConfig.ready`` and the report calls whatever is registered (nothing: no incidents).
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

from django.db import connection
from django.db.models import F, Q

from budgets import episodes as ep
from budgets.ledger import read_counts
from budgets.maths import InvalidInput
from budgets.models import SLO, FreezeWindow, GateDecision, LedgerBucket, WorkItem
from budgets.windows import floor_to
from controlplane.models import Service

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
BUCKET = HOUR  # episode bucket: the ledger's hour roll-ups
DETECT_LOOKBACK = HOUR  # first failure is searched this far before a breaker opening
POSTMORTEM_SHARE = 0.2  # an episode that spent more than this of the period's budget
FROZEN_CODES = ("budget", "freeze_window")  # gate reasons that mean "the service is frozen"

# (service_id, breaker name, from_state, to_state, at), for breakers guarding those services
Transition = tuple[int, str, str, str, datetime]
BreakerSource = Callable[[Sequence[int], datetime, datetime], list[Transition]]
_breaker_sources: list[BreakerSource] = []


def register_breaker_source(source: BreakerSource) -> None:
    """Called by the breakers app at start-up (idempotent)."""
    if source not in _breaker_sources:
        _breaker_sources.append(source)


def _transitions(service_ids: Sequence[int], start: datetime, end: datetime) -> list[Transition]:
    out: list[Transition] = []
    for source in _breaker_sources:
        out.extend(source(service_ids, start, end))
    return out


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, on whole hours; ``label`` names it (2025-03, 2025-Q1, custom)."""

    start: datetime
    end: datetime
    label: str
    kind: str  # month, quarter, custom

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def query(self) -> str:
        if self.kind == "custom":
            return f"start={self.start:%Y-%m-%dT%H:%MZ}&end={self.end:%Y-%m-%dT%H:%MZ}"
        return f"{self.kind}={self.label}"


MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")
MAX_CUSTOM = timedelta(days=400)


def month_period(text: str) -> Period:
    match = MONTH_RE.match(text)
    if not match or not 1 <= int(match[2]) <= 12 or not 1970 <= int(match[1]) <= 9000:
        raise InvalidInput("month", f"must be YYYY-MM, got {text!r}")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    return Period(start, start + timedelta(days=days), text, "month")


def quarter_period(text: str) -> Period:
    match = QUARTER_RE.match(text)
    if not match or not 1970 <= int(match[1]) <= 9000:
        raise InvalidInput("quarter", f"must be YYYY-Qn (n 1..4), got {text!r}")
    year, q = int(match[1]), int(match[2])
    start = datetime(year, 3 * q - 2, 1, tzinfo=UTC)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=UTC)
    )
    return Period(start, end, text, "quarter")


def _moment(text: str, name: str) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(name, f"must be an ISO date or date-time in UTC, got {text!r}") from None
    if value.tzinfo is None:
        raise InvalidInput(name, "must include a time zone (Z for UTC)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(name, "is out of range") from None
    if not 1970 <= value.year <= 9000:
        raise InvalidInput(name, "must be between the years 1970 and 9000")
    if value != floor_to(value, HOUR):
        raise InvalidInput(name, "must be on a whole hour (the report's bucket is one hour)")
    return value


def period_from_params(params: Mapping[str, str], now: datetime) -> Period:
    """The period a request asks for: ``month=YYYY-MM``, ``quarter=YYYY-Qn`` or
    ``start=..&end=..`` (ISO, UTC, whole hours). Default: the current month.
    Raises InvalidInput naming the parameter."""
    month, quarter = params.get("month"), params.get("quarter")
    start, end = params.get("start"), params.get("end")
    given = [n for n, v in (("month", month), ("quarter", quarter)) if v]
    if start or end:
        given.append("start")
    if len(given) > 1:
        raise InvalidInput(given[1], f"give one of month, quarter or start/end, not {given}")
    if month:
        return month_period(month)
    if quarter:
        return quarter_period(quarter)
    if start or end:
        if not start:
            raise InvalidInput("start", "is required with end")
        if not end:
            raise InvalidInput("end", "is required with start")
        low, high = _moment(start, "start"), _moment(end, "end")
        if high <= low:
            raise InvalidInput("end", "must be after start")
        if high - low > MAX_CUSTOM:
            raise InvalidInput("end", f"a custom period is at most {MAX_CUSTOM.days} days")
        return Period(low, high, f"{low:%Y-%m-%d %H:%M} to {high:%Y-%m-%d %H:%M} UTC", "custom")
    return month_period(f"{now:%Y-%m}")


# --------------------------------------------------------------------------- report rows


@dataclass
class EpisodeRow:
    slo: SLO
    episode: ep.Episode
    share_of_consumed: float  # of what the SLO spent in the period
    share_of_budget: float  # of the SLO's budget for the period
    bad_minutes: float | None  # timeslices only
    breakers: list[ep.BreakerEpisode] = field(default_factory=list)
    decisions: list[GateDecision] = field(default_factory=list)
    work_items: list[WorkItem] = field(default_factory=list)

    @property
    def needs_postmortem(self) -> bool:
        return self.share_of_budget > POSTMORTEM_SHARE

    @property
    def deploys(self) -> list[GateDecision]:
        return [d for d in self.decisions if d.permits_change]

    def as_json(self) -> dict[str, Any]:
        e = self.episode
        return {
            "service": self.slo.service.slug,
            "slo": self.slo.name,
            "start": e.start.isoformat(),
            "end": e.end.isoformat(),
            "bad": e.bad,
            "bad_minutes": self.bad_minutes,
            "burn_rate": e.burn_rate,
            "peak_burn_rate": e.peak_burn_rate,
            "share_of_consumed": self.share_of_consumed,
            "share_of_budget": self.share_of_budget,
            "needs_postmortem": self.needs_postmortem,
            "breaker_openings": [
                {
                    "breaker": b.breaker,
                    "opened_at": b.opened_at.isoformat(),
                    "closed_at": b.closed_at.isoformat() if b.closed_at else None,
                }
                for b in self.breakers
            ],
            "gate_decisions": [
                {
                    "change_id": d.change_id,
                    "version": d.version,
                    "kind": d.kind,
                    "status": d.status,
                    "at": d.created_at.isoformat(),
                    "deploy": d.permits_change,
                }
                for d in self.decisions
            ],
            "work_items": [w.key for w in self.work_items],
        }


@dataclass
class SloRow:
    """One SLO over the period. For timeslices the budget is in slices (and minutes)."""

    slo: SLO
    good: int
    total: int
    bad: int  # events (occurrences) or bad slices (timeslices)
    allowed_bad: float  # the period's budget in the same unit
    sli: float
    budget_minutes: float | None = None
    consumed_minutes: float | None = None
    hours: list[tuple[datetime, float]] = field(default_factory=list)  # (hour, burn rate)
    spend: list[tuple[datetime, float]] = field(default_factory=list)  # (hour, bad), in order
    episodes: list[EpisodeRow] = field(default_factory=list)

    @property
    def consumed(self) -> float:
        if self.allowed_bad:
            return self.bad / self.allowed_bad
        return 0.0 if not self.bad else float("inf")

    @property
    def remaining(self) -> float:
        return 1.0 - self.consumed

    @property
    def sli_percent(self) -> float:
        return self.sli * 100

    @property
    def over_budget(self) -> bool:
        return self.consumed > 1.0

    def as_json(self) -> dict[str, Any]:
        method = self.slo.budgeting_method
        return {
            "service": self.slo.service.slug,
            "slo": self.slo.name,
            "sli_kind": self.slo.sli,
            "budgeting_method": method,
            "target": float(self.slo.target),
            "achieved_sli": self.sli,
            "good": self.good,
            "total": self.total,
            "budget_events": self.allowed_bad if not self.slo.is_timeslices else None,
            "consumed_events": self.bad if not self.slo.is_timeslices else None,
            "budget_minutes": self.budget_minutes,
            "consumed_minutes": self.consumed_minutes,
            "consumed": self.consumed,
            "remaining": self.remaining,
            "over_budget": self.over_budget,
            "episodes": [e.as_json() for e in self.episodes],
        }


@dataclass
class ServiceReport:
    service: Service
    slos: list[SloRow]
    days_frozen: int
    frozen_days: list[date]
    breaker_episodes: list[ep.BreakerEpisode]
    mttd: timedelta | None
    mttr: timedelta | None
    work_items: list[WorkItem]

    @property
    def over_budget(self) -> bool:
        return any(row.over_budget for row in self.slos)

    @property
    def worst_consumed(self) -> float:
        return max((row.consumed for row in self.slos), default=0.0)

    @property
    def postmortems(self) -> list[EpisodeRow]:
        return [e for row in self.slos for e in row.episodes if e.needs_postmortem]

    def as_json(self) -> dict[str, Any]:
        def seconds(value: timedelta | None) -> int | None:
            return int(value.total_seconds()) if value is not None else None

        return {
            "service": self.service.slug,
            "name": self.service.name,
            "team": self.service.team,
            "over_budget": self.over_budget,
            "days_frozen": self.days_frozen,
            "frozen_days": [d.isoformat() for d in self.frozen_days],
            "slos": [row.as_json() for row in self.slos],
            "incidents": {
                "breaker_open_episodes": len(self.breaker_episodes),
                "mean_time_to_detect_seconds": seconds(self.mttd),
                "mean_time_to_recover_seconds": seconds(self.mttr),
            },
            "postmortems_needed": len(self.postmortems),
            "work_items": [w.key for w in self.work_items],
        }


@dataclass
class LeaderRow:
    name: str
    items: int
    saved_minutes: float
    saved_share: float


@dataclass
class Report:
    period: Period
    generated_at: datetime
    data_end: datetime
    services: list[ServiceReport]
    by_assignee: list[LeaderRow]
    by_team: list[LeaderRow]

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {
                "label": self.period.label,
                "kind": self.period.kind,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "generated_at": self.generated_at.isoformat(),
            "data_end": self.data_end.isoformat(),
            "episode_bucket_seconds": int(BUCKET.total_seconds()),
            "postmortem_share": POSTMORTEM_SHARE,
            "services": [s.as_json() for s in self.services],
            "leaderboard": {
                "by_assignee": [vars(r) for r in self.by_assignee],
                "by_team": [vars(r) for r in self.by_team],
            },
        }


# --------------------------------------------------------------------------- building


def _budget(slo: SLO) -> float:
    """1 - target, computed exactly then rounded once (1 - 0.999 is 0.001, not 0.00099..)."""
    return float(1 - Fraction(slo.target))


def build_report(
    period: Period, now: datetime, *, services: Sequence[Service] | None = None
) -> Report:
    """The report of ``period`` as it stands at ``now`` (data after now is not read)."""
    data_end = max(period.start, min(period.end, floor_to(now, timedelta(minutes=1))))
    qs = SLO.objects.select_related("service").order_by("service__slug", "name")
    if services is not None:
        qs = qs.filter(service__in=list(services))
    slos = list(qs)
    by_service: dict[int, list[SLO]] = defaultdict(list)
    service_objs: dict[int, Service] = {}
    for slo in slos:
        by_service[slo.service_id].append(slo)
        service_objs[slo.service_id] = slo.service
    ids = list(service_objs)
    slo_ids = [s.pk for s in slos]

    totals = read_counts([(s.pk, period.start, data_end) for s in slos]) if slos else {}
    hour_rows = _hour_rows(slo_ids, period.start, data_end) if slos else {}
    windows = (
        list(
            FreezeWindow.objects.filter(starts_at__lt=period.end, ends_at__gt=period.start).filter(
                Q(service__isnull=True) | Q(service_id__in=ids)
            )
        )
        if ids
        else []
    )
    decisions: dict[int, list[GateDecision]] = defaultdict(list)
    if ids:
        for d in GateDecision.objects.filter(
            service_id__in=ids, created_at__gte=period.start - BUCKET, created_at__lt=period.end
        ).order_by("created_at"):
            decisions[d.service_id].append(d)
    breaker_eps: dict[int, list[ep.BreakerEpisode]] = defaultdict(list)
    if ids:
        for b in ep.breaker_episodes(_transitions(ids, period.start, period.end)):
            breaker_eps[b.service_id].append(b)
    failed = _failed_minutes(by_service, breaker_eps)
    items: dict[int, list[WorkItem]] = defaultdict(list)
    # every service's items count on the leaderboard, with SLOs or not
    all_items = list(WorkItem.objects.filter(_in_period(period)).select_related("service"))
    for item in all_items:
        items[item.service_id].append(item)

    reports = []
    for sid, service_slos in by_service.items():
        rows = [
            _slo_row(slo, period, totals[(slo.pk, period.start, data_end)], hour_rows[slo.pk])
            for slo in service_slos
        ]
        b_eps = breaker_eps.get(sid, [])
        for row in rows:
            for e in row.episodes:
                _overlaps(e, b_eps, decisions.get(sid, []), items.get(sid, []), data_end)
        frozen = _frozen_days(service_objs[sid], period, data_end, windows, decisions.get(sid, []))
        detect = [
            (b.opened_at - first)
            if (
                first := ep.first_failure(
                    failed.get(sid, []), b.opened_at, lookback=DETECT_LOOKBACK
                )
            )
            else None
            for b in b_eps
        ]
        reports.append(
            ServiceReport(
                service=service_objs[sid],
                slos=rows,
                days_frozen=len(frozen),
                frozen_days=frozen,
                breaker_episodes=b_eps,
                mttd=ep.mean_duration(detect),
                mttr=ep.mean_duration(b.time_to_recover for b in b_eps),
                work_items=items.get(sid, []),
            )
        )
    # over-budget services first, then the most consumed
    reports.sort(key=lambda r: (not r.over_budget, -r.worst_consumed, r.service.slug))
    return Report(
        period=period,
        generated_at=now,
        data_end=data_end,
        services=reports,
        by_assignee=leaderboard(all_items, lambda w: w.assignee or "(unassigned)"),
        by_team=leaderboard(all_items, lambda w: w.service.team or "(no team)"),
    )


def _hour_rows(
    slo_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[tuple[datetime, int, int, int]]]:
    """Hour rows (bucket, good, total, bad_slices) of those SLOs in [start, end), one query.

    The bucket comes back as epoch seconds: a quarter of 100 SLOs is 220,000 rows, and
    parsing that many timestamptz values costs more than everything else in the report.
    """
    table = connection.ops.quote_name(LedgerBucket._meta.db_table)
    if connection.vendor == "postgresql":
        epoch = "EXTRACT(EPOCH FROM bucket)::bigint"
    else:
        epoch = "CAST(strftime('%%s', bucket) AS INTEGER)"
    adapt = connection.ops.adapt_datetimefield_value
    sql = (
        f"SELECT slo_id, {epoch}, good, total, bad_slices FROM {table} "
        f"WHERE slo_id IN ({', '.join(['%s'] * len(slo_ids))}) AND label = '' "
        "AND granularity = %s AND bucket >= %s AND bucket < %s"
    )
    out: dict[int, list[tuple[datetime, int, int, int]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*slo_ids, LedgerBucket.Granularity.HOUR, adapt(start), adapt(end)])
        for slo_id, seconds, good, total, bad in cursor.fetchall():
            out[slo_id].append((EPOCH + timedelta(seconds=int(seconds)), good, total, bad))
    return out


def _in_period(period: Period) -> Q:
    """A work item belongs to the period of the episode it addresses, else of its creation."""
    return Q(episode_start__gte=period.start, episode_start__lt=period.end) | Q(
        episode_start__isnull=True, created_at__gte=period.start, created_at__lt=period.end
    )


def _slo_row(
    slo: SLO, period: Period, counts, hours: list[tuple[datetime, int, int, int]]
) -> SloRow:
    budget = _budget(slo)
    if slo.is_timeslices:
        step = slo.slice_length
        total_slices = period.length // step
        per_hour = HOUR // step
        allowed = float(total_slices * budget)
        minutes = slo.slice_minutes
        buckets = [(h, float(bad), float(per_hour * budget)) for h, _g, _t, bad in hours]
        row = SloRow(
            slo=slo,
            good=counts.good,
            total=counts.total,
            bad=counts.bad_slices,
            allowed_bad=allowed,
            sli=1 - counts.bad_slices / total_slices if total_slices else 1.0,
            budget_minutes=allowed * minutes,
            consumed_minutes=float(counts.bad_slices * minutes),
        )
    else:
        buckets = [(h, float(t - g), float(t * budget)) for h, g, t, _b in hours]
        row = SloRow(
            slo=slo,
            good=counts.good,
            total=counts.total,
            bad=counts.bad,
            allowed_bad=float(counts.total * budget),
            sli=counts.good / counts.total if counts.total else 1.0,
        )
    buckets.sort()
    row.hours = [(h, bad / allowed if allowed else 0.0) for h, bad, allowed in buckets]
    row.spend = [(h, bad) for h, bad, _allowed in buckets]
    for e in ep.burn_episodes(buckets, bucket=BUCKET):
        row.episodes.append(
            EpisodeRow(
                slo=slo,
                episode=e,
                share_of_consumed=e.bad / row.bad if row.bad else 0.0,
                share_of_budget=e.bad / row.allowed_bad if row.allowed_bad else 0.0,
                bad_minutes=e.bad * slo.slice_minutes if slo.is_timeslices else None,
            )
        )
    return row


def _overlaps(
    row: EpisodeRow,
    breakers: list[ep.BreakerEpisode],
    decisions: list[GateDecision],
    items: list[WorkItem],
    data_end: datetime,
) -> None:
    """Breaker episodes overlapping the episode; gate decisions in it or the bucket before
    it (a deploy just before the burn is the usual suspect); work items that name it."""
    start, end = row.episode.start, row.episode.end
    row.breakers = [b for b in breakers if b.opened_at < end and (b.closed_at or data_end) > start]
    row.decisions = [d for d in decisions if start - BUCKET <= d.created_at < end]
    row.work_items = [w for w in items if w.episode_start == start]


def _frozen_days(
    service: Service,
    period: Period,
    data_end: datetime,
    windows: list[FreezeWindow],
    decisions: list[GateDecision],
) -> list[date]:
    """UTC days of the period (up to now) on which the service was frozen: a freeze window
    for it (or for every service) overlapped the day, or the gate found it frozen (a decision
    that day with a blocking ``budget`` or ``freeze_window`` reason)."""
    days: set[date] = set()
    first = period.start.date()
    last_moment = min(period.end, data_end + DAY)
    for w in windows:
        if w.service_id not in (None, service.pk):
            continue
        day = max(w.starts_at, period.start).astimezone(UTC).date()
        stop = min(w.ends_at, period.end, last_moment)
        while datetime.combine(day, datetime.min.time(), tzinfo=UTC) < stop:
            if day >= first:
                days.add(day)
            day += DAY
    for d in decisions:
        if d.created_at < period.start:
            continue
        if any(r.get("code") in FROZEN_CODES and r.get("blocking", True) for r in d.reasons or []):
            days.add(d.created_at.astimezone(UTC).date())
    return sorted(days)


def _failed_minutes(
    by_service: Mapping[int, list[SLO]], breaker_eps: Mapping[int, list[ep.BreakerEpisode]]
) -> dict[int, list[datetime]]:
    """Minutes with failures in the lookback before each breaker opening, per service: one
    query (none when nothing opened)."""
    condition = Q()
    owner: dict[int, int] = {}
    for sid, eps in breaker_eps.items():
        ids = [s.pk for s in by_service.get(sid, []) if s.sli in SLO.PIPELINE_SLIS]
        for slo_id in ids:
            owner[slo_id] = sid
        for b in eps:
            if ids:
                condition |= Q(
                    slo_id__in=ids,
                    bucket__gte=b.opened_at - DETECT_LOOKBACK,
                    bucket__lte=b.opened_at,
                )
    out: dict[int, list[datetime]] = defaultdict(list)
    if not owner:
        return out
    rows = LedgerBucket.objects.filter(
        condition, label="", granularity=LedgerBucket.Granularity.MINUTE
    ).exclude(good=F("total"))
    for slo_id, bucket in rows.values_list("slo_id", "bucket"):
        out[owner[slo_id]].append(bucket)
    return out


def leaderboard(items: Sequence[WorkItem], key: Callable[[WorkItem], str]) -> list[LeaderRow]:
    """Budget saved by done work items, grouped by ``key``, most saved first."""
    rows: dict[str, LeaderRow] = {}
    for item in items:
        if item.status != WorkItem.Status.DONE:
            continue
        row = rows.setdefault(key(item), LeaderRow(key(item), 0, 0.0, 0.0))
        row.items += 1
        row.saved_minutes += item.saved_minutes or 0.0
        row.saved_share += item.saved_share or 0.0
    return sorted(rows.values(), key=lambda r: (-r.saved_share, -r.saved_minutes, r.name))
