"""Pages of the breakers app: the breaker board and each breaker's page, routes, worker nodes and
the demo downstream.

The board: every breaker at a glance (a partial polled while the tab is visible),
and one breaker's page with its timeline, charts and the operator's controls.

Every change goes through breakers.control, which audits it; running workers pick it up
within ROUTE_REFRESH_SECONDS. The board costs a fixed number of queries whatever the number
of breakers: the breakers with the id of their last transition, those transitions, the
60-minute series and the calls in flight (one query each). Calls and rates are the breaker's
own window as the engine counts it, read from the shared state store in one round trip (one
Redis pipeline), so the board shows what the breaker decides on, not an attempt-log sample.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from breakers import control, routes, schemas
from breakers import demo as demo_service
from breakers.engine import BreakerConfig, Snapshot, WindowType
from breakers.forms import (
    MODES,
    EventSchemaForm,
    ForceForm,
    RouteForm,
    SchemaCheckForm,
    ThresholdsForm,
    add_engine_error,
)
from breakers.models import (
    BreakerTransition,
    CircuitBreaker,
    DemoDownstream,
    EventSchema,
    Route,
    WorkerNode,
)
from breakers.nodes import backlog, in_flight_by_route, observe_backlog, unhealthy_after
from breakers.registry import effective_config, guard
from breakers.stats import failure_series
from controlplane import charts as budget_charts
from controlplane.charts import Band, sparkline, timeline
from controlplane.roles import Role
from controlplane.views import require_role
from replay.replay_runs import ReplayError, create_fallback_replay, fallback_served


@require_http_methods(["GET", "POST"])
def route_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    form = RouteForm()
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = RouteForm(request.POST)
        if form.is_valid():
            route = routes.create_route(actor=request.user, **form.cleaned_data)
            messages.success(request, f"Route {route.name} created.")
            return redirect("breakers:routes")
    context = {
        "routes": Route.objects.select_related("service"),
        "form": form,
        "allowed_hosts": settings.WEBHOOK_ALLOWED_HOSTS,
        "python_handlers": settings.PYTHON_HANDLERS,
    }
    return render(request, "breakers/routes.html", context)


@require_POST
def route_toggle(request: HttpRequest, name: str) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    route = get_object_or_404(Route.objects.select_related("service"), name=name)
    route = routes.update_route(route, actor=request.user, enabled=not route.enabled)
    if request.htmx:
        return render(request, "breakers/partials/route_row.html", {"route": route})
    return redirect("breakers:routes")


@require_GET
def node_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    cutoff = timezone.now() - unhealthy_after()
    nodes = [
        {"node": n, "healthy": n.stopped_at is None and n.last_heartbeat >= cutoff}
        for n in WorkerNode.objects.all()[:200]
    ]
    waiting = backlog()
    observe_backlog(waiting)
    context = {
        "nodes": nodes,
        "backlog": waiting,
        "waiting": sum(row["waiting"] for row in waiting),
        "healthy": sum(1 for row in nodes if row["healthy"]),
    }
    template = "breakers/partials/node_table.html" if request.htmx else "breakers/nodes.html"
    return render(request, template, context)


class DemoForm(forms.ModelForm):
    class Meta:
        model = DemoDownstream
        fields = ["failure_rate", "latency_ms", "traffic_per_tick"]
        widgets = {"failure_rate": forms.NumberInput(attrs={"step": "0.05", "min": 0, "max": 1})}

    def clean_failure_rate(self):
        value = self.cleaned_data["failure_rate"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("Between 0 and 1.")
        return value


def _demo_enabled() -> None:
    if not settings.DEMO_ENABLED:
        raise Http404("The demo is off (CONTROLPLANE_DEMO).")


@require_http_methods(["GET", "POST"])
def demo(request: HttpRequest) -> HttpResponse:
    _demo_enabled()
    require_role(request, Role.VIEWER)
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        downstream = get_object_or_404(DemoDownstream, name=request.POST.get("name", ""))
        form = DemoForm(request.POST, instance=downstream)
        try:
            if not form.is_valid():
                raise ValidationError(form.errors)
            demo_service.update_downstream(
                downstream, actor=request.user, **{f: form.cleaned_data[f] for f in form.fields}
            )
            messages.success(request, f"{downstream.name} updated.")
        except ValidationError as exc:
            named = [f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items()]
            messages.error(request, f"{downstream.name}: {'; '.join(named)}")
        return redirect("breakers:demo")
    rows = [(d, DemoForm(instance=d)) for d in DemoDownstream.objects.all()]
    return render(request, "breakers/demo.html", {"rows": rows})


@login_not_required  # a webhook target, called by workers
@csrf_exempt
@require_POST
def demo_downstream(request: HttpRequest, name: str) -> JsonResponse:
    """The pretend downstream: answers webhooks slowly or with errors, as the demo page says."""
    _demo_enabled()
    downstream = get_object_or_404(DemoDownstream, name=name)
    time.sleep(downstream.latency_ms / 1000 * random.uniform(0.5, 1.5))
    if random.random() < downstream.failure_rate:
        return JsonResponse({"error": "demo failure"}, status=503)
    return JsonResponse({"ok": True, "event": request.headers.get("X-Event-Id")})


# --- the breaker board and breaker pages ----------------------------------------------------------


STATS_MINUTES = 5
SERIES_MINUTES = 60
TIMELINE_SPAN = timedelta(hours=24)
TIMELINE_MIN_SPAN = timedelta(hours=1)  # a younger history is drawn over the last hour
MAX_BANDS = 1000
TRANSITIONS_SHOWN = 100
STATE_CSS = {
    CircuitBreaker.State.CLOSED: "good",
    CircuitBreaker.State.HALF_OPEN: "warn",
    CircuitBreaker.State.OPEN: "bad",
    **dict.fromkeys(CircuitBreaker.Forced.values, "grey"),
}
MODE_LABELS = dict(MODES)
# Worst first: what needs a look is at the top of the board.
STATE_ORDER = {
    CircuitBreaker.State.OPEN: 0,
    CircuitBreaker.State.FORCED_OPEN: 1,
    CircuitBreaker.State.HALF_OPEN: 2,
    CircuitBreaker.State.DISABLED: 3,
    CircuitBreaker.State.FORCED_CLOSED: 4,
    CircuitBreaker.State.CLOSED: 5,
}
# The board's state filter (?state=...): each choice and the states it keeps.
FILTERS: dict[str, tuple[str, frozenset[str]]] = {
    "": ("all", frozenset(STATE_ORDER)),
    "not_closed": ("not closed", frozenset(STATE_ORDER) - {CircuitBreaker.State.CLOSED}),
    "open": ("open", frozenset({CircuitBreaker.State.OPEN, CircuitBreaker.State.FORCED_OPEN})),
    "half_open": ("half open", frozenset({CircuitBreaker.State.HALF_OPEN})),
    "closed": ("closed", frozenset({CircuitBreaker.State.CLOSED})),
    "forced": ("forced or disabled", frozenset(CircuitBreaker.Forced.values)),
}


def breakers_queryset() -> QuerySet[CircuitBreaker]:
    return CircuitBreaker.objects.select_related("route__service")


def safe_config(breaker: CircuitBreaker) -> BreakerConfig:
    try:
        return effective_config(breaker)
    except ValueError:  # written before validation existed: the workers keep it out too
        return BreakerConfig()


def status_of(breaker: CircuitBreaker, engine_state: str = "") -> dict[str, str]:
    """The state to show: the operator's forced state as soon as it is set (workers apply it
    within seconds), else the shared store's state when this process can read it (what every
    worker decides on), else the state the workers last wrote down."""
    if engine_state and not breaker.forced_state and engine_state in STATE_ORDER:
        breaker.state = engine_state  # the row lags by a transition write at most
    if breaker.forced_state:
        state = breaker.forced_state
        note = f"by {breaker.forced_by}" if breaker.forced_by else ""
        if breaker.state != state:
            note += f" (workers still report {breaker.state.replace('_', ' ')})"
    else:
        state = breaker.state
        note = "returning to automatic" if state in CircuitBreaker.Forced.values else ""
    return {
        "state": state,
        "label": state.replace("_", " "),
        "css": STATE_CSS.get(state, "grey"),
        "note": note.strip(),
    }


def dynamic_of(breaker: CircuitBreaker) -> dict[str, Any] | None:
    if not breaker.dynamic_field:
        return None
    sources = {
        "samples": f"mean + {breaker.dynamic_k:g}σ of the last {breaker.dynamic_window_s} s",
        "prometheus": f"Prometheus, mean + {breaker.dynamic_k:g}σ",
        "push": "pushed through the API",
    }
    return {
        "field": breaker.dynamic_field,
        "label": breaker.get_dynamic_field_display(),
        "value": breaker.dynamic_value,
        "value_text": "" if breaker.dynamic_value is None else f"{breaker.dynamic_value:.4g}",
        "source": breaker.dynamic_source,
        "source_label": sources.get(breaker.dynamic_source, breaker.dynamic_source),
        "at": breaker.dynamic_computed_at,
    }


def rate_points(series: list[tuple[datetime, int, int]]) -> list[float | None]:
    return [100.0 * failures / calls if calls else None for _, calls, failures in series]


def window_snapshots(names: list[str]) -> dict[str, Snapshot]:
    """Each breaker's shared record from this process's store, in one round trip."""
    if not names:
        return {}
    return guard().store.load_many(names)  # type: ignore[attr-defined]


def window_of(config: BreakerConfig) -> str:
    if config.window_type is WindowType.TIME:
        return f"last {config.window_size} s"
    return f"last {config.window_size} calls"


def window_figures(snapshot: Snapshot | None, config: BreakerConfig) -> dict[str, Any]:
    """The window the engine judges: calls, failure and slow-call rates, and whether a rate
    is at its threshold with enough calls to count (what trips the breaker)."""
    known = snapshot is not None and bool(snapshot.epoch)
    calls = snapshot.calls if known and snapshot else 0
    failure_rate = snapshot.failure_rate if known and snapshot else 0.0
    slow_rate = snapshot.slow_call_rate if known and snapshot else 0.0
    judged = calls >= config.minimum_calls

    def css(rate: float, threshold: float | None) -> str:
        if not calls or threshold is None:
            return ""
        return "bad" if rate >= threshold and judged else ("warn" if rate >= threshold else "")

    return {
        "known": known,
        "calls": calls,
        "failures": snapshot.failures if known and snapshot else 0,
        "slow_calls": snapshot.slow_calls if known and snapshot else 0,
        "failure_rate": failure_rate,
        "slow_call_rate": slow_rate,
        "judged": judged,
        "minimum_calls": config.minimum_calls,
        "window": window_of(config),
        "rate_css": css(failure_rate, config.failure_rate_threshold),
        "slow_css": css(slow_rate, config.slow_call_rate_threshold),
    }


def state_context(breaker: CircuitBreaker, snapshot: Snapshot | None = None) -> dict[str, Any]:
    if snapshot is None:
        snapshot = window_snapshots([breaker.route.name]).get(breaker.route.name)
    config = safe_config(breaker)
    stats = window_figures(snapshot, config)
    engine_state = snapshot.state.slug if stats["known"] and snapshot else ""
    return {
        "breaker": breaker,
        "status": status_of(breaker, engine_state),
        "stats": stats,
        "rate_css": stats["rate_css"],
        "dynamic": dynamic_of(breaker),
        "config": config,
    }


# --------------------------------------------------------------------------- the board


def board_rows(now: datetime | None = None, state: str = "") -> list[dict[str, Any]]:
    """The board's rows, worst state first, keeping those the filter ``state`` names."""
    last = (
        BreakerTransition.objects.filter(breaker=OuterRef("pk")).order_by("-at", "-pk").values("pk")
    )
    breakers = list(breakers_queryset().annotate(last_transition_id=Subquery(last[:1])))
    keep = FILTERS[state][1]
    in_flight = in_flight_by_route()
    rows = []
    snapshots = window_snapshots([b.route.name for b in breakers])
    for breaker in breakers:
        context = state_context(breaker, snapshots.get(breaker.route.name))
        if context["status"]["state"] in keep:
            rows.append(context)
    rows.sort(key=lambda r: (STATE_ORDER.get(r["status"]["state"], 9), r["breaker"].route.name))
    # Transitions and series only for the rows shown (still one query each).
    ids = [r["breaker"].last_transition_id for r in rows if r["breaker"].last_transition_id]
    transitions = BreakerTransition.objects.in_bulk(ids) if ids else {}
    route_ids = [r["breaker"].route_id for r in rows]
    series = failure_series(route_ids, minutes=SERIES_MINUTES, now=now) if route_ids else {}
    for context in rows:
        breaker = context["breaker"]
        context["in_flight"] = in_flight.get(breaker.route.name, 0)
        context["last"] = transitions.get(breaker.last_transition_id)
        context["spark"] = sparkline(
            rate_points(series.get(breaker.route_id, [])),
            threshold=context["config"].failure_rate_threshold,
            css=f"state-{context['status']['state']}",
            scale=True,
            title=f"Failure rate of {breaker.route.name}, last {SERIES_MINUTES} min, per minute",
        )
    return rows


def board_context(
    request: HttpRequest, state: str, form_errors: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    rows = board_rows(state=state)
    for row in rows:  # a refused force shows its error on its own row
        row["force_error"] = (form_errors or {}).get(row["breaker"].route.name, "")
    return {
        "rows": rows,
        "state": state,
        "filters": [(value, label) for value, (label, _) in FILTERS.items()],
        "series_minutes": SERIES_MINUTES,
        "force_modes": MODES,
        "now": timezone.now(),
        **extra,
    }


def render_board(
    request: HttpRequest, state: str, *, status: int = 200, **extra: Any
) -> HttpResponse:
    template = "breakers/partials/board_table.html" if request.htmx else "breakers/board.html"
    return render(request, template, board_context(request, state, **extra), status=status)


@require_GET
def board(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    state = request.GET.get("state", "")
    if state not in FILTERS:
        choices = ", ".join(repr(k) for k in FILTERS if k)
        return render_board(
            request, "", status=400, filter_error=f"state: must be one of {choices} or empty"
        )
    return render_board(request, state)


# --------------------------------------------------------------------------- one breaker


def timeline_bands(breaker: CircuitBreaker, now: datetime) -> tuple[list[Band], datetime]:
    """Bands over the last 24 h, or over the history when it is younger (at least an hour).
    One band per transition, plus a lead band for the state before the first one shown."""
    window_start = now - TIMELINE_SPAN
    newest_first = list(
        breaker.transitions.filter(at__gte=window_start, at__lte=now)
        .order_by("-at", "-pk")
        .only("from_state", "to_state", "reason", "at")[: MAX_BANDS + 1]
    )
    capped = len(newest_first) > MAX_BANDS
    rows = newest_first[:MAX_BANDS][::-1]
    if not rows:
        return [Band(breaker.state, window_start, now)], window_start
    older = capped or breaker.transitions.filter(at__lt=window_start).exists()
    start = window_start if older else min(rows[0].at, now - TIMELINE_MIN_SPAN)
    bands = []
    if start < rows[0].at:
        bands.append(Band(rows[0].from_state, start, rows[0].at))
    for index, row in enumerate(rows):
        end = rows[index + 1].at if index + 1 < len(rows) else now
        bands.append(Band(row.to_state, row.at, end, note=row.reason, at=row.at))
    return bands, start


def config_rows(breaker: CircuitBreaker) -> list[dict[str, Any]]:
    """Each setting's effective value and where it comes from."""
    defaults = BreakerConfig().to_dict()
    overrides = breaker.config or {}
    rows = []
    for name, value in safe_config(breaker).to_dict().items():
        if name == breaker.dynamic_field and breaker.dynamic_value is not None:
            source = f"dynamic ({breaker.dynamic_source or 'computed'})"
        elif name in overrides:
            source = "override"
        else:
            source = "default"
        if isinstance(value, list):
            value = ", ".join(value)
        rows.append({"name": name, "value": value, "default": defaults[name], "source": source})
    return rows


def failure_chart(breaker: CircuitBreaker, config: BreakerConfig, now: datetime):
    series = failure_series([breaker.route_id], minutes=SERIES_MINUTES, now=now)[breaker.route_id]
    points = [(minute, 100.0 * failures / calls) for minute, calls, failures in series if calls]
    references = []
    if config.failure_rate_threshold is not None:
        references.append(
            (f"trips at {config.failure_rate_threshold:g}%", config.failure_rate_threshold)
        )
    chart = budget_charts.line_chart(
        [budget_charts.Series("failure rate per minute", points, "failrate")],
        x_start=series[0][0],
        x_end=series[-1][0] + timedelta(minutes=1),
        y_min=0.0,
        y_max=100.0,
        y_format="{:.0f}%",
        references=references,
        title=f"Failure rate of {breaker.route.name}, last {SERIES_MINUTES} minutes",
    )
    return chart, sum(c for _, c, _ in series)


def render_detail(
    request: HttpRequest,
    breaker: CircuitBreaker,
    *,
    force_form: ForceForm | None = None,
    thresholds_form: ThresholdsForm | None = None,
) -> HttpResponse:
    now = timezone.now()
    context = state_context(breaker)
    bands, start = timeline_bands(breaker, now)
    chart, calls_hour = failure_chart(breaker, context["config"], now)
    context.update(
        {
            "route": breaker.route,
            "force_form": force_form or ForceForm(),
            "modes": MODES,
            "thresholds_form": thresholds_form
            or ThresholdsForm(initial=ThresholdsForm.initial_for(breaker)),
            "config_rows": config_rows(breaker),
            "timeline": timeline(
                bands, start=start, end=now, title=f"States of {breaker.route.name}"
            ),
            "timeline_start": start,
            "now": now,
            "failure_chart": chart,
            "calls_hour": calls_hour,
            "transitions": breaker.transitions.all()[:TRANSITIONS_SHOWN],
            "transitions_shown": TRANSITIONS_SHOWN,
            "minutes": STATS_MINUTES,
            "series_minutes": SERIES_MINUTES,
            "state_css": STATE_CSS,
            **fallback_context(breaker),
        }
    )
    return render(request, "breakers/breaker_detail.html", context)


def fallback_context(breaker: CircuitBreaker) -> dict[str, Any]:
    """The route's fallback and how many events it served (what the replay button sends)."""
    route = breaker.route
    served = fallback_served(route).count()  # also what it served before it was unset
    return {"fallback_route": route.fallback_route, "fallback_served": served}


def controls_response(
    request: HttpRequest, breaker: CircuitBreaker, form: ForceForm, notice: str = ""
) -> HttpResponse:
    context = {
        **state_context(breaker),
        **fallback_context(breaker),
        "force_form": form,
        "modes": MODES,
        "notice": notice,
    }
    return render(request, "breakers/partials/breaker_controls.html", context)


@require_GET
def detail(request: HttpRequest, name: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    breaker = get_object_or_404(breakers_queryset(), route__name=name)
    if request.htmx and request.GET.get("part") == "status":
        return render(request, "breakers/partials/breaker_status.html", state_context(breaker))
    return render_detail(request, breaker)


@require_POST
def force(request: HttpRequest, name: str) -> HttpResponse:
    """Force open / closed / disabled, or back to automatic; a reason is required."""
    require_role(request, Role.OPERATOR)
    breaker = get_object_or_404(breakers_queryset(), route__name=name)
    form = ForceForm(request.POST)
    # The board's row forms say so: the answer is then the board, not the breaker's page.
    from_board = request.POST.get("back") == "board"
    state = request.POST.get("state", "")
    state = state if state in FILTERS else ""
    if form.is_valid():
        mode, reason = form.cleaned_data["mode"], form.cleaned_data["reason"]
        control.force_breaker(breaker, mode, actor=request.user, reason=reason)
        notice = f"{MODE_LABELS[mode]}: done. Workers apply it within seconds."
        if from_board:
            if not request.htmx:
                messages.success(request, f"{name}: {notice}")
                return redirect(board_url(state))
            return render_board(request, state, notice=f"{name}: {notice}")
        if not request.htmx:
            messages.success(request, notice)
            return redirect("breakers:detail", name=name)
        breaker = breakers_queryset().get(pk=breaker.pk)
        return controls_response(request, breaker, ForceForm(), notice)
    if from_board:
        errors = "; ".join(f"{field}: {' '.join(e)}" for field, e in form.errors.items())
        return render_board(request, state, form_errors={name: errors})
    if request.htmx:
        return controls_response(request, breaker, form)
    return render_detail(request, breaker, force_form=form)


def board_url(state: str) -> str:
    url = reverse("breakers:board")
    return f"{url}?{urlencode({'state': state})}" if state else url


@require_POST
def thresholds(request: HttpRequest, name: str) -> HttpResponse:
    """Edit thresholds and the dynamic setting; the engine validates the merged config."""
    require_role(request, Role.OPERATOR)
    breaker = get_object_or_404(breakers_queryset(), route__name=name)
    form = ThresholdsForm(request.POST)
    if form.is_valid():
        changes, dynamic = form.changes(breaker)
        if not changes and not dynamic:
            messages.info(request, "Nothing changed.")
            return redirect("breakers:detail", name=name)
        try:
            control.update_thresholds(breaker, changes, actor=request.user, dynamic=dynamic)
        except ValueError as exc:
            add_engine_error(form, exc)
        else:
            messages.success(request, "Thresholds saved. Workers apply them within seconds.")
            return redirect("breakers:detail", name=name)
    return render_detail(request, breaker, thresholds_form=form)


@require_POST
def replay_fallback(request: HttpRequest, name: str) -> HttpResponse:
    """One click: re-deliver to this route what its fallback served (audited, operators)."""
    require_role(request, Role.OPERATOR)
    breaker = get_object_or_404(breakers_queryset(), route__name=name)
    try:
        run = create_fallback_replay(actor=request.user, route=breaker.route)
    except ReplayError as exc:
        messages.error(request, str(exc))
        return redirect("breakers:detail", name=name)
    messages.success(request, f"Replay {run.pk} re-delivers what the fallback served to {name}.")
    return redirect("replay:run-detail", pk=run.pk)


# --- event schemas --------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def schema_list(request: HttpRequest) -> HttpResponse:
    """Event schemas: the list, a create form (operators) and a "try a payload" box."""
    require_role(request, Role.VIEWER)
    form = EventSchemaForm()
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = EventSchemaForm(request.POST)
        if form.is_valid():
            try:
                schema = schemas.create_schema(
                    actor=request.user, **{k: form.cleaned_data[k] for k in schemas.SCHEMA_FIELDS}
                )
            except schemas.SchemaError as exc:  # a concurrent create of the same version
                form.add_error(exc.path[0] if exc.path[0] in form.fields else None, exc.message)
            else:
                messages.success(request, f"Schema {schema} of {schema.service.slug} created.")
                return redirect("breakers:schemas")
    context = {
        "schemas": EventSchema.objects.select_related("service"),
        "form": form,
        "check_form": SchemaCheckForm(initial={"payload": {}}),
    }
    return render(request, "breakers/schemas.html", context)


@require_POST
def schema_delete(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    schema = get_object_or_404(EventSchema.objects.select_related("service"), pk=pk)
    schemas.delete_schema(schema, actor=request.user)
    messages.success(request, f"Schema {schema} of {schema.service.slug} deleted.")
    return redirect("breakers:schemas")


@require_POST
def schema_try(request: HttpRequest) -> HttpResponse:
    """What would the handler get for this payload? The answer alone to htmx; the page with
    the answer in place without JavaScript. Changes nothing, so viewers may ask."""
    require_role(request, Role.VIEWER)
    form = SchemaCheckForm(request.POST)
    answer = None
    if form.is_valid():
        data = form.cleaned_data
        answer = schemas.check_payload(
            data["service"], data["type"], data["schema_version"], data["payload"]
        )
        if answer["ok"]:  # shown as JSON, as the handler receives it (true, null, not Python)
            answer["payload_json"] = json.dumps(answer["payload"], indent=2, ensure_ascii=False)
    context = {"check_form": form, "answer": answer}
    if request.htmx:
        return render(request, "breakers/partials/schema_check.html", context)
    context |= {"schemas": EventSchema.objects.select_related("service"), "form": EventSchemaForm()}
    return render(request, "breakers/schemas.html", context)


@require_http_methods(["GET", "POST"])
def schema_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """One schema's form (operators); saved through the audited verb."""
    require_role(request, Role.OPERATOR)
    schema = get_object_or_404(EventSchema.objects.select_related("service"), pk=pk)
    form = EventSchemaForm(instance=schema)
    if request.method == "POST":
        form = EventSchemaForm(request.POST, instance=EventSchema.objects.get(pk=pk))
        if form.is_valid():
            changes = {f: form.cleaned_data[f] for f in form.changed_data}
            try:
                if changes:
                    schemas.update_schema(schema, actor=request.user, **changes)
            except schemas.SchemaError as exc:
                form.add_error(exc.path[0] if exc.path[0] in form.fields else None, exc.message)
            else:
                messages.success(request, f"Schema {schema} of {schema.service.slug} saved.")
                return redirect("breakers:schemas")
    return render(request, "breakers/schema_edit.html", {"schema": schema, "form": form})
