"""Starts the processes of the control plane: `python -m controlplane.supervisor ROLE`.

ROLE is web, worker or beat (the process replaces itself with that command: this is what the
Docker images run), or all (what `make run` runs: all three as children, stopped together on
Ctrl-C, SIGTERM or SIGHUP, leaving no process behind).

Children die with their supervisor: on Linux each child asks the kernel for SIGTERM when its
parent dies (prctl PR_SET_PDEATHSIG, kept across exec), so a kill -9 of the supervisor stops
them too (a warm shutdown: the worker finishes what it holds, bounded by the task time limits).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from controlplane.queues import ALL_QUEUES

GRACE_SECONDS = 20
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # SIGHUP: the terminal closed


def _libc_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent_pid: int):
    """A preexec_fn: the child gets SIGTERM when the supervisor dies, however it dies.

    Runs in the forked child before exec. If the parent died before the prctl call took
    effect (the signal would never come), the child exits at once instead."""
    prctl = _libc_prctl()

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def say(message: str) -> None:
    """After SIGHUP the terminal may be gone: a failed write must not stop the shutdown."""
    with contextlib.suppress(OSError, ValueError):
        print(message, flush=True)


def default_concurrency() -> str:
    """The embedded default keeps breaker state in-process, which is right only for one
    dispatching process; with Redis the processes share it."""
    return "2" if os.environ.get("REDIS_URL") else "1"


def commands() -> dict[str, list[str]]:
    python = sys.executable
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    queues = os.environ.get("CELERY_QUEUES", ALL_QUEUES)
    worker = [
        python,
        "-m",
        "celery",
        "-A",
        "controlplane",
        "worker",
        "--loglevel=INFO",
        f"--concurrency={os.environ.get('CELERY_CONCURRENCY', default_concurrency())}",
    ]
    if queues:
        worker.append(f"--queues={queues}")
    return {
        "web": [
            python,
            "-m",
            "gunicorn",
            "controlplane.wsgi:application",
            f"--bind={host}:{port}",
            f"--workers={os.environ.get('WEB_CONCURRENCY', '2')}",
            "--threads=4",
            "--access-logfile=-",
            "--graceful-timeout=20",
        ],
        "worker": worker,
        "beat": [python, "-m", "celery", "-A", "controlplane", "beat", "--loglevel=INFO"],
    }


def metrics_dir(*, fresh: bool) -> None:
    """Web and worker processes share one prometheus_client multiprocess directory, so /metrics
    shows the workers' delivery metrics too (and every gunicorn worker's requests)."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        var = os.environ.get("CONTROLPLANE_VAR_DIR") or str(Path(__file__).parent.parent / "var")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(var) / "prometheus")
    path = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if fresh and path.exists():
        shutil.rmtree(path)  # counters from a previous run would add up with ours
    path.mkdir(parents=True, exist_ok=True)


def run_all() -> int:
    metrics_dir(fresh=True)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(signum=None, frame=None):
        nonlocal stopping
        stopping = True

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    # Each child leads its own process group, so Ctrl-C (and the terminal's SIGHUP) reaches
    # only us and we stop them in order; killing the group also takes the worker's pool
    # processes with it. Should we die without that chance, the parent-death signal stops them.
    preexec = die_with_parent(os.getpid())
    for name, cmd in commands().items():
        children[name] = subprocess.Popen(cmd, start_new_session=True, preexec_fn=preexec)
    url = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}/"
    say(f"controlplane: web, worker and beat started; open {url} (Ctrl-C stops all)")
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                say(f"controlplane: {name} exited with {child.returncode}; stopping")
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.3)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # warm shutdown: the worker finishes what it holds
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)  # anything left in the group (pool children)
    say("controlplane: stopped")
    return exit_code


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else "all"
    if role == "all":
        return run_all()
    cmds = commands()
    metrics_dir(fresh=False)
    if role not in cmds:
        print(f"usage: python -m controlplane.supervisor [all|{'|'.join(cmds)}]", file=sys.stderr)
        return 2
    os.execv(cmds[role][0], cmds[role])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
