"""The breakers of this process: one per route, sharing one state store (Redis when
REDIS_URL is set, else in-process, which is right for the embedded single worker).

Operator intent lives in the database (CircuitBreaker rows): thresholds, forced states and
dynamic threshold values are re-read every ROUTE_REFRESH_SECONDS and applied to the live
breakers, so a change reaches every running worker within seconds, without a restart. The
healthy path costs no query and no Redis round trip: the engine decides locally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.db.models import Max

from breakers.engine import (
    OPERATOR_STATES,
    Breaker,
    BreakerConfig,
    InProcessStore,
    State,
    Transition,
)
from breakers.models import BreakerTransition, CircuitBreaker
from breakers.telemetry import observe_transition

log = logging.getLogger(__name__)
FORCED = {state.slug: state for state in OPERATOR_STATES}  # forced_state value -> engine state


def db_state(state: State) -> str:
    return CircuitBreaker.State(state.slug)


def effective_config(row: CircuitBreaker) -> BreakerConfig:
    """Defaults, then the row's overrides, then a dynamic threshold when it has a value."""
    config = BreakerConfig.from_dict(row.config or {})
    if row.dynamic_field and row.dynamic_value is not None:
        config = config.replace(**{row.dynamic_field: row.dynamic_value})
    return config


class Guard:
    """Holds this process's store and breakers (strongly: stores keep them weakly)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        if settings.REDIS_URL:
            from breakers.engine.redis_store import RedisStore

            self.store = RedisStore(settings.REDIS_URL)
        else:
            self.store = InProcessStore()
        self.breakers: dict[str, Breaker] = {}
        self.rows: dict[str, tuple] = {}
        self.lock = threading.Lock()
        self.stamp: object = None
        self.checked = 0.0
        self.stopped = threading.Event()
        self.recorder: ThreadPoolExecutor | None = None
        # Operator changes must reach this worker even while no event flows through it.
        threading.Thread(target=self._refresher, name="breaker-refresh", daemon=True).start()

    def _refresher(self) -> None:
        while not self.stopped.wait(settings.ROUTE_REFRESH_SECONDS):
            if not self.breakers:
                continue
            try:
                self.refresh_if_due()
            except Exception:  # the database may blink; the next round tries again
                log.exception("breaker refresh failed")
            finally:
                connection.close()

    def breaker(self, route) -> Breaker:
        self.refresh_if_due()
        found = self.breakers.get(route.name)
        if found is None:
            with self.lock:
                found = self.breakers.get(route.name)
                if found is None:
                    found = Breaker(
                        route.name, BreakerConfig(), self.store, listeners=[self.on_transition]
                    )
                    self.breakers[route.name] = found
                    self.checked = 0.0  # apply its row at once
            self.refresh_if_due()
        return found

    def refresh_if_due(self) -> None:
        now = time.monotonic()
        if now - self.checked < settings.ROUTE_REFRESH_SECONDS:
            return
        with self.lock:
            if now - self.checked < settings.ROUTE_REFRESH_SECONDS:
                return  # another thread refreshed while we waited for the lock
            self.checked = now
            stamp = CircuitBreaker.objects.aggregate(at=Max("updated_at"))["at"]
            if stamp == self.stamp and set(self.rows) >= set(self.breakers):
                return
            self.stamp = stamp
            for row in CircuitBreaker.objects.select_related("route").filter(
                route__name__in=list(self.breakers)
            ):
                self.apply(row)

    def apply(self, row: CircuitBreaker) -> None:
        breaker = self.breakers[row.route.name]
        key = (row.config, row.dynamic_field, row.dynamic_value, row.forced_state)
        if self.rows.get(row.route.name) == key:
            return
        self.rows[row.route.name] = key
        try:
            config = effective_config(row)
        except ValueError:
            log.exception("breaker %s: invalid config kept out", row.route.name)
        else:
            if config != breaker.config:
                breaker.update_config(config)
        wanted = FORCED.get(row.forced_state)
        current = breaker.state
        if wanted is not None and current != wanted:
            breaker.force(wanted)
        elif wanted is None and current in OPERATOR_STATES:
            breaker.force(None)  # back to automatic

    def on_transition(self, t: Transition) -> None:
        """Every process sees every transition; the one that made it writes it down. A
        transition seen on the delivery pool's event loop (a webhook's outcome) is written by
        a thread of its own, in order: the ORM must not run on, or block, the loop."""
        local = t.origin == getattr(self.store, "node_id", t.origin)
        observe_transition(t, local=local)
        if not local:
            return
        if _on_event_loop():
            with self.lock:
                if self.recorder is None:
                    self.recorder = ThreadPoolExecutor(1, thread_name_prefix="breaker-record")
            self.recorder.submit(self._record, t)
        else:
            self._record(t)

    def _record(self, t: Transition) -> None:
        try:
            record_transition(t)
        except Exception:
            log.exception("could not record transition of %s", t.name)
        finally:
            if threading.current_thread() is not threading.main_thread():
                connection.close()


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def record_transition(t: Transition) -> None:
    at = datetime.fromtimestamp(t.at, tz=UTC)
    row = CircuitBreaker.objects.filter(route__name=t.name).first()
    if row is None:
        return
    BreakerTransition.objects.create(
        breaker=row,
        name=t.name,
        from_state=db_state(t.from_state),
        to_state=db_state(t.to_state),
        reason=t.reason[:200],
        node=t.origin[:200],
        at=at,
        calls=t.calls,
        failures=t.failures,
        slow_calls=t.slow_calls,
        failure_rate=t.failure_rate,
        slow_call_rate=t.slow_call_rate,
    )
    # Not through save(): updated_at would move and make every worker re-read the rows.
    CircuitBreaker.objects.filter(pk=row.pk).update(state=db_state(t.to_state), state_changed_at=at)


_guard: Guard | None = None
_guard_lock = threading.Lock()


def guard() -> Guard:
    global _guard
    if _guard is None or _guard.pid != os.getpid():
        with _guard_lock:
            if _guard is None or _guard.pid != os.getpid():
                _guard = Guard()
    return _guard


def breaker_for(route) -> Breaker:
    return guard().breaker(route)


def forget_guard() -> None:
    """Drop this process's breakers (tests: each starts from a clean store)."""
    global _guard
    with _guard_lock:
        if _guard is not None:
            _guard.stopped.set()
            if _guard.recorder is not None:
                _guard.recorder.shutdown(wait=True)
            for breaker in _guard.breakers.values():
                breaker.close()
            close = getattr(_guard.store, "close", None)
            if close:
                close()
        _guard = None
