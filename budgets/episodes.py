"""Episode detection for budget reports: pure Python, standard library only, no Django.

An *episode* is a run of adjacent ledger buckets whose burn rate is above 1 (spending the
budget faster than the period allows). Buckets are given as ``(start, bad, allowed_bad)``:
``bad`` is what the bucket spent (bad events, or bad slices for timeslices SLOs) and
``allowed_bad`` what the budget allows in a bucket of that traffic (events x (1 - target),
or slices x (1 - target)), so the bucket's burn rate is ``bad / allowed_bad``. Two buckets are
adjacent when one starts where the other ends; a missing bucket (no traffic) breaks a run.

Breaker episodes pair a breaker's transitions: it opens (from closed), may go half-open and
re-open any number of times, and the episode ends when it closes again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "BreakerEpisode",
    "Episode",
    "breaker_episodes",
    "burn_episodes",
    "first_failure",
    "mean_duration",
]


@dataclass(frozen=True, slots=True)
class Episode:
    """Buckets [start, end) that burned above 1x, and what they spent."""

    start: datetime
    end: datetime
    bad: float  # events (or slices) spent in the episode
    allowed_bad: float  # what the budget allowed for the episode's traffic
    peak_burn_rate: float

    @property
    def burn_rate(self) -> float:
        return self.bad / self.allowed_bad if self.allowed_bad else 0.0

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def burn_episodes(
    buckets: Iterable[tuple[datetime, float, float]], *, bucket: timedelta, threshold: float = 1.0
) -> list[Episode]:
    """Merge adjacent buckets whose burn rate ``bad / allowed_bad`` exceeds ``threshold``.

    A bucket with bad events but no allowance (impossible for a valid target) counts as
    burning. Buckets may come in any order; repeated starts are summed first.
    """
    if bucket <= timedelta(0):
        raise ValueError("bucket must be a positive duration")
    sums: dict[datetime, list[float]] = {}
    for start, bad, allowed in buckets:
        cell = sums.setdefault(start, [0.0, 0.0])
        cell[0] += bad
        cell[1] += allowed
    episodes: list[Episode] = []
    run: list[tuple[datetime, float, float, float]] = []

    def close() -> None:
        if run:
            episodes.append(
                Episode(
                    start=run[0][0],
                    end=run[-1][0] + bucket,
                    bad=sum(r[1] for r in run),
                    allowed_bad=sum(r[2] for r in run),
                    peak_burn_rate=max(r[3] for r in run),
                )
            )
            run.clear()

    for start in sorted(sums):
        bad, allowed = sums[start]
        rate = bad / allowed if allowed else (float("inf") if bad else 0.0)
        if rate <= threshold:
            close()
            continue
        if run and run[-1][0] + bucket != start:
            close()
        run.append((start, bad, allowed, rate))
    close()
    return episodes


@dataclass(frozen=True, slots=True)
class BreakerEpisode:
    """A breaker open from ``opened_at`` until ``closed_at`` (None: still open at the end)."""

    service_id: int
    breaker: str
    opened_at: datetime
    closed_at: datetime | None
    reopenings: int = 0  # half-open probes that failed and opened it again

    @property
    def time_to_recover(self) -> timedelta | None:
        return self.closed_at - self.opened_at if self.closed_at else None


def breaker_episodes(
    transitions: Iterable[tuple[int, str, str, str, datetime]],
) -> list[BreakerEpisode]:
    """Pair ``(service_id, breaker, from_state, to_state, at)`` transitions into episodes.

    An episode starts when a breaker goes to ``open`` while not already in an episode and
    ends at its next ``closed``; opens in between (half-open -> open) are re-openings. Forced
    and disabled states count as not open. Sorted by opening time.
    """
    ordered = sorted(transitions, key=lambda t: (t[1], t[4]))
    current: dict[str, tuple[int, datetime, int]] = {}
    out: list[BreakerEpisode] = []
    for service_id, name, _from, to_state, at in ordered:
        if to_state == "open":
            if name in current:
                sid, opened, again = current[name]
                current[name] = (sid, opened, again + 1)
            else:
                current[name] = (service_id, at, 0)
        elif to_state == "closed" and name in current:
            sid, opened, again = current.pop(name)
            out.append(BreakerEpisode(sid, name, opened, at, again))
    for name, (sid, opened, again) in current.items():
        out.append(BreakerEpisode(sid, name, opened, None, again))
    return sorted(out, key=lambda e: (e.opened_at, e.breaker))


def first_failure(
    failed_minutes: Sequence[datetime], opened_at: datetime, *, lookback: timedelta
) -> datetime | None:
    """The earliest failed minute in [opened_at - lookback, opened_at], or None.

    Detection time is then ``opened_at - first_failure``: how long failures ran before the
    breaker stopped calling the downstream.
    """
    low = opened_at - lookback
    candidates = [m for m in failed_minutes if low <= m <= opened_at]
    return min(candidates) if candidates else None


def mean_duration(durations: Iterable[timedelta | None]) -> timedelta | None:
    """The mean of the known durations; None when there are none."""
    known = [d for d in durations if d is not None]
    if not known:
        return None
    return sum(known, timedelta(0)) / len(known)
