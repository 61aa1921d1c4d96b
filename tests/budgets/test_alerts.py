"""Multiwindow burn-rate alerts: firing only when both windows burn, history, webhooks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from budgets import alerts
from budgets.ledger import record_outcomes
from budgets.models import AlertEvent, BudgetAlertHook
from budgets.tasks import notify_alert
from tests.budgets.conftest import make_service, make_slo
from tests.budgets.receiver import Receiver
from tests.workers import celery_worker

pytestmark = [pytest.mark.django_db]

NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)


def traffic(service, at: datetime, good: int, bad: int) -> None:
    record_outcomes([(service.pk, at, True, 1.0)] * good + [(service.pk, at, False, 1.0)] * bad)


@pytest.fixture
def svc(operator):
    service = make_service(operator, "mail")
    return service, make_slo(operator, service)  # 99.9 % over 30 days


def firing(slo) -> set[str]:
    return set(
        AlertEvent.objects.filter(slo=slo, resolved_at__isnull=True).values_list("rule", flat=True)
    )


@pytest.mark.smoke
def test_a_short_spike_alone_does_not_page(svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=40), 50_000, 0)
    traffic(service, NOW - timedelta(minutes=2), 100, 100)  # 5 min: 500x; 1 h: 2x
    fired = {t.alert.rule for t in alerts.evaluate_all(NOW, [slo])}
    assert fired == {"ticket"}  # 2x over 3 days and 6 hours is worth a ticket, not a page
    states = {s.rule.name: s for s in alerts.rule_states([slo], NOW)[slo.pk]}
    assert states["page-fast"].short_burn_rate > 14.4 > states["page-fast"].long_burn_rate


@pytest.mark.smoke
def test_a_long_burn_that_has_stopped_does_not_page(svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=40), 980, 20)  # 1 h: 20x
    traffic(service, NOW - timedelta(minutes=3), 1000, 0)  # 5 min: clean
    fired = {t.alert.rule for t in alerts.evaluate_all(NOW, [slo])}
    assert "page-fast" not in fired


@pytest.mark.smoke
def test_both_windows_burning_fires_then_resolves(svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=40), 980, 20)
    traffic(service, NOW - timedelta(minutes=2), 98, 2)  # 2 % everywhere: 20x
    transitions = alerts.evaluate_all(NOW, [slo])
    assert {(t.alert.rule, t.state) for t in transitions} == {
        ("page-fast", "firing"),
        ("page-slow", "firing"),
        ("ticket", "firing"),
    }
    page = AlertEvent.objects.get(rule="page-fast")
    assert page.severity == "page" and page.burn_rate_threshold == pytest.approx(14.4)
    assert page.long_burn_rate == pytest.approx(20.0)
    assert alerts.evaluate_all(NOW + timedelta(minutes=1), [slo]) == []  # still firing: no news
    later = NOW + timedelta(hours=1, minutes=5)
    traffic(service, later - timedelta(minutes=2), 100_000, 0)
    resolved = {t.alert.rule for t in alerts.evaluate_all(later, [slo]) if t.state == "resolved"}
    assert "page-fast" in resolved and "page-fast" not in firing(slo)
    assert AlertEvent.objects.get(rule="page-fast").resolved_at == later


@pytest.mark.smoke
def test_a_seven_day_slo_uses_scaled_rates(operator):
    service = make_service(operator, "weekly")
    slo = make_slo(operator, service, window="rolling:7d")
    traffic(service, NOW - timedelta(minutes=40), 996, 4)  # 4x everywhere
    traffic(service, NOW - timedelta(minutes=2), 996, 4)
    fired = {t.alert.rule for t in alerts.evaluate_all(NOW, [slo])}
    assert fired == {"page-fast", "page-slow", "ticket"}  # 3.36, 1.4 and 0.233 for 7 days


@pytest.mark.smoke
def test_each_transition_enqueues_one_webhook_per_hook_after_commit(
    operator, svc, django_capture_on_commit_callbacks
):
    service, slo = svc
    alerts.add_hook(service, "http://127.0.0.1:9/a", actor=operator.user)
    alerts.add_hook(service, "http://localhost:9/b", actor=operator.user)
    traffic(service, NOW - timedelta(minutes=2), 50, 50)
    traffic(service, NOW - timedelta(minutes=40), 50, 50)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        transitions = alerts.evaluate_all(NOW, [slo])
    assert len(callbacks) == 2 * len(transitions) == 6


@pytest.mark.smoke
def test_the_webhook_receives_the_alert_as_json(operator, svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=2), 50, 50)
    traffic(service, NOW - timedelta(minutes=40), 50, 50)
    alert = next(t.alert for t in alerts.evaluate_all(NOW, [slo]) if t.alert.rule == "ticket")
    with Receiver() as receiver:
        hook = alerts.add_hook(service, receiver.url, actor=operator.user)
        assert notify_alert(alert.pk, hook.pk, "firing") == "HTTP 200"
    post = receiver.posts[0]
    assert post["content_type"] == "application/json"
    body = post["json"]
    assert body["event"] == "budget_alert.firing" and body["service"] == "mail"
    assert body["rule"] == "ticket" and body["severity"] == "ticket"
    assert body["slo"]["name"] == "delivery" and body["long_window_seconds"] == 3 * 86400
    hook.refresh_from_db()
    assert hook.last_status == "HTTP 200"


@pytest.mark.smoke
def test_a_failing_receiver_raises_for_a_retry(operator, svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=2), 50, 50)
    traffic(service, NOW - timedelta(minutes=40), 50, 50)
    alert = alerts.evaluate_all(NOW, [slo])[0].alert
    with Receiver(status=500) as receiver:
        hook = alerts.add_hook(service, receiver.url, actor=operator.user)
        with pytest.raises(alerts.DeliveryFailed):
            notify_alert(alert.pk, hook.pk, "firing")
    assert BudgetAlertHook.objects.get(pk=hook.pk).last_status == "HTTP 500"


@pytest.mark.smoke
def test_hook_hosts_must_be_allowed(operator, svc, settings):
    service, _ = svc
    response = operator.client().post(
        "/api/v1/services/mail/alert-hooks", {"url": "http://example.com/x"}, format="json"
    )
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    hook = alerts.add_hook(service, "http://127.0.0.1:9/x", actor=operator.user)
    settings.WEBHOOK_ALLOWED_HOSTS = ["hooks.internal"]
    alert = AlertEvent.objects.create(
        slo=service.slos.get(),
        rule="ticket",
        severity="ticket",
        burn_rate_threshold=1,
        long_window=timedelta(days=3),
        short_window=timedelta(hours=6),
        long_burn_rate=2,
        short_burn_rate=2,
    )
    assert alerts.send(alert.pk, hook.pk, "firing").startswith("refused")


@pytest.mark.smoke
def test_hooks_are_for_operators(viewer, operator, svc):
    url = "/api/v1/services/mail/alert-hooks"
    assert viewer.client().get(url).status_code == 403
    created = operator.client().post(url, {"url": "http://127.0.0.1:8080/h"}, format="json")
    assert created.status_code == 201
    assert operator.client().get(url).json()[0]["url"] == "http://127.0.0.1:8080/h"
    gone = operator.client().delete(f"/api/v1/alert-hooks/{created.json()['id']}")
    assert gone.status_code == 204


@pytest.mark.smoke
def test_the_alert_history_is_served(viewer, svc):
    service, slo = svc
    traffic(service, NOW - timedelta(minutes=2), 50, 50)
    traffic(service, NOW - timedelta(minutes=40), 50, 50)
    alerts.evaluate_all(NOW, [slo])
    body = viewer.client().get(f"/api/v1/slos/{slo.pk}/alerts").json()
    assert {a["rule"] for a in body["results"]} == {"page-fast", "page-slow", "ticket"}
    assert {a["state"] for a in body["results"]} == {"firing"}


@pytest.mark.integration
@pytest.mark.smoke
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_posts_the_webhook_after_the_beat_task(operator, tmp_path):
    from django.utils import timezone

    from budgets.tasks import evaluate_alerts

    service = make_service(operator, "mail")
    make_slo(operator, service)
    now = timezone.now()
    traffic(service, now - timedelta(minutes=2), 50, 50)
    traffic(service, now - timedelta(minutes=40), 50, 50)
    with Receiver() as receiver:
        alerts.add_hook(service, receiver.url, actor=operator.user)
        with celery_worker(log_path=tmp_path / "worker.log"):
            assert evaluate_alerts()["fired"] == 3
            deadline = time.monotonic() + 60
            while len(receiver.posts) < 3 and time.monotonic() < deadline:
                receiver.arrived.wait(1)
        if len(receiver.posts) < 3:
            print((tmp_path / "worker.log").read_text())
    assert sorted(p["json"]["rule"] for p in receiver.posts) == ["page-fast", "page-slow", "ticket"]
    assert {p["json"]["state"] for p in receiver.posts} == {"firing"}
