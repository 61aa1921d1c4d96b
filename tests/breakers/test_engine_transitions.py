"""Table-driven tests of the breaker state machine (InProcessStore, fake clock)."""

from __future__ import annotations

import json
import logging

import pytest

from breakers.engine import (
    Breaker,
    BreakerConfig,
    BreakerOpen,
    InProcessStore,
    Outcome,
    Permit,
    State,
    Transition,
    WindowType,
)


class FakeClock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


# Steps: S success, F failure, T timeout, P permanent rejection; lower case s / f = slow;
# "+N" advances the clock N seconds; "xN" repeats the previous token N-1 more times.
CALLS = {
    "S": (Outcome.SUCCESS, 0.01),
    "F": (Outcome.FAILURE, 0.01),
    "T": (Outcome.TIMEOUT, 0.01),
    "P": (Outcome.REJECTED_PERMANENT, 0.01),
    "s": (Outcome.SUCCESS, 10.0),
    "f": (Outcome.FAILURE, 10.0),
}


def expand(script: str) -> list[str]:
    out: list[str] = []
    for tok in script.split():
        if tok.startswith("x"):
            out.extend(out[-1:] * (int(tok[1:]) - 1))
        else:
            out.append(tok)
    return out


def make(**overrides) -> tuple[Breaker, FakeClock, list[Transition]]:
    clock = FakeClock()
    events: list[Transition] = []
    cfg = BreakerConfig(**overrides)
    b = Breaker("dep", cfg, InProcessStore(), clock=clock, listeners=[events.append])
    return b, clock, events


def run(b: Breaker, clock: FakeClock, script: str) -> list[str]:
    """Drive the breaker; return per call 'ok' / 'probe' / 'rejected'."""
    log = []
    for tok in expand(script):
        if tok.startswith("+"):
            clock.advance(float(tok[1:]))
            continue
        outcome, duration = CALLS[tok]
        try:
            permit = b.acquire()
        except BreakerOpen:
            log.append("rejected")
            continue
        log.append("probe" if permit.is_probe else "ok")
        b.record(permit, outcome, duration)
    return log


# No rate tripping unless a row asks for it, so each row isolates one rule.
QUIET = {"failure_rate_threshold": None, "slow_call_rate_threshold": None}

TRIP_TABLE = [
    # id, config, script, expected state, expected reason of the last transition
    (
        "consecutive",
        {"consecutive_failures": 3, **QUIET},
        "F F F",
        State.OPEN,
        "consecutive_failures",
    ),
    ("consecutive-short", {"consecutive_failures": 3, **QUIET}, "F F", State.CLOSED, ""),
    ("success-resets-streak", {"consecutive_failures": 3, **QUIET}, "F F S F F", State.CLOSED, ""),
    (
        "timeouts-count",
        {"consecutive_failures": 3, **QUIET},
        "T F T",
        State.OPEN,
        "consecutive_failures",
    ),
    ("permanent-not-failure", {"consecutive_failures": 3, **QUIET}, "P x10", State.CLOSED, ""),
    (
        "permanent-configured-failure",
        {"consecutive_failures": 3, "failure_outcomes": ["FAILURE", "REJECTED_PERMANENT"], **QUIET},
        "P P P",
        State.OPEN,
        "consecutive_failures",
    ),
    (
        "timeout-configured-not-failure",
        {"consecutive_failures": 3, "failure_outcomes": ["FAILURE"], **QUIET},
        "T T T T",
        State.CLOSED,
        "",
    ),
    ("consecutive-disabled", {"consecutive_failures": 0, **QUIET}, "F x50", State.CLOSED, ""),
    (
        "rate-below-minimum",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 10,
            "window_size": 10,
        },
        "F S F S F S F S",
        State.CLOSED,
        "",
    ),
    (
        "rate-at-minimum",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 10,
            "window_size": 10,
        },
        "F S F S F S F S F S",
        State.OPEN,
        "failure_rate",
    ),
    (
        "rate-under-threshold",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 10,
            "window_size": 10,
        },
        "F S S F S S F S S F S S",
        State.CLOSED,
        "",
    ),
    # Count window of 10: the ten leading successes slide out one by one.
    (
        "count-window-slides-50pct",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 60,
            "slow_call_rate_threshold": None,
            "minimum_calls": 5,
            "window_size": 10,
        },
        "S x10 F x5",
        State.CLOSED,
        "",
    ),
    (
        "count-window-slides-60pct",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 60,
            "slow_call_rate_threshold": None,
            "minimum_calls": 5,
            "window_size": 10,
        },
        "S x10 F x6",
        State.OPEN,
        "failure_rate",
    ),
    (
        "time-window-ages-out",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 4,
            "window_type": "time",
            "window_size": 10,
        },
        "F F +11 S S S S",
        State.CLOSED,
        "",
    ),
    (
        "time-window-within",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 4,
            "window_type": "time",
            "window_size": 10,
        },
        "F F +5 S S",
        State.OPEN,
        "failure_rate",
    ),
    # A 10 s window holds the seconds (now-10, now]: at +10 the first second has left it.
    (
        "time-window-boundary-out",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 4,
            "window_type": "time",
            "window_size": 10,
        },
        "F F +10 S S S S",
        State.CLOSED,
        "",
    ),
    (
        "time-window-boundary-in",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 50,
            "slow_call_rate_threshold": None,
            "minimum_calls": 4,
            "window_type": "time",
            "window_size": 10,
        },
        "F F +9.9 S S",
        State.OPEN,
        "failure_rate",
    ),
    (
        "slow-rate",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": None,
            "slow_call_rate_threshold": 50,
            "slow_call_duration_s": 1.0,
            "minimum_calls": 4,
            "window_size": 4,
        },
        "s s S S",
        State.OPEN,
        "slow_call_rate",
    ),
    (
        "slow-rate-under",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": None,
            "slow_call_rate_threshold": 50,
            "slow_call_duration_s": 1.0,
            "minimum_calls": 4,
            "window_size": 4,
        },
        "s S S S",
        State.CLOSED,
        "",
    ),
    (
        "slow-rate-disabled",
        {
            "consecutive_failures": 0,
            **QUIET,
            "slow_call_duration_s": 1.0,
            "minimum_calls": 4,
            "window_size": 4,
        },
        "s x8",
        State.CLOSED,
        "",
    ),
    (
        "slow-failures-count-twice",
        {
            "consecutive_failures": 0,
            "failure_rate_threshold": 100,
            "slow_call_rate_threshold": None,
            "slow_call_duration_s": 1.0,
            "minimum_calls": 2,
            "window_size": 2,
        },
        "f f",
        State.OPEN,
        "failure_rate",
    ),
]


@pytest.mark.parametrize(
    ("config", "script", "state", "reason"),
    [row[1:] for row in TRIP_TABLE],
    ids=[row[0] for row in TRIP_TABLE],
)
def test_trip_rules(config, script, state, reason):
    b, _clock, events = make(**config)
    run(b, _clock, script)
    assert b.state is state
    assert (events[-1].reason if events else "") == reason


def test_trip_happens_on_the_call_that_crosses_the_threshold():
    b, clock, events = make(consecutive_failures=3, **QUIET)
    assert run(b, clock, "F F F S S") == ["ok", "ok", "ok", "rejected", "rejected"]
    assert [(e.from_state, e.to_state) for e in events] == [(State.CLOSED, State.OPEN)]
    t = events[0]
    assert (t.name, t.calls, t.failures, t.failure_rate, t.at) == ("dep", 3, 3, 100.0, 1000.0)


# -- OPEN, HALF_OPEN, back-off ---------------------------------------------------------------

R4J = {
    "half_open_policy": "failure_rate",
    "half_open_permitted_calls": 2,
    "half_open_probe_interval_s": 0,
    "failure_rate_threshold": 50,
}

HALF_OPEN_TABLE = [
    # id, config, script after a trip at t=1000 (open_wait 30), expected per-call log, state
    ("open-rejects-before-wait", {}, "+29.9 S", ["rejected"], State.OPEN),
    ("probe-after-wait-closes", {}, "+30 S S", ["probe", "ok"], State.CLOSED),
    ("probe-failure-reopens", {}, "+30 F S", ["probe", "rejected"], State.OPEN),
    (
        "backed-off-wait-60",
        {},
        "+30 F +59.9 S +0.1 S",
        ["probe", "rejected", "probe"],
        State.CLOSED,
    ),
    (
        "backoff-capped-64",
        {},
        "+30 F +60 F +63.9 S +0.1 S",
        ["probe", "probe", "rejected", "probe"],
        State.CLOSED,
    ),
    (
        "success-threshold-2",
        {"half_open_success_threshold": 2, "half_open_probe_interval_s": 0},
        "+30 S S S",
        ["probe", "probe", "ok"],
        State.CLOSED,
    ),
    (
        "success-threshold-2-then-failure",
        {"half_open_success_threshold": 2, "half_open_probe_interval_s": 0},
        "+30 S F S",
        ["probe", "probe", "rejected"],
        State.OPEN,
    ),
    (
        "slow-probe-fails",
        {"slow_call_duration_s": 1.0, "slow_call_rate_threshold": 100},
        "+30 s S",
        ["probe", "rejected"],
        State.OPEN,
    ),
    (
        "slow-probe-ok-when-slowness-ignored",
        {"slow_call_duration_s": 1.0, "slow_call_rate_threshold": None},
        "+30 s S",
        ["probe", "ok"],
        State.CLOSED,
    ),
    ("permanent-probe-is-success", {}, "+30 P S", ["probe", "ok"], State.CLOSED),
    # Resilience4j's policy: the permitted calls are judged together by their rates.
    (
        "failure-rate-policy-a-failure-does-not-reopen-at-once",
        {**R4J, "half_open_permitted_calls": 3},
        "+30 F S S S",
        ["probe", "probe", "probe", "ok"],
        State.CLOSED,
    ),
    (
        "failure-rate-policy-reopens-at-the-threshold",
        {**R4J, "half_open_permitted_calls": 3},
        "+30 F S F S",
        ["probe", "probe", "probe", "rejected"],
        State.OPEN,
    ),
    (
        "failure-rate-policy-slow-probes-reopen-by-slow-rate",
        {**R4J, "slow_call_duration_s": 1.0, "slow_call_rate_threshold": 50},
        "+30 s s S",
        ["probe", "probe", "rejected"],
        State.OPEN,
    ),
    (
        "failure-rate-policy-a-slow-probe-is-not-a-failure",
        {**R4J, "slow_call_duration_s": 1.0},
        "+30 s s S",
        ["probe", "probe", "ok"],
        State.CLOSED,
    ),
]


@pytest.mark.parametrize(
    ("config", "script", "log", "state"),
    [row[1:] for row in HALF_OPEN_TABLE],
    ids=[row[0] for row in HALF_OPEN_TABLE],
)
def test_open_and_half_open(config, script, log, state):
    b, clock, _ = make(consecutive_failures=1, **{**QUIET, **config})
    run(b, clock, "F")
    assert b.state is State.OPEN
    assert run(b, clock, script) == log
    assert b.state is state


@pytest.mark.parametrize(
    ("wait", "mult", "cap", "expected"),
    [
        (30.0, 2.0, 64.0, [30, 60, 64, 64]),
        (1.0, 3.0, 100.0, [1, 3, 9, 27, 81, 100]),
        (5.0, 1.0, 5.0, [5, 5, 5]),
    ],
)
def test_backoff_sequence(wait, mult, cap, expected):
    b, clock, _ = make(
        consecutive_failures=1,
        open_wait_s=wait,
        open_wait_multiplier=mult,
        max_open_wait_s=cap,
        **QUIET,
    )
    run(b, clock, "F")
    waits = []
    for _ in expected:
        waits.append(b.snapshot.open_until - clock.t)
        clock.t = b.snapshot.open_until
        run(b, clock, "F")  # the probe fails: back to OPEN, longer
    assert waits == pytest.approx(expected)


def test_success_after_backoff_resets_the_wait():
    b, clock, _ = make(consecutive_failures=1, **QUIET)
    run(b, clock, "F +30 F +60 S")  # trip, failed probe (60), successful probe: CLOSED
    assert b.state is State.CLOSED
    run(b, clock, "F")
    assert b.snapshot.open_until - clock.t == 30


def test_only_one_probe_in_flight():
    b, clock, _ = make(consecutive_failures=1, **QUIET)
    run(b, clock, "F +30")
    probe = b.acquire()
    assert probe.is_probe and b.state is State.HALF_OPEN
    with pytest.raises(BreakerOpen) as exc:
        b.acquire()
    assert exc.value.state is State.HALF_OPEN
    assert exc.value.retry_after == pytest.approx(30.0)  # the lease
    b.record(probe, Outcome.SUCCESS, 0.01)
    assert b.state is State.CLOSED


def test_unrecorded_probe_lease_expires():
    b, clock, _ = make(consecutive_failures=1, probe_lease_s=5, **QUIET)
    run(b, clock, "F +30")
    lost = b.acquire()  # never recorded: the worker died
    clock.advance(4.9)
    with pytest.raises(BreakerOpen):
        b.acquire()
    clock.advance(0.1)
    second = b.acquire()
    assert second.is_probe
    b.record(lost, Outcome.SUCCESS, 0.01)  # too late: its lease is gone
    assert b.state is State.HALF_OPEN
    b.record(second, Outcome.SUCCESS, 0.01)
    assert b.state is State.CLOSED


def test_several_probes_are_rate_limited():
    b, clock, _ = make(
        consecutive_failures=1,
        half_open_max_probes=3,
        half_open_probe_interval_s=1.0,
        half_open_success_threshold=3,
        **QUIET,
    )
    run(b, clock, "F +30")
    p1 = b.acquire()
    clock.advance(0.5)
    with pytest.raises(BreakerOpen) as exc:
        b.acquire()
    assert exc.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    p2 = b.acquire()
    clock.advance(1)
    p3 = b.acquire()
    clock.advance(1)
    with pytest.raises(BreakerOpen):  # three in flight: full
        b.acquire()
    assert all(p.is_probe for p in (p1, p2, p3))
    for p in (p1, p2):
        b.record(p, Outcome.SUCCESS, 0.01)
        assert b.state is State.HALF_OPEN
    b.record(p3, Outcome.SUCCESS, 0.01)
    assert b.state is State.CLOSED


def test_permit_from_before_a_trip_is_not_counted():
    b, clock, _ = make(consecutive_failures=2, **QUIET)
    slow_permit = b.acquire()
    run(b, clock, "F F +30 S")  # trip, then a successful probe: CLOSED with a fresh window
    assert b.state is State.CLOSED
    b.record(slow_permit, Outcome.FAILURE, 0.01)
    assert b.stale_records == 1
    assert b.snapshot.failures == 0
    run(b, clock, "F")
    assert b.state is State.CLOSED  # the stale failure did not join the new streak


# -- operator states -------------------------------------------------------------------------

FORCE_TABLE = [
    # mode, script, per-call log, figures (calls, failures) after
    (State.FORCED_OPEN, "S S", ["rejected", "rejected"], (0, 0)),
    (State.FORCED_CLOSED, "F x10", ["ok"] * 10, (10, 10)),
    (State.DISABLED, "F x10", ["ok"] * 10, (0, 0)),
]


@pytest.mark.parametrize(("mode", "script", "log", "figures"), FORCE_TABLE)
def test_forced_modes(mode, script, log, figures):
    b, clock, events = make(consecutive_failures=3, **QUIET)
    b.force(mode)
    assert run(b, clock, script) == log
    assert b.state is mode  # forced modes never trip
    assert (b.snapshot.calls, b.snapshot.failures) == figures
    assert events[-1].reason == "operator"
    b.force(None)
    assert b.state is State.CLOSED
    assert run(b, clock, "F F F") == ["ok"] * 3
    assert b.state is State.OPEN


def test_forced_open_reports_no_retry_estimate():
    b, _clock, _ = make()
    b.force(State.FORCED_OPEN)
    with pytest.raises(BreakerOpen) as exc:
        b.acquire()
    assert exc.value.retry_after is None
    assert b.rejected_calls == 1 and b.rejected_by_state[State.FORCED_OPEN] == 1


@pytest.mark.parametrize("bad", [State.OPEN, State.CLOSED, State.HALF_OPEN, "nope"])
def test_force_refuses_automatic_states(bad):
    b, _clock, _ = make()
    with pytest.raises(ValueError, match="state"):
        b.force(bad)


def test_disabled_permit_is_unguarded():
    b, _clock, _ = make()
    b.force(State.DISABLED)
    permit = b.acquire()
    assert permit.kind == Permit.UNGUARDED
    b.record(permit, Outcome.FAILURE)
    assert b.snapshot.calls == 0


# -- sharing, counters, listeners, live config -----------------------------------------------


def test_breakers_sharing_a_store_share_state():
    store = InProcessStore()
    clock = FakeClock()
    seen: list[Transition] = []
    a = Breaker("dep", BreakerConfig(consecutive_failures=2, **QUIET), store, clock=clock)
    b = Breaker(
        "dep",
        BreakerConfig(consecutive_failures=2, **QUIET),
        store,
        clock=clock,
        listeners=[seen.append],
    )
    other = Breaker("other", BreakerConfig(), store, clock=clock)
    run(a, clock, "F")
    run(b, clock, "F")  # the streak is shared
    assert a.state is b.state is State.OPEN
    assert other.state is State.CLOSED
    assert seen[-1].to_state is State.OPEN and seen[-1].origin == store.node_id


def test_rejection_counters():
    b, clock, _ = make(consecutive_failures=1, **QUIET)
    run(b, clock, "F S S S +30")
    p = b.acquire()
    with pytest.raises(BreakerOpen):
        b.acquire()
    assert b.rejected_calls == 4
    assert b.rejected_by_state[State.OPEN] == 3
    assert b.rejected_by_state[State.HALF_OPEN] == 1
    b.record(p, Outcome.SUCCESS, 0.0)


def test_listener_errors_are_logged_and_do_not_break_calls(caplog):
    def broken(_t):
        raise RuntimeError("boom")

    good: list[Transition] = []
    clock = FakeClock()
    b = Breaker(
        "dep",
        BreakerConfig(consecutive_failures=1, **QUIET),
        InProcessStore(),
        clock=clock,
        listeners=[broken, good.append],
    )
    with caplog.at_level(logging.ERROR, logger="breakers.engine.machine"):
        assert run(b, clock, "F S") == ["ok", "rejected"]
    assert "boom" in caplog.text
    assert [t.to_state for t in good] == [State.OPEN]


def test_update_config_applies_live():
    b, clock, _ = make(
        consecutive_failures=0,
        failure_rate_threshold=None,
        slow_call_rate_threshold=50,
        slow_call_duration_s=5.0,
        minimum_calls=2,
        window_size=2,
    )
    for _ in range(4):
        b.record(b.acquire(), Outcome.SUCCESS, 2.0)  # 2 s is not slow at 5 s
    assert b.state is State.CLOSED
    b.update_config(b.config.replace(slow_call_duration_s=1.0))
    b.record(b.acquire(), Outcome.SUCCESS, 2.0)  # window: one fast, one slow = 50 %
    assert b.state is State.OPEN and b.snapshot.reason == "slow_call_rate"


def test_update_config_with_new_window_starts_empty():
    b, clock, _ = make(
        consecutive_failures=0,
        failure_rate_threshold=50,
        slow_call_rate_threshold=None,
        minimum_calls=4,
        window_size=4,
    )
    run(b, clock, "F S F")
    b.update_config(b.config.replace(window_size=6))
    run(b, clock, "S F")
    assert b.state is State.CLOSED  # only 2 calls in the new window
    assert b.snapshot.calls == 2


# -- config ----------------------------------------------------------------------------------

BAD_CONFIGS = [
    ("consecutive_failures", -1),
    ("consecutive_failures", 1.5),
    ("failure_rate_threshold", 0),
    ("failure_rate_threshold", 101),
    ("slow_call_rate_threshold", -5),
    ("slow_call_duration_s", 0),
    ("window_size", 0),
    ("window_size", 10_001),
    ("window_type", "sliding"),
    ("minimum_calls", 0),
    ("minimum_calls", 101),  # count window of 100
    ("failure_outcomes", ["SUCCESS"]),
    ("failure_outcomes", ["BOGUS"]),
    ("open_wait_s", 0),
    ("open_wait_multiplier", 0.5),
    ("max_open_wait_s", 10.0),  # below open_wait_s=30
    ("half_open_max_probes", 0),
    ("half_open_probe_interval_s", -1),
    ("half_open_success_threshold", 0),
    ("probe_lease_s", 0),
    ("half_open_policy", "resilience4j"),
    ("half_open_permitted_calls", 0),
    ("half_open_permitted_calls", 10_001),
    ("half_open_max_wait_s", -1),
    ("open_wait_s", float("nan")),
    ("consecutive_failures", True),
]


@pytest.mark.parametrize(("field", "value"), BAD_CONFIGS)
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}:"):
        BreakerConfig(**{field: value})


def test_failure_rate_policy_needs_a_rate_to_judge_by():
    with pytest.raises(ValueError, match="^half_open_policy:"):
        BreakerConfig(
            half_open_policy="failure_rate",
            failure_rate_threshold=None,
            slow_call_rate_threshold=None,
        )


def test_time_window_limits():
    BreakerConfig(window_type=WindowType.TIME, window_size=3600, minimum_calls=5000)
    with pytest.raises(ValueError, match="^window_size:"):
        BreakerConfig(window_type=WindowType.TIME, window_size=3601)


def test_config_round_trips_through_json():
    cfg = BreakerConfig(
        window_type=WindowType.TIME,
        window_size=60,
        failure_outcomes=frozenset({Outcome.TIMEOUT}),
        slow_call_rate_threshold=None,
        half_open_max_probes=2,
    )
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["window_type"] == "time" and data["failure_outcomes"] == ["TIMEOUT"]
    assert BreakerConfig.from_dict(data) == cfg


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="^fail_max:"):
        BreakerConfig.from_dict({"fail_max": 5})


def test_config_is_frozen():
    cfg = BreakerConfig()
    with pytest.raises(AttributeError):
        cfg.window_size = 5  # type: ignore[misc]


# -- the in-process store's cheap CLOSED path stays exact --------------------------------------


class CountingStore(InProcessStore):
    """The real in-process store, counting the flushes it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self, name, batch, config, now):
        self.flushes += 1
        return super().flush(name, batch, config, now)


def counted(**overrides) -> tuple[Breaker, FakeClock, CountingStore]:
    clock, store = FakeClock(), CountingStore()
    return Breaker("dep", BreakerConfig(**overrides), store, clock=clock), clock, store


def test_successes_in_a_full_enough_window_are_merged_in_batches():
    b, clock, store = counted(minimum_calls=5)
    run(b, clock, "S x5")
    assert store.flushes == 5  # every call until the window holds minimum_calls
    run(b, clock, "S x200")
    assert store.flushes == 5  # then none, until a batch fills or a call could trip
    run(b, clock, "S x56")
    assert store.flushes == 6 and b.snapshot.calls == 100  # 256 pending: merged
    run(b, clock, "F")
    assert store.flushes == 7  # a failure is evaluated at once, with what was pending


def test_a_slow_call_is_evaluated_at_once_when_slowness_can_trip():
    b, clock, _ = make(
        consecutive_failures=0,
        failure_rate_threshold=None,
        slow_call_rate_threshold=50,
        slow_call_duration_s=1.0,
        minimum_calls=4,
    )
    run(b, clock, "S S s")
    assert b.state is State.CLOSED  # 3 calls: below minimum_calls
    run(b, clock, "S x3")
    assert b.state is State.CLOSED  # 1 slow of 6
    run(b, clock, "s s")
    assert b.state is State.CLOSED  # 3 of 8: 37.5 %
    run(b, clock, "s")
    assert b.state is State.CLOSED  # 4 of 9
    run(b, clock, "s")
    assert (b.state, b.snapshot.reason) == (State.OPEN, "slow_call_rate")  # 5 of 10, at once


def test_a_time_window_is_evaluated_on_the_first_call_of_a_new_second():
    b, clock, _ = make(
        consecutive_failures=0,
        window_type="time",
        window_size=10,
        minimum_calls=4,
        slow_call_rate_threshold=None,
    )
    run(b, clock, "S x4 +5 F F F")
    assert b.state is State.CLOSED  # 3 failures of 7
    clock.advance(5.5)  # the four successes leave the window
    run(b, clock, "S")
    assert (b.state, b.snapshot.reason) == (State.OPEN, "failure_rate")  # 3 of 4, at once


def test_a_lowered_threshold_is_judged_at_the_next_success():
    b, clock, _ = make(consecutive_failures=0, minimum_calls=4, slow_call_rate_threshold=None)
    run(b, clock, "S x6 F F")
    assert b.state is State.CLOSED  # 25 %
    b.update_config(b.config.replace(failure_rate_threshold=20.0))
    run(b, clock, "S")
    assert (b.state, b.snapshot.reason) == (State.OPEN, "failure_rate")  # 2 of 9 >= 20 %
