"""Change gates: may this change go out? Decisions, approvals and their expiry.

A decision is taken once per (service, change_id) and kept: checking the same change again
returns it, unless it has expired, in which case the change is judged afresh. Every
decision, approval, rejection and expiry is audited, with the budget figures it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from budgets.figures import ServiceState, service_states
from budgets.models import GateDecision
from budgets.policy import Impact, dependency_edges, impact
from controlplane import audit
from controlplane.models import Service
from controlplane.roles import Role, has_role

S = GateDecision.Status
K = GateDecision.Kind
AUDITED_FIELDS = ["status", "reasons", "expires_at"]


class GateError(Exception):
    """A request the gate cannot honour; ``field`` names the culprit, ``code`` the kind."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Evaluation:
    status: str
    reasons: list[dict[str, Any]]
    figures: dict[str, Any]
    impacted: list[dict[str, Any]]
    expires_at: datetime | None


def _impacted_json(found: list[Impact], states: dict[int, ServiceState]) -> list[dict[str, Any]]:
    out = []
    for item in found:
        state = states[item.service_id]
        out.append(
            {
                "service": state.service.slug,
                "relation": item.relation,
                "distance": item.distance,
                "tier": state.service.tier,
                "critical": state.critical,
                "frozen": state.frozen,
                "max_consumed": state.max_consumed,
                "freeze_reasons": [r["message"] for r in state.reasons],
            }
        )
    return out


def evaluate(service: Service, kind: str, now: datetime) -> Evaluation:
    """Judge a change of ``kind`` to ``service`` against the budgets and the policy at ``now``.

    - rollback and security changes are always allowed;
    - otherwise, when the service is frozen (budget consumed at the policy's threshold, a
      freeze window, an unresolved canary rollback) or, if the policy says so, a tier-1
      service the change may impact is frozen: normal changes are denied and urgent ones
      need an approval;
    - else the change is allowed.
    """
    found = impact(service.pk, dependency_edges())
    ids = {service.pk} | {item.service_id for item in found}
    others = Service.objects.filter(pk__in=ids - {service.pk})
    states = service_states([service, *others], now)
    own = states[service.pk]
    policy = own.policy
    blocking = list(own.reasons)
    if policy.deny_on_frozen_critical:
        for item in found:
            state = states[item.service_id]
            if state.critical and state.frozen:
                blocking.append(
                    {
                        "code": "impacted_critical_frozen",
                        "service": state.service.slug,
                        "relation": item.relation,
                        "message": f"Critical service {state.service.slug} ({item.relation}, "
                        f"{item.distance} step{'s' if item.distance > 1 else ''} away) is "
                        "frozen: "
                        + "; ".join(r["message"].rstrip(".") for r in state.reasons)
                        + ".",
                    }
                )
    expires_at = None
    if kind in GateDecision.ALWAYS_ALLOWED:
        status = S.ALLOW
        reasons = [
            {
                "code": "always_allowed",
                "message": f"{kind.capitalize()} changes are always allowed.",
            },
            *({**r, "blocking": False} for r in blocking),
        ]
    elif not blocking:
        status = S.ALLOW
        reasons = [{"code": "within_budget", "message": "No freeze applies to this change."}]
    elif kind == K.URGENT:
        status = S.APPROVAL_REQUIRED
        reasons = blocking
        expires_at = now + policy.request_ttl
    else:
        status = S.DENY
        reasons = blocking
    figures = {"evaluated_at": now.isoformat(), **own.as_json()}
    return Evaluation(status, reasons, figures, _impacted_json(found, states), expires_at)


def _snapshot(decision: GateDecision) -> dict[str, Any]:
    return {
        "status": decision.status,
        "reasons": decision.reasons,
        "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
    }


def _audit_decision(actor: Any, action: str, decision: GateDecision, before=None) -> None:
    after = {
        **_snapshot(decision),
        "change_id": decision.change_id,
        "version": decision.version,
        "kind": decision.kind,
        "requested_by": decision.requested_by,
        "figures": decision.figures,
        "impacted": decision.impacted,
    }
    audit.record(actor, action, decision, before=before, after=after)


@dataclass(frozen=True)
class CheckResult:
    decision: GateDecision
    created: bool


def check_change(
    *,
    service: Service,
    change_id: str,
    version: str,
    kind: str,
    description: str,
    requested_by: str,
    actor: Any,
    now: datetime | None = None,
) -> CheckResult:
    """Decide on a change, or return the decision already taken for its change id."""
    now = now or timezone.now()
    if kind not in K.values:
        raise GateError("kind", f"must be one of {', '.join(K.values)}")
    existing = GateDecision.objects.filter(service=service, change_id=change_id).first()
    if existing is None:
        result = evaluate(service, kind, now)
        try:
            with transaction.atomic():
                decision = GateDecision.objects.create(
                    service=service,
                    change_id=change_id,
                    version=version,
                    kind=kind,
                    description=description,
                    requested_by=requested_by,
                    requester=actor if getattr(actor, "is_authenticated", False) else None,
                    status=result.status,
                    reasons=result.reasons,
                    figures=result.figures,
                    impacted=result.impacted,
                    expires_at=result.expires_at,
                    created_at=now,
                    updated_at=now,
                )
                _audit_decision(actor, "gate.decide", decision)
            return CheckResult(decision, True)
        except IntegrityError:  # the same change checked twice at once: the other one won
            existing = GateDecision.objects.get(service=service, change_id=change_id)
    for name, value in (("version", version), ("kind", kind)):
        if getattr(existing, name) != value:
            raise GateError(
                name,
                f"change {change_id} was checked with {name} {getattr(existing, name)!r}; "
                "a change id keeps its version and kind (use a new change id)",
                code="conflict",
            )
    existing = refresh_expiry(existing, now)
    if existing.status != S.EXPIRED:
        return CheckResult(existing, False)
    return CheckResult(_recheck(existing, actor, now), False)


def _recheck(decision: GateDecision, actor: Any, now: datetime) -> GateDecision:
    """An expired decision is judged again in place (its history stays in the audit log)."""
    result = evaluate(decision.service, decision.kind, now)
    with transaction.atomic():
        before = _snapshot(decision)
        claimed = GateDecision.objects.filter(pk=decision.pk, status=S.EXPIRED).update(
            status=result.status,
            reasons=result.reasons,
            figures=result.figures,
            impacted=result.impacted,
            expires_at=result.expires_at,
            decided_by=None,
            decided_at=None,
            decision_note="",
            updated_at=now,
        )
        decision.refresh_from_db()
        if claimed == 1:
            _audit_decision(actor, "gate.recheck", decision, before=before)
    return decision


# --------------------------------------------------------------------------- approvals


def is_requester(decision: GateDecision, user: Any) -> bool:
    """The account that made the check, or the person CI named as requesting the change."""
    if decision.requester_id is not None and decision.requester_id == getattr(user, "pk", None):
        return True
    username = user.get_username() if hasattr(user, "get_username") else ""
    return bool(username) and decision.requested_by.strip().lower() == username.lower()


def can_decide(decision: GateDecision, user: Any) -> bool:
    """May ``user`` approve or reject this decision (for showing buttons)?"""
    return (
        decision.status == S.APPROVAL_REQUIRED
        and has_role(user, Role.APPROVER)
        and not is_requester(decision, user)
    )


def _decide(
    decision: GateDecision, *, actor: Any, approve: bool, note: str, now: datetime | None
) -> GateDecision:
    now = now or timezone.now()
    if not has_role(actor, Role.APPROVER):
        raise GateError("actor", "approving or rejecting needs the approver role", "forbidden")
    decision = refresh_expiry(decision, now)
    if is_requester(decision, actor):
        raise GateError("actor", "nobody may approve or reject their own request", "self_approval")
    if decision.status != S.APPROVAL_REQUIRED:
        raise GateError(
            "status", f"decision is {decision.status}, not awaiting approval", "conflict"
        )
    status = S.APPROVED if approve else S.REJECTED
    with transaction.atomic():
        before = _snapshot(decision)
        state = service_states([decision.service], now)[decision.service_id]
        claimed = GateDecision.objects.filter(
            pk=decision.pk, status=S.APPROVAL_REQUIRED, expires_at__gt=now
        ).update(
            status=status,
            decided_by=actor,
            decided_at=now,
            decision_note=note,
            expires_at=now + state.policy.approval_ttl if approve else None,
            updated_at=now,
        )
        if claimed != 1:
            raise GateError("status", "decision changed meanwhile; reload it", "conflict")
        decision.refresh_from_db()
        audit.record(
            actor,
            "gate.approve" if approve else "gate.reject",
            decision,
            before=before,
            after={
                **_snapshot(decision),
                "figures": decision.figures,
                "figures_at_decision": {"evaluated_at": now.isoformat(), **state.as_json()},
            },
            reason=note,
        )
    return decision


def approve(
    decision: GateDecision, *, actor: Any, note: str = "", now: datetime | None = None
) -> GateDecision:
    """Grant a pending request; the approval lapses after the policy's approval TTL."""
    return _decide(decision, actor=actor, approve=True, note=note, now=now)


def reject(
    decision: GateDecision, *, actor: Any, note: str = "", now: datetime | None = None
) -> GateDecision:
    return _decide(decision, actor=actor, approve=False, note=note, now=now)


# --------------------------------------------------------------------------- expiry


def refresh_expiry(decision: GateDecision, now: datetime) -> GateDecision:
    """Mark the decision expired if its request or approval has lapsed (audited)."""
    if (
        decision.status in (S.APPROVAL_REQUIRED, S.APPROVED)
        and decision.expires_at is not None
        and decision.expires_at <= now
    ):
        with transaction.atomic():
            before = _snapshot(decision)
            claimed = GateDecision.objects.filter(
                pk=decision.pk, status=decision.status, expires_at__lte=now
            ).update(status=S.EXPIRED, updated_at=now)
            decision.refresh_from_db()
            if claimed == 1:
                audit.record(
                    "system", "gate.expire", decision, before=before, after=_snapshot(decision)
                )
    return decision


def expire_due(now: datetime | None = None) -> int:
    """Expire every lapsed request and approval (the beat task); returns how many."""
    now = now or timezone.now()
    due = GateDecision.objects.filter(
        status__in=[S.APPROVAL_REQUIRED, S.APPROVED], expires_at__lte=now
    )
    count = 0
    for decision in due:
        if refresh_expiry(decision, now).status == S.EXPIRED:
            count += 1
    return count
