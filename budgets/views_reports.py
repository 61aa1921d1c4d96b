"""Pages of budget reports: the report of a period (table, episodes, incidents, work items,
leaderboard, charts, exports), its printable version, and the work items (list, create and
edit form, CSV upload). Every change goes through budgets.work_items / report_exports."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from budgets import report_exports, work_items
from budgets.maths.budget import InvalidInput
from budgets.models import WorkItem
from budgets.reports import HOUR, Period, Report, SloRow, build_report, period_from_params
from controlplane import charts
from controlplane.roles import Role, has_role
from controlplane.views import require_role


def _period(request: HttpRequest) -> tuple[Period, str | None]:
    now = timezone.now()
    params = {k: request.GET.get(k, "") for k in ("month", "quarter", "start", "end")}
    try:
        return period_from_params({k: v for k, v in params.items() if v}, now), None
    except InvalidInput as exc:
        return period_from_params({}, now), str(exc)


def burn_down(row: SloRow, period: Period, data_end) -> str:
    """Remaining budget share through the period against an even spend."""
    remaining, spent = [(period.start, 1.0)], 0.0
    for hour, bad in row.spend:
        remaining.append((hour, 1.0 - spent / row.allowed_bad if row.allowed_bad else 1.0))
        spent += bad
        remaining.append((hour + HOUR, 1.0 - spent / row.allowed_bad if row.allowed_bad else 1.0))
    remaining.append((data_end, remaining[-1][1]))
    low = min(0.0, *(v for _, v in remaining))
    return charts.line_chart(
        [
            charts.Series("even spend", [(period.start, 1.0), (period.end, 0.0)], "even"),
            charts.Series("remaining budget", remaining, "actual"),
        ],
        x_start=period.start,
        x_end=period.end,
        y_min=low,
        y_max=1.0,
        title=f"Budget burn-down of {row.slo}",
        now=data_end,
    )


def burn_rate_chart(row: SloRow, period: Period) -> str:
    """Hourly burn rate; the scale always reaches the highest hour (nothing is clipped)."""
    points: list = []
    for hour, rate in row.hours:
        points += [(hour, 0.0), (hour, rate), (hour + HOUR, rate), (hour + HOUR, 0.0)]
    top = max([1.5, *(rate * 1.1 for _, rate in row.hours)])
    return charts.line_chart(
        [charts.Series("burn rate per hour", points, "burn")],
        x_start=period.start,
        x_end=period.end,
        y_min=0.0,
        y_max=top,
        y_format="{:.1f}x",
        references=[("1x", 1.0)],
        title=f"Burn rate of {row.slo}",
    )


def _context(report: Report) -> dict[str, Any]:
    charted = [
        {
            "row": row,
            "burn_down": burn_down(row, report.period, report.data_end),
            "burn_rate": burn_rate_chart(row, report.period),
        }
        for service in report.services
        for row in service.slos
    ]
    return {
        "report": report,
        "period": report.period,
        "charts": charted,
        "episodes": [e for s in report.services for row in s.slos for e in row.episodes],
        "assignee_bars": charts.bar_chart(
            [(r.name, r.saved_share) for r in report.by_assignee],
            title="Budget saved per assignee (share of budget)",
        ),
        "team_bars": charts.bar_chart(
            [(r.name, r.saved_share) for r in report.by_team],
            title="Budget saved per team (share of budget)",
        ),
        "query": report.period.query(),
    }


def _picker(request: HttpRequest) -> dict[str, str]:
    """The picker's values: what was asked (left empty otherwise: a month filled in for the
    default period would clash with a quarter typed next)."""
    return {k: request.GET.get(k, "") for k in ("month", "quarter", "start", "end")}


@require_GET
def report_page(request: HttpRequest) -> HttpResponse:
    """The budget report of a period with its picker, charts and export links."""
    require_role(request, Role.VIEWER)
    period, error = _period(request)
    report = build_report(period, timezone.now())
    context = {
        **_context(report),
        "error": error,
        "picker": _picker(request),
        "can_send": has_role(request.user, Role.OPERATOR),
    }
    if request.htmx:  # htmx swaps only 2xx answers: the error is shown in the body
        return render(request, "budgets/partials/report_body.html", context)
    return render(request, "budgets/reports.html", context, status=400 if error else 200)


@require_GET
def report_print(request: HttpRequest) -> HttpResponse:
    """The same report laid out for paper (print CSS, no navigation)."""
    require_role(request, Role.VIEWER)
    period, error = _period(request)
    context = {**_context(build_report(period, timezone.now())), "error": error}
    return render(request, "budgets/reports_print.html", context, status=400 if error else 200)


@require_POST
def report_send(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    period, error = _period(request)
    back = reverse("budgets:reports") + "?" + period.query()
    if error:
        messages.error(request, error)
        return redirect(back)
    try:
        delivery = report_exports.send_report(
            build_report(period, timezone.now()), actor=request.user
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        again = (
            " It is posted again in the background." if report_exports.retrying(delivery) else ""
        )
        messages.info(request, f"Report {delivery.period} sent: {delivery.status}.{again}")
    return redirect(back)


# --------------------------------------------------------------------------- work items

FORM_FIELDS = work_items.FIELDS
LIST_LIMIT = 200  # newest first; the CSV export has them all


def _form_values(item: WorkItem | None, query=None) -> dict[str, str]:
    if item is None:  # a new one; the report's episodes link here with service and start
        query = query or {}
        return {
            "status": WorkItem.Status.OPEN,
            "service": query.get("service", "")[:50],
            "episode_start": query.get("episode_start", "")[:40],
        }
    return {
        "key": item.key,
        "url": item.url,
        "title": item.title,
        "service": item.service.slug,
        "assignee": item.assignee,
        "status": item.status,
        "episode_start": item.episode_start.strftime("%Y-%m-%dT%H:%M") + "Z"
        if item.episode_start
        else "",
        "saved_minutes": "" if item.saved_minutes is None else f"{item.saved_minutes:g}",
        "saved_share": "" if item.saved_share is None else f"{item.saved_share:g}",
    }


def _posted(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST.get(name, "") for name in FORM_FIELDS}


def _items_context(request, *, values=None, errors=None, item=None, imported=None):
    qs = WorkItem.objects.select_related("service").order_by("-created_at", "-id")
    service = request.GET.get("service")
    if service:
        qs = qs.filter(service__slug=service)
    return {
        "items": qs[:LIST_LIMIT],
        "total": qs.count(),
        "limit": LIST_LIMIT,
        "values": values if values is not None else _form_values(item, request.GET),
        "errors": errors or {},
        "item": item,
        "statuses": WorkItem.Status.choices,
        "can_write": has_role(request.user, Role.OPERATOR),
        "imported": imported,
        "key_pattern": work_items.key_pattern().pattern,
    }


def _render_items(request, context, status=200):
    template = (
        "budgets/partials/work_items_body.html" if request.htmx else "budgets/work_items.html"
    )
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
def work_item_list(request: HttpRequest) -> HttpResponse:
    """Work items and a form to add one (operators)."""
    require_role(request, Role.VIEWER)
    if request.method == "GET":
        return _render_items(request, _items_context(request))
    require_role(request, Role.OPERATOR)
    values = _posted(request)
    try:
        item = work_items.create_work_item(actor=request.user, **values)
    except InvalidInput as exc:
        context = _items_context(request, values=values, errors={exc.field: str(exc)})
        return _render_items(request, context, status=400)
    messages.info(request, f"Work item {item.key} added.")
    if request.htmx:
        return _render_items(request, _items_context(request))
    return redirect("budgets:work-items")


@require_http_methods(["GET", "POST"])
def work_item_edit(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, Role.VIEWER)
    item = get_object_or_404(WorkItem.objects.select_related("service"), pk=pk)
    if request.method == "GET":
        return render(request, "budgets/work_item_edit.html", _items_context(request, item=item))
    require_role(request, Role.OPERATOR)
    values = _posted(request)
    try:
        work_items.update_work_item(item, actor=request.user, **values)
    except InvalidInput as exc:
        context = _items_context(request, values=values, errors={exc.field: str(exc)}, item=item)
        return render(request, "budgets/work_item_edit.html", context, status=400)
    messages.info(request, f"Work item {item.key} saved.")
    return redirect("budgets:work-items")


@require_POST
def work_item_import(request: HttpRequest) -> HttpResponse:
    """A CSV upload: good rows are kept, bad rows listed by line and field."""
    require_role(request, Role.OPERATOR)
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise InvalidInput("file", "is required (choose a CSV file)")
        if upload.size > work_items.MAX_IMPORT_BYTES:
            raise InvalidInput("file", f"is larger than {work_items.MAX_IMPORT_BYTES} bytes")
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("file", "must be UTF-8 text") from None
        result = work_items.import_csv(text, actor=request.user)
    except InvalidInput as exc:
        context = _items_context(request, errors={"file": str(exc)})
        return _render_items(request, context, status=400)
    return _render_items(request, _items_context(request, imported=result))
