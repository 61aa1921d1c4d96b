"""Episode detection on constructed ledgers: pure maths, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budgets.episodes import (
    BreakerEpisode,
    breaker_episodes,
    burn_episodes,
    first_failure,
    mean_duration,
)

pytestmark = pytest.mark.smoke

T0 = datetime(2025, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def at(hours: float) -> datetime:
    return T0 + hours * H


def test_adjacent_burning_buckets_merge_into_one_episode():
    buckets = [(at(0), 1, 10), (at(1), 20, 10), (at(2), 30, 10), (at(3), 5, 10)]
    [episode] = burn_episodes(buckets, bucket=H)
    assert (episode.start, episode.end) == (at(1), at(3))
    assert episode.bad == 50
    assert episode.allowed_bad == 20
    assert episode.burn_rate == pytest.approx(2.5)
    assert episode.peak_burn_rate == pytest.approx(3.0)


def test_a_missing_bucket_breaks_a_run():
    buckets = [(at(0), 20, 10), (at(2), 20, 10)]
    episodes = burn_episodes(buckets, bucket=H)
    assert [(e.start, e.end) for e in episodes] == [(at(0), at(1)), (at(2), at(3))]


def test_a_burn_rate_of_exactly_one_is_not_an_episode():
    assert burn_episodes([(at(0), 10, 10), (at(1), 10, 10)], bucket=H) == []


def test_buckets_in_any_order_and_repeated_starts_are_summed():
    buckets = [(at(1), 15, 5), (at(0), 6, 5), (at(0), 6, 5)]
    [episode] = burn_episodes(buckets, bucket=H)
    assert (episode.start, episode.end, episode.bad) == (at(0), at(2), 27)


def test_bad_events_without_an_allowance_count_as_burning():
    [episode] = burn_episodes([(at(0), 3, 0)], bucket=H)
    assert episode.bad == 3


def test_breaker_transitions_pair_into_episodes_with_reopenings():
    transitions = [
        (1, "pay", "closed", "open", at(1)),
        (1, "pay", "open", "half_open", at(1.1)),
        (1, "pay", "half_open", "open", at(1.2)),
        (1, "pay", "open", "half_open", at(1.3)),
        (1, "pay", "half_open", "closed", at(1.5)),
        (2, "mail", "closed", "open", at(2)),
    ]
    assert breaker_episodes(transitions) == [
        BreakerEpisode(1, "pay", at(1), at(1.5), reopenings=1),
        BreakerEpisode(2, "mail", at(2), None),
    ]


def test_a_close_without_an_open_in_the_period_is_ignored():
    assert breaker_episodes([(1, "pay", "half_open", "closed", at(1))]) == []


def test_first_failure_looks_back_from_the_opening_only():
    minutes = [at(0), at(0.9), at(0.95), at(1.5)]
    assert first_failure(minutes, at(1), lookback=timedelta(minutes=30)) == at(0.9)
    assert first_failure(minutes, at(3), lookback=timedelta(minutes=30)) is None


def test_mean_duration_skips_unknown_values():
    assert mean_duration([H, None, 3 * H]) == 2 * H
    assert mean_duration([None]) is None
