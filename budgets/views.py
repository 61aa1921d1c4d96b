"""Pages: Budgets (every SLO), an SLO's page with its charts, and Changes (decisions,
approvals, canaries and the impact graph). Each page reads in a fixed number of queries."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from budgets import alerts, charts, gates
from budgets import canary_verdicts as canaries  # alias: body edited elsewhere
from budgets.figures import service_states
from budgets.history import RANGES, history, range_history
from budgets.markers import markers_for
from budgets.maths.budget import InvalidInput
from budgets.maths.burn import alert_rules
from budgets.models import SLO, AlertEvent, CanaryVerdict, FreezeWindow, GateDecision
from budgets.policy import dependency_edges, impact, policy_json
from controlplane.models import Service
from controlplane.roles import Role, has_role
from controlplane.views import require_role

S = GateDecision.Status


def _slo_rows(now) -> tuple[list[dict], list]:
    services = list(Service.objects.filter(slos__isnull=False).distinct())
    states = service_states(services, now)
    firing: dict[int, list[AlertEvent]] = {}
    for alert in AlertEvent.objects.filter(resolved_at__isnull=True):
        firing.setdefault(alert.slo_id, []).append(alert)
    rows = []
    for state in sorted(states.values(), key=lambda st: st.service.slug):
        for figures in sorted(state.slos, key=lambda f: f.slo.name):
            rows.append(
                {
                    "slo": figures.slo,
                    "f": figures,
                    "state": state,
                    "alerts": firing.get(figures.slo.pk, []),
                    "page_rate": alert_rules(figures.window_length)[0].burn_rate,
                }
            )
    return rows, list(states.values())


@require_GET
def budget_list(request: HttpRequest) -> HttpResponse:
    """Every SLO with its remaining budget, burn-rate badges and freeze state."""
    require_role(request, Role.VIEWER)
    now = timezone.now()
    rows, states = _slo_rows(now)
    context = {
        "rows": rows,
        "frozen": [st for st in states if st.frozen],
        "now": now,
        "freeze_windows": FreezeWindow.objects.filter(ends_at__gt=now).select_related("service")[
            :20
        ],
    }
    if request.htmx:
        return render(request, "budgets/partials/slo_table.html", context)
    return render(request, "budgets/list.html", context)


@require_GET
def slo_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """An SLO: its budget burn-down and burn-rate charts, alert rules and history, policy."""
    require_role(request, Role.VIEWER)
    slo = get_object_or_404(SLO.objects.select_related("service"), pk=pk)
    now = timezone.now()
    state = service_states([slo.service], now)[slo.service_id]
    figures = next(f for f in state.slos if f.slo.pk == slo.pk)
    chosen = request.GET.get("range", "window")
    if chosen != "window" and chosen not in RANGES:
        return HttpResponseBadRequest(
            f"range: must be one of {', '.join([*RANGES, 'window'])}.", content_type="text/plain"
        )
    if chosen == "window":
        past = history(slo, figures)
        x_end = past.end
    else:
        past = range_history(slo, figures, *RANGES[chosen])
        x_end = past.now
    # Up to this moment: the range ends on the last whole bucket, the newest marks at its edge.
    marks = markers_for(slo.service_id, past.start, max(x_end, now))
    burn_down = charts.line_chart(
        [
            charts.Series("even burn", past.even, "even"),
            charts.Series("remaining budget", past.remaining, "actual"),
        ],
        x_start=past.start,
        x_end=x_end,
        y_min=min(0.0, min((v for _, v in past.remaining), default=0.0)),
        y_max=1.0,
        title=f"Budget burn-down of {slo}",
        now=past.now,
        markers=marks,
    )
    # The scale stops at 1.2x the highest alert rate, so a quiet SLO's line stays readable;
    # higher buckets are marked off scale on the chart (charts._off_scale), never hidden.
    top = max([1.5, *(v for _, v in past.burn)])
    top = min(top, max(r for _, r in past.thresholds) * 1.2)
    burn_chart = charts.line_chart(
        [charts.Series("burn rate per bucket", past.burn, "burn", step=True)],
        x_start=past.start,
        x_end=past.now,
        y_min=0.0,
        y_max=top,
        y_format="{:.1f}x",
        references=[
            *([] if any(r == 1.0 for _, r in past.thresholds) else [("1x", 1.0)]),
            *past.thresholds,
        ],
        title=f"Burn rate of {slo}",
        markers=marks,
    )
    context = {
        "slo": slo,
        "f": figures,
        "state": state,
        "policy": policy_json(state.policy),
        "rules": alerts.rule_states([slo], now)[slo.pk],
        "alert_history": AlertEvent.objects.filter(slo=slo)[:50],
        "burn_down": burn_down,
        "burn_chart": burn_chart,
        "step_hours": past.step.total_seconds() / 3600,
        "step_minutes": past.step.total_seconds() / 60,
        "range": chosen,
        "ranges": [*RANGES, "window"],
        "marker_counts": sorted(Counter(m.kind for m in marks).items()),
    }
    return render(request, "budgets/slo_detail.html", context)


def _graph(focus: GateDecision | None, now):
    edges = dependency_edges()
    ids = {a for a, _ in edges} | {b for _, b in edges}
    impacted: set[int] = set()
    if focus is not None:
        impacted = {item.service_id for item in impact(focus.service_id, edges)}
        ids |= {focus.service_id}
    services = list(Service.objects.filter(pk__in=ids))
    states = service_states(services, now)
    nodes = []
    for service in services:
        state = states[service.pk]
        css = ["frozen" if state.frozen else "ok"]
        if state.critical:
            css.append("critical")
        if focus is not None and service.pk == focus.service_id:
            css.append("focus")
        elif service.pk in impacted:
            css.append("impacted")
        note = f"{service.slug} ({service.get_tier_display()})"
        if state.reasons:
            note += ": " + "; ".join(r["message"] for r in state.reasons)
        nodes.append(charts.Node(service.pk, service.slug, " ".join(css), note))
    return charts.graph_svg(nodes, edges, title="Service dependencies")


def _mark_decidable(decision: GateDecision, user) -> None:
    """Sets ``can_decide``, and ``why_not``: why a waiting request shows no buttons."""
    decision.can_decide = gates.can_decide(decision, user)
    decision.why_not = ""
    if decision.status == S.APPROVAL_REQUIRED and not decision.can_decide:
        if not has_role(user, Role.APPROVER):
            decision.why_not = "approver role needed"
        elif gates.is_requester(decision, user):
            decision.why_not = "you cannot approve your own request"


@require_GET
def changes(request: HttpRequest) -> HttpResponse:
    """The decision log, the approval queue (buttons for approvers) and the impact graph."""
    require_role(request, Role.VIEWER)
    now = timezone.now()
    gates.expire_due(now)
    decisions = list(
        GateDecision.objects.select_related("service", "decided_by").order_by("-created_at")[:100]
    )
    queue = [d for d in decisions if d.status == S.APPROVAL_REQUIRED]
    focus = None
    if request.GET.get("decision", "").isdigit():
        focus = GateDecision.objects.filter(pk=int(request.GET["decision"])).first()
    for d in decisions:
        _mark_decidable(d, request.user)
    rollbacks = CanaryVerdict.objects.filter(
        Q(decision=CanaryVerdict.Decision.ROLLBACK, resolved_at__isnull=True)
    ).select_related("service")
    live = {"queue": queue, "decisions": decisions, "rollbacks": rollbacks, "now": now}
    if request.htmx and request.GET.get("part") == "live":  # the poll: no graph to draw
        return render(request, "budgets/partials/changes_live.html", live)
    context = {
        **live,
        "focus": focus,
        "graph": _graph(focus, now),
        "recent_canaries": CanaryVerdict.objects.select_related("service")[:20],
    }
    return render(request, "budgets/changes.html", context)


def _decision_response(request: HttpRequest, decision: GateDecision, error: str = ""):
    if request.htmx:
        # the queue's row in place, and the same decision's row in the log out of band
        _mark_decidable(decision, request.user)
        rows = [
            render_to_string(
                "budgets/partials/decision_row.html",
                {"d": decision, "error": error, "in_queue": in_queue, "oob": not in_queue},
                request=request,
            )
            for in_queue in (True, False)
        ]
        return HttpResponse("".join(rows))
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Change {decision.change_id}: {decision.get_status_display()}.")
    return redirect("budgets:changes")


def _decide(request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
    require_role(request, Role.APPROVER)
    decision = get_object_or_404(GateDecision.objects.select_related("service"), pk=pk)
    verb = gates.approve if approve else gates.reject
    try:
        decision = verb(decision, actor=request.user, note=request.POST.get("note", "")[:2000])
    except gates.GateError as exc:
        decision.refresh_from_db()
        return _decision_response(request, decision, exc.message)
    return _decision_response(request, decision)


@require_POST
def decision_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=True)


@require_POST
def decision_reject(request: HttpRequest, pk: int) -> HttpResponse:
    return _decide(request, pk, approve=False)


@require_POST
def canary_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    verdict = get_object_or_404(CanaryVerdict, pk=pk)
    try:
        canaries.resolve_canary(verdict, actor=request.user, note=request.POST.get("note", ""))
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Canary of {verdict.change_id} resolved; the gate unfreezes.")
    return redirect("budgets:changes")
