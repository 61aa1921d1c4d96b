"""The budgets app's settings, with their defaults (set from the environment in settings.py).

Each is documented in docs/budgets.md, "Configuration".
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def current_burn_span() -> timedelta:
    """The span whose burn rate counts as "current" (time to exhaustion, list badges)."""
    return timedelta(minutes=settings.BUDGETS_CURRENT_BURN_MINUTES)
