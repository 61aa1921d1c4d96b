"""Chooses the backing services before Django's settings load (loaded with `-p tests.testenv`).

Postgres and Redis are used when reachable (DATABASE_URL / REDIS_URL, else the local defaults);
otherwise the embedded default. CONTROLPLANE_REQUIRE_SERVICES=1 turns a missing service into a
failure naming it; CONTROLPLANE_TEST_EMBEDDED=1 forces the embedded default (the smoke run).
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pytest

LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/controlplane"
LOCAL_REDIS = "redis://127.0.0.1:6379/1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1
        ):
            return True
    except OSError:
        return False


def _choose() -> None:
    os.environ.setdefault(
        "CONTROLPLANE_VAR_DIR",
        str(Path(tempfile.gettempdir()) / f"controlplane-test-{os.getuid()}"),
    )
    # Test receivers listen on ephemeral loopback ports (workers inherit this environment).
    os.environ.setdefault("CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1:*,localhost:*")
    if os.environ.get("CONTROLPLANE_TEST_EMBEDDED") == "1":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        return
    require = os.environ.get("CONTROLPLANE_REQUIRE_SERVICES") == "1"
    missing = []
    for var, default, port, label in (
        ("DATABASE_URL", LOCAL_POSTGRES, 5432, "PostgreSQL"),
        ("REDIS_URL", LOCAL_REDIS, 6379, "Redis"),
    ):
        url = os.environ.get(var) or default
        if _reachable(url, port):
            os.environ[var] = url
        else:
            os.environ.pop(var, None)
            missing.append(f"{label} at {url} ({var})")
    if missing and require:
        raise pytest.UsageError(
            "CONTROLPLANE_REQUIRE_SERVICES=1 but unreachable: " + "; ".join(missing)
        )


_choose()


def pytest_report_header(config):
    return (
        f"controlplane: database={os.environ.get('DATABASE_URL', 'embedded SQLite')} "
        f"broker={os.environ.get('REDIS_URL', 'embedded filesystem')}"
    )
