"""The budget maths package is pure Python: it imports, and computes, with Django unavailable."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# `sys.modules[name] = None` makes every `import name` raise ImportError, so the package
# (and anything it pulls in) cannot touch Django, even lazily.
SCRIPT = """
import sys
sys.modules["django"] = None
from datetime import UTC, datetime, timedelta
from budgets.maths import InvalidInput
from budgets.maths.budget import budget_status
from budgets.maths.burn import alert_rules
from budgets.maths.canary import Decision, canary_verdict
from budgets.maths.episodes import mean_duration
from budgets.maths.windows import parse_window, window_bounds
assert budget_status(999, 1000, 0.999).consumed == 1.0
assert len(alert_rules(timedelta(days=30))) == 3
verdict = canary_verdict(9_000, 10_000, 9_990, 10_000, tolerance=0.001, min_events=100)
assert verdict.decision is Decision.ROLLBACK, verdict
now = datetime(2026, 2, 10, tzinfo=UTC)
assert window_bounds(parse_window("calendar:month"), now) == (datetime(2026, 2, 1, tzinfo=UTC), now)
assert mean_duration([timedelta(minutes=2), None, timedelta(minutes=4)]) == timedelta(minutes=3)
try:
    budget_status(1, 0, 0.999)
except InvalidInput:
    pass
else:
    raise AssertionError("good > total must be refused")
roots = ("django", "rest_framework", "controlplane", "breakers")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in roots)
assert leaked == ["django"], leaked
budgets = sorted(m for m in sys.modules if m.split(".")[0] == "budgets")
assert all(m == "budgets" or m.startswith("budgets.maths") for m in budgets), budgets
print("ok")
"""


def test_maths_imports_and_computes_without_django():
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


def test_maths_modules_import_nothing_outside_the_package():
    # Relative imports only: a module of the package never reaches back into the app.
    paths = sorted((ROOT / "budgets" / "maths").glob("*.py"))
    names = {path.stem for path in paths}
    assert {"budget", "windows", "burn", "canary", "episodes"} <= names, names
    for path in paths:
        imports = [
            line.strip()
            for line in path.read_text().splitlines()
            if line.startswith(("from ", "import "))
        ]
        outside = [line for line in imports if "budgets" in line or line.startswith("from ..")]
        assert outside == [], (path.name, outside)
