"""Canary verdicts for changes: from counts given, or from the ledger's labelled counts.

The statistics are in ``budgets.maths.canary`` (pure); this module picks the counts, applies the
service's policy (tolerance, confidence, minimum events), stores and audits the verdict. An
unresolved ``rollback`` verdict freezes the service's gate (see ``status.service_states``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from budgets.ledger import read_counts
from budgets.maths.budget import InvalidInput
from budgets.maths.canary import canary_verdict
from budgets.maths.windows import floor_to_minute
from budgets.models import SLO, CanaryVerdict
from budgets.policy import policies_for
from controlplane import audit
from controlplane.models import Service

MAX_WINDOW = timedelta(days=7)


def ledger_counts(
    slo: SLO, *, window: timedelta, canary_label: str, baseline_label: str, now: datetime
) -> tuple[tuple[int, int], tuple[int, int], dict[str, Any]]:
    """(good, total) for the canary and baseline labels over the last ``window``."""
    if window % timedelta(minutes=1) or not timedelta(minutes=1) <= window <= MAX_WINDOW:
        raise InvalidInput("window", "must be whole minutes, from 1 minute to 7 days")
    if not canary_label or not baseline_label or canary_label == baseline_label:
        raise InvalidInput("baseline_label", "needs two different, non-empty labels")
    end = floor_to_minute(now)
    start = end - window
    canary = read_counts([(slo.pk, start, end)], label=canary_label)[(slo.pk, start, end)]
    baseline = read_counts([(slo.pk, start, end)], label=baseline_label)[(slo.pk, start, end)]
    source = {
        "slo": slo.pk,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "canary_label": canary_label,
        "baseline_label": baseline_label,
    }
    return (canary.good, canary.total), (baseline.good, baseline.total), source


def judge_canary(
    *,
    service: Service,
    change_id: str,
    actor: Any,
    canary: tuple[int, int] | None = None,
    baseline: tuple[int, int] | None = None,
    slo: SLO | None = None,
    window: timedelta | None = None,
    canary_label: str = "",
    baseline_label: str = "",
    now: datetime | None = None,
) -> CanaryVerdict:
    """Compare canary and baseline error ratios and store the verdict.

    Give either both ``canary`` and ``baseline`` as (good, total), or an ``slo`` of the
    service with a ``window`` and the two ledger labels. Raises InvalidInput naming a field.
    """
    now = now or timezone.now()
    if slo is not None:
        if canary is not None or baseline is not None:
            raise InvalidInput(
                "canary", "give counts, or an SLO with a window and labels, not both"
            )
        if slo.service_id != service.pk:
            raise InvalidInput("slo", f"is not an SLO of {service.slug}")
        if window is None:
            raise InvalidInput("window", "is required with an SLO")
        canary, baseline, source = ledger_counts(
            slo, window=window, canary_label=canary_label, baseline_label=baseline_label, now=now
        )
    else:
        if canary is None:
            raise InvalidInput("canary", "is required: {good, total}, or give an SLO and window")
        if baseline is None:
            raise InvalidInput("baseline", "is required: {good, total}")
        source = {"counts": "given"}
    policy = policies_for([service.pk])[service.pk]
    verdict = canary_verdict(
        canary[0],
        canary[1],
        baseline[0],
        baseline[1],
        tolerance=policy.canary_tolerance,
        confidence=policy.canary_confidence,
        min_events=policy.canary_min_events,
    )
    with transaction.atomic():
        row = CanaryVerdict.objects.create(
            service=service,
            change_id=change_id,
            decision=verdict.decision.value,
            explanation=verdict.explanation,
            figures=verdict.figures,
            source=source,
            requested_by=actor if getattr(actor, "is_authenticated", False) else None,
            created_at=now,
        )
        audit.record(
            actor,
            "canary.verdict",
            row,
            after={"decision": row.decision, "figures": row.figures, "source": source},
            reason=row.explanation,
        )
    return row


def resolve_canary(
    verdict: CanaryVerdict, *, actor: Any, note: str = "", now: datetime | None = None
) -> CanaryVerdict:
    """Mark a rollback verdict handled (the rollback is done): the gate unfreezes."""
    now = now or timezone.now()
    if verdict.decision != CanaryVerdict.Decision.ROLLBACK:
        raise InvalidInput(
            "decision", f"only a rollback verdict needs resolving, not {verdict.decision}"
        )
    with transaction.atomic():
        claimed = CanaryVerdict.objects.filter(pk=verdict.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=actor, resolution=note
        )
        if claimed != 1:
            raise InvalidInput("resolved_at", "this verdict is already resolved")
        verdict.refresh_from_db()
        audit.record(
            actor,
            "canary.resolve",
            verdict,
            before={"resolved_at": None},
            after={"resolved_at": now.isoformat(), "decision": verdict.decision},
            reason=note,
        )
    return verdict
