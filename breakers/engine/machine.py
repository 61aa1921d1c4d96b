"""Circuit-breaker state machine: configuration, decisions, the local view of a shared
breaker, and the `StateStore` protocol a breaker is given.

Pure Python (stdlib only, no Django). A `Breaker` decides every call from a locally cached
`Snapshot`; the rules that change state (tripping, half-open probes, operator force) live in
the state store (`breakers.engine.stores`, `breakers.engine.redis_store`), so that every
process sharing a store applies them atomically in one place. This module imports neither
store: a breaker is always handed its store. See docs/breakers.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, NamedTuple, Protocol, runtime_checkable

log = logging.getLogger(__name__)

# Upper bounds keep the shared window small enough to evaluate inside one Lua call.
MAX_COUNT_WINDOW = 10_000
MAX_TIME_WINDOW_S = 3_600


class State(StrEnum):
    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"
    FORCED_OPEN = "FORCED_OPEN"
    FORCED_CLOSED = "FORCED_CLOSED"
    DISABLED = "DISABLED"

    @property
    def slug(self) -> str:
        """Lower case: how the database, the metrics and the pages name the state."""
        return self.value.lower()


#: States an operator may force; `None` hands the breaker back to the automatic machine.
OPERATOR_STATES = frozenset({State.FORCED_OPEN, State.FORCED_CLOSED, State.DISABLED})


class Outcome(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"  # error that says the dependency is unhealthy (5xx, connection reset)
    TIMEOUT = "TIMEOUT"  # the pipeline gave up waiting
    REJECTED_PERMANENT = "REJECTED_PERMANENT"  # the dependency answered "no" for good (4xx)


# A bit per outcome, so the hot path tests "is this a failure" with one AND instead of
# hashing an Enum member (Enum.__hash__ is Python code).
for _i, _o in enumerate(Outcome):
    _o._bit = 1 << _i  # type: ignore[attr-defined]


class WindowType(StrEnum):
    COUNT = "count"  # the last `window_size` calls
    TIME = "time"  # the calls of the last `window_size` seconds (1 s buckets)


class HalfOpenPolicy(StrEnum):
    """How HALF_OPEN decides (docs/breakers.md has the table)."""

    FIRST_FAILURE = "first_failure"  # ours: the first failed probe re-opens, N successes close
    FAILURE_RATE = "failure_rate"  # Resilience4j's: judge the permitted calls' rates once done


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Tunables of one breaker. Immutable; validated on construction; JSON-friendly."""

    consecutive_failures: int = 5  # trip after this many failures in a row; 0 disables
    failure_rate_threshold: float | None = 50.0  # percent; None disables
    slow_call_rate_threshold: float | None = 100.0  # percent; None disables
    slow_call_duration_s: float = 5.0  # a call this long or longer is slow
    window_type: WindowType = WindowType.COUNT
    window_size: int = 100  # calls (COUNT) or seconds (TIME)
    minimum_calls: int = 20  # rates are only judged once the window holds this many calls
    failure_outcomes: frozenset[Outcome] = frozenset({Outcome.FAILURE, Outcome.TIMEOUT})
    open_wait_s: float = 30.0  # first OPEN period
    open_wait_multiplier: float = 2.0  # each failed probe multiplies the next OPEN period
    max_open_wait_s: float = 64.0  # cap of the backed-off OPEN period
    half_open_max_probes: int = 1  # first_failure: probes in flight at once, cluster-wide
    half_open_probe_interval_s: float = 1.0  # minimum spacing of probe starts
    half_open_success_threshold: int = 1  # first_failure: successful probes needed to close
    probe_lease_s: float = 30.0  # a probe never recorded frees its slot after this
    half_open_policy: HalfOpenPolicy = HalfOpenPolicy.FIRST_FAILURE
    half_open_permitted_calls: int = 10  # failure_rate: calls let through (in total) to judge
    half_open_max_wait_s: float = 0.0  # HALF_OPEN longer than this re-opens; 0: no limit

    def __post_init__(self) -> None:
        # Coerce the JSON forms so from_dict() and hand-written configs behave the same.
        if not isinstance(self.window_type, WindowType):
            try:
                object.__setattr__(self, "window_type", WindowType(self.window_type))
            except ValueError:
                raise ValueError(
                    f"window_type: must be one of {[w.value for w in WindowType]}"
                ) from None
        if not isinstance(self.half_open_policy, HalfOpenPolicy):
            try:
                object.__setattr__(self, "half_open_policy", HalfOpenPolicy(self.half_open_policy))
            except ValueError:
                raise ValueError(
                    f"half_open_policy: must be one of {[p.value for p in HalfOpenPolicy]}"
                ) from None
        if not isinstance(self.failure_outcomes, frozenset) or not all(
            isinstance(o, Outcome) for o in self.failure_outcomes
        ):
            try:
                outcomes = frozenset(Outcome(o) for o in self.failure_outcomes)
            except (TypeError, ValueError):
                raise ValueError(
                    f"failure_outcomes: must be a subset of {[o.value for o in Outcome]}"
                ) from None
            object.__setattr__(self, "failure_outcomes", outcomes)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first offending field."""

        def bad(name: str, why: str) -> None:
            raise ValueError(f"{name}: {why} (got {getattr(self, name)!r})")

        if not _is_int(self.consecutive_failures) or self.consecutive_failures < 0:
            bad("consecutive_failures", "must be an integer >= 0 (0 disables)")
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            v = getattr(self, name)
            if v is not None and (not _is_num(v) or not 0 < v <= 100):
                bad(name, "must be a percentage in (0, 100] or None")
        if not _is_num(self.slow_call_duration_s) or self.slow_call_duration_s <= 0:
            bad("slow_call_duration_s", "must be > 0")
        limit = MAX_COUNT_WINDOW if self.window_type is WindowType.COUNT else MAX_TIME_WINDOW_S
        if not _is_int(self.window_size) or not 1 <= self.window_size <= limit:
            bad(
                "window_size", f"must be an integer in [1, {limit}] for a {self.window_type} window"
            )
        if not _is_int(self.minimum_calls) or self.minimum_calls < 1:
            bad("minimum_calls", "must be an integer >= 1")
        if self.window_type is WindowType.COUNT and self.minimum_calls > self.window_size:
            bad("minimum_calls", "must not exceed window_size of a count window")
        if Outcome.SUCCESS in self.failure_outcomes:
            bad("failure_outcomes", "SUCCESS cannot count as a failure")
        if not _is_num(self.open_wait_s) or self.open_wait_s <= 0:
            bad("open_wait_s", "must be > 0")
        if not _is_num(self.open_wait_multiplier) or self.open_wait_multiplier < 1:
            bad("open_wait_multiplier", "must be >= 1")
        if not _is_num(self.max_open_wait_s) or self.max_open_wait_s < self.open_wait_s:
            bad("max_open_wait_s", "must be >= open_wait_s")
        if not _is_int(self.half_open_max_probes) or self.half_open_max_probes < 1:
            bad("half_open_max_probes", "must be an integer >= 1")
        if not _is_num(self.half_open_probe_interval_s) or self.half_open_probe_interval_s < 0:
            bad("half_open_probe_interval_s", "must be >= 0")
        if not _is_int(self.half_open_success_threshold) or self.half_open_success_threshold < 1:
            bad("half_open_success_threshold", "must be an integer >= 1")
        if not _is_num(self.probe_lease_s) or self.probe_lease_s <= 0:
            bad("probe_lease_s", "must be > 0")
        if (
            not _is_int(self.half_open_permitted_calls)
            or not 1 <= self.half_open_permitted_calls <= MAX_COUNT_WINDOW
        ):
            bad("half_open_permitted_calls", f"must be an integer in [1, {MAX_COUNT_WINDOW}]")
        if not _is_num(self.half_open_max_wait_s) or self.half_open_max_wait_s < 0:
            bad("half_open_max_wait_s", "must be >= 0 (0: no limit)")
        if (
            self.half_open_policy is HalfOpenPolicy.FAILURE_RATE
            and self.failure_rate_threshold is None
            and self.slow_call_rate_threshold is None
        ):
            bad(
                "half_open_policy",
                "failure_rate judges probes by failure_rate_threshold or slow_call_rate_threshold;"
                " set one of them",
            )

    def open_wait(self, reopen_count: int) -> float:
        """OPEN period after `reopen_count` failed probes in a row (exponential, capped)."""
        # min() before pow would overflow for large counts; the cap is reached long before.
        exp = min(reopen_count, 1024)
        try:
            wait = self.open_wait_s * self.open_wait_multiplier**exp
        except OverflowError:
            wait = math.inf
        return min(wait, self.max_open_wait_s)

    @property
    def window_spec(self) -> str:
        """Identifies the window layout; a change resets the shared window."""
        return f"{self.window_type.value}:{self.window_size}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, WindowType | HalfOpenPolicy):
                v = v.value
            elif isinstance(v, frozenset):
                v = sorted(o.value for o in v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BreakerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown breaker setting")
        return cls(**dict(data))

    def replace(self, **changes: Any) -> BreakerConfig:
        return type(self).from_dict({**self.to_dict(), **changes})


class Snapshot(NamedTuple):
    """The shared record of one breaker as a store last reported it (a NamedTuple: it is
    built on every flush, and tuples are several times cheaper than frozen dataclasses)."""

    name: str
    state: State = State.CLOSED
    version: int = 0  # bumped by every change a store publishes
    epoch: str = ""  # identifies the record's lifetime (a wiped Redis or a local fallback)
    changed_at: float = 0.0  # wall clock of the last transition
    open_until: float = 0.0  # OPEN only: when a probe may be tried
    reopen_count: int = 0  # failed probes in a row: the back-off exponent
    reason: str = ""
    origin: str = ""  # node id of the process that made the last change
    calls: int = 0  # shared window figures as of the last evaluation
    failures: int = 0
    slow_calls: int = 0
    probe_successes: int = 0  # HALF_OPEN: probes that did not fail
    probe_failures: int = 0  # HALF_OPEN, failure_rate policy: probes that failed
    probe_slow_calls: int = 0  # HALF_OPEN, failure_rate policy: probes that were slow

    @property
    def failure_rate(self) -> float:
        return 100.0 * self.failures / self.calls if self.calls else 0.0

    @property
    def slow_call_rate(self) -> float:
        return 100.0 * self.slow_calls / self.calls if self.calls else 0.0


class Batch(NamedTuple):
    """Calls recorded locally since the last flush, as sent to a store."""

    epoch: str  # the snapshot the calls were made under; a store drops a batch from
    version: int  # an older version (the calls belong to a state that has gone)
    codes: bytes  # count window: one byte per call, oldest first (see CODE_*)
    buckets: tuple[tuple[int, int, int, int], ...]  # time window: (second, calls, fails, slow)
    trailing_failures: int  # failures at the end of the batch
    had_success: bool  # whether any non-failure is in the batch (resets the streak)


# Per-call codes are ASCII digits so they read well in redis-cli: bit 0 failure, bit 1 slow.
CODE_OK, CODE_FAIL, CODE_SLOW, CODE_SLOW_FAIL = b"0", b"1", b"2", b"3"


class ProbeResult(NamedTuple):
    token: str | None  # lease token when a probe slot was granted
    snapshot: Snapshot
    retry_at: float | None  # when asking again could succeed (no transition needed)


@dataclass(frozen=True, slots=True)
class Transition:
    """Passed to every listener when a breaker's state changes (as seen by this process)."""

    name: str
    from_state: State
    to_state: State
    reason: str
    at: float  # wall clock (epoch seconds) of the change, on the node that made it
    calls: int
    failures: int
    slow_calls: int
    failure_rate: float  # percent
    slow_call_rate: float  # percent
    version: int
    origin: str  # node id that made the change; equals store.node_id when made here


Listener = Callable[[Transition], Any]


class BreakerOpen(Exception):
    """Raised by `Breaker.acquire()` when the call must not go through."""

    def __init__(self, name: str, state: State, retry_after: float | None) -> None:
        # No super().__init__ and no message formatting here: rejecting is the OPEN hot
        # path, and the message is only built if someone prints it.
        self.name = name
        self.state = state
        self.retry_after = retry_after  # seconds; None: no estimate (forced, or probe racing)

    def __str__(self) -> str:
        ra = self.retry_after
        when = "" if ra is None else f": retry after {ra:.3f}s"
        return f"breaker {self.name!r} is {self.state.value}{when}"

    def __reduce__(self) -> tuple[type[BreakerOpen], tuple[str, State, float | None]]:
        # Keep it picklable without args in BaseException.args.
        return (type(self), (self.name, self.state, self.retry_after))


class Permit:
    """Leave to make one call; hand it back to `Breaker.record()`."""

    __slots__ = ("kind", "gen", "started_at", "token")

    NORMAL = 0
    PROBE = 1
    UNGUARDED = 2  # DISABLED breaker: nothing is recorded

    def __init__(self, kind: int, gen: int, started_at: float, token: str | None = None):
        self.kind = kind
        self.gen = gen
        self.started_at = started_at
        self.token = token

    @property
    def is_probe(self) -> bool:
        return self.kind == Permit.PROBE

    def __repr__(self) -> str:
        kind = ("normal", "probe", "unguarded")[self.kind]
        return f"<Permit {kind} gen={self.gen}>"


_NORMAL, _PROBE = Permit.NORMAL, Permit.PROBE
_UNGUARDED_PERMIT = Permit(Permit.UNGUARDED, -1, 0.0)
_PASSING = (State.CLOSED, State.FORCED_CLOSED)


@runtime_checkable
class StateStore(Protocol):
    """What a `Breaker` needs from shared state. Every method that takes `now` uses the
    breaker's clock (wall clock by default) so that nodes can compare times."""

    node_id: str
    flush_max_calls: int  # the breaker asks for a flush once this many calls are pending

    def attach(self, breaker: Breaker) -> Snapshot:
        """Start delivering updates for `breaker.name` to `breaker`; return the record."""
        ...

    def detach(self, breaker: Breaker) -> None: ...

    def request_flush(self, breaker: Breaker, urgent: bool) -> None:
        """Calls are pending on `breaker` (urgent: a failure among them)."""
        ...

    def load(self, name: str) -> Snapshot: ...

    def flush(self, name: str, batch: Batch, config: BreakerConfig, now: float) -> Snapshot: ...

    def acquire_probe(self, name: str, config: BreakerConfig, now: float) -> ProbeResult: ...

    def complete_probe(
        self,
        name: str,
        token: str,
        success: bool,
        config: BreakerConfig,
        now: float,
        slow: bool = False,
    ) -> Snapshot:
        """`success`: the outcome was no failure; `slow`: it took >= slow_call_duration_s."""
        ...

    def force(self, name: str, state: State | None, now: float) -> Snapshot: ...

    def delete(self, name: str) -> None: ...


class Breaker:
    """One named breaker in this process.

    Thread-safe. `acquire()` never touches the network while the breaker is CLOSED or OPEN,
    and `record()` only for a call that can trip it (a failure, or a slow call when slowness
    counts): counts are batched and flushed to the store (InProcessStore: at once whenever a
    call could change a decision, see `_may_defer`; RedisStore: by a background thread).
    Listeners may therefore be called from a store thread.
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        store: StateStore,
        *,
        clock: Callable[[], float] = time.time,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.name = name
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[Listener] = list(listeners)
        self.rejected_calls = 0  # all rejections
        self.rejected_by_state: dict[State, int] = dict.fromkeys(State, 0)
        self.stale_records = 0  # records dropped: the permit predates a state change
        self._gen = 0  # local generation; bumped on every applied change
        self._codes = bytearray()  # pending per-call codes
        self._marks: list[tuple[int, int]] = []  # time window: (index into codes, second)
        self._mark_sec = -1
        self._probing = False  # one thread per process asks the store for a probe slot
        self._probe_retry_at = 0.0
        # A store with exact decisions wants every call that could change the state at once;
        # calls that provably cannot (see _may_defer) wait for the next flush.
        self._exact = bool(getattr(store, "exact_decisions", False))
        self._flush_each = self._exact
        self._eval_sec = -1  # time window: the second of the last evaluation
        self._set_config(config)
        self._snap = Snapshot(name)
        self._state = State.CLOSED
        self._passing = True  # the state lets normal calls through (the hot path's test)
        self._open_until = 0.0
        self.apply_snapshot(store.attach(self), notify=False)

    # -- configuration -------------------------------------------------------------------

    def _set_config(self, config: BreakerConfig) -> None:
        if not isinstance(config, BreakerConfig):
            raise TypeError("config must be a BreakerConfig")
        config.validate()
        self._config = config
        # Flattened for the hot path.
        self._fail_mask = sum(o._bit for o in config.failure_outcomes)  # type: ignore[attr-defined]
        self._slow_s = config.slow_call_duration_s
        self._time_window = config.window_type is WindowType.TIME
        self._flush_calls = getattr(self._store, "flush_max_calls", 1)
        # Calls that can trip the breaker: failures, and slow calls when slowness can trip it.
        self._urgent = 1 if config.slow_call_rate_threshold is None else 3
        self._min_calls = config.minimum_calls
        # New thresholds may already be crossed: evaluate at the next call.
        self._flush_each = self._exact

    @property
    def config(self) -> BreakerConfig:
        return self._config

    def update_config(self, config: BreakerConfig) -> None:
        """Apply a new config live (thresholds, durations, window). A new window layout
        starts an empty window here and, at the next flush, in the store."""
        with self._lock:
            old = self._config
            self._set_config(config)
            if old.window_spec != config.window_spec:
                self._reset_pending()

    # -- listeners -----------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def snapshot(self) -> Snapshot:
        return self._snap

    @property
    def store(self) -> StateStore:
        return self._store

    # -- decisions -----------------------------------------------------------------------

    def acquire(self) -> Permit:
        """Permit a call or raise BreakerOpen. No I/O except when a probe may be due."""
        if self._passing:  # CLOSED or FORCED_CLOSED
            return Permit(_NORMAL, self._gen, self._clock())
        return self._acquire_slow(self._state)

    def _acquire_slow(self, state: State) -> Permit:
        if state is State.DISABLED:
            return _UNGUARDED_PERMIT
        if state is State.FORCED_OPEN:
            self._reject(state, None)
        now = self._clock()
        if state is State.OPEN and now < self._open_until:
            self._reject(state, self._open_until - now)
        if state is State.HALF_OPEN and now < self._probe_retry_at:
            self._reject(state, self._probe_retry_at - now)
        with self._lock:
            busy, self._probing = self._probing, True
        if busy:  # another thread here is already asking; it will share the answer
            self._reject(state, None)
        try:
            res = self._store.acquire_probe(self.name, self._config, now)
        finally:
            self._probing = False
        self.apply_snapshot(res.snapshot)
        if res.token is not None:
            return Permit(_PROBE, self._gen, now, res.token)
        state = self._state
        if state in _PASSING or state is State.DISABLED:
            return self.acquire()  # someone else closed it meanwhile
        retry_after = None
        if res.retry_at is not None:
            with self._lock:
                if self._snap is res.snapshot or self._snap.version == res.snapshot.version:
                    self._probe_retry_at = res.retry_at
            retry_after = max(0.0, res.retry_at - now)
        self._reject(state, retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _reject(self, state: State, retry_after: float | None) -> None:
        with self._lock:
            self.rejected_calls += 1
            self.rejected_by_state[state] += 1
        raise BreakerOpen(self.name, state, retry_after)

    def record(self, permit: Permit, outcome: Outcome, duration_s: float | None = None) -> None:
        """Report how a permitted call ended. `duration_s` defaults to now - acquire time."""
        kind = permit.kind
        if kind != _NORMAL:
            if kind == _PROBE:
                self._record_probe(permit, outcome, duration_s)
            return
        if duration_s is None:
            duration_s = self._clock() - permit.started_at
        code = 49 if outcome._bit & self._fail_mask else 48  # type: ignore[attr-defined]
        if duration_s >= self._slow_s:
            code |= 2
        if self._time_window:
            self._record_timed(permit, code)
            return
        with self._lock:
            if permit.gen != self._gen:
                self.stale_records += 1
                return
            codes = self._codes
            codes.append(code)
            n = len(codes)
        urgent = code & self._urgent
        if urgent or self._flush_each or n >= self._flush_calls:
            self._store.request_flush(self, bool(urgent))

    def _record_timed(self, permit: Permit, code: int) -> None:
        """record() for a time window: calls are marked with their second."""
        sec = math.floor(self._clock())
        # A new second may have expired calls from the window: the rates may have risen.
        flush = self._flush_each or (self._exact and sec != self._eval_sec)
        with self._lock:
            if permit.gen != self._gen:
                self.stale_records += 1
                return
            codes = self._codes
            if sec != self._mark_sec:
                self._marks.append((len(codes), sec))
                self._mark_sec = sec
            codes.append(code)
            n = len(codes)
        urgent = code & self._urgent
        if urgent or flush or n >= self._flush_calls:
            self._store.request_flush(self, bool(urgent))

    def _record_probe(self, permit: Permit, outcome: Outcome, duration_s: float | None) -> None:
        now = self._clock()
        if duration_s is None:
            duration_s = now - permit.started_at
        cfg = self._config
        failed = bool(outcome._bit & self._fail_mask)  # type: ignore[attr-defined]
        # The store applies the policy (first_failure counts a slow probe as failed when
        # slowness can trip the breaker at all; failure_rate counts it towards the slow rate).
        slow = duration_s >= cfg.slow_call_duration_s
        assert permit.token is not None
        snap = self._store.complete_probe(self.name, permit.token, not failed, cfg, now, slow)
        self.apply_snapshot(snap)

    def flush(self) -> None:
        """Send the pending counts to the store now (normally the store schedules this)."""
        with self._lock:
            codes = self._codes
            if not codes:
                return
            marks = self._marks
            snap = self._snap
            self._reset_pending()
        batch = _make_batch(codes, marks, snap, self._config)
        now = self._clock()
        self._eval_sec = math.floor(now)
        self.apply_snapshot(self._store.flush(self.name, batch, self._config, now))

    def has_pending(self) -> bool:
        return bool(self._codes)

    def _reset_pending(self) -> None:
        self._codes = bytearray()
        self._marks = []
        self._mark_sec = -1

    # -- operator ------------------------------------------------------------------------

    def force(self, state: State | None) -> Snapshot:
        """FORCED_OPEN / FORCED_CLOSED / DISABLED, or None for automatic (a fresh CLOSED).
        Goes through the store, so every process sharing it follows."""
        if state is not None:
            try:
                state = State(state)
            except ValueError:
                raise ValueError(f"state: unknown state {state!r}") from None
            if state not in OPERATOR_STATES:
                allowed = sorted(s.value for s in OPERATOR_STATES)
                raise ValueError(f"state: cannot force {state.value}; use one of {allowed} or None")
        snap = self._store.force(self.name, state, self._clock())
        self.apply_snapshot(snap)
        return snap

    def refresh(self) -> Snapshot:
        """Re-read the shared record (the stores also do this periodically)."""
        self.apply_snapshot(self._store.load(self.name))
        return self._snap

    def close(self) -> None:
        """Stop receiving updates from the store."""
        self._store.detach(self)

    # -- store-facing --------------------------------------------------------------------

    def apply_snapshot(self, snap: Snapshot, *, notify: bool = True) -> None:
        """Adopt a newer shared record (called by the store, from any thread)."""
        with self._lock:
            cur = self._snap
            if snap.epoch == cur.epoch and snap.version <= cur.version:
                if snap.version == cur.version:
                    self._snap = snap  # same state, fresher window figures
                    self._flush_each = self._exact and not self._may_defer(snap)
                return
            if cur.epoch == "" and snap.version == cur.version and snap.state is cur.state:
                self._snap = snap  # the record was merely created: nothing changed
                self._flush_each = self._exact and not self._may_defer(snap)
                return
            self._snap = snap
            self._flush_each = self._exact and not self._may_defer(snap)
            self._state = snap.state
            self._passing = snap.state in _PASSING
            self._open_until = snap.open_until
            self._probe_retry_at = 0.0
            self._gen += 1  # permits issued under the old record no longer count
            self._reset_pending()
        if notify and snap.state is not cur.state:
            self._emit(
                Transition(
                    name=self.name,
                    from_state=cur.state,
                    to_state=snap.state,
                    reason=snap.reason,
                    at=snap.changed_at,
                    calls=snap.calls,
                    failures=snap.failures,
                    slow_calls=snap.slow_calls,
                    failure_rate=snap.failure_rate,
                    slow_call_rate=snap.slow_call_rate,
                    version=snap.version,
                    origin=snap.origin,
                )
            )

    def _may_defer(self, snap: Snapshot) -> bool:
        """Whether a call that is neither a failure nor slow (when slowness counts) can be
        left pending without changing any decision. In CLOSED it can once the shared window
        holds minimum_calls: such a call resets the streak and can only lower both rates
        (a count window never shrinks; a time window is re-evaluated every new second).
        FORCED_CLOSED never trips. Other states record nothing."""
        if snap.state is State.CLOSED:
            return snap.calls >= self._min_calls
        return snap.state is State.FORCED_CLOSED

    def _emit(self, transition: Transition) -> None:
        for listener in list(self._listeners):
            try:
                listener(transition)
            except Exception:
                # An observer must never break the call path.
                log.exception("breaker %s: listener %r failed", self.name, listener)

    def __repr__(self) -> str:
        return f"<Breaker {self.name!r} {self._state.value} v{self._snap.version}>"


def _make_batch(
    codes: bytearray, marks: list[tuple[int, int]], snap: Snapshot, cfg: BreakerConfig
) -> Batch:
    stripped = codes.rstrip(b"13")
    trailing = len(codes) - len(stripped)
    buckets: tuple[tuple[int, int, int, int], ...] = ()
    if cfg.window_type is WindowType.COUNT:
        # Only the newest window_size calls can still be in the window.
        sent = bytes(codes[-cfg.window_size :])
    else:
        sent = b""
        out = []
        for i, (start, sec) in enumerate(marks):
            end = marks[i + 1][0] if i + 1 < len(marks) else len(codes)
            seg = codes[start:end]
            fails = seg.count(b"1") + seg.count(b"3")
            slow = seg.count(b"2") + seg.count(b"3")
            out.append((sec, len(seg), fails, slow))
        buckets = tuple(out)
    return Batch(
        epoch=snap.epoch,
        version=snap.version,
        codes=sent,
        buckets=buckets,
        trailing_failures=trailing,
        had_success=bool(stripped),
    )


__all__ = [
    "Batch",
    "Breaker",
    "HalfOpenPolicy",
    "BreakerConfig",
    "BreakerOpen",
    "Listener",
    "OPERATOR_STATES",
    "Outcome",
    "Permit",
    "ProbeResult",
    "Snapshot",
    "State",
    "StateStore",
    "Transition",
    "WindowType",
]
