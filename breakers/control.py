"""Operator verbs on breakers: force a state, edit thresholds, push a dynamic threshold.
Each runs in one transaction with its audit row; running workers apply the row within
ROUTE_REFRESH_SECONDS (they re-read rows whose updated_at moved)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from breakers.engine import BreakerConfig
from breakers.models import CircuitBreaker
from controlplane import audit

MODES = {*CircuitBreaker.Forced.values, "automatic"}
DYNAMIC_SOURCE_INPUTS = ("dynamic_field", "dynamic_query")


def force_breaker(breaker: CircuitBreaker, mode: str, *, actor: Any, reason: str) -> CircuitBreaker:
    """mode: forced_open, forced_closed, disabled, or automatic (hand it back)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(sorted(MODES))}")
    if not reason.strip():
        raise ValueError("reason is required")
    with transaction.atomic():
        row = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
        before = {"forced_state": row.forced_state or "automatic"}
        row.forced_state = "" if mode == "automatic" else mode
        row.forced_reason = reason
        row.forced_by = actor.get_username() if hasattr(actor, "get_username") else str(actor)
        row.forced_at = timezone.now()
        row.save(
            update_fields=["forced_state", "forced_reason", "forced_by", "forced_at", "updated_at"]
        )
        audit.record(
            actor, "breaker.force", row, before=before, after={"forced_state": mode}, reason=reason
        )
    return row


def update_thresholds(
    breaker: CircuitBreaker,
    changes: dict[str, Any],
    *,
    actor: Any,
    dynamic: dict[str, Any] | None = None,
) -> CircuitBreaker:
    """Validates the merged config with the engine's own rules (ValueError naming the field).
    `dynamic`: dynamic_field, dynamic_k, dynamic_window_s, dynamic_query. Changing the field
    or the query clears dynamic_source, so the value is computed again from the new inputs
    (a pushed value stops the computation until then)."""
    unknown = sorted(set(dynamic or {}) - set(DYNAMIC_SETTINGS))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a dynamic threshold setting")
    with transaction.atomic():
        row = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
        merged = {**(row.config or {}), **changes}
        config = BreakerConfig.from_dict(merged)  # raises ValueError("<field>: ...")
        before = {"config": row.config, "dynamic_field": row.dynamic_field}
        row.config = {k: v for k, v in config.to_dict().items() if k in merged}
        fields = ["config", "updated_at"]
        for name, value in (dynamic or {}).items():
            if name in DYNAMIC_SOURCE_INPUTS and value != getattr(row, name):
                row.dynamic_source = ""
                fields.append("dynamic_source")
            setattr(row, name, value)
            fields.append(name)
        row.save(update_fields=sorted(set(fields)))
        audit.record(
            actor,
            "breaker.thresholds",
            row,
            before=before,
            after={"config": row.config, "dynamic_field": row.dynamic_field},
        )
    return row


DYNAMIC_SETTINGS = ("dynamic_field", "dynamic_k", "dynamic_window_s", "dynamic_query")


def set_dynamic_value(
    breaker: CircuitBreaker, value: float, *, source: str, actor: Any | None = None
) -> CircuitBreaker:
    """A new value for the breaker's dynamic threshold (computed, queried or pushed)."""
    if not breaker.dynamic_field:
        raise ValueError("dynamic_field: this breaker has no dynamic threshold")
    BreakerConfig.from_dict({**(breaker.config or {}), breaker.dynamic_field: value})
    with transaction.atomic():
        row = CircuitBreaker.objects.select_for_update().get(pk=breaker.pk)
        before = {"value": row.dynamic_value, "source": row.dynamic_source}
        row.dynamic_value = value
        row.dynamic_source = source
        row.dynamic_computed_at = timezone.now()
        row.save(
            update_fields=["dynamic_value", "dynamic_source", "dynamic_computed_at", "updated_at"]
        )
        if actor is not None:  # computed values are not operator actions; pushes are
            audit.record(
                actor,
                "breaker.threshold_push",
                row,
                before=before,
                after={"value": value, "source": source},
            )
    return row
