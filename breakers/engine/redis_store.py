"""RedisStore: breaker state shared by any number of processes and machines.

* Decisions stay local: a Breaker decides from its cached Snapshot; calls are counted in
  memory and flushed by a background thread every `flush_interval_s` or `flush_max_calls`
  calls (at once after a failure), so the healthy path never waits on Redis.
* Every change is one Lua script (breakers/engine/lua/breaker.lua): window merge + evaluation +
  trip, OPEN -> HALF_OPEN + probe lease, probe completion, operator force. The script bumps
  the record's version and PUBLISHes it; a subscriber thread in every process applies it, and
  a periodic refresh catches anything pub/sub missed.
* Redis unreachable (short socket timeouts, no retries): the store switches to an embedded
  InProcessStore seeded from the last known records, counts it (`fallbacks`), and a
  background thread pings Redis; when it answers, Redis's records win again (`resyncs`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from .machine import OPERATOR_STATES, Batch, Breaker, BreakerConfig, ProbeResult, Snapshot, State
from .stores import AttachedBreakers, InProcessStore, make_node_id

log = logging.getLogger(__name__)

LUA_SOURCE = (Path(__file__).parent / "lua" / "breaker.lua").read_text()
DEFAULT_URL = "redis://127.0.0.1:6379/0"
_OUTAGE = (RedisError, OSError)


@functools.lru_cache(maxsize=512)
def _config_args(cfg: BreakerConfig) -> tuple[str, ...]:
    """The config as ARGV 8-24 of the script (repr keeps floats exact)."""

    def num(v: float | None) -> str:
        return "-1" if v is None else repr(v)

    return (
        cfg.window_type.value,
        str(cfg.window_size),
        str(cfg.minimum_calls),
        num(cfg.failure_rate_threshold),
        num(cfg.slow_call_rate_threshold),
        str(cfg.consecutive_failures),
        repr(cfg.open_wait_s),
        repr(cfg.open_wait_multiplier),
        repr(cfg.max_open_wait_s),
        str(cfg.half_open_max_probes),
        repr(cfg.half_open_probe_interval_s),
        str(cfg.half_open_success_threshold),
        repr(cfg.probe_lease_s),
        cfg.window_spec,
        cfg.half_open_policy.value,
        str(cfg.half_open_permitted_calls),
        repr(cfg.half_open_max_wait_s),
    )


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def snapshot_from_fields(name: str, d: Mapping[Any, Any]) -> Snapshot:
    """Parse the state hash (HGETALL) or the script's JSON record."""
    if not d:
        return Snapshot(name)
    g = {_text(k): _text(v) for k, v in d.items()}
    return Snapshot(
        name=name,
        state=State(g["state"]),
        version=int(g["version"]),
        epoch=g["epoch"],
        changed_at=float(g["changed_at"]),
        open_until=float(g["open_until"]),
        reopen_count=int(g["reopen"]),
        reason=g["reason"],
        origin=g["origin"],
        calls=int(g["calls"]),
        failures=int(g["failures"]),
        slow_calls=int(g["slow"]),
        probe_successes=int(g["probe_ok"]),
        probe_failures=int(g.get("probe_fail", "0")),  # absent from records of older versions
        probe_slow_calls=int(g.get("probe_slow", "0")),
    )


class RedisStore(AttachedBreakers):
    """See the module docstring. Thread-safe; one per process is enough for all breakers."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "cp:breaker:",
        flush_max_calls: int = 1000,
        flush_interval_s: float = 0.05,
        refresh_interval_s: float = 1.0,
        retry_interval_s: float = 0.5,
        socket_timeout_s: float = 0.2,
        key_ttl_s: float = 7 * 86400,
        start_threads: bool = True,
        node_id: str | None = None,
    ) -> None:
        if flush_max_calls < 1:
            raise ValueError("flush_max_calls: must be >= 1")
        if flush_interval_s <= 0 or refresh_interval_s <= 0 or retry_interval_s <= 0:
            raise ValueError("flush_interval_s/refresh_interval_s/retry_interval_s: must be > 0")
        self.node_id = node_id or make_node_id()
        self.url = url
        self.prefix = prefix
        self.channel = f"{prefix}events"
        self.flush_max_calls = flush_max_calls
        self.flush_interval_s = flush_interval_s
        self.refresh_interval_s = refresh_interval_s
        self.retry_interval_s = retry_interval_s
        self._ttl_ms = int(key_ttl_s * 1000)
        # Short timeouts and no retries: a dead Redis must cost one timeout, then fallback.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            client_name=f"cp-breaker-{os.getpid()}",
        )
        self._script = self._client.register_script(LUA_SOURCE)
        self._local = InProcessStore(
            node_id=self.node_id, on_change=self.dispatch, epoch_prefix="fallback"
        )
        self._lock = threading.Lock()
        self._attached: dict[str, weakref.WeakSet[Breaker]] = {}
        self._keys: dict[str, list[str]] = {}
        # Health and counters (read them, e.g. for metrics).
        self.available = True
        self.fallbacks = 0  # times the store switched to the local fallback
        self.fallback_ops = 0  # operations served by the local fallback
        self.resyncs = 0  # times it came back to Redis
        self.redis_errors = 0
        self.flushes = 0
        # Background threads.
        self._start_threads = start_threads
        self._pid = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._resubscribe = threading.Event()
        self._subscribed = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next_retry = 0.0

    # -- wiring --------------------------------------------------------------------------

    def attach(self, breaker: Breaker) -> Snapshot:
        self._remember(breaker)
        self._ensure_threads()
        return self.load(breaker.name)

    def request_flush(self, breaker: Breaker, urgent: bool) -> None:
        # A failure is flushed inline: the trip is then decided before the caller's next call,
        # on every node alike. Only the failing path pays that round trip; successes are
        # batched by the flush thread.
        if urgent or not self._threads:
            breaker.flush()
        elif not self._wake.is_set():
            self._wake.set()

    def wait_subscribed(self, timeout: float = 5.0) -> bool:
        """Block until the subscriber listens (tests and benchmarks use this)."""
        return self._subscribed.wait(timeout)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def keys_for(self, name: str) -> list[str]:
        keys = self._keys.get(name)
        if keys is None:
            # One hash tag per breaker: all its keys live in one Redis Cluster slot.
            base = f"{self.prefix}{{{name}}}"
            keys = [f"{base}:s", f"{base}:cw", f"{base}:tw", f"{base}:leases"]
            self._keys[name] = keys
        return keys

    # -- operations ----------------------------------------------------------------------

    def _eval(
        self, name: str, op: str, now: float, config: BreakerConfig, args: list[Any]
    ) -> dict[str, Any] | None:
        """Run one script call; None means Redis is unavailable (fallback engaged)."""
        if not self.available:
            return None
        try:
            raw = self._script(
                keys=self.keys_for(name),
                args=[
                    op,
                    repr(now),
                    self.node_id,
                    self.channel,
                    name,
                    self._ttl_ms,
                    "r:" + uuid.uuid4().hex[:12],
                    *_config_args(config),
                    *args,
                ],
            )
        except _OUTAGE as exc:
            self._enter_fallback(exc)
            return None
        out: dict[str, Any] = json.loads(raw)
        out["snapshot"] = snap = snapshot_from_fields(name, out["record"])
        if out.get("changed"):
            self.dispatch(snap)  # same-process breakers need not wait for pub/sub
        return out

    def load(self, name: str) -> Snapshot:
        if self.available:
            try:
                fields = cast(dict[Any, Any], self._client.hgetall(self.keys_for(name)[0]))
                return snapshot_from_fields(name, fields)
            except _OUTAGE as exc:
                self._enter_fallback(exc)
        self.fallback_ops += 1
        return self._local.load(name)

    def load_many(self, names: Iterable[str]) -> dict[str, Snapshot]:
        """Several records in one round trip (a pipeline), whatever their number."""
        names = list(names)
        if not self.available and not self._threads and time.monotonic() >= self._next_retry:
            # A reader with nothing attached (the web process) has no maintenance thread to
            # bring it back from the fallback: it retries here, every retry_interval_s.
            self._next_retry = time.monotonic() + self.retry_interval_s
            self.try_resync()
        if self.available and names:
            try:
                pipe = self._client.pipeline(transaction=False)
                for name in names:
                    pipe.hgetall(self.keys_for(name)[0])
                return {
                    n: snapshot_from_fields(n, d)
                    for n, d in zip(names, pipe.execute(), strict=True)
                }
            except _OUTAGE as exc:
                self._enter_fallback(exc)
        return self._local.load_many(names)

    def flush(self, name: str, batch: Batch, config: BreakerConfig, now: float) -> Snapshot:
        args: list[Any] = [
            batch.epoch,
            batch.version,
            batch.trailing_failures,
            1 if batch.had_success else 0,
            batch.codes,
        ]
        for bucket in batch.buckets:
            args.extend(bucket)
        out = self._eval(name, "flush", now, config, args)
        if out is not None:
            self.flushes += 1
            snap: Snapshot = out["snapshot"]
            return snap
        self.fallback_ops += 1
        return self._local.flush(name, batch, config, now)

    def acquire_probe(self, name: str, config: BreakerConfig, now: float) -> ProbeResult:
        out = self._eval(name, "probe", now, config, [uuid.uuid4().hex])
        if out is None:
            self.fallback_ops += 1
            return self._local.acquire_probe(name, config, now)
        retry = out.get("retry_at")
        return ProbeResult(
            out.get("token"), out["snapshot"], None if retry is None else float(retry)
        )

    def complete_probe(
        self,
        name: str,
        token: str,
        success: bool,
        config: BreakerConfig,
        now: float,
        slow: bool = False,
    ) -> Snapshot:
        args = [token, 1 if success else 0, 1 if slow else 0]
        out = self._eval(name, "complete", now, config, args)
        if out is None:
            self.fallback_ops += 1
            return self._local.complete_probe(name, token, success, config, now, slow)
        snap: Snapshot = out["snapshot"]
        return snap

    def force(self, name: str, state: State | None, now: float) -> Snapshot:
        if state is not None and state not in OPERATOR_STATES:
            raise ValueError(f"state: cannot force {state!r}")
        mode = "AUTO" if state is None else state.value
        out = self._eval(name, "force", now, _DEFAULT_CONFIG, [mode])
        if out is None:
            self.fallback_ops += 1
            return self._local.force(name, state, now)
        snap: Snapshot = out["snapshot"]
        return snap

    def delete(self, name: str) -> None:
        self._local.delete(name)
        try:
            self._client.delete(*self.keys_for(name))
        except _OUTAGE as exc:
            self._enter_fallback(exc)

    # -- outage handling -----------------------------------------------------------------

    def _enter_fallback(self, exc: BaseException) -> None:
        with self._lock:
            self.redis_errors += 1
            if not self.available:
                return
            self.available = False
            self.fallbacks += 1
            self._next_retry = time.monotonic() + self.retry_interval_s
        self._local.clear()
        for breaker in self.attached():
            self._local.seed(breaker.snapshot)
        log.warning(
            "breakers: Redis unavailable at %s (%s: %s); deciding locally until it returns",
            self.url,
            type(exc).__name__,
            exc,
        )
        self._subscribed.clear()

    def _load_all(self) -> list[Snapshot]:
        names = sorted({b.name for b in self.attached()})
        if not names:
            return []
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.keys_for(name)[0])
        return [snapshot_from_fields(n, d) for n, d in zip(names, pipe.execute(), strict=True)]

    def refresh_all(self) -> None:
        """Re-read every attached breaker's record (safety net for missed messages)."""
        if not self.available:
            return
        try:
            snaps = self._load_all()
        except _OUTAGE as exc:
            self._enter_fallback(exc)
            return
        for snap in snaps:
            self.dispatch(snap)

    def try_resync(self) -> bool:
        """If Redis answers again, adopt its records and leave the fallback."""
        if self.available:
            return True
        try:
            self._client.ping()
            snaps = self._load_all()
        except _OUTAGE:
            return False
        with self._lock:
            self.available = True
            self.resyncs += 1
        self._local.clear()
        for snap in snaps:
            self.dispatch(snap)  # a different epoch than the fallback's: always adopted
        self._resubscribe.set()
        log.warning("breakers: Redis at %s is back; shared state resynchronised", self.url)
        return True

    # -- background threads --------------------------------------------------------------

    def _ensure_threads(self) -> None:
        if not self._start_threads:
            return
        with self._lock:
            if self._pid == os.getpid() and self._threads:
                return
            # First use, or we are a forked child: threads do not survive fork().
            self._pid = os.getpid()
            self._stop.clear()
            self._threads = [
                threading.Thread(target=self._maintain, name="breaker-flush", daemon=True),
                threading.Thread(target=self._subscribe, name="breaker-sub", daemon=True),
            ]
            for t in self._threads:
                t.start()

    def _maintain(self) -> None:
        next_refresh = time.monotonic() + self.refresh_interval_s
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            for breaker in self.attached():
                if breaker.has_pending():
                    try:
                        breaker.flush()
                    except Exception:
                        log.exception("breakers: flush of %s failed", breaker.name)
            now = time.monotonic()
            if not self.available:
                if now >= self._next_retry:
                    self._next_retry = now + self.retry_interval_s
                    self.try_resync()
            elif now >= next_refresh:
                next_refresh = now + self.refresh_interval_s
                self.refresh_all()

    def _subscribe(self) -> None:
        while not self._stop.is_set():
            if not self.available:
                self._stop.wait(self.retry_interval_s / 2)
                continue
            self._resubscribe.clear()
            pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]  # redis-py's own hints
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set() and self.available and not self._resubscribe.is_set():
                    msg = pubsub.get_message(timeout=0.2)
                    if msg is None:
                        continue
                    if msg["type"] == "subscribe":
                        self._subscribed.set()
                        self.refresh_all()  # catch up on what was published while away
                    elif msg["type"] == "message":
                        self._on_message(msg["data"])
            except _OUTAGE as exc:
                log.info("breakers: subscriber lost Redis (%s); reconnecting", exc)
                self._stop.wait(self.retry_interval_s)
            except Exception:
                log.exception("breakers: subscriber failed; reconnecting")
                self._stop.wait(self.retry_interval_s)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(Exception):  # closing a broken connection may fail
                    pubsub.close()

    def _on_message(self, data: bytes) -> None:
        if not self.available:
            return
        record = json.loads(data)
        self.dispatch(snapshot_from_fields(_text(record["name"]), record))

    def close(self) -> None:
        """Stop the background threads and drop connections."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        self._threads = []
        self._client.close()


_DEFAULT_CONFIG = BreakerConfig()
