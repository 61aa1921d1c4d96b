"""The budgets app's settings, with their defaults (set from the environment in settings.py).

Each is documented in docs/budgets.md, "Configuration".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "BUDGETS_FREEZE_THRESHOLD": 0.8,
    "BUDGETS_REQUEST_TTL_MINUTES": 24 * 60,
    "BUDGETS_APPROVAL_TTL_MINUTES": 4 * 60,
    "BUDGETS_CANARY_TOLERANCE": 0.001,
    "BUDGETS_CANARY_CONFIDENCE": 0.95,
    "BUDGETS_CANARY_MIN_EVENTS": 1000,
    "BUDGETS_CURRENT_BURN_MINUTES": 60,
    "BUDGETS_LEDGER_RETENTION_DAYS": 100,
    "BUDGETS_DAY_RETENTION_DAYS": 400,
    "BUDGETS_WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "BUDGETS_EXTERNAL_MAX_AGE_DAYS": 7,
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])


def current_burn_span() -> timedelta:
    """The span whose burn rate counts as "current" (time to exhaustion, list badges)."""
    return timedelta(minutes=get("BUDGETS_CURRENT_BURN_MINUTES"))
