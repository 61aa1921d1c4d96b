"""RedisStore across processes: pub/sub propagation, the refresh safety net, local fallback
when Redis is unreachable, and 8 worker processes sharing one breaker in front of a real
failing HTTP target (one probe crosses the whole cluster; a Redis cut and resync).

Workers are separate Python processes (subprocess) that load this file and run
`worker_main`; they report on stdout as JSON lines. Redis is "cut" by a TCP proxy owned by the
test (connections are black-holed, then dropped), never by touching the shared server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from breakers.engine import Breaker, BreakerConfig, BreakerOpen, Outcome, State, Transition
from breakers.engine.redis_store import RedisStore

ROOT = str(Path(__file__).resolve().parents[2])


def require_redis() -> str:
    # Imported when called: this module also runs as a bare worker process (worker_main),
    # where tests.conftest cannot load (it needs Django's apps).
    from tests.conftest import require_redis as shared

    return shared()


@pytest.fixture
def prefix():
    url = require_redis()
    p = f"test:cluster:{uuid.uuid4().hex[:10]}:"
    yield p
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        keys = list(client.scan_iter(match=f"{p}*"))
        if keys:
            client.delete(*keys)
    except redis.RedisError:
        pass
    client.close()


# -- in-process: two stores stand for two processes --------------------------------------------


def test_a_transition_reaches_another_store_via_pubsub(prefix):
    url = require_redis()
    cfg = BreakerConfig(consecutive_failures=3)
    # A refresh far away: only pub/sub can deliver within the 2 s waited below.
    a_store = RedisStore(url, prefix=prefix, refresh_interval_s=60)
    b_store = RedisStore(url, prefix=prefix, refresh_interval_s=60)
    try:
        seen: queue.Queue[Transition] = queue.Queue()
        a = Breaker("dep", cfg, a_store)
        b = Breaker("dep", cfg, b_store, listeners=[seen.put])  # stores hold breakers weakly
        assert b_store.wait_subscribed(5)
        a.force(State.FORCED_OPEN)
        t = seen.get(timeout=2)
        assert t.to_state is State.FORCED_OPEN
        assert t.origin == a_store.node_id != b_store.node_id
        a.force(None)
        assert seen.get(timeout=2).to_state is State.CLOSED
        for _ in range(3):  # flushed by a_store's background thread, not inline
            a.record(a.acquire(), Outcome.FAILURE, 0.01)
        t = seen.get(timeout=2)
        assert (t.to_state, t.reason, t.failures) == (State.OPEN, "consecutive_failures", 3)
        assert b.state is State.OPEN
        assert a_store.fallbacks == b_store.fallbacks == 0
    finally:
        a_store.close()
        b_store.close()


def test_periodic_refresh_catches_a_lost_message(prefix):
    url = require_redis()
    reader = RedisStore(url, prefix=prefix, refresh_interval_s=0.2)
    writer = RedisStore(url, prefix=prefix, start_threads=False)
    writer.channel = prefix + "nobody-listens"  # its messages are lost
    try:
        b = Breaker("dep", BreakerConfig(), reader)
        assert reader.wait_subscribed(5)
        writer.force("dep", State.FORCED_OPEN, time.time())
        deadline = time.monotonic() + 3
        while b.state is not State.FORCED_OPEN and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b.state is State.FORCED_OPEN
    finally:
        reader.close()
        writer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_redis_falls_back_to_local_decisions(caplog):
    # No shared Redis needed: this store points at a port nobody listens on.
    store = RedisStore(
        f"redis://127.0.0.1:{_free_port()}/5", socket_timeout_s=0.2, retry_interval_s=0.1
    )
    try:
        with caplog.at_level(logging.WARNING, logger="breakers.engine.redis_store"):
            b = Breaker("dep", BreakerConfig(consecutive_failures=3), store)
            worst = 0.0
            for _ in range(3):
                t0 = time.perf_counter()
                b.record(b.acquire(), Outcome.FAILURE, 0.01)
                worst = max(worst, time.perf_counter() - t0)
            deadline = time.monotonic() + 3
            while b.state is not State.OPEN and time.monotonic() < deadline:
                time.sleep(0.01)
        assert b.state is State.OPEN and b.snapshot.origin == store.node_id
        assert not store.available
        assert store.fallbacks == 1 and store.fallback_ops > 0 and store.resyncs == 0
        assert worst < 0.1, f"a call waited {worst:.3f}s on a dead Redis"
        assert "Redis unavailable" in caplog.text
        with pytest.raises(BreakerOpen):
            b.acquire()
    finally:
        store.close()


# -- the multi-process cluster --------------------------------------------------------------


class Target:
    """A tiny HTTP dependency that counts every request, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # (arrival, kind, worker, status, permit acquired at), in arrival order
        self.requests: list[tuple[float, str, str, int, float]] = []
        self.mode = "fail"  # "fail" | "ok" | "heal-after-probes"
        self.failing_probes = 0
        self.healed = False
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                kind = self.headers.get("X-Kind", "?")
                with target.lock:
                    status = target._status(kind)
                    target.requests.append(
                        (
                            time.time(),
                            kind,
                            self.headers.get("X-Worker", "?"),
                            status,
                            float(self.headers.get("X-Acquired", "nan")),
                        )
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        # A deep accept queue: 8 workers connecting at once must not overflow it (a dropped
        # SYN is retried after 1 s, which would blur every timing below).
        ThreadingHTTPServer.request_queue_size = 128
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _status(self, kind: str) -> int:
        if self.mode == "ok":
            return 200
        if self.mode == "heal-after-probes":
            if kind == "probe":
                probes = sum(1 for r in self.requests if r[1] == "probe")
                self.healed = self.healed or probes >= self.failing_probes
            return 200 if self.healed else 500
        return 500

    def snapshot(self) -> list[tuple[float, str, str, int, float]]:
        with self.lock:
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TcpProxy:
    """Forwards to Redis until cut; when cut, swallows traffic both ways (a network
    partition, so clients hit their socket timeouts); restore() drops every connection."""

    def __init__(self, upstream_port: int = 6379) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.cut_flag = threading.Event()
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(client)
            if self.cut_flag.is_set():
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=2)
                up.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append(up)
            for src, dst in ((client, up), (up, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket | None) -> None:
        try:
            while data := src.recv(65536):
                if dst is not None and not self.cut_flag.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                if s is not None:
                    self._kill(s)

    @staticmethod
    def _kill(s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def cut(self) -> None:
        self.cut_flag.set()

    def restore(self) -> None:
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            self._kill(s)
        self.cut_flag.clear()

    def close(self) -> None:
        self.sock.close()
        self.restore()


BOOT = (
    "import importlib.util, sys; "
    "spec = importlib.util.spec_from_file_location('breaker_cluster_worker', sys.argv[1]); "
    "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod); "
    "mod.worker_main(sys.argv[2])"
)


def worker_main(arg: str) -> None:
    """One worker process: call the target through the shared breaker until stdin closes."""
    a = json.loads(arg)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    out_lock = threading.Lock()

    def emit(**ev) -> None:
        ev.update(w=a["wid"], t=time.time())
        with out_lock:
            sys.stdout.write(json.dumps(ev) + "\n")
            sys.stdout.flush()

    store = RedisStore(
        a["redis_url"],
        prefix=a["prefix"],
        flush_interval_s=0.02,
        refresh_interval_s=0.5,
        retry_interval_s=0.2,
        socket_timeout_s=0.2,
    )

    def on_transition(t: Transition) -> None:
        emit(
            ev="transition",
            frm=t.from_state.value,
            to=t.to_state.value,
            reason=t.reason,
            mine=t.origin == store.node_id,
            origin=t.origin,
            version=t.version,
            at=t.at,
        )

    breaker = Breaker(
        a["name"], BreakerConfig.from_dict(a["config"]), store, listeners=[on_transition]
    )
    if not store.wait_subscribed(10):
        emit(ev="error", msg="subscriber did not start")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    emit(ev="ready", node=store.node_id)
    sys.stdin.readline()  # "go": every worker starts together
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    last_rejection, counters, max_block, calls = None, (0, 0), 0.0, 0
    while not stop.is_set():
        if (store.fallbacks, store.resyncs) != counters:
            counters = (store.fallbacks, store.resyncs)
            emit(ev="store", fallbacks=counters[0], resyncs=counters[1], available=store.available)
        t0 = time.perf_counter()
        try:
            permit = breaker.acquire()
            acquired_at = time.time()
        except BreakerOpen as exc:
            max_block = max(max_block, time.perf_counter() - t0)
            if exc.state.value != last_rejection:
                last_rejection = exc.state.value
                emit(ev="rejected", state=last_rejection)
            stop.wait(0.004)
            continue
        blocked = time.perf_counter() - t0
        last_rejection = None
        kind = "probe" if permit.is_probe else "normal"
        req = urllib.request.Request(
            a["target"],
            headers={"X-Kind": kind, "X-Worker": str(a["wid"]), "X-Acquired": repr(acquired_at)},
        )
        try:
            with opener.open(req, timeout=2) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:  # the target answered nothing usable: a failure too
            status = 0
            emit(ev="client_error", kind=kind, error=repr(exc))
        t2 = time.perf_counter()
        breaker.record(permit, Outcome.SUCCESS if status == 200 else Outcome.FAILURE)
        max_block = max(max_block, blocked + time.perf_counter() - t2)
        calls += 1
        stop.wait(0.003)
    emit(
        ev="summary",
        fallbacks=store.fallbacks,
        resyncs=store.resyncs,
        available=store.available,
        max_block=max_block,
        calls=calls,
        state=breaker.state.value,
        rejected=breaker.rejected_calls,
    )
    store.close()


class Cluster:
    def __init__(self, n: int, common: dict, logdir: Path) -> None:
        self.events: list[dict] = []
        self.cond = threading.Condition()
        self.procs: list[subprocess.Popen] = []
        self.errs: list[Path] = []
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        }
        for wid in range(n):
            err_path = logdir / f"worker-{wid}.stderr"
            self.errs.append(err_path)
            with open(err_path, "w") as err:
                p = subprocess.Popen(
                    [sys.executable, "-c", BOOT, __file__, json.dumps({**common, "wid": wid})],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    cwd=ROOT,
                    env=env,
                    text=True,
                )
            self.procs.append(p)
            threading.Thread(target=self._read, args=(p,), daemon=True).start()

    def _read(self, p: subprocess.Popen) -> None:
        for line in p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()

    def go(self) -> None:
        """Release the workers once all are ready (they wait for one line on stdin)."""
        self.wait_all("ready", 30, ev="ready")
        for p in self.procs:
            p.stdin.write("go\n")
            p.stdin.flush()

    def workers_with(self, since: float = 0.0, **match) -> set[int]:
        with self.cond:
            return {
                e["w"]
                for e in self.events
                if e["t"] >= since and all(e.get(k) == v for k, v in match.items())
            }

    def of(self, **match) -> list[dict]:
        with self.cond:
            return [e for e in self.events if all(e.get(k) == v for k, v in match.items())]

    def wait_all(self, what: str, timeout: float, since: float = 0.0, **match) -> None:
        """Wait until every worker reported an event matching `match` (at or after `since`)."""
        deadline = time.monotonic() + timeout
        while len(self.workers_with(since, **match)) < len(self.procs):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for every worker: {what}; got "
                    f"{sorted(self.workers_with(since, **match))}\n{self.diagnostics()}"
                )
            with self.cond:
                self.cond.wait(0.05)

    def diagnostics(self) -> str:
        tails = []
        for path in self.errs:
            text = path.read_text()[-600:] if path.exists() else ""
            if text.strip():
                tails.append(f"--- {path.name}\n{text}")
        return "last events: " + json.dumps(self.events[-15:]) + "\n" + "\n".join(tails)

    def stop(self) -> list[dict]:
        for p in self.procs:
            with contextlib.suppress(OSError):
                p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        time.sleep(0.05)  # let the readers drain
        summaries = sorted(self.of(ev="summary"), key=lambda e: e["w"])
        assert len(summaries) == len(self.procs), "a worker died\n" + self.diagnostics()
        return summaries


WORKERS = 8


@pytest.fixture
def target():
    t = Target()
    yield t
    t.close()


def test_cluster_opens_together_and_lets_one_probe_through(prefix, target, tmp_path):
    url = require_redis()
    cfg = BreakerConfig(
        consecutive_failures=0,
        failure_rate_threshold=50.0,
        slow_call_rate_threshold=None,
        minimum_calls=20,
        window_size=40,
        open_wait_s=0.6,
        open_wait_multiplier=2.0,
        max_open_wait_s=1.2,
        half_open_max_probes=1,
        half_open_probe_interval_s=0.0,
        probe_lease_s=5.0,
    )
    target.mode, target.failing_probes = "heal-after-probes", 2
    cluster = Cluster(
        WORKERS,
        {
            "redis_url": url,
            "prefix": prefix,
            "name": "dep",
            "target": target.url,
            "config": cfg.to_dict(),
        },
        tmp_path,
    )
    try:
        cluster.go()
        cluster.wait_all("rejected while OPEN", 15, ev="rejected", state="OPEN")
        requests_when_all_open = len(target.snapshot())
        cluster.wait_all("back to CLOSED", 15, ev="transition", to="CLOSED")
        time.sleep(0.3)
    finally:
        summaries = cluster.stop()
    reqs = target.snapshot()

    # One trip, made by one process, learned by all the others from Redis. (A process that
    # was descheduled for long may skip straight to a later OPEN: versions coalesce.)
    opened = cluster.of(ev="transition", to="OPEN")
    assert {e["w"] for e in opened} == set(range(WORKERS))
    trips = [e for e in opened if e["reason"] == "failure_rate"]
    assert len({(e["origin"], e["version"]) for e in trips}) == 1, trips
    assert sum(e["mine"] for e in trips) == 1
    # A shared window: per-process windows would have needed minimum_calls each.
    normal_before_trip = [r for r in reqs[:requests_when_all_open] if r[1] == "normal"]
    assert len(normal_before_trip) < WORKERS * cfg.minimum_calls

    # HALF_OPEN: exactly one probe per round crossed the cluster, nothing else.
    # (A probe whose answer the worker lost, e.g. to a client timeout on an overloaded host,
    # is a failed probe: it adds a round, still with exactly one probe.)
    probes = [i for i, r in enumerate(reqs) if r[1] == "probe"]
    client_errors = cluster.of(ev="client_error")
    assert [reqs[i][3] for i in probes][:3] == [500, 500, 200], (probes, client_errors)
    rounds = {e["version"] for e in cluster.of(ev="transition", to="HALF_OPEN")}
    assert len(rounds) == len(probes), (rounds, probes)
    assert len(probes) == 3 or any(e["kind"] == "probe" for e in client_errors), client_errors
    # No other call was let through by any process between learning of the trip and the
    # close (decisions are local, so a process only knows once the change reaches it).
    trip_at = trips[0]["at"]
    closed_at = min(e["at"] for e in cluster.of(ev="transition", to="CLOSED"))
    knew = {w: min(e["t"] for e in opened if e["w"] == w) for w in range(WORKERS)}
    leaked = [r for r in reqs if r[1] == "normal" and knew[int(r[2])] < r[4] < closed_at]
    assert not leaked, f"calls crossed an OPEN/HALF_OPEN breaker: {leaked}"
    assert max(knew.values()) - trip_at < 0.5, f"slow propagation: {knew}, trip at {trip_at}"
    # Back-off between rounds: 0.6 s, then 1.2 s, then 1.2 s again (capped, not 2.4 s).
    starts = [reqs[i][4] for i in probes[:3]]
    gaps = [starts[0] - trip_at] + [b - a for a, b in zip(starts, starts[1:], strict=False)]
    for gap, wait in zip(gaps, [0.6, 1.2, 1.2], strict=True):
        assert wait - 0.05 <= gap < wait + 0.6, gaps

    # Closed again everywhere, traffic flows, Redis never failed.
    if not client_errors:
        assert all(s["state"] == "CLOSED" for s in summaries), summaries
    assert any(r[1] == "normal" and r[3] == 200 for r in reqs[probes[-1] :])
    assert all(s["fallbacks"] == 0 for s in summaries)


def test_redis_cut_falls_back_locally_then_resyncs(prefix, target, tmp_path):
    url = require_redis()
    cfg = BreakerConfig(
        consecutive_failures=5,
        failure_rate_threshold=None,
        slow_call_rate_threshold=None,
        open_wait_s=30.0,
        max_open_wait_s=30.0,
    )
    parts = urlsplit(url)
    proxy = TcpProxy(parts.port or 6379)
    proxied = urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))  # same DB number
    target.mode = "ok"
    operator = RedisStore(url, prefix=prefix, start_threads=False)  # direct, never cut
    cluster = Cluster(
        WORKERS,
        {
            "redis_url": proxied,
            "prefix": prefix,
            "name": "dep",
            "target": target.url,
            "config": cfg.to_dict(),
        },
        tmp_path,
    )
    try:
        cluster.go()
        time.sleep(0.3)  # healthy traffic through the shared breaker

        cut_at = time.time()
        proxy.cut()
        target.mode = "fail"
        cluster.wait_all("fallback", 10, cut_at, ev="store", available=False)
        cluster.wait_all("local trip", 10, cut_at, ev="transition", to="OPEN", mine=True)

        # While the workers are cut off, an operator forces the breaker open in Redis.
        operator.force("dep", State.FORCED_OPEN, time.time())
        target.mode = "ok"
        restored_at = time.time()
        proxy.restore()
        cluster.wait_all("resync", 10, restored_at, ev="store", available=True)
        cluster.wait_all("Redis state adopted", 10, ev="transition", to="FORCED_OPEN")

        # Pub/sub works again: releasing the breaker reaches every worker.
        operator.force("dep", None, time.time())
        cluster.wait_all("released", 5, ev="transition", frm="FORCED_OPEN", to="CLOSED")
        time.sleep(0.3)
    finally:
        summaries = cluster.stop()
        proxy.close()
        operator.close()

    for s in summaries:
        # (One outage each; an overloaded host may add a spurious one on a 0.2 s timeout.)
        assert s["fallbacks"] >= 1 and s["resyncs"] == s["fallbacks"] and s["available"], s
        assert s["state"] == "CLOSED", s
        # Nothing waited longer than one socket timeout (0.2 s) on the dead Redis: a failure is
        # flushed inline, so the first failure after the cut may wait it out once; from then
        # on the store knows Redis is gone and every call decides locally.
        assert s["max_block"] < 0.3, s
    # Every process tripped on its own during the cut: no shared state was reachable.
    local_trips = cluster.of(ev="transition", to="OPEN", mine=True)
    assert {e["w"] for e in local_trips} == set(range(WORKERS))
    assert len({e["origin"] for e in local_trips}) == WORKERS
    reqs = target.snapshot()
    assert any(r[1] == "normal" and r[3] == 200 for r in reqs[-20:])
