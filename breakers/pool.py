"""The delivery pool: many handler calls in flight per worker process, outcomes written in batches.

Four kinds of threads, each with one job:
- the Celery task thread claims a batch (one UPDATE), checks idempotency (one round trip) and
  submits the claimed events here; it returns as soon as they are queued (it blocks while the
  pool is full, which is the back-pressure on the broker);
- one event loop thread makes the webhook calls (up to DELIVERY_CONCURRENCY at once): for each
  it takes the most urgent runnable job, a slot in the route's bulkhead and a permit from its
  breaker, then awaits the call (controlplane/egress_async.py). One loop costs a fraction of
  what a thread per call costs in CPU, and CPU is what limits delivery (docs/pipeline.md);
- call threads (DELIVERY_CONCURRENCY of them) do the same for python handlers, which are
  ordinary blocking functions. Neither touches the ORM;
- one writer thread flushes finished outcomes every DELIVERY_FLUSH_MS through
  `outcomes.record` (one transaction per claim token), enforces the hard deadlines of python
  calls and expires bulkhead waits. One slow call therefore holds nothing but its own outcome.

Each lane keeps strict priority, and leaves its last DELIVERY_RESERVED_URGENT calls to
CRITICAL and HIGH.

Durability does not depend on any of this memory: a claimed event is DISPATCHED in the event
log with our node's name; if the process dies the relay releases it (missed heartbeats).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from opentelemetry.trace import SpanKind, Status, StatusCode

from breakers import outcomes
from breakers.bulkhead import Bulkhead, lease_ttl, make_bulkhead
from breakers.engine import BreakerOpen
from breakers.handlers import CallResult, call_handler, call_webhook_async
from breakers.models import Route
from breakers.telemetry import (
    BULKHEAD_REJECTED,
    BULKHEAD_WAITS,
    IN_FLIGHT,
    POOL_QUEUED,
    STRAGGLERS,
    delivery_attributes,
    tracer,
)
from controlplane.egress_async import AsyncClient
from replay.log import Outcome
from replay.models import DeliveryAttempt, Event

log = logging.getLogger(__name__)
S = Event.Status
A = DeliveryAttempt.Outcome
RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
URGENT = 1  # ranks up to this one may use the threads held back for them
HARD_GRACE_S = 0.1  # past its deadline plus this, a call is abandoned and counted a timeout
GAUGE_PERIOD_S = 0.5
IDLE_WAIT_S = 1.0  # an idle writer still looks around this often
STALE_SWEEP_S = 10.0  # how often the loop closes idle connections it may not reuse


@dataclass(eq=False)
class Job:
    event: Event
    route: Any
    breaker: Any
    token: str
    attempt: int
    envelope: dict
    rank: int
    submitted: float = field(default_factory=time.monotonic)
    started_at: Any = None  # datetime, when the call started
    deadline: float = 0.0
    lease: str | None = None
    permit: Any = None
    seq: int = 0
    waiting_since: float = 0.0
    finished: bool = False  # the call thread or the deadline settled it; whoever was first
    fallback: Job | None = None  # the primary's: called instead while its breaker is open
    served_for: Any = None  # the fallback's: the primary route it stands in for
    primary_wait: float = 0.0  # the fallback's: how long the primary's breaker stays open
    note: str = ""  # what schema tolerance did to the payload (breakers/dispatch.py)


class DeliveryPool:
    def __init__(self, size: int | None = None) -> None:
        self.pid = os.getpid()
        self.size = size or settings.DELIVERY_CONCURRENCY
        self.reserved = min(settings.DELIVERY_RESERVED_URGENT, self.size // 2)
        self.bulkhead: Bulkhead = make_bulkhead()
        # One lock, two conditions: call threads wait for work on `cv`, the task thread waits
        # for room on `room`. A finished call wakes nobody (the writer polls).
        lock = threading.RLock()
        self.cv = threading.Condition(lock)
        self.room = threading.Condition(lock)
        self.ready: list[tuple[int, int, Job]] = []  # python calls, heap: (rank, seq, job)
        self.ready_async: list[tuple[int, int, Job]] = []  # webhook calls, the loop's heap
        self.waiting: dict[str, deque[Job]] = defaultdict(deque)  # route name -> bulkhead full
        self.running: set[Job] = set()
        self.done: list[tuple[str, Outcome]] = []
        self.seq = itertools.count()
        self.threads = 0
        self.stragglers = 0
        self.running_by_route: dict[str, int] = defaultdict(int)
        self.typical_s: dict[str, float] = {}  # route -> moving mean of its call durations
        self.deferrals: dict[str, tuple[float, int]] = {}  # route -> (series start, deferred)
        self.stopping = False
        self.stopped = threading.Event()
        self.work_arrived = threading.Event()  # wakes the writer when it waits idle
        self.node = None
        for _ in range(self.size):
            self._spawn()
        self.loop = LoopLane(self)
        self.writer = threading.Thread(target=self._write_loop, name="delivery-writer", daemon=True)
        self.writer.start()

    # --- the task thread's side ----------------------------------------------------------------

    def submit(self, jobs: list[Job], ready_outcomes: list[Outcome], token: str, node) -> None:
        """Queues the calls (blocking while the pool is full) and hands over the outcomes that
        need no call (duplicates, no route, breaker open)."""
        self.node = node
        rank = min((job.rank for job in jobs), default=RANK["LOW"])
        with self.cv:
            for o in ready_outcomes:
                self.done.append((token, o))
            # Back-pressure before the whole batch goes in, counting only what is as urgent as
            # it: a CRITICAL batch never waits for LOW work to drain.
            while self._queued(rank) >= self.size and not self.stopping:
                self.room.wait(0.2)
            for job in jobs:
                job.seq = next(self.seq)
                self._push(job)
        self.work_arrived.set()

    def _push(self, job: Job, seq: int | None = None) -> None:
        """Into the ready heap of the job's lane (lock held)."""
        entry = (job.rank, job.seq if seq is None else seq, job)
        if job.route.kind == Route.Kind.WEBHOOK:
            heapq.heappush(self.ready_async, entry)
            self.loop.wake()
        else:
            heapq.heappush(self.ready, entry)
            self.cv.notify()

    def _queued(self, rank: int = 99) -> int:
        ready = [r for r, _, _ in itertools.chain(self.ready, self.ready_async) if r <= rank]
        return len(ready) + sum(1 for q in self.waiting.values() for j in q if j.rank <= rank)

    def in_flight(self) -> int:
        return len(self.running) + self.loop.running + self._queued()

    # --- call threads --------------------------------------------------------------------------

    def _spawn(self) -> None:
        self.threads += 1
        threading.Thread(target=self._call_loop, name="delivery-call", daemon=True).start()

    def _take(self) -> Job | None:
        return self.take_from(self.ready, len(self.running))

    def take_from(self, heap: list[tuple[int, int, Job]], running: int) -> Job | None:
        """The most urgent job of the heap that may start now, with `running` calls of its lane
        in flight (lock held). Less urgent classes leave the last `reserved` to CRITICAL and
        HIGH."""
        if not heap or running >= self.size:
            return None
        rank, _, job = heap[0]
        if rank > URGENT and running >= self.size - self.reserved:
            return None
        heapq.heappop(heap)
        self.room.notify()
        return job

    def _call_loop(self) -> None:
        while True:
            with self.cv:
                job = self._take()
                while job is None:
                    if self.stopping and not self.ready:
                        self.threads -= 1
                        return
                    self.cv.wait(1.0)
                    job = self._take()
            if not self._get_slot(job):
                continue
            self._run(job)
            with self.cv:
                if self.threads > self.size + self.stragglers:
                    self.threads -= 1  # we were replaced while we overran: leave
                    return

    def _get_slot(self, job: Job) -> bool:
        """A slot in the route's bulkhead, or the job waits for one (False)."""
        route = job.route
        limit = route.max_concurrent_calls
        if not limit or job.lease is not None:  # no bulkhead, or it got its slot while waiting
            return True
        try:
            job.lease = self.bulkhead.try_acquire(
                route.name, limit, lease_ttl(route.timeout_seconds)
            )
        except Exception:  # Redis blinked: a protection that fails must not stop delivery
            log.exception("bulkhead %s unavailable; calling without a slot", route.name)
            return True
        if job.lease is not None:
            return True
        BULKHEAD_WAITS.labels(route.name).inc()
        with self.cv:
            job.waiting_since = time.monotonic()
            self.waiting[route.name].append(job)
        return False

    def _run(self, job: Job) -> None:
        if not self.begin(job):
            return
        started = time.monotonic()
        job.deadline = started + job.route.timeout_seconds
        with self.cv:
            self.running.add(job)
        result = traced_call(job)
        duration_ms = (time.monotonic() - started) * 1000
        self._release(job)
        with self.cv:
            if job.finished:  # the deadline passed and the writer settled it as a timeout
                self.stragglers -= 1
                STRAGGLERS.dec()
                self.ended(job, duration_ms)
                return
            job.finished = True
            self.running.discard(job)
        self.settle(job, result, duration_ms)

    def begin(self, job: Job) -> bool:
        """The breaker's permit for the call (True), or the job is settled without one: the
        fallback's job goes in line in the primary's place, or the event waits."""
        from breakers.dispatch import when_open  # dispatch imports us

        job.started_at = timezone.now()
        try:
            job.permit = job.breaker.acquire()
        except BreakerOpen as exc:
            self._release(job)
            settled = when_open(job, exc)
            if isinstance(settled, Job):
                with self.cv:
                    settled.seq = job.seq
                    self._push(settled)
            else:
                self._finish(job, settled)
            return False
        with self.cv:
            self.running_by_route[job.route.name] += 1
        return True

    def ended(self, job: Job, duration_ms: float) -> None:
        """The call is over (lock held): counts and the route's typical duration."""
        name = job.route.name
        self.running_by_route[name] -= 1
        previous = self.typical_s.get(name, duration_ms / 1000)
        self.typical_s[name] = 0.8 * previous + 0.2 * duration_ms / 1000

    def settle(self, job: Job, result: CallResult, duration_ms: float) -> None:
        """The breaker hears of the call, and the outcome goes to the writer."""
        from breakers.dispatch import classify

        with self.cv:
            self.ended(job, duration_ms)
        outcomes.on_attempt(job.breaker, job.permit, result, duration_ms)
        self._finish(job, classify(job, result, duration_ms))

    def _release(self, job: Job) -> None:
        if job.lease is None:
            return
        lease, job.lease = job.lease, None
        try:
            self.bulkhead.release(job.route.name, lease)
        except Exception:  # the lease expires by itself
            log.exception("could not release bulkhead slot of %s", job.route.name)

    def _finish(self, job: Job, outcome: Outcome) -> None:
        with self.cv:
            self.done.append((job.token, outcome))

    # --- the writer thread ---------------------------------------------------------------------

    def _write_loop(self) -> None:
        interval = settings.DELIVERY_FLUSH_MS / 1000
        said = time.monotonic()
        published = 0.0
        while True:
            if self._idle():
                # Nothing queued, running or to write: wait for a submit instead of polling
                # (an idle worker would otherwise wake this thread a hundred times a second).
                self._publish_gauges()  # so they read 0 while idle, not the last busy value
                self.work_arrived.wait(IDLE_WAIT_S)
                self.work_arrived.clear()
                published = time.monotonic()
            time.sleep(interval)
            if time.monotonic() - published > GAUGE_PERIOD_S:
                published = time.monotonic()
                self._publish_gauges()
            if time.monotonic() - said > 5:
                said = time.monotonic()
                log.info(
                    "delivery pool: %d running, %d ready, %d waiting for a bulkhead, %d to write",
                    len(self.running),
                    len(self.ready),
                    sum(len(q) for q in self.waiting.values()),
                    len(self.done),
                )
            self._expire_deadlines()
            self._retry_waiting()
            with self.cv:
                batch, self.done = self.done, []
                finished = (
                    self.stopping
                    and not self.ready
                    and not self.running
                    and not self.waiting
                    and self.loop.idle()
                )
            if batch:
                self._write(batch)
            if finished and not batch:
                with self.cv:
                    if not self.done:
                        self.loop.stop()
                        self.stopped.set()
                        connection.close()
                        return

    def _idle(self) -> bool:
        with self.cv:
            return (
                not self.stopping
                and not self.ready
                and not self.ready_async
                and not self.running
                and not self.waiting
                and not self.done
                and self.loop.idle()
            )

    def _publish_gauges(self) -> None:
        """In flight per route and queued per class, set from the pool's own counts twice a
        second (counting each call as it starts and ends cost more than its HTTP parsing)."""
        with self.cv:
            by_route = dict(self.running_by_route)
            queued: dict[str, int] = dict.fromkeys(RANK, 0)
            for _, _, job in itertools.chain(self.ready, self.ready_async):
                queued[job.event.priority] = queued.get(job.event.priority, 0) + 1
            for queue in self.waiting.values():
                for job in queue:
                    queued[job.event.priority] = queued.get(job.event.priority, 0) + 1
        for name, n in by_route.items():
            IN_FLIGHT.labels(name).set(n)
        for priority, n in queued.items():
            POOL_QUEUED.labels(priority).set(n)

    def _write(self, batch: list[tuple[str, Outcome]]) -> None:
        by_token: dict[str, list[Outcome]] = defaultdict(list)
        for token, o in batch:
            by_token[token].append(o)
        for token, group in by_token.items():
            try:
                outcomes.record(group, token=token, node=self.node)
            except Exception:
                # The events stay claimed; the relay gives them back when the claim expires.
                log.exception("could not record %d outcomes", len(group))
                connection.close()

    def _expire_deadlines(self) -> None:
        """A call past its route's timeout is settled as a timeout now, whatever its thread is
        doing; a replacement thread keeps the pool at size (up to DELIVERY_MAX_STRAGGLERS)."""
        now = time.monotonic()
        expired = []
        with self.cv:
            for job in self.running:
                if not job.finished and now > job.deadline + HARD_GRACE_S:
                    job.finished = True
                    expired.append(job)
            for job in expired:
                self.running.discard(job)
                self.stragglers += 1
                STRAGGLERS.inc()
                if self.stragglers <= settings.DELIVERY_MAX_STRAGGLERS:
                    self._spawn()
                else:
                    log.error(
                        "%d handler calls ignore their deadline; not replacing their threads",
                        self.stragglers,
                    )
        from breakers.dispatch import classify

        for job in expired:
            timeout = job.route.timeout_seconds
            result = CallResult("timeout", f"no answer within {timeout}s (call abandoned)")
            duration_ms = (now - job.deadline + timeout) * 1000
            outcomes.on_attempt(job.breaker, job.permit, result, duration_ms)
            self._finish(job, classify(job, result, duration_ms))

    def _retry_waiting(self) -> None:
        """Jobs waiting for a bulkhead slot: take one if it freed up, defer those that waited
        longer than the route's max_wait_ms (not a failure, not fed to the breaker)."""
        if not self.waiting:
            return
        now = time.monotonic()
        with self.cv:
            names = [n for n, q in self.waiting.items() if q]
        for name in names:
            with self.cv:
                queue = self.waiting.get(name)
                if not queue:
                    self.waiting.pop(name, None)
                    continue
                job = queue[0]
            route = job.route
            try:
                lease = self.bulkhead.try_acquire(
                    name, route.max_concurrent_calls, lease_ttl(route.timeout_seconds)
                )
            except Exception:
                lease = "unguarded"
            with self.cv:
                if lease is not None:
                    queue.popleft()
                    job.lease = None if lease == "unguarded" else lease
                    # ahead of everything of its class: it has waited already
                    self._push(job, seq=job.seq - 10**15)
                expired = []
                while queue and now - queue[0].waiting_since > route.max_wait_ms / 1000:
                    expired.append(queue.popleft())
                if not queue:
                    self.waiting.pop(name, None)
                self.room.notify()
            typical = self.typical_s.get(name, 0.0)
            for job in expired:
                BULKHEAD_REJECTED.labels(name).inc()
                wave = self._wave(name, route.max_concurrent_calls, defer_base(typical))
                self._finish(job, deferred_by_bulkhead(job, typical, wave))

    def _wave(self, name: str, limit: int, base_s: float) -> int:
        """Which wave a deferred event of this route joins: the route's deferrals are counted
        from the first one until its wave comes back (base_s later), `limit` to a wave."""
        now = time.monotonic()
        since, count = self.deferrals.get(name, (now, 0))
        if now - since > base_s:
            since, count = now, 0
        self.deferrals[name] = (since, count + 1)
        return count // max(limit, 1)

    # --- shutdown ------------------------------------------------------------------------------

    def shutdown(self, timeout: float) -> bool:
        """Warm shutdown: take nothing new, let queued and running calls finish (each bounded
        by its own deadline), write every outcome. Returns whether it drained in time."""
        with self.cv:
            self.stopping = True
            self.cv.notify_all()
            self.room.notify_all()
        self.work_arrived.set()
        return self.stopped.wait(timeout)


def traced_call(job: Job, *, own_deadline: bool = False) -> CallResult:
    """The handler call in its span; a crash in the call path is a failed attempt."""
    with _span(job) as span:
        try:
            result = call_handler(job.route, job.envelope, own_deadline=own_deadline)
        except Exception as exc:  # a bug in a handler path must not lose the event
            result = _crashed(job, exc)
        _mark(span, result)
    return result


async def traced_call_async(job: Job, client: AsyncClient) -> CallResult:
    """traced_call for a webhook on the event loop (the span is the task's own)."""
    with _span(job) as span:
        try:
            result = await call_webhook_async(client, job.route, job.envelope)
        except Exception as exc:
            result = _crashed(job, exc)
        _mark(span, result)
    return result


def _span(job: Job):
    attributes = delivery_attributes(job.event, job.route.name, job.attempt)
    return tracer.start_as_current_span(
        f"deliver {job.event.type}", kind=SpanKind.CONSUMER, attributes=attributes
    )


def _crashed(job: Job, exc: Exception) -> CallResult:
    log.exception("handler call crashed for event %s", job.event.pk)
    return CallResult("failed", f"{type(exc).__name__}: {exc}")


def _mark(span, result: CallResult) -> None:
    span.set_attribute("controlplane.outcome", result.outcome)
    if result.outcome != "delivered":
        span.set_status(Status(StatusCode.ERROR, result.error[:200]))


class LoopLane:
    """The webhook calls of a pool, on one asyncio event loop in a thread of its own.

    The loop takes jobs from the pool's `ready_async` heap (under the pool's lock) whenever
    it is woken: by a submit, a finished call, or a job back from a bulkhead wait. A bulkhead
    slot is a Redis round trip, made on a side thread so the loop never blocks on it. Calls
    are bounded by the client's timeouts, and cancelled calls leave nothing behind, so the
    loop has no stragglers.
    """

    def __init__(self, pool: DeliveryPool) -> None:
        self.pool = pool
        self.running = 0
        self._woken = False
        self._loop = asyncio.new_event_loop()
        self._side = ThreadPoolExecutor(max_workers=4, thread_name_prefix="delivery-bulkhead")
        self._client = AsyncClient(max_idle_per_origin=pool.size)
        self._tasks: set[asyncio.Task] = set()
        self._thread = threading.Thread(target=self._main, name="delivery-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_later(STALE_SWEEP_S, self._sweep)
        try:
            self._loop.run_forever()
        finally:
            self._client.close()
            self._loop.close()

    def _sweep(self) -> None:
        self._client.close_stale()
        self._loop.call_later(STALE_SWEEP_S, self._sweep)

    def wake(self) -> None:
        """From any thread, the pool's lock held: look at the heap soon (one wake-up for
        however many jobs arrive before the loop gets to it)."""
        if not self._woken:
            self._woken = True
            self._loop.call_soon_threadsafe(self._pump)

    def idle(self) -> bool:
        return self.running == 0 and not self.pool.ready_async

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._side.shutdown(wait=False)

    def _pump(self) -> None:
        pool = self.pool
        taken = []
        with pool.cv:
            self._woken = False
            while (job := pool.take_from(pool.ready_async, self.running)) is not None:
                self.running += 1
                taken.append(job)
        for job in taken:
            task = self._loop.create_task(self._run(job))
            self._tasks.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        pool = self.pool
        try:
            needs_slot = job.route.max_concurrent_calls and job.lease is None
            if needs_slot and not await self._loop.run_in_executor(self._side, pool._get_slot, job):
                return  # waiting for a slot; the writer puts it back in line
            if not pool.begin(job):
                return
            started = time.monotonic()
            result = await traced_call_async(job, self._client)
            duration_ms = (time.monotonic() - started) * 1000
            if job.lease is not None:
                await self._loop.run_in_executor(self._side, pool._release, job)
            pool.settle(job, result, duration_ms)
        except Exception:  # a bug here: the event stays claimed until the relay gives it back
            log.exception("delivery of event %s failed on the loop", job.event.pk)
        finally:
            with pool.cv:
                self.running -= 1
                if pool.ready_async:
                    self.wake()


def deferred_by_bulkhead(job: Job, typical_s: float = 0.0, wave: int = 0) -> Outcome:
    """Back when a slot is likely to be free: about one call of the route later, at least
    BULKHEAD_DEFER_SECONDS, in waves as large as the bulkhead: the first `limit` deferred
    together come back after one call, the next `limit` after two, and so on. Each wave comes
    back in one task (per-event jitter would cost one broker message and one claim per event),
    and no more of them than the bulkhead can take (all at once, most would only be deferred
    again, and that churn of claims and writes slows every other route)."""
    now = timezone.now()
    wait = min(defer_base(typical_s) * (1 + wave), 30.0)
    return Outcome(
        job.event,
        (job.served_for or job.route).pk,  # a fallback's event stays its primary's
        now,
        0.0,
        A.BULKHEAD_FULL,
        S.DEFERRED,
        error=f"bulkhead of {job.route.name} full ({job.route.max_concurrent_calls} calls)",
        next_attempt_at=now + timedelta(seconds=wait),
        counts_as_attempt=False,
        attempt_route_id=job.route.pk if job.served_for is not None else None,
    )


def defer_base(typical_s: float) -> float:
    """One call of the route, at least BULKHEAD_DEFER_SECONDS: how far apart the waves are."""
    return max(settings.BULKHEAD_DEFER_SECONDS, round(typical_s, 1))


_pool: DeliveryPool | None = None
_lock = threading.Lock()


def delivery_pool() -> DeliveryPool:
    """This process's pool, started on first use (a forked child starts its own)."""
    global _pool
    if _pool is None or _pool.pid != os.getpid():
        with _lock:
            if _pool is None or _pool.pid != os.getpid():
                _pool = DeliveryPool()
    return _pool


def shutdown_pool(timeout: float | None = None) -> bool:
    """Drain this process's pool (worker shutdown). The longest route timeout bounds it."""
    global _pool
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        return True
    if timeout is None:
        timeout = longest_timeout() + 2 * HARD_GRACE_S + 1.0
    drained = pool.shutdown(timeout)
    if not drained:
        log.error(
            "delivery pool did not drain within %.1fs; the relay will release the rest", timeout
        )
    _pool = None
    return drained


def longest_timeout() -> float:
    from breakers.models import Route

    try:
        found = max(Route.objects.values_list("timeout_seconds", flat=True), default=5.0)
    except Exception:
        found = 30.0
    finally:
        connection.close()
    return float(found)
