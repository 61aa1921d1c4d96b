"""Typed readers for environment variables that fail with a message naming the variable."""

from __future__ import annotations

import math
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_float_map(
    name: str, default: dict[str, float], *, keys: list[str], minimum: float = 0.0
) -> dict[str, float]:
    """`KEY=number,KEY=number` (keys from `keys`, case-insensitive); set but empty: {}."""
    raw = os.environ.get(name)
    if raw is None:
        return dict(default)
    out: dict[str, float] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, number = item.partition("=")
        key = key.strip().upper()
        if not sep or key not in keys:
            raise ImproperlyConfigured(
                f"{name} must be KEY=seconds pairs with KEY one of {', '.join(keys)}, "
                f"got {item.strip()!r}"
            )
        try:
            value = float(number)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {key} must be a number, got {number!r}") from None
        if not math.isfinite(value) or value < minimum:
            raise ImproperlyConfigured(f"{name}: {key} must be at least {minimum}, got {value}")
        out[key] = value
    return out


def secret_from_file(path: Path) -> str:
    """A secret generated once and kept on disk, so restarts keep sessions and signatures."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    path.write_text(value)
    path.chmod(0o600)
    return value
