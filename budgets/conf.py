"""The budgets app's settings, with their defaults (set from the environment in settings.py).

Each is documented in docs/budgets.md, "Configuration".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings


def get(name: str) -> Any:
    """A BUDGETS_* setting; settings.py reads each from the environment with its default."""
    return getattr(settings, name)


def current_burn_span() -> timedelta:
    """The span whose burn rate counts as "current" (time to exhaustion, list badges)."""
    return timedelta(minutes=get("BUDGETS_CURRENT_BURN_MINUTES"))
