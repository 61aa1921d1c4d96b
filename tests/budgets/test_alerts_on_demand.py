"""Alerts evaluated on demand (API, manage.py) and right after external counts are pushed,
through the same verb as beat, so CI and tests need not wait for the next minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from budgets import alerts
from budgets.ledger import record_outcomes
from budgets.models import AlertEvent
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

BURNING = {"page-fast", "page-slow", "ticket"}


def burn(service) -> None:
    """2 % errors over the last hour: 20x a 99.9 % SLO's budget in every window."""
    now = timezone.now()
    for ago, good, bad in ((40, 980, 20), (2, 98, 2)):
        at = now - timedelta(minutes=ago)
        record_outcomes([(service.pk, at, True, 1.0)] * good + [(service.pk, at, False, 1.0)] * bad)


def open_rules(slo) -> set[str]:
    return set(
        AlertEvent.objects.filter(slo=slo, resolved_at__isnull=True).values_list("rule", flat=True)
    )


@pytest.fixture
def two_burning(operator):
    mail, web = make_service(operator, "mail"), make_service(operator, "web")
    slos = make_slo(operator, mail), make_slo(operator, web)
    burn(mail)
    burn(web)
    return slos


def test_an_operator_evaluates_every_slo_on_demand(operator, two_burning):
    mail_slo, web_slo = two_burning
    response = operator.client().post("/api/v1/alerts/evaluate", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["evaluated"] == 2
    assert {(c["slo"], c["rule"]) for c in body["firing"]} == {
        (slo.pk, rule) for slo in two_burning for rule in BURNING
    }
    assert body["resolved"] == []
    assert open_rules(mail_slo) == open_rules(web_slo) == BURNING
    fired = AuditEntry.objects.filter(action="alert.firing")
    assert fired.count() == 6 and {e.actor_label for e in fired} == {"operator"}


def test_evaluating_one_service_leaves_the_others_to_beat(operator, two_burning):
    mail_slo, web_slo = two_burning
    response = operator.client().post("/api/v1/alerts/evaluate", {"service": "mail"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["evaluated"] == 1
    assert open_rules(mail_slo) == BURNING and open_rules(web_slo) == set()
    again = operator.client().post("/api/v1/alerts/evaluate", {"service": "mail"}, format="json")
    assert again.json()["firing"] == []  # still firing: no news, no second alert


def test_on_demand_evaluation_notifies_hooks_after_commit(
    operator, two_burning, django_capture_on_commit_callbacks
):
    mail = two_burning[0].service
    alerts.add_hook(mail, "http://127.0.0.1:9/hook", actor=operator.user)
    with django_capture_on_commit_callbacks() as callbacks:
        operator.client().post("/api/v1/alerts/evaluate", {"service": "mail"}, format="json")
    assert len(callbacks) == len(BURNING)  # one notify_alert per transition and hook


@pytest.mark.parametrize(
    "body, field",
    [({"service": "nope"}, "service"), ({"services": "mail"}, "services")],
)
def test_bad_input_names_the_field(operator, two_burning, body, field):
    response = operator.client().post("/api/v1/alerts/evaluate", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"] and field in response.json()["detail"]
    assert not AlertEvent.objects.exists()


def test_a_viewer_may_not_evaluate(viewer, two_burning):
    response = viewer.client().post("/api/v1/alerts/evaluate", {}, format="json")
    assert response.status_code == 403
    assert not AlertEvent.objects.exists()


def test_the_command_evaluates_and_prints_what_changed(operator, two_burning):
    out = StringIO()
    call_command("evaluate_alerts", "--service", "web", stdout=out)
    assert "3 firing, 0 resolved." in out.getvalue()
    assert f"firing slo={two_burning[1].pk} rule=page-fast" in out.getvalue()
    assert open_rules(two_burning[0]) == set() and open_rules(two_burning[1]) == BURNING
    entry = AuditEntry.objects.filter(action="alert.firing").first()
    assert entry.actor_label == "manage.py evaluate_alerts"


def test_the_command_refuses_an_unknown_service(two_burning):
    with pytest.raises(CommandError, match="--service"):
        call_command("evaluate_alerts", "--service", "nope", stdout=StringIO())
    assert not AlertEvent.objects.exists()


def test_pushed_external_counts_are_evaluated_at_once(operator):
    search = make_service(operator, "search")
    slo = make_slo(operator, search, "queries", sli="external")
    bucket = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    body = {
        "source": "prom",
        "counts": [{"bucket": bucket.astimezone(UTC).isoformat(), "good": 50, "total": 100}],
    }
    response = operator.client().post(f"/api/v1/slos/{slo.pk}/events", body, format="json")
    assert response.status_code == 200, response.content
    assert {c["rule"] for c in response.json()["alerts"]["firing"]} == BURNING
    assert open_rules(slo) == BURNING


def test_beat_goes_through_the_same_verb(operator, two_burning):
    from budgets.tasks import evaluate_alerts

    assert evaluate_alerts() == {"fired": 6, "resolved": 0}
    assert {e.actor_label for e in AuditEntry.objects.filter(action="alert.firing")} == {"beat"}
    assert datetime.now(UTC) >= AlertEvent.objects.first().fired_at
