"""Shared breaker state: the store interface and the in-process store.

A store owns the rules that change a breaker's shared record, so that every process sharing
the store applies them atomically in one place:

* ``flush``          merge a batch of call outcomes into the window; trip if a threshold is hit
* ``acquire_probe``  OPEN -> HALF_OPEN once the wait is over, and lease a probe slot
* ``complete_probe`` release the lease; close after enough successes, re-open (backed off)
                     on a failure
* ``force``          operator modes, and back to automatic

`InProcessStore` (here, stdlib only) is the embedded default for one worker process and the
reference implementation; `RedisStore` (breakers/engine/redis_store.py) runs the same rules
as one Lua script per operation and shares them between any number of processes. Both
implement `breakers.engine.machine.StateStore` and pass tests/breakers/test_store_contract.py.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable

from .machine import (
    OPERATOR_STATES,
    Batch,
    Breaker,
    BreakerConfig,
    HalfOpenPolicy,
    ProbeResult,
    Snapshot,
    State,
    WindowType,
)

__all__ = ["AttachedBreakers", "InProcessStore", "make_node_id"]


def make_node_id() -> str:
    """host:pid:random, so a restarted process is a new node."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class _Record:
    """The mutable shared record behind a Snapshot (field names follow the Redis hash)."""

    __slots__ = (
        "name",
        "state",
        "version",
        "epoch",
        "alias_epoch",
        "changed_at",
        "open_until",
        "reopen",
        "reason",
        "origin",
        "consec",
        "wspec",
        "cw",
        "tw",
        "calls",
        "failures",
        "slow",
        "probe_ok",
        "probe_fail",
        "probe_slow",
        "last_probe",
        "leases",
    )

    def __init__(self, name: str, epoch: str) -> None:
        self.name = name
        self.state = State.CLOSED
        self.version = 0
        self.epoch = epoch
        self.alias_epoch = ""  # fallback copy: batches made under the Redis record still count
        self.changed_at = 0.0
        self.open_until = 0.0
        self.reopen = 0
        self.reason = ""
        self.origin = ""
        self.consec = 0
        self.wspec: tuple[WindowType, int] | None = None
        self.cw = b""  # count window: per-call codes, oldest first
        self.tw: dict[int, list[int]] = {}  # time window: second -> [calls, failures, slow]
        self.calls = 0
        self.failures = 0
        self.slow = 0
        self.probe_ok = 0
        self.probe_fail = 0
        self.probe_slow = 0
        self.last_probe: float | None = None
        self.leases: dict[str, float] = {}  # probe token -> lease expiry

    def snapshot(self) -> Snapshot:
        return Snapshot(
            self.name,
            self.state,
            self.version,
            self.epoch,
            self.changed_at,
            self.open_until,
            self.reopen,
            self.reason,
            self.origin,
            self.calls,
            self.failures,
            self.slow,
            self.probe_ok,
            self.probe_fail,
            self.probe_slow,
        )

    # -- rules (mirrored line by line in breakers/engine/lua/breaker.lua) ----------------

    def transition(self, to: State, reason: str, now: float, origin: str) -> None:
        self.state = to
        self.version += 1
        self.changed_at = now
        self.reason = reason
        self.origin = origin

    def clear_window(self) -> None:
        self.cw = b""
        self.tw = {}
        self.consec = 0

    def clear_probes(self) -> None:
        self.leases = {}
        self.probe_ok = self.probe_fail = self.probe_slow = 0

    def half_open_expired(self, cfg: BreakerConfig, now: float) -> bool:
        wait = cfg.half_open_max_wait_s
        return wait > 0 and now >= self.changed_at + wait

    def judge_probes(self, cfg: BreakerConfig, now: float, origin: str) -> None:
        """failure_rate policy: once the permitted calls are done, their rates decide."""
        n = self.probe_ok + self.probe_fail
        if n < cfg.half_open_permitted_calls:
            self.version += 1  # same state, but other nodes must retry for a slot
            return
        fr, sr = cfg.failure_rate_threshold, cfg.slow_call_rate_threshold
        if fr is not None and self.probe_fail * 100 >= fr * n:
            self.trip("probe_failure_rate", self.reopen + 1, cfg, now, origin)
        elif sr is not None and self.probe_slow * 100 >= sr * n:
            self.trip("probe_slow_call_rate", self.reopen + 1, cfg, now, origin)
        else:
            self.reset(State.CLOSED, "probe_succeeded", now, origin)

    def trip(self, reason: str, reopen: int, cfg: BreakerConfig, now: float, origin: str) -> None:
        # Figures are kept: they say what tripped it. The window restarts on the next CLOSED.
        self.reopen = reopen
        self.open_until = now + cfg.open_wait(reopen)
        self.clear_window()
        self.clear_probes()
        self.transition(State.OPEN, reason, now, origin)

    def reset(self, to: State, reason: str, now: float, origin: str) -> None:
        """A fresh start in `to`: closing after probes, or an operator's force."""
        self.reopen = 0
        self.open_until = 0.0
        self.clear_window()
        self.calls = self.failures = self.slow = 0
        self.clear_probes()
        self.last_probe = None
        self.transition(to, reason, now, origin)

    def flush(self, batch: Batch, cfg: BreakerConfig, now: float, origin: str) -> bool:
        """Merge the batch; return True if a transition happened."""
        if (
            (batch.epoch and batch.epoch not in (self.epoch, self.alias_epoch))
            or batch.version != self.version
            or self.state not in (State.CLOSED, State.FORCED_CLOSED)
        ):
            return False  # made under a state that has gone: those calls no longer count
        spec = (cfg.window_type, cfg.window_size)
        if self.wspec != spec:
            self.cw = b""
            self.tw = {}
            self.wspec = spec
        if batch.had_success:
            self.consec = batch.trailing_failures
        else:
            self.consec += batch.trailing_failures
        size = cfg.window_size
        if cfg.window_type is WindowType.COUNT:
            w = (self.cw + batch.codes)[-size:]
            self.cw = w
            calls = len(w)
            fails = w.count(b"1") + w.count(b"3")
            slow = w.count(b"2") + w.count(b"3")
        else:
            tw = self.tw
            for sec, c, f, s in batch.buckets:
                b = tw.get(sec)
                if b is None:
                    tw[sec] = [c, f, s]
                else:
                    b[0] += c
                    b[1] += f
                    b[2] += s
            horizon = math.floor(now) - size
            for sec in [sec for sec in tw if sec <= horizon]:
                del tw[sec]
            calls = sum(b[0] for b in tw.values())
            fails = sum(b[1] for b in tw.values())
            slow = sum(b[2] for b in tw.values())
        self.calls, self.failures, self.slow = calls, fails, slow
        if self.state is not State.CLOSED:
            return False  # FORCED_CLOSED records figures but never trips
        reason = None
        if cfg.consecutive_failures and self.consec >= cfg.consecutive_failures:
            reason = "consecutive_failures"
        elif calls >= cfg.minimum_calls:
            fr, sr = cfg.failure_rate_threshold, cfg.slow_call_rate_threshold
            if fr is not None and fails * 100 >= fr * calls:
                reason = "failure_rate"
            elif sr is not None and slow * 100 >= sr * calls:
                reason = "slow_call_rate"
        if reason is None:
            return False
        self.trip(reason, 0, cfg, now, origin)
        return True

    def acquire_probe(
        self, cfg: BreakerConfig, now: float, origin: str, token: str
    ) -> tuple[str | None, float | None, bool]:
        """Return (token or None, retry_at, transitioned)."""
        changed = False
        if self.state is State.OPEN and now >= self.open_until:
            self.clear_probes()
            self.last_probe = None
            self.transition(State.HALF_OPEN, "open_wait_elapsed", now, origin)
            changed = True
        if self.state is State.HALF_OPEN:
            if self.half_open_expired(cfg, now):
                self.trip("half_open_max_wait", self.reopen + 1, cfg, now, origin)
                return None, self.open_until, True
            for t in [t for t, exp in self.leases.items() if exp <= now]:
                del self.leases[t]
            if cfg.half_open_policy is HalfOpenPolicy.FIRST_FAILURE:
                full = len(self.leases) >= cfg.half_open_max_probes
            else:
                done = self.probe_ok + self.probe_fail
                if not self.leases and done >= cfg.half_open_permitted_calls:
                    # All permitted calls are in (the limit was lowered meanwhile): judge now.
                    self.judge_probes(cfg, now, origin)  # always a transition here
                    return None, self.open_until or None, True  # OPEN: when to ask again
                full = done + len(self.leases) >= cfg.half_open_permitted_calls
            last = self.last_probe
            rate_ok = last is None or now - last >= cfg.half_open_probe_interval_s
            if not full and rate_ok:
                self.leases[token] = now + cfg.probe_lease_s
                self.last_probe = now
                return token, None, changed
            retry: float | None = min(self.leases.values()) if full and self.leases else None
            if not rate_ok:
                assert last is not None
                r2 = last + cfg.half_open_probe_interval_s
                retry = r2 if retry is None else max(retry, r2)
            if cfg.half_open_max_wait_s > 0:
                deadline = self.changed_at + cfg.half_open_max_wait_s
                retry = deadline if retry is None else min(retry, deadline)
            return None, retry, changed
        if self.state is State.OPEN:
            return None, self.open_until, changed
        return None, None, changed

    def complete_probe(
        self,
        token: str,
        success: bool,
        cfg: BreakerConfig,
        now: float,
        origin: str,
        slow: bool = False,
    ) -> bool:
        if self.state is not State.HALF_OPEN or token not in self.leases:
            return False  # stale: the lease expired and the breaker moved on
        del self.leases[token]
        if self.half_open_expired(cfg, now):
            self.trip("half_open_max_wait", self.reopen + 1, cfg, now, origin)
        elif cfg.half_open_policy is HalfOpenPolicy.FAILURE_RATE:
            if success:
                self.probe_ok += 1
            else:
                self.probe_fail += 1
            if slow:
                self.probe_slow += 1
            self.judge_probes(cfg, now, origin)
        # first_failure: a slow probe fails when slowness can trip the breaker at all.
        elif not success or (slow and cfg.slow_call_rate_threshold is not None):
            self.trip("probe_failed", self.reopen + 1, cfg, now, origin)
        else:
            self.probe_ok += 1
            if self.probe_ok >= cfg.half_open_success_threshold:
                self.reset(State.CLOSED, "probe_succeeded", now, origin)
            else:
                self.version += 1  # same state, but other nodes must retry for a slot
        return True

    def force(self, state: State | None, now: float, origin: str) -> None:
        if state is None:
            self.reset(State.CLOSED, "operator_auto", now, origin)
        else:
            self.reset(state, "operator", now, origin)


class AttachedBreakers:
    """The breakers a store keeps informed, held weakly and grouped by name (both stores)."""

    _lock: threading.Lock
    _attached: dict[str, weakref.WeakSet[Breaker]]

    def _remember(self, breaker: Breaker) -> None:
        with self._lock:
            self._attached.setdefault(breaker.name, weakref.WeakSet()).add(breaker)

    def detach(self, breaker: Breaker) -> None:
        with self._lock:
            group = self._attached.get(breaker.name)
            if group is not None:
                group.discard(breaker)

    def attached(self) -> list[Breaker]:
        with self._lock:
            return [b for group in self._attached.values() for b in group]

    def dispatch(self, snap: Snapshot) -> None:
        """Hand a changed record to every breaker of that name in this process."""
        with self._lock:
            group = list(self._attached.get(snap.name, ()))
        for breaker in group:
            breaker.apply_snapshot(snap)


class InProcessStore(AttachedBreakers):
    """Shared state for the breakers of one process (the embedded default).

    Decisions are exact (`exact_decisions`): a breaker flushes at once every call that could
    change its state (a failure, a slow call when slowness counts, any call while the window
    is short of minimum_calls, the first call of a new second in a time window). Calls that
    cannot change it (fast successes in a full enough window) are merged every
    `flush_max_calls` calls or with the next flush, which keeps the CLOSED path cheap.
    Breakers with the same name in this process share one record (each sees the others'
    pending successes at their next flush).
    """

    exact_decisions = True

    def __init__(
        self,
        *,
        node_id: str | None = None,
        flush_max_calls: int = 256,
        on_change: Callable[[Snapshot], None] | None = None,
        epoch_prefix: str = "mem",
    ) -> None:
        self.node_id = node_id or make_node_id()
        self.flush_max_calls = flush_max_calls
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self._attached: dict[str, weakref.WeakSet[Breaker]] = {}
        self._on_change = on_change or self.dispatch
        self._epoch_prefix = epoch_prefix

    # -- wiring --------------------------------------------------------------------------

    def attach(self, breaker: Breaker) -> Snapshot:
        self._remember(breaker)
        return self.load(breaker.name)

    def request_flush(self, breaker: Breaker, urgent: bool) -> None:
        breaker.flush()

    def _record(self, name: str) -> _Record:
        rec = self._records.get(name)
        if rec is None:
            rec = _Record(name, f"{self._epoch_prefix}:{uuid.uuid4().hex[:12]}")
            self._records[name] = rec
        return rec

    # -- operations ----------------------------------------------------------------------

    def load(self, name: str) -> Snapshot:
        with self._lock:
            rec = self._records.get(name)
            return rec.snapshot() if rec is not None else Snapshot(name)

    def load_many(self, names: Iterable[str]) -> dict[str, Snapshot]:
        """Several records at once (the board reads every breaker's window this way)."""
        with self._lock:
            return {
                n: rec.snapshot() if (rec := self._records.get(n)) is not None else Snapshot(n)
                for n in names
            }

    def flush(self, name: str, batch: Batch, config: BreakerConfig, now: float) -> Snapshot:
        with self._lock:
            rec = self._record(name)
            changed = rec.flush(batch, config, now, self.node_id)
            snap = rec.snapshot()
        if changed:
            self._on_change(snap)
        return snap

    def acquire_probe(self, name: str, config: BreakerConfig, now: float) -> ProbeResult:
        with self._lock:
            rec = self._record(name)
            token, retry_at, changed = rec.acquire_probe(
                config, now, self.node_id, uuid.uuid4().hex
            )
            snap = rec.snapshot()
        if changed:
            self._on_change(snap)
        return ProbeResult(token, snap, retry_at)

    def complete_probe(
        self,
        name: str,
        token: str,
        success: bool,
        config: BreakerConfig,
        now: float,
        slow: bool = False,
    ) -> Snapshot:
        with self._lock:
            rec = self._record(name)
            changed = rec.complete_probe(token, success, config, now, self.node_id, slow)
            snap = rec.snapshot()
        if changed:
            self._on_change(snap)
        return snap

    def force(self, name: str, state: State | None, now: float) -> Snapshot:
        if state is not None and state not in OPERATOR_STATES:
            raise ValueError(f"state: cannot force {state!r}")
        with self._lock:
            rec = self._record(name)
            rec.force(state, now, self.node_id)
            snap = rec.snapshot()
        self._on_change(snap)
        return snap

    def delete(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)

    # -- fallback support (used by RedisStore) -------------------------------------------

    def seed(self, snap: Snapshot) -> None:
        """Continue from a record last seen elsewhere, unless one is already here."""
        with self._lock:
            if snap.name in self._records:
                return
            rec = self._record(snap.name)
            rec.alias_epoch = snap.epoch
            rec.state = snap.state
            rec.version = snap.version
            rec.changed_at = snap.changed_at
            rec.open_until = snap.open_until
            rec.reopen = snap.reopen_count
            rec.reason = snap.reason
            rec.origin = snap.origin
            rec.calls, rec.failures, rec.slow = snap.calls, snap.failures, snap.slow_calls
            rec.probe_ok = snap.probe_successes
            rec.probe_fail = snap.probe_failures
            rec.probe_slow = snap.probe_slow_calls

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
