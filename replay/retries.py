"""Retry timing: min(cap, 2^n x base) plus up to 10 % jitter, in float seconds (Celery's own
retry_backoff rounds to whole seconds, too coarse for a 100 ms base)."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int, *, base: float = 0.1, cap: float = 60.0, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first)."""
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    backoff = min(cap, base * 2 ** (attempt - 1)) if attempt < 64 else cap
    jitter = (rng or random).uniform(0, backoff * 0.1)
    return backoff + jitter
