"""Python handlers for tests (allow-listed by the `test_handlers` fixture or env)."""

import time

from breakers.handlers import PermanentError

CALLS: list[dict] = []


def record(event: dict) -> None:
    CALLS.append(event)


def permanent(event: dict) -> None:
    raise PermanentError("bad payload")


def flaky(event: dict) -> None:
    """Fails on the first attempt, succeeds after."""
    if event["attempt"] == 1:
        raise RuntimeError("first attempt fails")
    CALLS.append(event)


def slow(event: dict) -> None:
    time.sleep(2)


ALL = [f"tests.handlers.{name}" for name in ("record", "permanent", "flaky", "slow")]
