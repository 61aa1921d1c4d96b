"""Celery tasks of the budgets app (thin: they call the domain functions).

They run on the default queue ("celery"). Beat runs ``budgets.evaluate_alerts`` and
``budgets.expire_decisions`` every minute and ``budgets.purge_ledger`` hourly
(controlplane/beat.py).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from budgets import alerts, gates, ledger
from budgets.report_exports import RESEND_RETRIES

log = logging.getLogger(__name__)
NOTIFY_MAX_RETRIES = 5


@shared_task(name="budgets.evaluate_alerts")
def evaluate_alerts() -> dict:
    transitions = alerts.evaluate(actor="beat", now=timezone.now())
    return {
        "fired": sum(t.state == "firing" for t in transitions),
        "resolved": sum(t.state == "resolved" for t in transitions),
    }


@shared_task(
    name="budgets.notify_alert",
    bind=True,
    max_retries=NOTIFY_MAX_RETRIES,
)
def notify_alert(self, alert_id: int, hook_id: int, state: str) -> str:
    """POST one alert transition to one hook; retried with backoff (1, 2, 4, 8, 16 s)."""
    try:
        return alerts.send(alert_id, hook_id, state)
    except alerts.DeliveryFailed as exc:
        if self.request.retries >= NOTIFY_MAX_RETRIES:
            log.warning("alert %s to hook %s not delivered: %s", alert_id, hook_id, exc)
            return f"gave up: {exc}"
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc


@shared_task(name="budgets.resend_report", bind=True, max_retries=RESEND_RETRIES)
def resend_report(self, delivery_id: int) -> str:
    """Post a budget report again after an answer worth retrying; backoff 1, 2, 4, 8, 16 s."""
    from budgets.models import ReportDelivery
    from budgets.report_exports import post_delivery

    delivery = ReportDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status.startswith("HTTP 2"):
        return "gone" if delivery is None else delivery.status
    if post_delivery(delivery) and self.request.retries < RESEND_RETRIES:
        raise self.retry(countdown=2**self.request.retries)
    return delivery.status


@shared_task(name="budgets.expire_decisions")
def expire_decisions() -> int:
    return gates.expire_due(timezone.now())


@shared_task(name="budgets.purge_ledger")
def purge_ledger() -> dict:
    return ledger.purge(timezone.now())
