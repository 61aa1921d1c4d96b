"""Verb functions for SLOs: validate, then change in one transaction with its audit row."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction

from budgets.ledger import SLICE_MINUTES
from budgets.maths import InvalidInput, slice_is_good, validate_target
from budgets.models import SLO
from budgets.windows import Window, format_window, parse_window
from controlplane import audit
from controlplane.models import Service

SLO_FIELDS = [
    "service",
    "name",
    "display_name",
    "description",
    "sli",
    "target",
    "window",
    "budgeting_method",
    "slice_minutes",
    "slice_target",
    "latency_threshold_ms",
]
# The ledger's slice tallies and counts depend on these, so they are fixed at creation.
FIXED_FIELDS = ("service", "sli", "budgeting_method", "slice_minutes", "slice_target")
MUTABLE_FIELDS = ("display_name", "description", "target", "window", "latency_threshold_ms")


def _ratio(value: Any, field: str) -> Decimal:
    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise InvalidInput(field, f"must be a number, got {value!r}") from None
    if not exact.is_finite():
        raise InvalidInput(field, f"must be a finite number, got {value!r}")
    # A ratio is at most 1: anything with an integer part of 2+ digits is refused here,
    # before quantize(), which raises InvalidOperation past the context's 28 digits.
    if exact.adjusted() >= 1:
        hint = "; write 99.9 % as 0.999" if field == "target" else ""
        raise InvalidInput(field, f"must be a ratio between 0 and 1, got {value}{hint}")
    if exact != exact.quantize(Decimal("0.000001")):
        raise InvalidInput(field, f"must have at most 6 decimal places, got {value}")
    return exact.quantize(Decimal("0.000001"))


def clean_target(value: Any) -> Decimal:
    """0.99 .. 0.999999 as a Decimal; 99.9 or 1 is refused with a hint about the scale."""
    exact = _ratio(value, "target")
    try:
        validate_target(exact)
    except InvalidInput as exc:
        hint = "; write 99.9 % as 0.999" if exact > 1 else ""
        raise InvalidInput("target", exc.problem + hint) from None
    return exact


def clean_window(value: Any) -> str:
    return format_window(parse_window(value))


def _check_slices_align(window: Window, minutes: int) -> None:
    """Slices are aligned to the epoch; a calendar period must start on a slice boundary."""
    if not window.is_calendar:
        return
    zone = ZoneInfo(window.time_zone)
    # Offsets change with daylight saving (by 30 min in a few zones): check a year of them.
    for month in range(1, 13):
        local = window.anchor.replace(month=month, tzinfo=zone)
        start = local.astimezone(UTC)
        if start.minute % minutes:
            raise InvalidInput(
                "window",
                f"its periods can start at minute {start.minute} of the hour (UTC), which "
                f"is not a boundary of {minutes}-minute slices",
            )


def clean_fields(fields: dict[str, Any], *, existing: SLO | None = None) -> dict[str, Any]:
    """Check and normalise SLO fields (a whole SLO, or changes to ``existing``).

    Raises InvalidInput naming the first bad field.
    """
    out = dict(fields)
    if out.get("slice_target") is not None:
        out["slice_target"] = _ratio(out["slice_target"], "slice_target")
    if existing is not None:
        for name in FIXED_FIELDS:
            if name in out and out[name] != getattr(existing, name):
                raise InvalidInput(
                    name,
                    "cannot change once the SLO exists (its ledger depends on it); "
                    "create a new SLO instead",
                )
    if "target" in out:
        out["target"] = clean_target(out["target"])
    if "window" in out:
        out["window"] = clean_window(out["window"])
    merged = {name: getattr(existing, name) for name in SLO_FIELDS} if existing else {}
    merged.update(out)
    sli = merged.get("sli")
    if sli not in SLO.Sli.values:
        raise InvalidInput("sli", f"must be one of {', '.join(SLO.Sli.values)}, got {sli!r}")
    method = merged.get("budgeting_method") or SLO.Method.OCCURRENCES
    if method not in SLO.Method.values:
        raise InvalidInput(
            "budgeting_method", f"must be one of {', '.join(SLO.Method.values)}, got {method!r}"
        )
    if existing is None:
        out["budgeting_method"] = method
    if method == SLO.Method.TIMESLICES:
        minutes = merged.get("slice_minutes")
        if minutes not in SLICE_MINUTES:
            raise InvalidInput(
                "slice_minutes",
                "must be a number of minutes that divides an hour "
                f"({', '.join(map(str, SLICE_MINUTES))}), got {minutes!r}",
            )
        if merged.get("slice_target") is None:
            raise InvalidInput("slice_target", "is required for the timeslices method")
        slice_is_good(0, 0, merged["slice_target"])  # validates 0 < slice_target <= 1
        if merged.get("window"):
            _check_slices_align(parse_window(merged["window"]), minutes)
    else:
        for name in ("slice_minutes", "slice_target"):
            if merged.get(name) is not None:
                raise InvalidInput(name, "is only for the timeslices method")
    threshold = merged.get("latency_threshold_ms")
    if sli == SLO.Sli.LATENCY:
        if threshold is None:
            raise InvalidInput("latency_threshold_ms", "is required for a latency SLI")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | Decimal):
            raise InvalidInput("latency_threshold_ms", f"must be a number, got {threshold!r}")
        if not 0 < float(threshold) < 1e9:
            raise InvalidInput("latency_threshold_ms", f"must be above 0, got {threshold}")
        if "latency_threshold_ms" in out:
            out["latency_threshold_ms"] = float(threshold)
    elif threshold is not None:
        raise InvalidInput("latency_threshold_ms", "is only for a latency SLI")
    return out


def snapshot(slo: SLO) -> dict[str, Any]:
    data = audit.snapshot(slo, SLO_FIELDS)
    for name in ("target", "slice_target"):
        data[name] = str(data[name]) if data[name] is not None else None
    data["service"] = slo.service.slug
    return data


def create_slo(*, actor: Any, service: Service, **fields: Any) -> SLO:
    """Create an SLO (fields as in the model; ``window`` in text form)."""
    fields = clean_fields({**fields, "service": service})
    with transaction.atomic():
        slo = SLO.objects.create(**fields)
        audit.record(actor, "slo.create", slo, after=snapshot(slo))
    return slo


def update_slo(slo: SLO, *, actor: Any, **changes: Any) -> SLO:
    """Change an SLO's target, window, names or latency threshold (the rest is fixed)."""
    unknown = set(changes) - set(MUTABLE_FIELDS) - set(FIXED_FIELDS) - {"name", "openslo"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "is not a field of an SLO")
    changes = clean_fields(changes, existing=slo)
    changes = {k: v for k, v in changes.items() if k not in FIXED_FIELDS}
    with transaction.atomic():
        slo = SLO.objects.select_for_update().select_related("service").get(pk=slo.pk)
        before = snapshot(slo)
        for name, value in changes.items():
            setattr(slo, name, value)
        slo.save(update_fields=[*changes, "updated_at"])
        after = snapshot(slo)
        if after != before:
            audit.record(actor, "slo.update", slo, before=before, after=after)
    return slo


def delete_slo(slo: SLO, *, actor: Any) -> None:
    """Delete an SLO with its ledger and alert history."""
    with transaction.atomic():
        audit.record(actor, "slo.delete", slo, before=snapshot(slo))
        slo.delete()
