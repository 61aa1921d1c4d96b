"""CPU per webhook call: urllib3 on a thread per call in flight against our asyncio client on one
event loop, side by side, against the same receiver answering in 50 ms.

    python bench/http_client.py [--seconds 5] [--calls 64]

Each client runs in this process with `--calls` calls in flight for `--seconds`, POSTing the
same body; the figure is this process's user + system CPU divided by the calls made (the
receiver, a separate process, is not counted). This is why the delivery pool makes its
webhook calls on an event loop (docs/pipeline.md). Needs no database: Django is set up only
for the allow-list, which the asyncio client checks at connect time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ["CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1:*"
os.environ.setdefault("CONTROLPLANE_VAR_DIR", "/tmp/cp-bench-http-client")

BODY = b'{"id": "bench", "payload": {"n": 1}}' * 6
HEADERS = {"Content-Type": "application/json", "X-Event-Id": "bench"}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def with_urllib3(url: str, seconds: float, calls: int) -> int:
    import urllib3

    pool = urllib3.PoolManager(maxsize=calls, retries=False)
    stop_at = time.monotonic() + seconds
    counts = [0] * calls

    def loop(slot: int) -> None:
        while time.monotonic() < stop_at:
            pool.request("POST", url, body=BODY, headers=HEADERS, redirect=False, timeout=5.0)
            counts[slot] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts)


def with_asyncio(url: str, seconds: float, calls: int) -> int:
    from controlplane.egress_async import AsyncClient

    async def main() -> int:
        client = AsyncClient(max_idle_per_origin=calls)
        stop_at = time.monotonic() + seconds
        counts = [0] * calls

        async def loop(slot: int) -> None:
            while time.monotonic() < stop_at:
                await client.post(
                    url, BODY, HEADERS, connect_timeout=5, read_timeout=5, total_timeout=5
                )
                counts[slot] += 1

        await asyncio.gather(*(loop(i) for i in range(calls)))
        client.close()
        return sum(counts)

    return asyncio.run(main())


def measure(kind: str, url: str, seconds: float, calls: int) -> tuple[float, float]:
    run = {"urllib3": with_urllib3, "asyncio": with_asyncio}[kind]
    before, started = cpu(), time.perf_counter()
    n = run(url, seconds, calls)
    return n / (time.perf_counter() - started), (cpu() - before) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--calls", type=int, default=64)
    args = parser.parse_args()

    import django

    django.setup()
    from webhooks import start_receiver

    receiver, url = start_receiver(0.05)
    try:
        time.sleep(0.3)
        rows = {
            kind: measure(kind, url, args.seconds, args.calls) for kind in ("urllib3", "asyncio")
        }
    finally:
        receiver.terminate()
    print(
        f"\nOne process, {args.calls} calls in flight, receiver answering in 50 ms, "
        f"{args.seconds:.0f} s each, {os.cpu_count()} cores\n"
    )
    print(f"{'client':<44}{'calls/s':>10}{'CPU µs/call':>14}")
    names = {
        "urllib3": f"urllib3, {args.calls} threads (anchor)",
        "asyncio": "ours: controlplane/egress_async.py, one loop",
    }
    for kind, (rate, micros) in rows.items():
        print(f"{names[kind]:<44}{rate:>10,.0f}{micros:>14,.0f}")
    ratio = rows["asyncio"][1] / rows["urllib3"][1]
    print(f"\nCPU per call, ours / urllib3 threads = {ratio:.2f}x")


if __name__ == "__main__":
    main()
