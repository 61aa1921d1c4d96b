"""One contract, two stores: InProcessStore (Python rules) and RedisStore (the same rules in
Lua). Every test here runs against both; the last test also runs random operation sequences
through both side by side and requires identical records."""

from __future__ import annotations

import itertools
import uuid

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from breakers.engine import (
    Batch,
    Breaker,
    BreakerConfig,
    BreakerOpen,
    HalfOpenPolicy,
    InProcessStore,
    Outcome,
    Snapshot,
    State,
    StateStore,
    WindowType,
)
from breakers.engine.redis_store import RedisStore
from tests.conftest import require_redis

T0 = 1_000.0
QUIET = {
    "consecutive_failures": 0,
    "failure_rate_threshold": None,
    "slow_call_rate_threshold": None,
}


def purge(prefix: str) -> None:
    client = redis.Redis.from_url(require_redis())
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def new_redis_store() -> RedisStore:
    # No background threads: flushes run inline, so the contract is deterministic.
    return RedisStore(
        require_redis(),
        prefix=f"test:contract:{uuid.uuid4().hex[:10]}:",
        start_threads=False,
        flush_max_calls=1,
    )


@pytest.fixture(params=["inprocess", "redis"])
def store(request):
    if request.param == "inprocess":
        yield InProcessStore()
        return
    s = new_redis_store()
    yield s
    s.close()
    purge(s.prefix)
    # A Lua error would silently become a fallback; the contract must run on Redis itself.
    assert s.fallbacks == 0 and s.redis_errors == 0, "RedisStore fell back during the test"


@pytest.fixture
def name():
    return f"dep-{uuid.uuid4().hex[:8]}"


def batch(codes: str, snap: Snapshot | None = None, buckets=()) -> Batch:
    stripped = codes.rstrip("13")
    return Batch(
        epoch=snap.epoch if snap else "",
        version=snap.version if snap else 0,
        codes=codes.encode(),
        buckets=tuple(buckets),
        trailing_failures=len(codes) - len(stripped),
        had_success=bool(stripped),
    )


def flush(
    store: StateStore, name: str, codes: str, cfg: BreakerConfig, now: float = T0, buckets=()
) -> Snapshot:
    return store.flush(name, batch(codes, store.load(name), buckets), cfg, now)


def tripped(store: StateStore, name: str, cfg: BreakerConfig, now: float = T0) -> Snapshot:
    snap = flush(store, name, "1" * cfg.consecutive_failures, cfg, now)
    assert snap.state is State.OPEN
    return snap


def test_is_a_state_store(store):
    assert isinstance(store, StateStore)


def test_unknown_breaker_loads_as_closed(store, name):
    assert store.load(name) == Snapshot(name)


def test_load_many_reads_several_records_at_once_as_load_does(store, name):
    cfg = BreakerConfig(**QUIET)
    flush(store, name, "0101", cfg)
    other = f"{name}-b"
    flush(store, other, "0003", cfg)
    unknown = f"{name}-never"
    many = store.load_many([name, other, unknown])
    assert many == {n: store.load(n) for n in (name, other, unknown)}
    assert (many[name].calls, many[name].failures) == (4, 2)
    assert (many[other].calls, many[other].failures, many[other].slow_calls) == (4, 1, 1)
    assert many[unknown] == Snapshot(unknown) and store.load_many([]) == {}


def test_a_reader_without_breakers_comes_back_from_the_fallback_when_redis_answers(name):
    """The web process reads the board's windows with nothing attached, so no maintenance
    thread resyncs it: load_many itself tries again once retry_interval_s has passed."""
    writer, reader = new_redis_store(), new_redis_store()
    reader.prefix = writer.prefix
    try:
        flush(writer, name, "0101", BreakerConfig(**QUIET))
        reader._enter_fallback(redis.ConnectionError("blip"))
        assert not reader.available and reader.load_many([name])[name].calls == 0
        reader._next_retry = 0.0  # the retry is due
        many = reader.load_many([name])
        assert reader.available and many[name].calls == 4
    finally:
        writer.close()
        reader.close()
        purge(writer.prefix)


def test_flush_accumulates_window_figures(store, name):
    cfg = BreakerConfig(**QUIET)
    snap = flush(store, name, "0101", cfg)
    assert (snap.state, snap.calls, snap.failures, snap.slow_calls) == (State.CLOSED, 4, 2, 0)
    snap = flush(store, name, "23", cfg)
    assert (snap.calls, snap.failures, snap.slow_calls) == (6, 3, 2)
    loaded = store.load(name)
    assert (loaded.calls, loaded.failures, loaded.slow_calls) == (6, 3, 2)


def test_streak_spans_batches_and_trip_sets_the_record(store, name):
    cfg = BreakerConfig(**{**QUIET, "consecutive_failures": 3})
    assert flush(store, name, "011", cfg).state is State.CLOSED
    snap = flush(store, name, "1", cfg, now=T0 + 1)
    assert snap.state is State.OPEN
    assert snap.reason == "consecutive_failures"
    assert snap.version == 1
    assert snap.changed_at == T0 + 1
    assert snap.open_until == T0 + 1 + 30
    assert snap.origin == store.node_id
    assert (snap.calls, snap.failures) == (4, 3)  # the figures that tripped it
    assert store.load(name) == snap


def test_success_inside_a_batch_resets_the_streak(store, name):
    cfg = BreakerConfig(**{**QUIET, "consecutive_failures": 3})
    assert flush(store, name, "1110", cfg).state is State.CLOSED  # ends with a success
    assert flush(store, name, "11", cfg).state is State.CLOSED
    assert flush(store, name, "1", cfg).state is State.OPEN


def test_batch_from_an_older_version_is_dropped(store, name):
    cfg = BreakerConfig(**{**QUIET, "consecutive_failures": 2})
    old = store.load(name)
    tripped(store, name, cfg)
    store.force(name, None, T0)  # CLOSED again, version 2
    snap = store.flush(name, batch("11", old), cfg, T0)  # calls made before all that
    assert snap.state is State.CLOSED and snap.calls == 0


RATE_TABLE = [
    # id, config, flushes, expected state, reason
    (
        "below-minimum",
        {"failure_rate_threshold": 50, "minimum_calls": 4, "window_size": 4},
        ["1", "0", "1"],
        State.CLOSED,
        "",
    ),
    (
        "at-minimum",
        {"failure_rate_threshold": 50, "minimum_calls": 4, "window_size": 4},
        ["1", "0", "1", "0"],
        State.OPEN,
        "failure_rate",
    ),
    (
        "under-threshold",
        {"failure_rate_threshold": 50, "minimum_calls": 4, "window_size": 8},
        ["100", "100", "10"],
        State.CLOSED,
        "",
    ),
    (
        "window-slides",
        {"failure_rate_threshold": 75, "minimum_calls": 4, "window_size": 4},
        ["0000", "111"],
        State.OPEN,
        "failure_rate",
    ),
    (
        "window-slides-not-yet",
        {"failure_rate_threshold": 75, "minimum_calls": 4, "window_size": 4},
        ["0000", "11"],
        State.CLOSED,
        "",
    ),
    (
        "oversized-batch",
        {"failure_rate_threshold": 50, "minimum_calls": 4, "window_size": 4},
        ["11110000"],
        State.CLOSED,
        "",
    ),
    (
        "slow-rate",
        {"slow_call_rate_threshold": 50, "minimum_calls": 4, "window_size": 4},
        ["2", "0", "3", "0"],
        State.OPEN,
        "slow_call_rate",
    ),
    (
        "failure-rate-wins-over-slow",
        {
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": 50,
            "minimum_calls": 2,
            "window_size": 2,
        },
        ["33"],
        State.OPEN,
        "failure_rate",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "flushes", "state", "reason"),
    [r[1:] for r in RATE_TABLE],
    ids=[r[0] for r in RATE_TABLE],
)
def test_rate_rules(store, name, overrides, flushes, state, reason):
    cfg = BreakerConfig(**{**QUIET, **overrides})
    for codes in flushes:
        snap = flush(store, name, codes, cfg)
    assert snap.state is state
    assert snap.reason == reason


def test_count_window_keeps_the_last_n_calls(store, name):
    cfg = BreakerConfig(**{**QUIET, "window_size": 4, "minimum_calls": 1})
    flush(store, name, "111", cfg)
    snap = flush(store, name, "0002", cfg)
    assert (snap.calls, snap.failures, snap.slow_calls) == (4, 0, 1)


def test_time_window_buckets_and_expiry(store, name):
    cfg = BreakerConfig(
        **{**QUIET, "window_type": WindowType.TIME, "window_size": 10, "minimum_calls": 1}
    )
    snap = flush(store, name, "", cfg, now=1005.5, buckets=[(1000, 3, 1, 0), (1005, 2, 2, 1)])
    assert (snap.calls, snap.failures, snap.slow_calls) == (5, 3, 1)
    snap = flush(store, name, "", cfg, now=1005.9, buckets=[(1005, 1, 0, 1)])
    assert (snap.calls, snap.failures, snap.slow_calls) == (6, 3, 2)
    # At 1010 the window is (1000, 1010]: second 1000 has left it.
    snap = flush(store, name, "", cfg, now=1010.2, buckets=[(1010, 1, 0, 0)])
    assert (snap.calls, snap.failures, snap.slow_calls) == (4, 2, 2)


def test_new_window_layout_resets_the_window(store, name):
    cfg = BreakerConfig(**{**QUIET, "window_size": 10, "minimum_calls": 1})
    flush(store, name, "1111", cfg)
    snap = flush(store, name, "0", cfg.replace(window_size=20))
    assert (snap.calls, snap.failures) == (1, 0)


def test_forced_closed_records_but_never_trips(store, name):
    cfg = BreakerConfig(consecutive_failures=2)
    store.force(name, State.FORCED_CLOSED, T0)
    snap = flush(store, name, "1111", cfg)
    assert snap.state is State.FORCED_CLOSED
    assert (snap.calls, snap.failures) == (4, 4)


@pytest.mark.parametrize("mode", [State.FORCED_OPEN, State.DISABLED, State.OPEN])
def test_flush_in_a_non_passing_state_is_dropped(store, name, mode):
    cfg = BreakerConfig(consecutive_failures=2)
    if mode is State.OPEN:
        tripped(store, name, cfg)
    else:
        store.force(name, mode, T0)
    before = store.load(name)
    after = flush(store, name, "1111", cfg)
    assert after == before


def test_probe_only_after_the_open_wait(store, name):
    cfg = BreakerConfig(consecutive_failures=1, probe_lease_s=20)
    snap = tripped(store, name, cfg)
    res = store.acquire_probe(name, cfg, T0 + 29.9)
    assert (res.token, res.retry_at, res.snapshot.state) == (None, snap.open_until, State.OPEN)
    res = store.acquire_probe(name, cfg, T0 + 30)
    assert res.token and res.retry_at is None
    assert res.snapshot.state is State.HALF_OPEN
    assert (res.snapshot.version, res.snapshot.reason) == (2, "open_wait_elapsed")
    again = store.acquire_probe(name, cfg, T0 + 31)
    assert again.token is None
    assert again.retry_at == T0 + 30 + 20  # when the lease runs out
    assert again.snapshot.version == 2


def test_an_unreturned_probe_lease_expires(store, name):
    cfg = BreakerConfig(consecutive_failures=1, probe_lease_s=5)
    tripped(store, name, cfg)
    first = store.acquire_probe(name, cfg, T0 + 30).token
    assert store.acquire_probe(name, cfg, T0 + 34.9).token is None
    second = store.acquire_probe(name, cfg, T0 + 35).token
    assert second and second != first
    # The first probe's late answer no longer counts.
    assert store.complete_probe(name, first, True, cfg, T0 + 36).state is State.HALF_OPEN
    assert store.complete_probe(name, second, True, cfg, T0 + 36).state is State.CLOSED


def test_probe_slots_and_spacing(store, name):
    cfg = BreakerConfig(
        consecutive_failures=1,
        half_open_max_probes=2,
        half_open_probe_interval_s=1.0,
        probe_lease_s=10,
    )
    tripped(store, name, cfg)
    t = T0 + 30
    assert store.acquire_probe(name, cfg, t).token
    spaced = store.acquire_probe(name, cfg, t + 0.25)
    assert spaced.token is None and spaced.retry_at == t + 1.0
    assert store.acquire_probe(name, cfg, t + 1.0).token
    full = store.acquire_probe(name, cfg, t + 5)
    assert full.token is None and full.retry_at == t + 10  # the first lease's expiry


def test_probe_success_closes_with_a_fresh_window(store, name):
    cfg = BreakerConfig(consecutive_failures=1)
    tripped(store, name, cfg)
    token = store.acquire_probe(name, cfg, T0 + 30).token
    snap = store.complete_probe(name, token, True, cfg, T0 + 30.5)
    assert (snap.state, snap.reason, snap.version) == (State.CLOSED, "probe_succeeded", 3)
    assert (snap.calls, snap.failures, snap.reopen_count) == (0, 0, 0)
    assert flush(store, name, "0", cfg).calls == 1


def test_success_threshold_needs_several_probes(store, name):
    cfg = BreakerConfig(
        consecutive_failures=1, half_open_success_threshold=2, half_open_probe_interval_s=0
    )
    tripped(store, name, cfg)
    t1 = store.acquire_probe(name, cfg, T0 + 30).token
    snap = store.complete_probe(name, t1, True, cfg, T0 + 30)
    # Same state, new version: other nodes learn that the slot is free again.
    assert (snap.state, snap.version, snap.probe_successes) == (State.HALF_OPEN, 3, 1)
    t2 = store.acquire_probe(name, cfg, T0 + 30).token
    assert store.complete_probe(name, t2, True, cfg, T0 + 30).state is State.CLOSED


def test_probe_failure_reopens_with_capped_backoff(store, name):
    cfg = BreakerConfig(
        consecutive_failures=1, open_wait_s=10, open_wait_multiplier=3, max_open_wait_s=50
    )
    snap = tripped(store, name, cfg)
    waits = []
    for _ in range(4):
        now = snap.open_until
        token = store.acquire_probe(name, cfg, now).token
        snap = store.complete_probe(name, token, False, cfg, now)
        assert (snap.state, snap.reason) == (State.OPEN, "probe_failed")
        waits.append(snap.open_until - now)
    assert waits == [30, 50, 50, 50]
    assert snap.reopen_count == 4


def test_unknown_probe_token_is_ignored(store, name):
    cfg = BreakerConfig(consecutive_failures=1)
    tripped(store, name, cfg)
    store.acquire_probe(name, cfg, T0 + 30)
    before = store.load(name)
    assert store.complete_probe(name, "not-a-token", False, cfg, T0 + 31) == before


@pytest.mark.parametrize("mode", [State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED, None])
def test_force(store, name, mode):
    cfg = BreakerConfig(consecutive_failures=1)
    tripped(store, name, cfg)
    snap = store.force(name, mode, T0 + 1)
    assert snap.state is (State.CLOSED if mode is None else mode)
    assert snap.version == 2
    assert snap.reason == ("operator_auto" if mode is None else "operator")
    assert (snap.calls, snap.reopen_count) == (0, 0)
    assert store.load(name) == snap
    with pytest.raises(ValueError):
        store.force(name, State.HALF_OPEN, T0)


def test_delete_forgets_the_record(store, name):
    tripped(store, name, BreakerConfig(consecutive_failures=1))
    store.delete(name)
    assert store.load(name) == Snapshot(name)


# -- the failure_rate (Resilience4j) half-open policy ----------------------------------------

R4J = {
    "consecutive_failures": 1,
    "half_open_policy": "failure_rate",
    "half_open_permitted_calls": 4,
    "half_open_probe_interval_s": 0,
    "probe_lease_s": 20,
}


def probes(store: StateStore, name: str, cfg: BreakerConfig, n: int, now: float) -> list[str]:
    tokens = [store.acquire_probe(name, cfg, now).token for _ in range(n)]
    assert all(tokens), tokens
    return tokens  # type: ignore[return-value]


def test_failure_rate_policy_lets_the_permitted_calls_through_together(store, name):
    cfg = BreakerConfig(**R4J)
    tripped(store, name, cfg)
    t = T0 + 30
    tokens = probes(store, name, cfg, 4, t)  # all four at once: the limit is not "in flight"
    refused = store.acquire_probe(name, cfg, t)
    assert refused.token is None and refused.retry_at == t + 20  # the first lease's expiry
    # A failed probe does not re-open at once: the four are judged together.
    snap = store.complete_probe(name, tokens[0], False, cfg, t + 1)
    assert (snap.state, snap.probe_failures, snap.probe_successes) == (State.HALF_OPEN, 1, 0)
    for token in tokens[1:3]:
        snap = store.complete_probe(name, token, True, cfg, t + 1)
    assert snap.state is State.HALF_OPEN
    snap = store.complete_probe(name, tokens[3], True, cfg, t + 1)
    assert (snap.state, snap.reason) == (State.CLOSED, "probe_succeeded")  # 25 % < 50 %
    assert (snap.probe_failures, snap.probe_successes, snap.reopen_count) == (0, 0, 0)


def test_failure_rate_policy_reopens_when_the_rate_reaches_the_threshold(store, name):
    cfg = BreakerConfig(**R4J)
    tripped(store, name, cfg)
    t = T0 + 30
    for token, ok in zip(probes(store, name, cfg, 4, t), [True, False, True, False], strict=True):
        snap = store.complete_probe(name, token, ok, cfg, t)
    assert (snap.state, snap.reason, snap.reopen_count) == (State.OPEN, "probe_failure_rate", 1)
    assert snap.open_until == t + 60  # backed off like a failed probe


def test_failure_rate_policy_judges_the_slow_call_rate(store, name):
    cfg = BreakerConfig(**R4J, slow_call_rate_threshold=50.0)
    tripped(store, name, cfg)
    t = T0 + 30
    for token, slow in zip(probes(store, name, cfg, 4, t), [True, True, False, False], strict=True):
        snap = store.complete_probe(name, token, True, cfg, t, slow)
    assert (snap.state, snap.reason) == (State.OPEN, "probe_slow_call_rate")


def test_failure_rate_policy_caps_calls_in_total_not_in_flight(store, name):
    cfg = BreakerConfig(**{**R4J, "half_open_permitted_calls": 3})
    tripped(store, name, cfg)
    t = T0 + 30
    for _ in range(2):
        (token,) = probes(store, name, cfg, 1, t)
        assert store.complete_probe(name, token, True, cfg, t).state is State.HALF_OPEN
    (last,) = probes(store, name, cfg, 1, t)
    assert store.acquire_probe(name, cfg, t).token is None  # 2 done + 1 in flight = 3
    assert store.complete_probe(name, last, True, cfg, t).state is State.CLOSED


def test_a_lowered_permitted_count_is_judged_at_the_next_probe(store, name):
    cfg = BreakerConfig(**R4J)
    tripped(store, name, cfg)
    t = T0 + 30
    for token in probes(store, name, cfg, 2, t):
        store.complete_probe(name, token, True, cfg, t)
    lowered = cfg.replace(half_open_permitted_calls=2)
    res = store.acquire_probe(name, lowered, t + 1)
    assert (res.token, res.snapshot.state, res.snapshot.reason) == (
        None,
        State.CLOSED,
        "probe_succeeded",
    )


@pytest.mark.parametrize("policy", list(HalfOpenPolicy))
def test_half_open_longer_than_the_max_wait_reopens(store, name, policy):
    cfg = BreakerConfig(**{**R4J, "half_open_policy": policy, "half_open_max_wait_s": 5})
    tripped(store, name, cfg)
    t = T0 + 30
    (token,) = probes(store, name, cfg, 1, t)
    if policy is HalfOpenPolicy.FIRST_FAILURE:
        waiting = store.acquire_probe(name, cfg, t + 1)
        assert waiting.retry_at == t + 5  # the deadline comes before the lease's expiry
    res = store.acquire_probe(name, cfg, t + 5)
    assert (res.token, res.snapshot.state, res.snapshot.reason) == (
        None,
        State.OPEN,
        "half_open_max_wait",
    )
    assert res.retry_at == res.snapshot.open_until == t + 5 + 60
    # The probe's late answer no longer counts.
    assert store.complete_probe(name, token, True, cfg, t + 6).state is State.OPEN


def test_a_probe_completed_after_the_max_wait_reopens(store, name):
    cfg = BreakerConfig(**R4J, half_open_max_wait_s=5)
    tripped(store, name, cfg)
    (token,) = probes(store, name, cfg, 1, T0 + 30)
    snap = store.complete_probe(name, token, True, cfg, T0 + 35)
    assert (snap.state, snap.reason) == (State.OPEN, "half_open_max_wait")


@pytest.mark.parametrize(("slow_rate", "state"), [(None, State.CLOSED), (50.0, State.OPEN)])
def test_first_failure_policy_fails_a_slow_probe_only_when_slowness_can_trip(
    store, name, slow_rate, state
):
    cfg = BreakerConfig(consecutive_failures=1, slow_call_rate_threshold=slow_rate)
    tripped(store, name, cfg)
    token = store.acquire_probe(name, cfg, T0 + 30).token
    assert store.complete_probe(name, token, True, cfg, T0 + 30, True).state is state


# -- through Breakers -----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def test_breakers_of_one_name_follow_each_other(store, name):
    clock = Clock()
    cfg = BreakerConfig(consecutive_failures=2, open_wait_s=5, max_open_wait_s=5)
    a = Breaker(name, cfg, store, clock=clock)
    seen = []
    b = Breaker(name, cfg, store, clock=clock, listeners=[seen.append])
    for breaker in (a, b):
        breaker.record(breaker.acquire(), Outcome.FAILURE, 0.01)
    assert a.state is b.state is State.OPEN
    clock.t += 5
    probe = a.acquire()
    assert probe.is_probe and b.state is State.HALF_OPEN
    with pytest.raises(BreakerOpen):
        b.acquire()  # the only slot is taken by a
    a.record(probe, Outcome.SUCCESS, 0.01)
    assert b.state is State.CLOSED
    b.force(State.FORCED_OPEN)
    assert a.state is State.FORCED_OPEN
    assert [t.to_state for t in seen] == [
        State.OPEN,
        State.HALF_OPEN,
        State.CLOSED,
        State.FORCED_OPEN,
    ]


def test_a_late_breaker_starts_from_the_shared_record(store, name):
    cfg = BreakerConfig(consecutive_failures=1)
    tripped(store, name, cfg)
    late = Breaker(name, cfg, store, clock=Clock())
    assert late.state is State.OPEN
    with pytest.raises(BreakerOpen) as exc:
        late.acquire()
    assert exc.value.retry_after == pytest.approx(30)


# -- Lua and Python agree, operation for operation ------------------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("flush"), st.text(alphabet="0123", min_size=1, max_size=7)),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 1.0, 2.5, 7.0, 30.0])),
        st.tuples(st.just("probe")),
        st.tuples(st.just("complete"), st.integers(0, 3), st.booleans(), st.booleans()),
        st.tuples(
            st.just("force"),
            st.sampled_from([None, State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED]),
        ),
    ),
    max_size=40,
)


@st.composite
def CONFIGS(draw) -> BreakerConfig:
    fields = {
        "consecutive_failures": draw(st.sampled_from([0, 3])),
        "failure_rate_threshold": draw(st.sampled_from([None, 50.0, 33.3])),
        "slow_call_rate_threshold": draw(st.sampled_from([None, 60.0])),
        "window_type": draw(st.sampled_from(list(WindowType))),
        "window_size": draw(st.sampled_from([5, 8])),
        "minimum_calls": draw(st.sampled_from([3, 5])),
        "open_wait_s": draw(st.sampled_from([2.0, 5.0])),
        "open_wait_multiplier": draw(st.sampled_from([1.5, 2.0])),
        "max_open_wait_s": 9.0,
        "half_open_max_probes": draw(st.sampled_from([1, 2])),
        "half_open_probe_interval_s": draw(st.sampled_from([0.0, 1.0])),
        "half_open_success_threshold": draw(st.sampled_from([1, 2])),
        "probe_lease_s": draw(st.sampled_from([3.0, 10.0])),
        "half_open_policy": draw(st.sampled_from(list(HalfOpenPolicy))),
        "half_open_permitted_calls": draw(st.sampled_from([1, 3])),
        "half_open_max_wait_s": draw(st.sampled_from([0.0, 4.0])),
    }
    if fields["half_open_policy"] is HalfOpenPolicy.FAILURE_RATE and not (
        fields["failure_rate_threshold"] or fields["slow_call_rate_threshold"]
    ):
        fields["failure_rate_threshold"] = 50.0  # the policy needs a rate to judge by
    return BreakerConfig(**fields)


_counter = itertools.count()


def _comparable(snap: Snapshot) -> tuple:
    return snap._replace(epoch="", origin="")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=CONFIGS(), ops=OPS)
def test_lua_matches_python(cfg, ops):
    rs = new_redis_store()
    mem = InProcessStore(node_id=rs.node_id)
    name = f"diff-{next(_counter)}"
    now = 1_700_000_000.123456  # a realistic wall clock: float precision matters
    tokens: list[tuple[str | None, str | None]] = []
    try:
        for op in ops:
            if op[0] == "advance":
                now += op[1]
                continue
            if op[0] == "flush":
                codes = op[1]
                if cfg.window_type is WindowType.TIME:
                    fails = sum(c in "13" for c in codes)
                    slow = sum(c in "23" for c in codes)
                    buckets, codes_sent = [(int(now), len(codes), fails, slow)], ""
                else:
                    buckets, codes_sent = [], codes
                results = []
                for s in (mem, rs):
                    b = batch(codes, s.load(name), buckets)
                    results.append(s.flush(name, b._replace(codes=codes_sent.encode()), cfg, now))
            elif op[0] == "probe":
                a, b = mem.acquire_probe(name, cfg, now), rs.acquire_probe(name, cfg, now)
                assert (a.token is None, a.retry_at) == (b.token is None, b.retry_at)
                tokens.append((a.token, b.token))
                results = [a.snapshot, b.snapshot]
            elif op[0] == "complete":
                if not tokens:
                    continue
                ta, tb = tokens[op[1] % len(tokens)]
                results = [
                    s.complete_probe(name, t or "none", op[2], cfg, now, op[3])
                    for s, t in ((mem, ta), (rs, tb))
                ]
            else:
                results = [s.force(name, op[1], now) for s in (mem, rs)]
            assert _comparable(results[0]) == _comparable(results[1]), op
            assert _comparable(mem.load(name)) == _comparable(rs.load(name)), op
        assert rs.fallbacks == 0
    finally:
        rs.close()
        purge(rs.prefix)
