"""Policy, freeze windows and service dependencies through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from budgets import policy
from budgets.models import BudgetPolicy, FreezeWindow, ServiceDependency
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_the_default_policy_has_settings_defaults_and_admins_change_it(viewer, approver, admin):
    current = viewer.client().get("/api/v1/policies/default").json()
    assert current["freeze_threshold"] == 0.8 and current["approval_ttl_seconds"] == 4 * 3600
    body = {"freeze_threshold": "0.9", "approval_ttl": "01:00:00"}
    assert approver.client().put("/api/v1/policies/default", body, format="json").status_code == 403
    saved = admin.client().put("/api/v1/policies/default", body, format="json")
    assert saved.status_code == 200, saved.content
    assert saved.json()["freeze_threshold"] == 0.9
    assert saved.json()["approval_ttl_seconds"] == 3600
    assert BudgetPolicy.objects.get().is_default
    assert AuditEntry.objects.get(action="policy.save").after["freeze_threshold"] == 0.9


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"freeze_threshold": 0}, "freeze_threshold"),
        ({"freeze_threshold": 1.5}, "freeze_threshold"),
        ({"freeze_threshold": "x"}, "freeze_threshold"),
        ({"approval_ttl": "00:00:10"}, "approval_ttl"),
        ({"canary_confidence": 1}, "canary_confidence"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_policy_values_name_the_field(admin, body, field):
    response = admin.client().put("/api/v1/policies/default", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_service_override_starts_from_the_default_and_can_be_removed(operator, admin):
    make_service(operator, "api")
    policy.save_policy(None, actor=admin.user, request_ttl=timedelta(hours=2))
    api = admin.client()
    saved = api.put("/api/v1/services/api/policy", {"freeze_threshold": 0.5}, format="json")
    assert saved.json()["overridden"] is True
    assert saved.json()["request_ttl_seconds"] == 7200 and saved.json()["freeze_threshold"] == 0.5
    assert api.delete("/api/v1/services/api/policy").status_code == 204
    assert api.get("/api/v1/services/api/policy").json()["overridden"] is False


def test_freeze_windows_are_for_approvers(operator, approver):
    now = timezone.now()
    body = {
        "name": "Black Friday",
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=3)).isoformat(),
        "reason": "peak",
    }
    assert operator.client().post("/api/v1/freeze-windows", body, format="json").status_code == 403
    created = approver.client().post("/api/v1/freeze-windows", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["service"] is None
    backwards = {**body, "ends_at": body["starts_at"]}
    refused = approver.client().post("/api/v1/freeze-windows", backwards, format="json")
    assert refused.status_code == 400 and "ends_at" in refused.json()["errors"]
    assert approver.client().get("/api/v1/freeze-windows?active=1").json()["count"] == 0
    assert (
        approver.client().delete(f"/api/v1/freeze-windows/{created.json()['id']}").status_code
        == 204
    )
    assert not FreezeWindow.objects.exists()


def test_dependencies_are_set_and_impact_walks_both_ways(operator, viewer):
    for slug in ("web", "api", "db", "search", "mobile"):
        make_service(operator, slug)
    api = operator.client()
    assert (
        api.put(
            "/api/v1/services/web/dependencies", {"depends_on": ["api"]}, format="json"
        ).status_code
        == 200
    )
    api.put("/api/v1/services/api/dependencies", {"depends_on": ["db", "search"]}, format="json")
    api.put("/api/v1/services/mobile/dependencies", {"depends_on": ["api"]}, format="json")
    body = viewer.client().get("/api/v1/services/api/dependencies").json()
    assert body["depends_on"] == ["db", "search"]
    assert body["dependents"] == ["mobile", "web"]
    from_db = viewer.client().get("/api/v1/services/db/dependencies").json()["impact"]
    assert {(i["service"], i["relation"], i["distance"]) for i in from_db} == {
        ("api", "dependent", 1),
        ("web", "dependent", 2),
        ("mobile", "dependent", 2),
    }  # search shares a dependent with db, but is not impacted by it
    assert ServiceDependency.objects.count() == 4
    assert AuditEntry.objects.filter(action="service.dependencies").count() == 3


def test_bad_dependencies_are_refused(operator, viewer):
    make_service(operator, "web")
    api = operator.client()
    self_dep = api.put("/api/v1/services/web/dependencies", {"depends_on": ["web"]}, format="json")
    assert self_dep.status_code == 400 and "depends_on" in self_dep.json()["errors"]
    unknown = api.put("/api/v1/services/web/dependencies", {"depends_on": ["ghost"]}, format="json")
    assert unknown.status_code == 400 and "ghost" in unknown.json()["errors"]["depends_on"][0]
    assert (
        viewer.client()
        .put("/api/v1/services/web/dependencies", {"depends_on": []}, format="json")
        .status_code
        == 403
    )


def test_a_dependency_cycle_does_not_trap_the_walk(operator):
    a, b, c = (make_service(operator, s) for s in "abc")
    policy.set_dependencies(a, [b], actor=operator.user)
    policy.set_dependencies(b, [c], actor=operator.user)
    policy.set_dependencies(c, [a], actor=operator.user)
    found = policy.impact(a.pk)
    assert sorted((i.service_id, i.relation) for i in found) == sorted(
        [(b.pk, "dependency"), (c.pk, "dependency"), (c.pk, "dependent"), (b.pk, "dependent")]
    )
