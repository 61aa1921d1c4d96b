"""Hypothesis drives a Breaker and a deliberately naive reference model side by side.

The model is written from the documented rules (docs/breakers.md), not from the store code:
a list for the window, plain ints for the rest. Calls can be held open across other steps,
so permits outlive state changes and probes race their leases.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from breakers.engine import (
    Breaker,
    BreakerConfig,
    BreakerOpen,
    HalfOpenPolicy,
    InProcessStore,
    Outcome,
    State,
    WindowType,
)

FAILS = {Outcome.FAILURE, Outcome.TIMEOUT}


class Model:
    """The breaker rules, the obvious way."""

    def __init__(self, cfg: BreakerConfig) -> None:
        self.cfg = cfg
        self.state = State.CLOSED
        self.episode = 0  # changes whenever the state (or a half-open round) changes
        self.window: list[tuple[float, bool, bool]] = []  # (time, failed, slow)
        self.streak = 0
        self.open_until = 0.0
        self.reopen = 0
        self.leases: dict[int, float] = {}
        self.last_probe: float | None = None
        self.probe_ok = 0
        self.probe_fail = 0  # failure_rate policy
        self.probe_slow = 0
        self.half_open_since = 0.0
        self.next_token = 0

    def _enter(self, state: State) -> None:
        self.state = state
        self.episode += 1

    def _trip(self, now: float, reopen: int) -> None:
        self.reopen = reopen
        wait = min(
            self.cfg.open_wait_s * self.cfg.open_wait_multiplier**reopen, self.cfg.max_open_wait_s
        )
        self.open_until = now + wait
        self.window, self.streak, self.leases, self.probe_ok = [], 0, {}, 0
        self.probe_fail = self.probe_slow = 0
        self._enter(State.OPEN)

    def _fresh(self, state: State) -> None:
        self.window, self.streak, self.leases, self.probe_ok = [], 0, {}, 0
        self.probe_fail = self.probe_slow = 0
        self.reopen, self.last_probe = 0, None
        self._enter(state)

    def acquire(self, now: float):
        """('normal', episode) | ('probe', token) | ('free', None) | None for a rejection."""
        if self.state in (State.CLOSED, State.FORCED_CLOSED):
            return ("normal", self.episode)
        if self.state is State.DISABLED:
            return ("free", None)
        if self.state is State.OPEN and now >= self.open_until:
            self.leases, self.probe_ok, self.last_probe = {}, 0, None
            self.probe_fail = self.probe_slow = 0
            self.half_open_since = now
            self._enter(State.HALF_OPEN)
        if self.state is State.HALF_OPEN and self._overdue(now):
            self._trip(now, self.reopen + 1)
            return None
        if self.state is State.HALF_OPEN:
            self.leases = {t: exp for t, exp in self.leases.items() if exp > now}
            spaced = self.last_probe is None or (
                now - self.last_probe >= self.cfg.half_open_probe_interval_s
            )
            if self.cfg.half_open_policy is HalfOpenPolicy.FIRST_FAILURE:
                room = len(self.leases) < self.cfg.half_open_max_probes
            else:  # the permitted calls in total, not in flight
                done = self.probe_ok + self.probe_fail
                room = done + len(self.leases) < self.cfg.half_open_permitted_calls
            if room and spaced:
                self.next_token += 1
                self.leases[self.next_token] = now + self.cfg.probe_lease_s
                self.last_probe = now
                return ("probe", self.next_token)
        return None

    def record(self, permit, now: float, outcome: Outcome, duration: float) -> None:
        kind, ref = permit
        failed = outcome in FAILS
        slow = duration >= self.cfg.slow_call_duration_s
        if kind == "probe":
            if self.state is not State.HALF_OPEN or ref not in self.leases:
                return
            del self.leases[ref]
            if self._overdue(now):
                self._trip(now, self.reopen + 1)
                return
            if self.cfg.half_open_policy is HalfOpenPolicy.FAILURE_RATE:
                self.probe_ok += not failed
                self.probe_fail += failed
                self.probe_slow += slow
                n = self.probe_ok + self.probe_fail
                if n < self.cfg.half_open_permitted_calls:
                    self.episode += 1
                    return
                fr, sr = self.cfg.failure_rate_threshold, self.cfg.slow_call_rate_threshold
                if (fr is not None and self.probe_fail * 100 >= fr * n) or (
                    sr is not None and self.probe_slow * 100 >= sr * n
                ):
                    self._trip(now, self.reopen + 1)
                else:
                    self._fresh(State.CLOSED)
                return
            if failed or (slow and self.cfg.slow_call_rate_threshold is not None):
                self._trip(now, self.reopen + 1)
                return
            self.probe_ok += 1
            if self.probe_ok >= self.cfg.half_open_success_threshold:
                self._fresh(State.CLOSED)
            else:
                self.episode += 1
            return
        if kind != "normal" or ref != self.episode:
            return  # unguarded, or made under a state that has gone
        self.window.append((now, failed, slow))
        self.streak = self.streak + 1 if failed else 0
        if self.cfg.window_type is WindowType.COUNT:
            self.window = self.window[-self.cfg.window_size :]
        else:
            horizon = math.floor(now) - self.cfg.window_size
            self.window = [c for c in self.window if math.floor(c[0]) > horizon]
        if self.state is not State.CLOSED:
            return
        calls = len(self.window)
        fails = sum(1 for c in self.window if c[1])
        slows = sum(1 for c in self.window if c[2])
        cfg = self.cfg
        fr, sr = cfg.failure_rate_threshold, cfg.slow_call_rate_threshold
        streak_hit = cfg.consecutive_failures > 0 and self.streak >= cfg.consecutive_failures
        rate_hit = calls >= cfg.minimum_calls and (
            (fr is not None and fails * 100 >= fr * calls)
            or (sr is not None and slows * 100 >= sr * calls)
        )
        if streak_hit or rate_hit:
            self._trip(now, 0)

    def force(self, mode: State | None) -> None:
        self._fresh(State.CLOSED if mode is None else mode)

    def _overdue(self, now: float) -> bool:
        wait = self.cfg.half_open_max_wait_s
        return wait > 0 and now >= self.half_open_since + wait


@st.composite
def CONFIGS(draw) -> BreakerConfig:
    fields = {
        "consecutive_failures": draw(st.sampled_from([0, 2, 3])),
        "failure_rate_threshold": draw(st.sampled_from([None, 50.0, 66.6])),
        "slow_call_rate_threshold": draw(st.sampled_from([None, 50.0, 100.0])),
        "slow_call_duration_s": 1.0,
        "window_type": draw(st.sampled_from(list(WindowType))),
        "window_size": draw(st.sampled_from([4, 6])),
        "minimum_calls": draw(st.sampled_from([2, 4])),
        "open_wait_s": 5.0,
        "open_wait_multiplier": draw(st.sampled_from([1.0, 2.0])),
        "max_open_wait_s": 12.0,
        "half_open_max_probes": draw(st.sampled_from([1, 2])),
        "half_open_probe_interval_s": draw(st.sampled_from([0.0, 1.0])),
        "half_open_success_threshold": draw(st.sampled_from([1, 2])),
        "probe_lease_s": 8.0,
        "half_open_policy": draw(st.sampled_from(list(HalfOpenPolicy))),
        "half_open_permitted_calls": draw(st.sampled_from([1, 3])),
        "half_open_max_wait_s": draw(st.sampled_from([0.0, 6.0])),
    }
    if fields["half_open_policy"] is HalfOpenPolicy.FAILURE_RATE and not (
        fields["failure_rate_threshold"] or fields["slow_call_rate_threshold"]
    ):
        fields["failure_rate_threshold"] = 50.0  # the policy needs a rate to judge by
    return BreakerConfig(**fields)


class BreakerVsModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 10_000.0
        self.breaker: Breaker | None = None
        self.model: Model | None = None
        self.inflight: list[tuple[object, tuple]] = []

    @rule(cfg=CONFIGS())
    @precondition(lambda self: self.breaker is None)
    def start(self, cfg):
        self.breaker = Breaker("sm", cfg, InProcessStore(), clock=lambda: self.now)
        self.model = Model(cfg)

    @rule(dt=st.sampled_from([0.0, 0.4, 1.0, 3.0, 5.0, 9.0, 13.0]))
    @precondition(lambda self: self.breaker is not None)
    def advance(self, dt):
        self.now += dt

    @rule()
    @precondition(lambda self: self.breaker is not None and len(self.inflight) < 6)
    def start_call(self):
        expected = self.model.acquire(self.now)
        try:
            permit = self.breaker.acquire()
        except BreakerOpen:
            assert expected is None, f"breaker rejected, model allowed {expected}"
            return
        assert expected is not None, "breaker allowed, model rejected"
        assert expected[0] == (
            "probe" if permit.is_probe else "normal" if permit.kind == 0 else "free"
        )
        self.inflight.append((permit, expected))

    @rule(
        data=st.data(),
        outcome=st.sampled_from(list(Outcome)),
        duration=st.sampled_from([0.01, 0.5, 1.0, 2.0]),
    )
    @precondition(lambda self: self.inflight)
    def finish_call(self, data, outcome, duration):
        i = data.draw(st.integers(0, len(self.inflight) - 1), label="which call")
        permit, expected = self.inflight.pop(i)
        self.breaker.record(permit, outcome, duration)
        self.model.record(expected, self.now, outcome, duration)

    @rule(mode=st.sampled_from([None, State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED]))
    @precondition(lambda self: self.breaker is not None)
    def force(self, mode):
        self.breaker.force(mode)
        self.model.force(mode)

    @invariant()
    def same_state(self):
        if self.breaker is not None:
            assert self.breaker.state is self.model.state
            if self.model.state is State.OPEN:
                assert self.breaker.snapshot.open_until == self.model.open_until


TestBreakerVsModel = BreakerVsModel.TestCase
TestBreakerVsModel.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
