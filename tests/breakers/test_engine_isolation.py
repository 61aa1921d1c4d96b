"""The engine package is pure Python: it imports, and a breaker works, with Django unavailable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# `sys.modules[name] = None` makes every `import name` raise ImportError, so the package
# (and anything it pulls in) cannot touch Django, even lazily.
SCRIPT = """
import sys
sys.modules["django"] = None
from breakers.engine import Breaker, BreakerConfig, InProcessStore, Outcome, State
from breakers.engine.redis_store import LUA_SOURCE, RedisStore
b = Breaker("dep", BreakerConfig(consecutive_failures=2), InProcessStore())
for _ in range(2):
    b.record(b.acquire(), Outcome.FAILURE)
assert b.state is State.OPEN, b.state
assert "HALF_OPEN" in LUA_SOURCE and RedisStore
roots = ("django", "rest_framework", "controlplane")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in roots)
assert leaked == ["django"], leaked
print("ok")
"""


def test_engine_imports_and_runs_without_django():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_engine_modules_import_one_way():
    # machine <- stores <- redis_store: the state machine imports no store.
    source = (ROOT / "breakers" / "engine" / "machine.py").read_text()
    assert "from .stores" not in source and "from .redis_store" not in source
    stores = (ROOT / "breakers" / "engine" / "stores.py").read_text()
    assert "redis" not in stores.split('"""', 2)[2].split("class ")[0]
