"""`python -m controlplane.supervisor all` (what `make run` runs) leaves nothing behind: not on
SIGHUP (the terminal closed), SIGINT or SIGTERM, and not when the supervisor itself is killed."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import ROOT, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of a process, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(root: int) -> dict[int, int]:
    """Every process below root, as pid -> start time (so a reused pid is not mistaken)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
            starts[int(entry.name)] = stat[2]
    found: dict[int, int] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found[pid] = starts[pid]
        todo.extend(children.get(pid, []))
    return found


def _alive(pids: dict[int, int]) -> list[int]:
    """Those still running (a zombie waiting for its reaper has stopped)."""
    alive = []
    for pid, started in pids.items():
        stat = _stat(pid)
        if stat is not None and stat[0] != "Z" and stat[2] == started:
            alive.append(pid)
    return alive


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    """As the next gunicorn would bind it (SO_REUSEADDR): refused only while someone listens."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


@pytest.fixture
def supervisor(tmp_path):
    """A real supervisor on the embedded default, in a private var dir, on a free port."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}
    }
    env.update(CONTROLPLANE_VAR_DIR=str(tmp_path / "var"), PORT=str(port), WEB_CONCURRENCY="1")
    log = open(tmp_path / "supervisor.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane.supervisor", "all"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen: dict[int, int] = {}
    try:
        # web (master + worker), celery worker (+ its pool child) and beat, and the port up
        def started() -> bool:
            seen.update(_descendants(proc.pid))
            return len(_alive(seen)) >= 5 and _listening(port)

        log_text = tmp_path / "supervisor.log"
        assert wait_for(started, timeout=120, interval=0.5), log_text.read_text()
        seen.update(_descendants(proc.pid))
        yield proc, port, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pid in _alive(seen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # only processes this test started
        log.close()


@pytest.mark.parametrize(
    "signum", [signal.SIGHUP, signal.SIGINT, signal.SIGTERM], ids=["SIGHUP", "SIGINT", "SIGTERM"]
)
def test_a_stop_signal_stops_every_child_and_frees_the_port(supervisor, signum):
    proc, port, children = supervisor
    proc.send_signal(signum)
    proc.wait(timeout=60)
    assert wait_for(lambda: not _alive(children), timeout=60, interval=0.2), _alive(children)
    assert _port_free(port)


def test_children_die_with_a_killed_supervisor(supervisor):
    proc, port, children = supervisor
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert wait_for(lambda: not _alive(children), timeout=60, interval=0.2), _alive(children)
    assert _port_free(port)
