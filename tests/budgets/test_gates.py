"""Change gates: the decision table, approvals, expiry, self-approval, roles and audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from budgets import gates, policy
from budgets.ledger import record_outcomes
from budgets.models import GateDecision
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def spend(service, share: float, total: int = 1000) -> None:
    """Spend ``share`` of a 99 % SLO's budget two days ago (no current burn)."""
    at = timezone.now() - timedelta(days=2)
    bad = round(share * total * 0.01)
    record_outcomes([(service.pk, at, i >= bad, 1.0) for i in range(total)])


@pytest.fixture
def svc(operator):
    service = make_service(operator, "api", tier="tier-1")
    make_slo(operator, service, target="0.99")
    return service


def check(actor, change_id="c1", kind="normal", service="api", **extra):
    body = {
        "service": service,
        "change_id": change_id,
        "version": "v1.2.3",
        "kind": kind,
        "description": "deploy",
        "requested_by": "ci-bot",
        **extra,
    }
    return actor.client().post("/api/v1/gates/check", body, format="json")


CASES = [
    (consumed, kind, window)
    for consumed in (0.5, 0.8, 1.2)
    for kind in ("normal", "urgent", "rollback", "security")
    for window in (False, True)
]


@pytest.mark.parametrize(("consumed", "kind", "in_freeze_window"), CASES)
def test_the_decision_table(operator, svc, consumed, kind, in_freeze_window):
    spend(svc, consumed)
    if in_freeze_window:
        now = timezone.now()
        policy.create_freeze_window(
            actor=operator.user,
            name="holidays",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
        )
    frozen = consumed >= 0.8 or in_freeze_window
    if kind in ("rollback", "security") or not frozen:
        expected = (200, "allow")
    elif kind == "urgent":
        expected = (202, "approval_required")
    else:
        expected = (423, "deny")
    response = check(operator, kind=kind)
    body = response.json()
    assert (response.status_code, body["decision"]) == expected, body
    codes = {r["code"] for r in body["reasons"]}
    if frozen:
        assert ("budget" in codes) == (consumed >= 0.8)
        assert ("freeze_window" in codes) == in_freeze_window
    slo_figures = body["budget"]["slos"][0]
    assert slo_figures["consumed"] == pytest.approx(consumed)
    if expected[1] == "approval_required":
        assert body["poll_url"].endswith(f"/api/v1/gates/decisions/{body['id']}")
        assert response["Location"] == body["poll_url"]


def test_an_approved_urgent_change_is_allowed_until_the_approval_lapses(operator, approver, svc):
    spend(svc, 0.9)
    pending = check(operator, kind="urgent").json()
    approved = approver.client().post(
        f"/api/v1/gates/decisions/{pending['id']}/approve", {"note": "hotfix"}, format="json"
    )
    assert approved.status_code == 200, approved.content
    assert approved.json()["decision"] == "approved"
    again = check(operator, kind="urgent")
    assert (again.status_code, again.json()["decision"]) == (200, "approved")
    assert GateDecision.objects.count() == 1

    decision = GateDecision.objects.get()
    later = decision.expires_at + timedelta(seconds=1)
    assert gates.expire_due(later) == 1
    decision.refresh_from_db()
    assert decision.status == "expired"
    rechecked = gates.check_change(
        service=svc,
        change_id="c1",
        version="v1.2.3",
        kind="urgent",
        description="",
        requested_by="ci-bot",
        actor=operator.user,
        now=later,
    )
    assert rechecked.decision.status == "approval_required"  # judged afresh, still frozen
    actions = list(
        AuditEntry.objects.filter(object_type="budgets.gatedecision")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["gate.decide", "gate.approve", "gate.expire", "gate.recheck"]


def test_a_rejected_change_stays_rejected(operator, approver, svc):
    spend(svc, 0.9)
    pending = check(operator, kind="urgent").json()
    rejected = approver.client().post(
        f"/api/v1/gates/decisions/{pending['id']}/reject", {}, format="json"
    )
    assert rejected.json()["decision"] == "rejected"
    again = check(operator, kind="urgent")
    assert (again.status_code, again.json()["decision"]) == (423, "rejected")


def test_a_request_nobody_approves_expires(operator, approver, svc):
    spend(svc, 0.9)
    pending = check(operator, kind="urgent").json()
    decision = GateDecision.objects.get(pk=pending["id"])
    assert decision.expires_at == decision.created_at + timedelta(hours=24)
    gates.expire_due(decision.expires_at)
    response = approver.client().post(
        f"/api/v1/gates/decisions/{pending['id']}/approve", {}, format="json"
    )
    assert response.status_code == 409
    assert approver.client().get(pending["poll_url"]).json()["decision"] == "expired"


def test_nobody_approves_their_own_request(approver, svc):
    spend(svc, 0.9)
    own = check(approver, kind="urgent").json()  # approver's token made the check
    response = approver.client().post(
        f"/api/v1/gates/decisions/{own['id']}/approve", {}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "self_approval"
    assert GateDecision.objects.get().status == "approval_required"


def test_the_person_named_as_requester_may_not_approve_either(operator, approver, svc):
    spend(svc, 0.9)
    named = check(operator, kind="urgent", requested_by="Approver").json()
    response = approver.client().post(
        f"/api/v1/gates/decisions/{named['id']}/reject", {}, format="json"
    )
    assert response.status_code == 403


def test_roles_are_enforced(viewer, operator, svc):
    assert check(viewer).status_code == 403
    spend(svc, 0.9)
    pending = check(operator, kind="urgent").json()
    response = operator.client().post(
        f"/api/v1/gates/decisions/{pending['id']}/approve", {}, format="json"
    )
    assert response.status_code == 403
    assert viewer.client().get(pending["poll_url"]).status_code == 200


def test_the_same_change_returns_its_decision_and_cannot_change_version(operator, svc):
    first = check(operator)
    spend(svc, 0.95)  # the budget goes after the decision was taken
    again = check(operator)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    clash = check(operator, version="v9")
    assert clash.status_code == 409
    assert "version" in clash.json()["errors"]
    assert check(operator, change_id="c2").status_code == 423


def test_every_decision_is_audited_with_its_figures(operator, svc):
    spend(svc, 0.5)
    check(operator)
    entry = AuditEntry.objects.get(action="gate.decide")
    assert entry.actor_label == "operator"
    assert entry.after["status"] == "allow"
    assert entry.after["figures"]["slos"][0]["consumed"] == pytest.approx(0.5)
    assert entry.after["change_id"] == "c1"


def test_an_approval_is_audited_with_the_figures_at_the_time(operator, approver, svc):
    spend(svc, 0.9)
    pending = check(operator, kind="urgent").json()
    spend(svc, 0.5)  # more traffic after the check
    approver.client().post(f"/api/v1/gates/decisions/{pending['id']}/approve", {}, format="json")
    entry = AuditEntry.objects.get(action="gate.approve")
    assert entry.before["status"] == "approval_required"
    assert entry.after["figures"]["slos"][0]["consumed"] == pytest.approx(0.9)
    assert entry.after["figures_at_decision"]["slos"][0]["consumed"] == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "yolo"}, "kind"),
        ({"service": "nope"}, "service"),
        ({"change_id": "has space"}, "change_id"),
        ({"requested_by": ""}, "requested_by"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_checks_are_400_naming_the_field(operator, svc, body, field):
    response = check(operator, **body)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_frozen_critical_dependency_freezes_the_change(operator, svc):
    web = make_service(operator, "web")
    make_slo(operator, web, target="0.99")
    policy.set_dependencies(web, [svc], actor=operator.user)
    spend(svc, 0.9)  # api (tier-1) is frozen; web is fine
    response = check(operator, service="web")
    body = response.json()
    assert response.status_code == 423
    assert [r["code"] for r in body["reasons"]] == ["impacted_critical_frozen"]
    assert body["impacted"][0]["service"] == "api" and body["impacted"][0]["frozen"]
    policy.save_policy(web, actor=operator.user, deny_on_frozen_critical=False)
    assert check(operator, service="web", change_id="c2").status_code == 200


def test_a_service_override_changes_the_threshold(admin, operator, svc):
    spend(svc, 0.6)
    assert check(operator).status_code == 200
    response = admin.client().put(
        "/api/v1/services/api/policy", {"freeze_threshold": 0.5}, format="json"
    )
    assert response.status_code == 200, response.content
    assert check(operator, change_id="c2").status_code == 423
