"""The error-budget policy, freeze windows and service dependencies (the impact graph)."""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from budgets.maths import InvalidInput
from budgets.models import BudgetPolicy, FreezeWindow, ServiceDependency
from controlplane import audit
from controlplane.models import Service

POLICY_FIELDS = [
    "freeze_threshold",
    "request_ttl",
    "approval_ttl",
    "deny_on_frozen_critical",
    "canary_tolerance",
    "canary_confidence",
    "canary_min_events",
]
FREEZE_FIELDS = ["service", "name", "starts_at", "ends_at", "reason"]


# --------------------------------------------------------------------------- policy


def built_in_default() -> BudgetPolicy:
    """The default policy before anyone saved one: values from settings, not stored."""
    return BudgetPolicy(
        is_default=True,
        freeze_threshold=Decimal(str(settings.BUDGETS_FREEZE_THRESHOLD)),
        request_ttl=timedelta(minutes=settings.BUDGETS_REQUEST_TTL_MINUTES),
        approval_ttl=timedelta(minutes=settings.BUDGETS_APPROVAL_TTL_MINUTES),
        canary_tolerance=settings.BUDGETS_CANARY_TOLERANCE,
        canary_confidence=settings.BUDGETS_CANARY_CONFIDENCE,
        canary_min_events=settings.BUDGETS_CANARY_MIN_EVENTS,
    )


def default_policy() -> BudgetPolicy:
    return BudgetPolicy.objects.filter(is_default=True).first() or built_in_default()


def policies_for(service_ids: list[int] | set[int]) -> dict[int, BudgetPolicy]:
    """The policy in force for each service: its override, else the default. One query."""
    rows = list(BudgetPolicy.objects.filter(Q(service_id__in=service_ids) | Q(is_default=True)))
    default = next((p for p in rows if p.is_default), None) or built_in_default()
    overrides = {p.service_id: p for p in rows if not p.is_default}
    return {pk: overrides.get(pk, default) for pk in service_ids}


def clean_policy_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Check policy values; raises InvalidInput naming the field."""
    out = dict(fields)
    if "freeze_threshold" in out:
        value = Decimal(str(out["freeze_threshold"]))
        if not Decimal("0") < value <= Decimal("1"):
            raise InvalidInput("freeze_threshold", f"must be above 0 and at most 1, got {value}")
        out["freeze_threshold"] = value
    for name in ("request_ttl", "approval_ttl"):
        if name in out and not (
            isinstance(out[name], timedelta)
            and timedelta(minutes=1) <= out[name] <= timedelta(days=30)
        ):
            raise InvalidInput(name, "must be between 1 minute and 30 days")
    if "canary_tolerance" in out and not 0 <= out["canary_tolerance"] < 1:
        raise InvalidInput("canary_tolerance", "must satisfy 0 <= tolerance < 1")
    if "canary_confidence" in out and not 0.5 <= out["canary_confidence"] < 1:
        raise InvalidInput("canary_confidence", "must satisfy 0.5 <= confidence < 1")
    if "canary_min_events" in out and not out["canary_min_events"] >= 1:
        raise InvalidInput("canary_min_events", "must be at least 1")
    return out


def policy_json(policy: BudgetPolicy) -> dict[str, Any]:
    return {
        "scope": "default" if policy.is_default else policy.service.slug,
        "freeze_threshold": float(policy.freeze_threshold),
        "request_ttl_seconds": int(policy.request_ttl.total_seconds()),
        "approval_ttl_seconds": int(policy.approval_ttl.total_seconds()),
        "deny_on_frozen_critical": policy.deny_on_frozen_critical,
        "canary_tolerance": policy.canary_tolerance,
        "canary_confidence": policy.canary_confidence,
        "canary_min_events": policy.canary_min_events,
    }


def _policy_snapshot(policy: BudgetPolicy) -> dict[str, Any]:
    data = policy_json(policy)
    data.pop("scope")
    return data


def save_policy(service: Service | None, *, actor: Any, **fields: Any) -> BudgetPolicy:
    """Create or change the default policy (``service=None``) or a service's override.

    A new override starts from the default's values, then takes ``fields``.
    """
    fields = clean_policy_fields(fields)
    with transaction.atomic():
        lookup = {"is_default": True} if service is None else {"service": service}
        policy = BudgetPolicy.objects.select_for_update().filter(**lookup).first()
        before = _policy_snapshot(policy) if policy else None
        if policy is None:
            base = default_policy() if service is not None else built_in_default()
            policy = BudgetPolicy(
                service=service,
                is_default=service is None,
                **{name: getattr(base, name) for name in POLICY_FIELDS},
            )
        for name, value in fields.items():
            setattr(policy, name, value)
        policy.save()
        after = _policy_snapshot(policy)
        if after != before:
            audit.record(actor, "policy.save", policy, before=before, after=after)
    return policy


def delete_policy(policy: BudgetPolicy, *, actor: Any) -> None:
    """Remove a service's override (the default policy applies again)."""
    if policy.is_default:
        raise InvalidInput("service", "the default policy cannot be deleted, only changed")
    with transaction.atomic():
        audit.record(actor, "policy.delete", policy, before=_policy_snapshot(policy))
        policy.delete()


# --------------------------------------------------------------------------- freeze windows


def active_freeze_windows(service_ids: list[int] | set[int], now: datetime) -> list[FreezeWindow]:
    """Freeze windows in force at ``now`` for those services or for every service."""
    return list(
        FreezeWindow.objects.filter(starts_at__lte=now, ends_at__gt=now)
        .filter(Q(service__isnull=True) | Q(service_id__in=service_ids))
        .select_related("service")
    )


def _freeze_snapshot(window: FreezeWindow) -> dict[str, Any]:
    data = audit.snapshot(window, FREEZE_FIELDS)
    data["service"] = window.service.slug if window.service_id else None
    return data


def create_freeze_window(
    *,
    actor: Any,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    service: Service | None = None,
    reason: str = "",
) -> FreezeWindow:
    check_freeze_window(starts_at, ends_at)
    with transaction.atomic():
        window = FreezeWindow.objects.create(
            service=service, name=name, starts_at=starts_at, ends_at=ends_at, reason=reason
        )
        audit.record(actor, "freeze.create", window, after=_freeze_snapshot(window))
    return window


def check_freeze_window(starts_at: datetime, ends_at: datetime) -> None:
    """Raises InvalidInput unless the window ends after it starts."""
    if ends_at <= starts_at:
        raise InvalidInput("ends_at", "must be after starts_at")


def update_freeze_window(window: FreezeWindow, *, actor: Any, **changes: Any) -> FreezeWindow:
    """Change a window's service, name, times or reason."""
    unknown = set(changes) - set(FREEZE_FIELDS)
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    with transaction.atomic():
        window = FreezeWindow.objects.select_for_update().get(pk=window.pk)
        before = _freeze_snapshot(window)
        for name, value in changes.items():
            setattr(window, name, value)
        check_freeze_window(window.starts_at, window.ends_at)
        window.save(update_fields=list(changes))
        after = _freeze_snapshot(window)
        if after != before:
            audit.record(actor, "freeze.update", window, before=before, after=after)
    return window


def delete_freeze_window(window: FreezeWindow, *, actor: Any) -> None:
    with transaction.atomic():
        audit.record(actor, "freeze.delete", window, before=_freeze_snapshot(window))
        window.delete()


# --------------------------------------------------------------------------- dependencies


def set_dependencies(service: Service, depends_on: list[Service], *, actor: Any) -> list[Service]:
    """Replace the list of services ``service`` depends on."""
    for other in depends_on:
        check_dependency(service, other)
    with transaction.atomic():
        current = set(
            ServiceDependency.objects.filter(service=service).values_list(
                "depends_on__slug", flat=True
            )
        )
        wanted = {other.slug: other for other in depends_on}
        ServiceDependency.objects.filter(service=service).exclude(
            depends_on__slug__in=list(wanted)
        ).delete()
        ServiceDependency.objects.bulk_create(
            [
                ServiceDependency(service=service, depends_on=other)
                for slug, other in wanted.items()
                if slug not in current
            ]
        )
        if set(wanted) != current:
            audit.record(
                actor,
                "service.dependencies",
                service,
                before={"depends_on": sorted(current)},
                after={"depends_on": sorted(wanted)},
            )
    return sorted(wanted.values(), key=lambda s: s.slug)


def check_dependency(service: Service, depends_on: Service) -> None:
    """Raises InvalidInput if the edge cannot be drawn."""
    if depends_on.pk == service.pk:
        raise InvalidInput("depends_on", "a service cannot depend on itself")


def add_dependency(service: Service, depends_on: Service, *, actor: Any) -> ServiceDependency:
    """Add one edge to ``service``'s dependencies (audited as the whole new list)."""
    with transaction.atomic():
        current = [d.depends_on for d in service.dependencies.select_related("depends_on")]
        set_dependencies(service, [*current, depends_on], actor=actor)
        return ServiceDependency.objects.get(service=service, depends_on=depends_on)


def remove_dependency(edge: ServiceDependency, *, actor: Any) -> None:
    """Remove one edge (audited as the whole new list)."""
    service = edge.service
    with transaction.atomic():
        rest = [
            d.depends_on
            for d in service.dependencies.select_related("depends_on").exclude(pk=edge.pk)
        ]
        set_dependencies(service, rest, actor=actor)


@dataclass(frozen=True, slots=True)
class Impact:
    """A service a change may impact: reached along ``relation`` edges in ``distance`` steps."""

    service_id: int
    relation: str  # "dependency" (the changed service needs it) or "dependent" (it needs us)
    distance: int


def dependency_edges() -> list[tuple[int, int]]:
    """Every (service_id, depends_on_id) pair: the whole graph, one query."""
    return list(ServiceDependency.objects.values_list("service_id", "depends_on_id"))


def impact(service_id: int, edges: list[tuple[int, int]] | None = None) -> list[Impact]:
    """Services reachable from ``service_id`` by following dependencies transitively one way
    (what it depends on) and, separately, the other way (what depends on it).

    Each direction is walked on its own: two services that share a dependency do not impact
    each other through it. A service reached both ways is listed once per relation.
    """
    edges = dependency_edges() if edges is None else edges
    forward: dict[int, list[int]] = defaultdict(list)
    backward: dict[int, list[int]] = defaultdict(list)
    for src, dst in edges:
        forward[src].append(dst)
        backward[dst].append(src)
    found: list[Impact] = []
    for relation, graph in (("dependency", forward), ("dependent", backward)):
        seen = {service_id}
        queue = deque([(service_id, 0)])
        while queue:
            node, distance = queue.popleft()
            for nxt in sorted(graph[node]):
                if nxt not in seen:
                    seen.add(nxt)
                    found.append(Impact(nxt, relation, distance + 1))
                    queue.append((nxt, distance + 1))
    return found
