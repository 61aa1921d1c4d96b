"""Schema tolerance benchmark: what holding a payload to its schema costs per event.

    python bench/schema.py

Prints, in one run (about half a minute):
* per-event cost of `schema_tolerance.apply` for a 10-field payload in each mode (strict,
  lenient, coercive with nothing to coerce, coercive with 5 coercions), side by side with the
  `jsonschema` library (the anchor users know; it comes with drf-spectacular) validating the
  same payload against the equivalent JSON Schema (`schema_tolerance.json_schema`), and with
  `jsonschema_rs` (Rust) when it is installed. jsonschema only validates: it neither fills
  defaults nor coerces, and without `rfc3339-validator` installed it does not check
  `format: date-time` either, so it does less work than every mode here;
* per-event cost of dispatch's `_prepare` (route found, not a duplicate: the Job is built)
  for an event type with no schema, against `_prepare` as it was before schema tolerance
  (breakers/dispatch.py at BEFORE_COMMIT, loaded from git), with the schema table empty and
  with 1,000 other types registered; and for a type with a coercive 10-field schema.

All figures are the best of interleaved rounds, so a busy machine slows them alike. Runs on
SQLite in a temporary directory (the measured paths make no query once the caches are warm).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from itertools import repeat
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BEFORE_COMMIT = "e75da2a"  # the last commit before schema tolerance reached dispatch
ROUNDS = 15
ROUND_S = 0.05

FIELDS = {
    "order_id": {"type": "string", "required": True},
    "amount": {"type": "integer", "required": True},
    "rate": {"type": "number"},
    "currency": {"type": "string", "default": "EUR"},
    "paid": {"type": "boolean", "default": False},
    "placed_at": {"type": "timestamp", "required": True},
    "customer": {"type": "object"},
    "items": {"type": "array"},
    "coupon": {"type": "string", "nullable": True},
    "quantity": {"type": "integer"},
}
EXACT = {
    "order_id": "o-12345",
    "amount": 4200,
    "rate": 1.07,
    "currency": "USD",
    "paid": True,
    "placed_at": "2026-11-28T12:00:00Z",
    "customer": {"id": 7, "tier": "gold"},
    "items": [{"sku": "a", "n": 2}],
    "coupon": None,
    "quantity": 3,
}
# Five fields a lax producer sends as strings (or in another zone): coercive fixes them.
LAX = {
    **EXACT,
    "amount": "4200",
    "rate": "1.07",
    "paid": "true",
    "quantity": 3.0,
    "placed_at": "2026-11-28T13:00:00+01:00",
}


def _loop(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in repeat(None, n):
        fn()
    return time.perf_counter() - t0


def interleaved_us(fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best microseconds per call of each, measured in alternating rounds."""
    sizes = {}
    for key, fn in fns.items():
        est = _loop(fn, 200) / 200
        sizes[key] = int(min(200_000, max(200, ROUND_S / max(est, 1e-9))))
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(ROUNDS):
        for key, fn in fns.items():
            best[key] = min(best[key], _loop(fn, sizes[key]) / sizes[key])
    return {k: v * 1e6 for k, v in best.items()}


def bench_apply() -> dict[str, float]:
    import jsonschema

    from breakers.schema_tolerance import (
        COERCIVE,
        LENIENT,
        STRICT,
        Schema,
        apply,
        check_definition,
        json_schema,
    )

    fields = check_definition(FIELDS)
    strict, lenient, coercive = (Schema.build(m, fields) for m in (STRICT, LENIENT, COERCIVE))
    assert apply(strict, EXACT)[0] is EXACT
    assert apply(coercive, LAX)[0] == EXACT | {"placed_at": "2026-11-28T12:00:00Z"}
    validator = jsonschema.Draft202012Validator(json_schema(fields, STRICT))
    assert validator.is_valid(EXACT)
    fns: dict[str, Callable[[], object]] = {
        "strict": lambda: apply(strict, EXACT),
        "lenient": lambda: apply(lenient, EXACT),
        "coercive, nothing to coerce": lambda: apply(coercive, EXACT),
        "coercive, 5 coercions": lambda: apply(coercive, LAX),
        "jsonschema is_valid": lambda: validator.is_valid(EXACT),
        "jsonschema validate": lambda: validator.validate(EXACT),
    }
    try:
        import jsonschema_rs

        rs = jsonschema_rs.validator_for(json_schema(fields, STRICT))
        assert rs.is_valid(EXACT)
        fns["jsonschema_rs is_valid"] = lambda: rs.is_valid(EXACT)
    except ImportError:
        pass
    return interleaved_us(fns)


def load_before() -> types.ModuleType:
    """breakers/dispatch.py as it was at BEFORE_COMMIT, as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE_COMMIT}:breakers/dispatch.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("dispatch_before")
    module.__file__ = f"<{BEFORE_COMMIT}:breakers/dispatch.py>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def bench_prepare() -> dict[str, float]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from breakers import dispatch
    from breakers.route_table import route_table
    from breakers.routes import create_route
    from breakers.schema_table import SchemaTable, schema_table
    from breakers.schema_tolerance import Schema, check_definition
    from breakers.schemas import create_schema
    from controlplane.services import create_service
    from replay.models import Event

    user = get_user_model().objects.create_user(username="bench")
    service = create_service(actor=user, slug="bench", name="Bench", team="t")
    create_route(
        actor=user,
        service=service,
        name="bench-route",
        event_type="*",
        kind="webhook",
        target="http://127.0.0.1:9/hook",
    )
    create_schema(
        actor=user, service=service, event_type="order.schema", mode="coercive", fields=FIELDS
    )
    now = timezone.now()

    def event(event_type: str, payload: dict) -> Event:
        return Event(
            pk=1,
            service=service,
            event_id="e-1",
            type=event_type,
            occurred_at=now,
            received_at=now,
            payload=payload,
            batch_id=uuid.uuid4(),
        )

    plain, typed = event("order.created", EXACT), event("order.schema", LAX)
    table = route_table()
    route = table.match(service.pk, "order.created")
    loaded = schema_table()
    other = [Schema.build("strict", check_definition(FIELDS))]
    many = SchemaTable(
        {
            service.pk: {
                **loaded.by_service[service.pk],
                **{f"other.{i}": other for i in range(1000)},
            }
        }
    )
    empty = SchemaTable({})
    before = load_before()
    done: set = set()
    job = dispatch._prepare(typed, route, done, "t", table, loaded)
    assert job.envelope["payload"]["amount"] == 4200 and typed.payload["amount"] == "4200"
    assert dispatch._prepare(plain, route, done, "t", table, many).envelope["payload"] is EXACT
    return interleaved_us(
        {
            "before (no schema tolerance)": lambda: before._prepare(plain, route, done, "t", table),
            "no schema, table empty": lambda: dispatch._prepare(
                plain, route, done, "t", table, empty
            ),
            "no schema, 1,000 other types": lambda: dispatch._prepare(
                plain, route, done, "t", table, many
            ),
            "coercive schema, 5 coercions": lambda: dispatch._prepare(
                typed, route, done, "t", table, loaded
            ),
        }
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cp-bench-schema-"))
    os.environ["CONTROLPLANE_VAR_DIR"] = str(tmp / "var")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.pop("REDIS_URL", None)  # the in-process breaker store: no I/O on the path
    os.environ["CONTROLPLANE_ROUTE_REFRESH_SECONDS"] = "3600"  # caches stay warm
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "0"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()

    apply_us = bench_apply()
    anchor = apply_us["jsonschema is_valid"]
    print(f"apply() on a 10-field payload, µs per event (anchor: jsonschema {anchor:.2f} µs)")
    for name, us in apply_us.items():
        print(f"  {name:<30} {us:8.2f} µs   {us / anchor:5.2f}x jsonschema")

    prepare_us = bench_prepare()
    base = prepare_us["before (no schema tolerance)"]
    print(f"\n_prepare() per event, µs (before: {base:.2f} µs)")
    for name, us in prepare_us.items():
        print(f"  {name:<30} {us:8.2f} µs   {us - base:+6.2f} µs   {us / base:5.3f}x before")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
