"""Admission at ingest (event lifecycle step 1): a token bucket per service, and shedding by
priority class when delivery falls behind.

Registered as replay's admission hook in `BreakersConfig.ready()`; replay asks, this decides.
Only the producers' door (ingest) is subject to it: replays and redrives have their own pacing.

- **Token bucket** (`Service.admission_rate` events/s, `admission_burst` tokens). Within a
  request, a service's events take tokens most urgent first (CRITICAL, HIGH, MEDIUM, LOW; ingest
  order within a class), and MEDIUM and LOW may not take the last `ADMISSION_URGENT_RESERVE`
  fraction of the burst: those tokens are kept for CRITICAL and HIGH. With Redis the bucket is
  cluster-wide (one Lua script, Redis' clock, one round trip per request and service); without
  it, per process behind a lock (the embedded default's one web process).
- **Load shedding**: the delivery lag (how long the oldest event due for dispatch has waited)
  is read from the event log at most once per `SHED_CHECK_SECONDS` per process; past a class's
  threshold in `SHED_LAG_SECONDS`, new events of that class are shed. CRITICAL never is.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.utils import timezone

from controlplane.models import Service, effective_burst
from replay.ingest import Candidate, Shed

log = logging.getLogger(__name__)

ORDER = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
URGENT = frozenset({"CRITICAL", "HIGH"})
RATE_LIMITED = "rate_limited"
OVERLOADED = "overloaded"
KEY = "cp:admission:{}"


# --------------------------------------------------------------------------- the bucket rule


@dataclass(frozen=True)
class Take:
    """What one request asked of a bucket and what it got."""

    urgent: int  # CRITICAL and HIGH admitted (the first `urgent` of those asked)
    normal: int  # MEDIUM and LOW admitted
    tokens: float  # left in the bucket afterwards


def refill(tokens: float, elapsed: float, rate: float, burst: float) -> float:
    return min(float(burst), tokens + max(0.0, elapsed) * rate)


def take(tokens: float, want_urgent: int, want_normal: int, reserve: float) -> Take:
    """The rule both buckets apply (the Lua script is this, line for line)."""
    urgent = min(want_urgent, math.floor(tokens))
    tokens -= urgent
    normal = min(want_normal, max(0, math.floor(tokens - reserve)))
    tokens -= normal
    return Take(urgent, normal, tokens)


def retry_after(
    take_: Take, shed_urgent: int, shed_normal: int, rate: float, reserve: float
) -> tuple[int, int]:
    """Seconds until the bucket has refilled enough for the last shed event of each kind, were
    they all sent again at once (urgent ones first, normal ones above the reserve)."""
    urgent = (shed_urgent - take_.tokens) / rate if shed_urgent else 0.0
    normal = (reserve + shed_urgent + shed_normal - take_.tokens) / rate if shed_normal else 0.0
    return whole_seconds(urgent), whole_seconds(normal)


def whole_seconds(seconds: float) -> int:
    # A little slack for float error, so that exactly 2.0 s is 2, not 3.
    return max(1, math.ceil(seconds - 1e-9))


class Buckets(Protocol):
    def take(
        self,
        key: str,
        rate: float,
        burst: int,
        urgent: int,
        normal: int,
        reserve: float,
        now: float | None = None,
    ) -> Take:
        """Refill the bucket to `now` (the store's clock when None) and take tokens."""
        ...


class LocalBuckets:
    """Per-process buckets behind one lock: right for one web process with several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(
        self,
        key: str,
        rate: float,
        burst: int,
        urgent: int,
        normal: int,
        reserve: float,
        now: float | None = None,
    ) -> Take:
        with self._lock:
            now = time.monotonic() if now is None else now
            tokens, at = self._state.get(key, (float(burst), now))
            result = take(refill(tokens, now - at, rate, burst), urgent, normal, reserve)
            self._state[key] = (result.tokens, max(now, at))
        return result


# KEYS[1] the bucket (a hash: tokens, at). ARGV: rate, burst, urgent, normal, reserve, now
# ("" = Redis' clock: machines whose clocks disagree still share one bucket; tests pass
# their own to be deterministic). Same rule as `take()` above.
_TAKE = """
local now
if ARGV[6] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[6])
end
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local urgent = math.min(tonumber(ARGV[3]), math.floor(tokens))
tokens = tokens - urgent
local normal = math.min(tonumber(ARGV[4]), math.max(0, math.floor(tokens - tonumber(ARGV[5]))))
tokens = tokens - normal
-- %.17g: the double itself (tostring keeps 14 digits, and the Python rule would drift away)
local left = string.format('%.17g', tokens)
redis.call('HSET', KEYS[1], 'tokens', left, 'at', string.format('%.17g', math.max(now, at)))
-- Gone once it would be full again anyway (a day at most: EXPIRE wants a sane integer).
redis.call('EXPIRE', KEYS[1], math.min(86400, math.ceil(burst / rate) + 1))
return {urgent, normal, left}
"""


class RedisBuckets:
    """Cluster-wide buckets: one script call per (request, service), whatever the batch size."""

    def __init__(self, client: Any) -> None:  # a redis.Redis
        self._script = client.register_script(_TAKE)

    def take(
        self,
        key: str,
        rate: float,
        burst: int,
        urgent: int,
        normal: int,
        reserve: float,
        now: float | None = None,
    ) -> Take:
        args = [repr(rate), burst, urgent, normal, repr(reserve), "" if now is None else repr(now)]
        got_urgent, got_normal, tokens = self._script(keys=[key], args=args)
        return Take(int(got_urgent), int(got_normal), float(tokens))


_buckets: Buckets | None = None
_buckets_lock = threading.Lock()


def buckets() -> Buckets:
    """This process's buckets: Redis when REDIS_URL is set, else in-process."""
    global _buckets
    if _buckets is None:
        with _buckets_lock:
            if _buckets is None:
                from controlplane.redis import get_redis

                client = get_redis()
                _buckets = RedisBuckets(client) if client is not None else LocalBuckets()
    return _buckets


def reset() -> None:
    """Forget the buckets and the load signal (tests; a changed REDIS_URL)."""
    global _buckets
    _buckets = None
    _load.reset()


# --------------------------------------------------------------------------- load signal


def delivery_lag(now: datetime | None = None) -> float:
    """Seconds the oldest event due for dispatch and not yet final has been waiting (0 when
    none is due). Due is `next_attempt_at <= now`: an event retrying later or deferred behind
    an open breaker is not delivery falling behind, so `received_at` (what `backlog()` shows)
    would be the wrong clock. One index probe per status on (status, next_attempt_at)."""
    from replay.models import Event

    now = now or timezone.now()
    oldest = None
    for status in (Event.Status.PENDING, Event.Status.DEFERRED, Event.Status.DISPATCHED):
        first = (
            Event.objects.filter(status=status, next_attempt_at__lte=now)
            .order_by("next_attempt_at")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0


class LoadSignal:
    """The delivery lag, read at most once per SHED_CHECK_SECONDS per process. One thread
    reads it while the others go on with the last value: ingest never waits on the check."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0.0
        self._read_at = -math.inf
        self.reads = 0

    def reset(self) -> None:
        self._value, self._read_at = 0.0, -math.inf

    def lag(self) -> float:
        now = time.monotonic()
        if now - self._read_at < settings.SHED_CHECK_SECONDS:
            return self._value
        if not self._lock.acquire(blocking=False):
            return self._value
        try:
            if now - self._read_at >= settings.SHED_CHECK_SECONDS:
                try:
                    self._value = delivery_lag()
                except Exception:  # the database blinked: keep the last value, try later
                    log.exception("reading the delivery lag failed")
                    if connection.in_atomic_block:
                        raise
                self._read_at = now
                self.reads += 1
        finally:
            self._lock.release()
        return self._value


_load = LoadSignal()


def load_signal() -> LoadSignal:
    return _load


# --------------------------------------------------------------------------- the hook


def admit(candidates: Sequence[Candidate]) -> dict[int, Shed]:
    """replay's admission hook: the shed events by index; every other event is admitted."""
    shed: dict[int, Shed] = {}
    thresholds: dict[str, float] = settings.SHED_LAG_SECONDS
    if thresholds and any(c.priority in thresholds for c in candidates):
        lag = _load.lag()
        for c in candidates:
            limit = thresholds.get(c.priority)
            if limit is not None and lag > limit:
                # The backlog is at least this far past the threshold: no sooner than that
                # does it come back under (a hint, at most five minutes).
                shed[c.index] = Shed(OVERLOADED, whole_seconds(min(lag - limit, 300.0)))

    by_service: dict[int, list[Candidate]] = {}
    for c in candidates:
        if c.rate is not None and c.index not in shed:
            by_service.setdefault(c.service_id, []).append(c)
    for service_id, group in by_service.items():
        shed.update(_take_tokens(service_id, group))
    if shed:
        _record(candidates, shed)
    return shed


def _take_tokens(service_id: int, group: list[Candidate]) -> dict[int, Shed]:
    first = group[0]
    rate = float(first.rate or 0.0)
    burst = effective_burst(rate, first.burst) or 1
    reserve = settings.ADMISSION_URGENT_RESERVE * burst
    ordered = sorted(group, key=lambda c: ORDER.get(c.priority, 2))  # stable: ingest order
    urgent = [c for c in ordered if c.priority in URGENT]
    normal = [c for c in ordered if c.priority not in URGENT]
    try:
        got = buckets().take(KEY.format(service_id), rate, burst, len(urgent), len(normal), reserve)
    except Exception:  # Redis is down: admit (ingest must not fail on its guard) and say so
        log.exception("admission bucket unavailable; admitting service %s", first.service_slug)
        return {}
    shed_urgent, shed_normal = urgent[got.urgent :], normal[got.normal :]
    if not shed_urgent and not shed_normal:
        return {}
    wait_urgent, wait_normal = retry_after(got, len(shed_urgent), len(shed_normal), rate, reserve)
    out = {c.index: Shed(RATE_LIMITED, wait_urgent) for c in shed_urgent}
    out.update({c.index: Shed(RATE_LIMITED, wait_normal) for c in shed_normal})
    return out


def _record(candidates: Sequence[Candidate], shed: dict[int, Shed]) -> None:
    """The shed counter, and this minute's tally rows: one statement, only when something was
    shed (the normal path writes nothing)."""
    from breakers.telemetry import INGEST_SHED

    counts: dict[tuple[int, str, str, str], int] = {}
    for c in candidates:
        decision = shed.get(c.index)
        if decision is None:
            continue
        key = (c.service_id, c.service_slug, c.priority, decision.reason)
        counts[key] = counts.get(key, 0) + 1
    tallies: dict[tuple[int, str], int] = {}
    for (service_id, slug, priority, reason), n in counts.items():
        INGEST_SHED.labels(slug, priority, reason).inc(n)
        tallies[(service_id, reason)] = tallies.get((service_id, reason), 0) + n
    try:
        add_tallies(tallies)
    except Exception:  # a tally is for the chart: never worth failing the request over
        log.exception("writing shed tallies failed")
        if connection.in_atomic_block:
            raise


def add_tallies(tallies: dict[tuple[int, str], int], at: datetime | None = None) -> None:
    """Add to the per-minute shed counts: one upsert (ON CONFLICT, which PostgreSQL and
    SQLite both have) that adds to a row another request may be adding to at the same time."""
    from breakers.models import ShedTally

    if not tallies:
        return
    minute = (at or timezone.now()).replace(second=0, microsecond=0)
    table = connection.ops.quote_name(ShedTally._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s)"] * len(tallies))
    params: list[Any] = []
    for (service_id, reason), n in sorted(tallies.items()):
        params += [service_id, minute, reason, n]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (service_id, minute, reason, count) VALUES {values} "
            f"ON CONFLICT (service_id, minute, reason) "
            f"DO UPDATE SET count = {table}.count + excluded.count",
            params,
        )


def shed_per_minute(service_id: int, since: datetime) -> list[dict[str, Any]]:
    """Shed counts per minute and reason since `since`, oldest first."""
    from breakers.models import ShedTally

    rows: Any = (
        ShedTally.objects.filter(service_id=service_id, minute__gte=since)
        .order_by("minute", "reason")
        .values("minute", "reason", "count")
    )
    return list(rows)


def purge_tallies(now: datetime | None = None) -> int:
    from breakers.models import ShedTally

    cutoff = (now or timezone.now()) - timedelta(days=settings.SHED_TALLY_RETENTION_DAYS)
    deleted, _ = ShedTally.objects.filter(minute__lt=cutoff).delete()
    return deleted


def summary(service: Service, now: datetime, hours: int = 6) -> dict[str, Any]:
    """A service's admission settings and what was shed over the last `hours`: for the
    service page and `GET /api/v1/services/{slug}/admission`."""
    since = (now - timedelta(hours=hours)).replace(second=0, microsecond=0)
    minutes = shed_per_minute(service.pk, since)
    burst = effective_burst(service.admission_rate, service.admission_burst)
    totals: dict[str, int] = {}
    for row in minutes:
        totals[row["reason"]] = totals.get(row["reason"], 0) + row["count"]
    return {
        "rate": service.admission_rate,
        "burst": service.admission_burst,
        "effective_burst": burst,
        "urgent_reserve": (
            None if burst is None else round(settings.ADMISSION_URGENT_RESERVE * burst, 3)
        ),
        "shed_lag_seconds": dict(settings.SHED_LAG_SECONDS),
        "since": since,
        "shed_total": sum(totals.values()),
        "shed_by_reason": totals,
        "per_minute": minutes,
    }
