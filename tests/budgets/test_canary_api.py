"""POST /api/v1/changes/{change_id}/canary: verdicts at the edges, the gate freeze it causes."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from budgets import policy
from budgets.models import CanaryVerdict
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def svc(operator, admin):
    service = make_service(operator, "cart")
    # tolerance 0.1 point, 95 % confidence, 1,000 events a side
    policy.save_policy(
        None,
        actor=admin.user,
        canary_tolerance=0.001,
        canary_confidence=0.95,
        canary_min_events=1000,
    )
    return service


def judge(actor, canary, baseline, change_id="rel-7", **extra):
    body = {"service": "cart", **extra}
    if canary is not None:
        body["canary"] = {"good": canary[0], "total": canary[1]}
    if baseline is not None:
        body["baseline"] = {"good": baseline[0], "total": baseline[1]}
    return actor.client().post(f"/api/v1/changes/{change_id}/canary", body, format="json")


def gate(actor, change_id="next", kind="normal"):
    return actor.client().post(
        "/api/v1/gates/check",
        {
            "service": "cart",
            "change_id": change_id,
            "version": "2",
            "kind": kind,
            "requested_by": "ci",
        },
        format="json",
    )


@pytest.mark.parametrize(
    ("canary", "baseline", "verdict"),
    [
        ((9999 - 120 + 1, 10_000), (9950, 10_000), "rollback"),  # 1.2 % vs 0.5 %
        ((9945, 10_000), (9950, 10_000), "promote"),  # 0.55 % vs 0.5 %: inside tolerance
        ((999, 999), (10_000, 10_000), "inconclusive"),  # one event short of min_events
        ((1000, 1000), (10_000, 10_000), "promote"),  # exactly min_events: tested
        ((0, 1000), (1000, 1000), "rollback"),  # everything failing
    ],
)
def test_verdicts_at_the_edges(operator, svc, canary, baseline, verdict):
    response = judge(operator, canary, baseline)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == verdict
    assert body["figures"]["min_events"] == 1000 and body["figures"]["tolerance"] == 0.001
    assert body["explanation"]
    assert body["freezes_gate"] is (verdict == "rollback")


def test_the_explanation_states_the_numbers(operator, svc):
    body = judge(operator, (9880, 10_000), (9950, 10_000)).json()
    assert body["verdict"] == "rollback"
    assert "120 of 10,000" in body["explanation"] and "0.5%" in body["explanation"]
    assert body["figures"]["p_value"] < 0.05


def test_a_rollback_freezes_the_gate_until_resolved(operator, svc):
    verdict = judge(operator, (9880, 10_000), (9950, 10_000)).json()
    denied = gate(operator)
    assert denied.status_code == 423
    assert denied.json()["reasons"][0]["code"] == "canary_rollback"
    assert gate(operator, change_id="undo", kind="rollback").status_code == 200
    resolved = operator.client().post(
        f"/api/v1/canaries/{verdict['id']}/resolve", {"note": "rolled back"}, format="json"
    )
    assert resolved.status_code == 200 and resolved.json()["freezes_gate"] is False
    assert gate(operator, change_id="after").status_code == 200
    assert list(
        AuditEntry.objects.filter(action__startswith="canary.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["canary.verdict", "canary.resolve"]


def test_a_promote_cannot_be_resolved(operator, svc):
    verdict = judge(operator, (10_000, 10_000), (10_000, 10_000)).json()
    response = operator.client().post(
        f"/api/v1/canaries/{verdict['id']}/resolve", {}, format="json"
    )
    assert response.status_code == 400


def test_the_ledger_labels_can_be_compared(operator, svc):
    slo = make_slo(operator, svc, "pushed", sli="external")
    bucket = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    stamp = bucket.astimezone(UTC).isoformat()
    operator.client().post(
        f"/api/v1/slos/{slo.pk}/events",
        {
            "source": "lb",
            "counts": [
                {"bucket": stamp, "good": 1880, "total": 2000, "label": "canary"},
                {"bucket": stamp, "good": 1990, "total": 2000, "label": "stable"},
            ],
        },
        format="json",
    )
    response = judge(
        operator,
        None,
        None,
        slo=slo.pk,
        window="30m",
        canary_label="canary",
        baseline_label="stable",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["verdict"] == "rollback"
    assert (body["figures"]["canary_total"], body["figures"]["baseline_bad"]) == (2000, 10)
    assert body["source"]["canary_label"] == "canary"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"canary": {"good": -1, "total": 10}, "baseline": {"good": 1, "total": 1}}, "canary"),
        ({"canary": {"good": 11, "total": 10}, "baseline": {"good": 1, "total": 1}}, "canary"),
        ({"baseline": {"good": 1, "total": 1}}, "canary"),
        ({"canary": {"good": 1, "total": 1}}, "baseline"),
        ({"slo": 999_999, "window": "1h"}, "slo"),
        ({"service": "nope", "canary": {"good": 1, "total": 1}}, "service"),
    ],
)
def test_bad_canary_input_names_the_field(operator, svc, extra, field):
    body = {"service": "cart", **extra}
    response = operator.client().post("/api/v1/changes/x/canary", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not CanaryVerdict.objects.exists()


def test_a_bad_window_names_the_field(operator, svc):
    slo = make_slo(operator, svc, "pushed", sli="external")
    for window in ("forever", "0m", "30d"):
        response = judge(
            operator, None, None, slo=slo.pk, window=window, canary_label="a", baseline_label="b"
        )
        assert response.status_code == 400
        assert "window" in response.json()["errors"]


def test_viewers_cannot_ask_for_a_verdict(viewer, svc):
    assert judge(viewer, (1, 1), (1, 1)).status_code == 403
