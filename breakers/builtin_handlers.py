"""Python handlers that ship with the control plane (allow-listed by default)."""

import logging

log = logging.getLogger(__name__)


def noop(event: dict) -> None:
    """Accepts every event: for benchmarks and for routes that only feed the ledger."""


def log_event(event: dict) -> None:
    log.info("event %s %s (attempt %s)", event["type"], event["id"], event["attempt"])
