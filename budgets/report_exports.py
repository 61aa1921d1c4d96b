"""Exports of a budget report: CSV rows, the issue-tracker payload and its audited webhook post.

The webhook URL is the BUDGETS_REPORT_WEBHOOK_URL setting (not taken from the request), and
it must pass the one outbound URL rule the alert hooks use (``controlplane.egress``: the
allow-list, checked before the post and again on the resolved address at connect).
Redirects are not followed (they could lead off the list).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import urllib3
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from budgets.maths.budget import InvalidInput
from budgets.models import ReportDelivery
from budgets.reports import Report
from controlplane import audit, egress

CSV_COLUMNS = [
    "service",
    "team",
    "slo",
    "budgeting_method",
    "target",
    "achieved_sli",
    "good",
    "total",
    "budget_events",
    "consumed_events",
    "budget_minutes",
    "consumed_minutes",
    "consumed",
    "remaining",
    "over_budget",
    "days_frozen",
    "episodes",
    "postmortems_needed",
    "breaker_open_episodes",
    "mttd_seconds",
    "mttr_seconds",
]


def report_csv(report: Report) -> str:
    """One row per SLO, service figures repeated on each of its rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for service in report.services:
        data = service.as_json()
        incidents = data["incidents"]
        for row in service.slos:
            slo = row.as_json()
            writer.writerow(
                [
                    data["service"],
                    data["team"],
                    slo["slo"],
                    slo["budgeting_method"],
                    slo["target"],
                    slo["achieved_sli"],
                    slo["good"],
                    slo["total"],
                    _cell(slo["budget_events"]),
                    _cell(slo["consumed_events"]),
                    _cell(slo["budget_minutes"]),
                    _cell(slo["consumed_minutes"]),
                    slo["consumed"],
                    slo["remaining"],
                    slo["over_budget"],
                    data["days_frozen"],
                    len(slo["episodes"]),
                    sum(e["needs_postmortem"] for e in slo["episodes"]),
                    incidents["breaker_open_episodes"],
                    _cell(incidents["mean_time_to_detect_seconds"]),
                    _cell(incidents["mean_time_to_recover_seconds"]),
                ]
            )
    return out.getvalue()


def _cell(value: Any) -> Any:
    return "" if value is None else value


def tracker_payload(report: Report) -> dict[str, Any]:
    """An issue-tracker-style body: summary, description, labels, priority, and the report."""
    over = [s for s in report.services if s.over_budget]
    postmortems = [e for s in report.services for e in s.postmortems]
    lines = [f"Error-budget report for {report.period.label}.", ""]
    for s in report.services:
        for row in s.slos:
            lines.append(
                f"- {s.service.slug}/{row.slo.name}: {row.consumed:.0%} of budget consumed, "
                f"{len(row.episodes)} episode(s), {s.days_frozen} day(s) frozen"
            )
    for e in postmortems:
        lines.append(
            f"Postmortem needed: {e.slo.service.slug}/{e.slo.name} episode from "
            f"{e.episode.start.isoformat()} spent {e.share_of_budget:.0%} of the budget."
        )
    return {
        "summary": f"Error-budget report {report.period.label}: "
        f"{len(over)} service(s) over budget, {len(postmortems)} postmortem(s) needed",
        "description": "\n".join(lines),
        "labels": ["error-budget", "report"],
        "priority": "High" if over or postmortems else "Low",
        "report": report.as_json(),
    }


def send_report(report: Report, *, actor: Any) -> ReportDelivery:
    """Post the report to BUDGETS_REPORT_WEBHOOK_URL: a delivery row (with the body to post)
    and its audit entry in one transaction, then the first POST (outside it, so a slow receiver
    holds no lock), the receiver's answer noted on the row. An answer worth retrying (5xx, 408,
    429, no connection) hands the row to the `budgets.resend_report` task, which posts the same
    body again with backoff. Raises InvalidInput("url") when no allowed URL is set."""
    url = settings.BUDGETS_REPORT_WEBHOOK_URL
    if not url:
        raise InvalidInput("url", "no report webhook is configured (BUDGETS_REPORT_WEBHOOK_URL)")
    refused = egress.refusal(url, resolve=True)
    if refused:
        raise InvalidInput("url", f"not allowed: {refused}")
    with transaction.atomic():
        delivery = ReportDelivery.objects.create(
            period=report.period.label[:100],
            period_start=report.period.start,
            period_end=report.period.end,
            url=url,
            body=tracker_payload(report),
        )
        audit.record(
            actor,
            "report.send",
            delivery,
            after={"period": delivery.period, "url": url},
        )
    if post_delivery(delivery):
        from budgets.tasks import resend_report  # tasks import this module

        transaction.on_commit(lambda: resend_report.apply_async(args=[delivery.pk], countdown=1))
    return delivery


def post_delivery(delivery: ReportDelivery) -> bool:
    """POST the delivery's body to its URL once and note the answer on the row (status,
    sent_at, attempts). Returns whether another attempt is worth making."""
    try:
        response = egress.PoolManager().request(
            "POST",
            delivery.url,
            body=json.dumps(delivery.body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "controlplane-reports"},
            timeout=urllib3.Timeout(total=settings.BUDGETS_WEBHOOK_TIMEOUT_SECONDS),
            redirect=False,
            retries=False,
        )
        outcome = f"HTTP {response.status}"
    except egress.EgressRefused as exc:  # the name resolved somewhere the allow-list forbids
        outcome = f"refused: {exc}"[:200]
    except urllib3.exceptions.HTTPError as exc:
        outcome = f"error: {exc.__class__.__name__}"
    delivery.status, delivery.sent_at = outcome, timezone.now()
    delivery.attempts += 1
    ReportDelivery.objects.filter(pk=delivery.pk).update(
        status=outcome, sent_at=delivery.sent_at, attempts=delivery.attempts
    )
    return worth_retrying(outcome)


RESEND_RETRIES = 5  # budgets.tasks.resend_report, after the first post
MAX_ATTEMPTS = 1 + RESEND_RETRIES


def worth_retrying(status: str) -> bool:
    """5xx, 408, 429 and no connection may pass; a refusal or another 4xx will not."""
    if status.startswith("error: "):
        return True
    code = status.removeprefix("HTTP ")
    return code.isdigit() and (int(code) >= 500 or int(code) in (408, 429))


def retrying(delivery: ReportDelivery) -> bool:
    """Whether the delivery will be posted again (what pages and the API tell the sender)."""
    return worth_retrying(delivery.status) and delivery.attempts < MAX_ATTEMPTS
