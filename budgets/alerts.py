"""Burn-rate alerts: evaluation of every SLO (the beat task), history, and webhooks.

Rules come from ``burn.alert_rules`` for each SLO's window length (the workbook's 14.4x /
6x / 1x for 30 days, scaled for others); an alert fires only when the burn rate over both
windows of its pair exceeds the rate. A firing opens an ``AlertEvent``; the first evaluation
that finds the rule quiet resolves it. Each change posts JSON to the service's hooks, from a
Celery task enqueued after commit, never from the request or the evaluation itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from budgets.burn import AlertRule, AlertState, alert_rules, evaluate_alerts
from budgets.ledger import read_counts
from budgets.maths import InvalidInput
from budgets.models import SLO, AlertEvent, BudgetAlertHook
from budgets.status import recent_span, slo_end, span_burn_rate
from budgets.windows import window_length
from controlplane import audit, egress
from controlplane.models import Service


@dataclass(frozen=True)
class Transition:
    alert: AlertEvent
    state: str  # "firing" | "resolved"


def rules_for(slo: SLO, now: datetime) -> list[AlertRule]:
    return alert_rules(window_length(slo.window_spec, slo_end(slo, now)))


def rule_states(slos: list[SLO], now: datetime) -> dict[int, list[AlertState]]:
    """Each SLO's burn-rate rules with the burn over their windows: one ledger query."""
    rules = {slo.pk: rules_for(slo, now) for slo in slos}
    spans: dict[tuple[int, timedelta], tuple[datetime, datetime]] = {}
    for slo in slos:
        for rule in rules[slo.pk]:
            for window in (rule.long_window, rule.short_window):
                spans[(slo.pk, window)] = recent_span(slo, now, window)
    counts = read_counts([(pk, *span) for (pk, _), span in spans.items()])
    out = {}
    for slo in slos:

        def burn_for(window: timedelta, slo: SLO = slo) -> float:
            start, end = spans[(slo.pk, window)]
            return span_burn_rate(slo, counts[(slo.pk, start, end)], end - start)

        out[slo.pk] = evaluate_alerts(rules[slo.pk], burn_for)
    return out


def evaluate(
    *,
    service: Service | None = None,
    slos: list[SLO] | None = None,
    actor: Any = "beat",
    now: datetime | None = None,
) -> list[Transition]:
    """The one entry point of alert evaluation, for every door: beat (every minute), the API
    (`POST /api/v1/alerts/evaluate`), `manage.py evaluate_alerts` and a push of an SLO's
    external counts. The SLOs given, or those of `service`, or every SLO."""
    if slos is None:
        slos = slos_to_evaluate(service)
    return evaluate_all(now, slos, actor=actor)


def slos_to_evaluate(service: Service | None = None) -> list[SLO]:
    """Every SLO, or those of `service`."""
    qs = SLO.objects.select_related("service").order_by("pk")
    return list(qs.filter(service=service) if service is not None else qs)


def summary(transitions: list[Transition]) -> dict[str, Any]:
    """What an evaluation changed, as the API and the command report it."""
    return {
        state: [
            {"id": t.alert.pk, "slo": t.alert.slo_id, "rule": t.alert.rule}
            for t in transitions
            if t.state == state
        ]
        for state in ("firing", "resolved")
    }


def evaluate_all(
    now: datetime | None = None, slos: list[SLO] | None = None, *, actor: Any = "beat"
) -> list[Transition]:
    """Evaluate the burn-rate rules of every SLO and record what started or stopped firing.

    Reads the ledger once for all SLOs and windows. Each transition is audited (as `actor`)
    in the transaction that records it; webhooks are enqueued after commit.
    """
    now = now or timezone.now()
    if slos is None:
        slos = list(SLO.objects.select_related("service"))
    if not slos:
        return []
    firing: dict[tuple[int, str], AlertState] = {}
    for slo_id, states in rule_states(slos, now).items():
        for state in states:
            if state.firing:
                firing[(slo_id, state.rule.name)] = state
    transitions: list[Transition] = []
    with transaction.atomic():
        # On demand and beat may evaluate the same SLOs at once: the SLO rows, locked in pk
        # order, make the second wait and then see the first's open alerts (no duplicate
        # firing, no IntegrityError from one_open_alert_per_rule).
        list(SLO.objects.select_for_update().filter(pk__in=[s.pk for s in slos]).order_by("pk"))
        open_alerts = {
            (a.slo_id, a.rule): a
            for a in AlertEvent.objects.select_for_update().filter(
                resolved_at__isnull=True, slo__in=slos
            )
        }
        for key, alert in open_alerts.items():
            if key not in firing:
                alert.resolved_at = now
                alert.save(update_fields=["resolved_at"])
                transitions.append(Transition(alert, "resolved"))
        for (slo_id, _name), state in firing.items():
            if (slo_id, state.rule.name) in open_alerts:
                continue
            rule = state.rule
            alert = AlertEvent.objects.create(
                slo_id=slo_id,
                rule=rule.name,
                severity=rule.severity.value,
                burn_rate_threshold=rule.burn_rate,
                long_window=rule.long_window,
                short_window=rule.short_window,
                long_burn_rate=state.long_burn_rate,
                short_burn_rate=state.short_burn_rate,
                fired_at=now,
            )
            transitions.append(Transition(alert, "firing"))
        for t in transitions:
            audit.record(actor, f"alert.{t.state}", t.alert, after=alert_snapshot(t.alert))
        if transitions:
            _enqueue_notifications(transitions)
    return transitions


def alert_snapshot(alert: AlertEvent) -> dict[str, Any]:
    return audit.snapshot(
        alert, ["slo", "rule", "severity", "long_burn_rate", "short_burn_rate", "resolved_at"]
    )


def _enqueue_notifications(transitions: list[Transition]) -> None:
    from budgets.tasks import notify_alert

    slo_ids = {t.alert.slo_id for t in transitions}
    service_of = dict(SLO.objects.filter(pk__in=slo_ids).values_list("pk", "service_id"))
    hooks: dict[int, list[int]] = {}
    for service_id, hook_id in BudgetAlertHook.objects.filter(
        service_id__in=set(service_of.values())
    ).values_list("service_id", "pk"):
        hooks.setdefault(service_id, []).append(hook_id)
    for t in transitions:
        for hook_id in hooks.get(service_of[t.alert.slo_id], []):
            transaction.on_commit(partial(notify_alert.delay, t.alert.pk, hook_id, t.state))


# --------------------------------------------------------------------------- hooks


def add_hook(service: Service, url: str, *, actor: Any) -> BudgetAlertHook:
    reason = egress.refusal(url, resolve=True)
    if reason:
        raise InvalidInput("url", f"not allowed: {reason}")
    if BudgetAlertHook.objects.filter(service=service, url=url).exists():
        raise InvalidInput("url", "this service already has that hook")
    with transaction.atomic():
        hook = BudgetAlertHook.objects.create(service=service, url=url)
        audit.record(actor, "alert_hook.create", hook, after={"service": service.slug, "url": url})
    return hook


def remove_hook(hook: BudgetAlertHook, *, actor: Any) -> None:
    with transaction.atomic():
        audit.record(
            actor, "alert_hook.delete", hook, before={"service": hook.service.slug, "url": hook.url}
        )
        hook.delete()


def payload(alert: AlertEvent, state: str) -> dict[str, Any]:
    slo = alert.slo
    return {
        "event": f"budget_alert.{state}",
        "alert_id": alert.pk,
        "state": state,
        "service": slo.service.slug,
        "slo": {"id": slo.pk, "name": slo.name, "target": float(slo.target), "window": slo.window},
        "rule": alert.rule,
        "severity": alert.severity,
        "burn_rate_threshold": alert.burn_rate_threshold,
        "long_window_seconds": int(alert.long_window.total_seconds()),
        "short_window_seconds": int(alert.short_window.total_seconds()),
        "long_burn_rate": alert.long_burn_rate,
        "short_burn_rate": alert.short_burn_rate,
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


class DeliveryFailed(Exception):
    """The hook answered with an error or could not be reached: worth a retry."""


def send(alert_id: int, hook_id: int, state: str) -> str:
    """POST the alert's JSON to the hook. Returns what happened; raises DeliveryFailed to retry.

    The host is checked against the allow-list again at send time, and redirects are not
    followed (they could lead off the list).
    """
    hook = BudgetAlertHook.objects.filter(pk=hook_id).select_related("service").first()
    alert = AlertEvent.objects.filter(pk=alert_id).select_related("slo__service").first()
    if hook is None or alert is None:
        return "gone"
    refused = egress.refusal(hook.url)  # the one outbound URL rule, shared with webhook routes
    if refused:
        outcome = f"refused: {refused}"
        _note(hook, outcome)
        return outcome
    body = json.dumps(payload(alert, state)).encode()
    timeout = urllib3.Timeout(total=settings.BUDGETS_WEBHOOK_TIMEOUT_SECONDS)
    try:
        response = _pool().request(
            "POST",
            hook.url,
            body=body,
            headers={"Content-Type": "application/json", "User-Agent": "controlplane-budgets"},
            timeout=timeout,
            redirect=False,
            retries=False,
        )
    except egress.EgressRefused as exc:  # the name resolved somewhere the allow-list forbids
        outcome = f"refused: {exc}"
        _note(hook, outcome)
        return outcome
    except urllib3.exceptions.HTTPError as exc:
        _note(hook, f"error: {exc.__class__.__name__}")
        raise DeliveryFailed(str(exc)) from exc
    outcome = f"HTTP {response.status}"
    _note(hook, outcome)
    if not 200 <= response.status < 300:
        raise DeliveryFailed(outcome)
    return outcome


_POOL: urllib3.PoolManager | None = None


def _pool() -> urllib3.PoolManager:
    global _POOL
    if _POOL is None:
        _POOL = egress.PoolManager(num_pools=20)  # checks the resolved address at connect
    return _POOL


def _note(hook: BudgetAlertHook, outcome: str) -> None:
    BudgetAlertHook.objects.filter(pk=hook.pk).update(
        last_status=outcome[:200], last_sent_at=timezone.now()
    )
