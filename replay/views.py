"""Pages of the event log: events, one event's attempts, dead letters with redrive."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from controlplane.roles import Role
from controlplane.views import require_role
from replay.dead_letters import dead_letters, redrive
from replay.forms import DeadLetterFilterForm, EventFilterForm, ReplayForm, SnapshotForm
from replay.models import Event, ReplayRun, Snapshot
from replay.replay_runs import (
    ReplayError,
    cancel_replay,
    create_replay,
    pause_replay,
    resume_replay,
)
from replay.replay_runs import outcomes as replay_outcomes
from replay.snapshots import SnapshotError, request_snapshot, verify_snapshot

PAGE = 100


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    form = EventFilterForm(request.GET or None)
    events = Event.objects.select_related("service", "route").order_by("-pk")
    if form.is_valid():
        for name in ("status", "type"):
            if form.cleaned_data[name]:
                events = events.filter(**{name: form.cleaned_data[name]})
        if form.cleaned_data["service"]:
            events = events.filter(service__slug=form.cleaned_data["service"])
    counts = dict(Event.objects.values_list("status").annotate(n=Count("id")).order_by())
    context = {
        "form": form,
        "events": events[:PAGE],
        "counts": counts,
        "statuses": Event.Status.choices,
    }
    template = "replay/partials/event_table.html" if request.htmx else "replay/events.html"
    return render(request, template, context)


@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, Role.VIEWER)
    event = get_object_or_404(Event.objects.select_related("service", "route"), pk=pk)
    attempts = event.attempt_log.select_related("route").order_by("number", "pk")
    return render(request, "replay/event_detail.html", {"event": event, "attempts": attempts})


@require_http_methods(["GET", "POST"])
def dead_letter_list(request: HttpRequest) -> HttpResponse:
    """Filter, select and redrive; htmx swaps only the table and the outcome. A redrive asks
    first, saying how many (the button's hx-confirm for "all matching", a confirmation step
    on the page for a selection and for every form posted without JavaScript)."""
    require_role(request, Role.VIEWER)
    data = request.POST if request.method == "POST" else request.GET
    form = DeadLetterFilterForm(data or None)
    filters = {k: v for k, v in form.cleaned_data.items() if v} if form.is_valid() else {}
    outcome = None
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        scope = "all" if request.POST.get("scope") == "all" else "selected"
        ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
        chosen = dead_letters(**filters) if scope == "all" else dead_letters().filter(pk__in=ids)
        if request.POST.get("confirmed") != "yes":
            count = chosen.count()
            if count:
                return confirm_redrive(request, form, scope, ids, count)
            outcome = "Nothing to redrive: select dead letters first."
        else:
            pks = redrive(chosen, actor=request.user)
            outcome = f"Redrove {len(pks)} event{'s' if len(pks) != 1 else ''} into dispatch."
        if not request.htmx:
            messages.success(request, outcome)
    letters = dead_letters(**filters)
    context = {
        "form": form,
        "letters": letters[:PAGE],
        "total": letters.count(),
        "outcome": outcome,
        "now": timezone.now(),
    }
    template = (
        "replay/partials/dead_letter_table.html" if request.htmx else "replay/dead_letters.html"
    )
    return render(request, template, context)


def confirm_redrive(
    request: HttpRequest, form: DeadLetterFilterForm, scope: str, ids: list[int], count: int
) -> HttpResponse:
    """The question before a redrive, in place of the table; its button posts the same
    filters and selection back with confirmed=yes."""
    context = {"form": form, "confirm": {"scope": scope, "ids": ids, "count": count}}
    template = (
        "replay/partials/redrive_confirm.html" if request.htmx else "replay/dead_letters.html"
    )
    return render(request, template, context)


@require_GET
def event_summary(request: HttpRequest) -> HttpResponse:
    """Per-service counts by status, for the overview (one grouped query)."""
    require_role(request, Role.VIEWER)
    rows: dict[str, dict[str, int]] = {}
    for slug, status, n in (
        Event.objects.values_list("service__slug", "status").annotate(n=Count("id")).order_by()
    ):
        rows.setdefault(slug, {})[status] = n
    statuses = [value for value, _ in Event.Status.choices]
    table = [(slug, [counts.get(s, 0) for s in statuses]) for slug, counts in sorted(rows.items())]
    return render(
        request,
        "replay/partials/event_summary.html",
        {"table": table, "statuses": Event.Status.choices},
    )


# --------------------------------------------------------------------------- snapshots


@require_http_methods(["GET", "POST"])
def snapshot_list(request: HttpRequest) -> HttpResponse:
    """The snapshots, and the form that asks for a new one (exported by a worker)."""
    require_role(request, Role.VIEWER)
    form = SnapshotForm()
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = SnapshotForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            snapshot = request_snapshot(
                actor=request.user,
                service=data["service"],
                types=data["types"],
                start=data["window_start"],
                end=data["window_end"],
            )
            messages.success(request, f"Snapshot {snapshot.pk} requested: a worker exports it.")
            return redirect("replay:snapshots")
    shown = list(Snapshot.objects.select_related("service")[:PAGE])
    context = {
        "form": form,
        "snapshots": shown,
        "any_pending": any(s.status == Snapshot.Status.PENDING for s in shown),
    }
    template = "replay/partials/snapshot_table.html" if request.htmx else "replay/snapshots.html"
    return render(request, template, context, status=400 if form.errors else 200)


@require_POST
def snapshot_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Verify one snapshot; htmx swaps its row, without JavaScript the list is shown again."""
    require_role(request, Role.OPERATOR)
    snapshot = get_object_or_404(Snapshot.objects.select_related("service"), pk=pk)
    try:
        snapshot = verify_snapshot(snapshot, actor=request.user)
    except SnapshotError as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=409)
        messages.error(request, str(exc))
        return redirect("replay:snapshots")
    if request.htmx:
        return render(request, "replay/partials/snapshot_row.html", {"s": snapshot})
    if snapshot.status == Snapshot.Status.READY:
        messages.success(request, f"Snapshot {pk} verified.")
    else:
        messages.error(request, f"Snapshot {pk} is invalid: {snapshot.status_reason}")
    return redirect("replay:snapshots")


# --------------------------------------------------------------------------- replay runs


@require_http_methods(["GET", "POST"])
def replay_list(request: HttpRequest) -> HttpResponse:
    """The replay form and the runs."""
    require_role(request, Role.VIEWER)
    form = ReplayForm(initial={"snapshot": request.GET.get("snapshot")})
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = ReplayForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            if data["force"]:
                require_role(request, Role.ADMIN)
            try:
                run = create_replay(
                    actor=request.user,
                    snapshot=data["snapshot"],
                    mode=data["mode"],
                    rate=data["rate"],
                    start=data["window_start"],
                    end=data["window_end"],
                    types=data["types"],
                    route=data["route"],
                    force=data["force"],
                )
            except ReplayError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("replay:run-detail", pk=run.pk)
    runs = ReplayRun.objects.select_related("route", "snapshot")[:PAGE]
    return render(
        request,
        "replay/runs.html",
        {"form": form, "runs": runs},
        status=400 if form.errors else 200,
    )


def _progress(request: HttpRequest, run: ReplayRun) -> HttpResponse:
    context = {"run": run, "outcomes": replay_outcomes(run) if run.mode == "live" else {}}
    response = render(request, "replay/partials/replay_progress.html", context)
    if run.is_finished and request.htmx:
        response.status_code = 286  # htmx stops polling: the run has ended
    return response


@require_GET
def replay_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A run's progress bar (live while it runs) and, once it ends, its summary."""
    require_role(request, Role.VIEWER)
    run = get_object_or_404(ReplayRun.objects.select_related("route", "snapshot"), pk=pk)
    if request.htmx:
        return _progress(request, run)
    context = {"run": run, "outcomes": replay_outcomes(run) if run.mode == "live" else {}}
    return render(request, "replay/run_detail.html", context)


REPLAY_VERBS = {"pause": pause_replay, "resume": resume_replay, "cancel": cancel_replay}


@require_POST
def replay_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    verb = REPLAY_VERBS.get(action)
    run = get_object_or_404(ReplayRun, pk=pk)
    if verb is None:
        raise Http404("No such action.")
    try:
        run = verb(run, actor=request.user)
    except ReplayError as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=409)
        messages.error(request, str(exc))
    if request.htmx:
        return _progress(request, ReplayRun.objects.select_related("route", "snapshot").get(pk=pk))
    return redirect("replay:run-detail", pk=pk)
