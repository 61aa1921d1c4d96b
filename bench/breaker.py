"""Breaker overhead and propagation benchmark.

    python bench/breaker.py [--redis-url $REDIS_URL] [--transitions 200]

Prints, in one run (well under 60 s):
* per-call overhead of a guarded no-op call, CLOSED and OPEN, for our Breaker with RedisStore
  and with InProcessStore, and for pybreaker in memory and with pybreaker.CircuitRedisStorage
  (same Redis); overhead = guarded call minus a bare call of the same no-op;
* how long a transition made in one process takes to reach another process's listeners
  (p50/p99 over --transitions operator transitions, alternating FORCED_OPEN / automatic);
* the ratios against the goals: ours-CLOSED-Redis / pybreaker-memory <= 2x,
  ours-CLOSED-InProcess / pybreaker-memory <= 1x (the embedded default's store),
  pybreaker-redis / ours-CLOSED-Redis >= 30x, propagation p99 <= 100 ms.

The in-memory CLOSED figures (bare call, ours with InProcessStore, pybreaker in memory) are
measured interleaved, best of INTERLEAVED rounds each, so that a busy machine slows all three
alike instead of whichever ran during a burst.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pybreaker  # noqa: E402
import redis  # noqa: E402

from breakers.engine import Breaker, BreakerConfig, BreakerOpen, InProcessStore, Outcome, State  # noqa: E402
from breakers.engine.redis_store import RedisStore  # noqa: E402

TARGET_S = 0.25  # wall time of one measured repetition
REPEATS = 3  # best of
INTERLEAVED = 15  # rounds of the interleaved in-memory comparison


def noop() -> None:
    return None


def _time_loop(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in repeat(None, n):
        fn()
    return time.perf_counter() - t0


def per_call_s(fn: Callable[[], object], max_n: int = 400_000) -> float:
    """Best-of-REPEATS seconds per call, with n calibrated to ~TARGET_S per repetition."""
    est = _time_loop(fn, 50) / 50
    n = int(min(max_n, max(50, TARGET_S / max(est, 1e-9))))
    return min(_time_loop(fn, n) for _ in range(REPEATS)) / n


def interleaved_per_call_s(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best seconds per call of each, measured in alternating rounds of ~TARGET_S / 5."""
    sizes = {}
    for key, fn in fns.items():
        est = _time_loop(fn, 200) / 200
        sizes[key] = int(min(400_000, max(200, TARGET_S / 5 / max(est, 1e-9))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(INTERLEAVED):
        for key, fn in fns.items():
            best[key] = min(best[key], _time_loop(fn, sizes[key]) / sizes[key])
    return best


def guarded_ours(b: Breaker) -> Callable[[], None]:
    acquire, record, ok = b.acquire, b.record, Outcome.SUCCESS

    def call() -> None:
        try:
            permit = acquire()
        except BreakerOpen:
            return
        noop()
        record(permit, ok)  # duration measured by the breaker's clock

    return call


def guarded_pybreaker(cb: pybreaker.CircuitBreaker) -> Callable[[], None]:
    def call() -> None:
        try:
            cb.call(noop)
        except pybreaker.CircuitBreakerError:
            return

    return call


def trip(b: Breaker, timeout: float = 5.0) -> None:
    """Open the breaker the real way: failures, flushed and evaluated by the store."""
    for _ in range(b.config.consecutive_failures):
        b.record(b.acquire(), Outcome.FAILURE, 0.001)
    deadline = time.monotonic() + timeout
    while b.state is not State.OPEN:
        if time.monotonic() > deadline:
            raise SystemExit(f"breaker did not open: {b!r}")
        time.sleep(0.005)


def bench_ours(store, name: str) -> tuple[float, float]:
    cfg = BreakerConfig(consecutive_failures=5, open_wait_s=600, max_open_wait_s=600)
    b = Breaker(name, cfg, store)
    closed = per_call_s(guarded_ours(b))
    trip(b)
    opened = per_call_s(guarded_ours(b))
    return closed, opened


def bench_pybreaker(storage=None) -> tuple[float, float]:
    cb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=600, state_storage=storage)
    closed = per_call_s(guarded_pybreaker(cb), max_n=400_000 if storage is None else 5_000)
    cb.open()
    opened = per_call_s(guarded_pybreaker(cb), max_n=400_000 if storage is None else 5_000)
    return closed, opened


# -- propagation --------------------------------------------------------------------------


def _observer(url: str, prefix: str, name: str, q, ready) -> None:
    """Runs in another process: report when each transition reaches our listener."""
    store = RedisStore(url, prefix=prefix)
    b = Breaker(
        name,
        BreakerConfig(),
        store,
        listeners=[lambda t: q.put((t.version, t.to_state.value, time.time()))],
    )
    if store.wait_subscribed(10):
        ready.set()
    time.sleep(3600)  # killed by the parent
    b.close()


def bench_propagation(url: str, prefix: str, transitions: int) -> list[float]:
    ctx = mp.get_context("spawn")
    q, ready = ctx.Queue(), ctx.Event()
    name = "propagation"
    proc = ctx.Process(target=_observer, args=(url, prefix, name, q, ready), daemon=True)
    proc.start()
    store = RedisStore(url, prefix=prefix)
    try:
        b = Breaker(name, BreakerConfig(), store)
        if not ready.wait(20):
            raise SystemExit("observer process did not subscribe")
        latencies = []
        for i in range(transitions):
            t0 = time.time()
            snap = b.force(State.FORCED_OPEN if i % 2 == 0 else None)
            while True:
                version, _state, seen = q.get(timeout=5)
                if version == snap.version:
                    break
            latencies.append(seen - t0)
        return latencies
    finally:
        proc.terminate()
        proc.join(5)
        store.close()


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    ap.add_argument("--transitions", type=int, default=200)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench:breaker:{run_id}:"
    client = redis.Redis.from_url(args.redis_url, socket_timeout=2)
    client.ping()

    bare = per_call_s(noop)
    rows: dict[str, tuple[float, float]] = {}
    rstore = RedisStore(args.redis_url, prefix=prefix)
    try:
        rows["ours + RedisStore"] = bench_ours(rstore, "bench-redis")
        ok = rstore.fallbacks == 0
    finally:
        rstore.close()
    rows["ours + InProcessStore"] = bench_ours(InProcessStore(), "bench-mem")
    rows["pybreaker (memory)"] = bench_pybreaker()
    # The embedded default's store against pybreaker in memory, CLOSED, interleaved.
    mem = Breaker("bench-mem-closed", BreakerConfig(), InProcessStore())
    cb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=600)
    side = interleaved_per_call_s(
        {"bare": noop, "ours": guarded_ours(mem), "pybreaker": guarded_pybreaker(cb)}
    )
    pyb_storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, redis.Redis.from_url(args.redis_url), namespace=prefix + "pyb"
    )
    rows["pybreaker + CircuitRedisStorage"] = bench_pybreaker(pyb_storage)
    latencies = bench_propagation(args.redis_url, prefix, args.transitions)

    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    for key in client.scan_iter(match=f"pybreaker:{prefix}*"):
        client.delete(key)

    def us(x: float) -> str:
        return f"{x * 1e6:10.3f}"

    print(f"\nPython {sys.version.split()[0]}, redis at {args.redis_url}")
    print(f"bare no-op call: {bare * 1e9:.0f} ns (subtracted below)\n")
    print(f"{'per-call overhead, µs':34} {'CLOSED':>10} {'OPEN':>10}")
    print("-" * 56)
    over = {k: (c - bare, o - bare) for k, (c, o) in rows.items()}
    for k, (c, o) in over.items():
        print(f"{k:34} {us(c)} {us(o)}")
    p50, p99 = pct(latencies, 50), pct(latencies, 99)
    print(
        f"\ntransition seen by another process ({len(latencies)} transitions): "
        f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, max {max(latencies) * 1e3:.2f} ms"
    )

    mem_ours, mem_pyb = side["ours"] - side["bare"], side["pybreaker"] - side["bare"]
    r0 = mem_ours / mem_pyb
    print(
        f"\nCLOSED in memory, interleaved (best of {INTERLEAVED}): ours + InProcessStore "
        f"{mem_ours * 1e6:.3f} µs, pybreaker {mem_pyb * 1e6:.3f} µs"
    )

    ours_closed = over["ours + RedisStore"][0]
    r1 = ours_closed / over["pybreaker (memory)"][0]
    r2 = over["pybreaker + CircuitRedisStorage"][0] / ours_closed
    print("\ngoals")
    print(
        f"  ours-CLOSED-InProcess / pybreaker-mem = {r0:6.2f}x  (goal <= 1x)   "
        f"{'met' if r0 <= 1 else 'MISSED'}"
    )
    print(
        f"  ours-CLOSED-Redis / pybreaker-memory  = {r1:6.2f}x  (goal <= 2x)   "
        f"{'met' if r1 <= 2 else 'MISSED'}"
    )
    print(
        f"  pybreaker-redis / ours-CLOSED-Redis   = {r2:6.0f}x  (goal >= 30x)  "
        f"{'met' if r2 >= 30 else 'MISSED'}"
    )
    print(
        f"  propagation p99                       = {p99 * 1e3:6.2f} ms (goal <= 100 ms) "
        f"{'met' if p99 <= 0.1 else 'MISSED'}"
    )
    print(f"  RedisStore fell back during the run: {'no' if ok else 'YES (figures invalid)'}")
    print(
        f"\nstatistics: median propagation {statistics.median(latencies) * 1e3:.2f} ms; "
        f"total run {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
