"""Every door audited: the Django admin is no way around the audited verbs.

The test walks every model registered with the admin site and tries an add, a change, a
delete and a bulk delete through the admin's real views, as a superuser. Each attempt must be
refused (403, or the action is not offered) or write an audit row. A model registered without
a case below fails the test, so a new admin cannot open a back door unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from controlplane.models import AuditEntry, Service
from controlplane.services import create_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Case:
    """How to make one row of a model (through its verbs where it has them) and the form data
    an admin add or change would post. No data: the admin must refuse that change."""

    make: Any
    add: Any = None
    change: Any = None


def _service(actor, slug: str) -> Service:
    return create_service(actor=actor, slug=slug, name=slug.title(), team="t", tier="tier-2")


def _slo(actor, slug: str = "slo-svc"):
    from budgets import slos

    return slos.create_slo(
        actor=actor,
        service=_service(actor, slug),
        name="delivery",
        sli="events",
        target="0.999",
        window="rolling:30d",
    )


def _route(actor, slug: str = "route-svc"):
    from breakers.routes import create_route

    return create_route(
        actor=actor,
        service=_service(actor, slug),
        name=f"{slug}-r",
        event_type="*",
        kind="webhook",
        target="http://127.0.0.1:9/hook",
        timeout_seconds=2.0,
        max_attempts=5,
    )


def _split(name: str, when) -> dict[str, str]:
    return {f"{name}_0": when.strftime("%Y-%m-%d"), f"{name}_1": when.strftime("%H:%M:%S")}


def _policy_data(**extra) -> dict[str, Any]:
    return {
        "freeze_threshold": "0.7",
        "request_ttl": "01:00:00",
        "approval_ttl": "02:00:00",
        "deny_on_frozen_critical": "on",
        "canary_tolerance": "0.001",
        "canary_confidence": "0.95",
        "canary_min_events": "1000",
        **extra,
    }


def _make_user(actor):
    return get_user_model().objects.create_user(username="bob", password="pw-bob-123!")


def _make_group(actor):
    return Group.objects.create(name="readers")


def _make_policy(actor):
    from budgets import policy

    return policy.save_policy(_service(actor, "pol-svc"), actor=actor, freeze_threshold="0.9")


def _make_freeze(actor):
    from budgets import policy

    now = timezone.now()
    return policy.create_freeze_window(
        actor=actor, name="holidays", starts_at=now, ends_at=now + timedelta(days=1)
    )


def _make_dependency(actor):
    from budgets import policy
    from budgets.models import ServiceDependency

    policy.set_dependencies(_service(actor, "dep-a"), [_service(actor, "dep-b")], actor=actor)
    return ServiceDependency.objects.get(service__slug="dep-a")


def _make_hook(actor):
    from budgets import alerts

    return alerts.add_hook(_service(actor, "hook-svc"), "http://127.0.0.1:9/alerts", actor=actor)


# Log rows are written by workers and gates, never by a person; they are made directly here.
def _make_alert(actor):
    from budgets.models import AlertEvent

    return AlertEvent.objects.create(
        slo=_slo(actor),
        rule="fast",
        severity="page",
        burn_rate_threshold=14.4,
        long_window=timedelta(hours=1),
        short_window=timedelta(minutes=5),
        long_burn_rate=20,
        short_burn_rate=20,
    )


def _make_gate(actor):
    from budgets.models import GateDecision

    return GateDecision.objects.create(
        service=_service(actor, "gate-svc"),
        change_id="c-1",
        version="1",
        kind="normal",
        requested_by="ci",
        status="denied",
    )


def _make_verdict(actor):
    from budgets.models import CanaryVerdict

    return CanaryVerdict.objects.create(
        service=_service(actor, "canary-svc"),
        change_id="c-1",
        decision="rollback",
        explanation="worse",
    )


def _make_breaker(actor):
    return _route(actor).breaker


def _make_transition(actor):
    from breakers.models import BreakerTransition

    breaker = _make_breaker(actor)
    return BreakerTransition.objects.create(
        breaker=breaker,
        name=breaker.route.name,
        from_state="CLOSED",
        to_state="OPEN",
        reason="failures",
        node="n1",
        at=timezone.now(),
    )


def _make_worker(actor):
    from breakers.models import WorkerNode

    return WorkerNode.objects.create(name="w1", hostname="h", pid=1)


def _make_downstream(actor):
    from breakers.models import DemoDownstream

    return DemoDownstream.objects.get_or_create(name="payments-api")[0]


def _make_token(actor):
    from controlplane.tokens import issue_token

    return issue_token(actor, name="ci").token


def _make_audit(actor):
    return _service(actor, "audited")  # writes an audit row; the row is the object


def _route_data(svc: Service, **extra) -> dict[str, Any]:
    return {
        "service": svc.pk,
        "name": "admin-route",
        "event_type": "*",
        "kind": "webhook",
        "target": "http://127.0.0.1:9/x",
        "timeout_seconds": "2",
        "max_attempts": "5",
        "enabled": "on",
        "when_open": "defer",
        **extra,
    }


def _user_change(obj) -> dict[str, Any]:
    return {
        "username": obj.username,
        "first_name": "Bob",
        "last_name": "",
        "email": "bob@example.com",
        "is_active": "on",
        "is_staff": "on",
        **_split("date_joined", obj.date_joined),
    }


NOW = timezone.now()


def _work_item_data(service, **fields) -> dict[str, Any]:
    return {
        "key": "OPS-1",
        "url": "",
        "title": "Retry with jitter",
        "service": service.pk,
        "assignee": "ana",
        "status": "open",
        "episode_start_0": "",
        "episode_start_1": "",
        "saved_minutes": "5",
        "saved_share": "",
        **fields,
    }


def _make_work_item(actor):
    from budgets import work_items

    return work_items.create_work_item(
        actor=actor, key="OPS-1", title="Retry", service=_service(actor, "wi-svc")
    )


def _make_delivery(actor):
    from budgets.models import ReportDelivery

    return ReportDelivery.objects.create(
        period="2025-03", period_start=NOW, period_end=NOW, url="http://127.0.0.1:9/r"
    )


def _make_snapshot(actor):
    from replay import snapshots

    return snapshots.request_snapshot(actor=actor)  # a pending row: no file needed


def _make_replay_run(actor):
    from replay.models import ReplayRun

    # A row as the verbs leave it; its snapshot needs no file for the admin's doors.
    return ReplayRun.objects.create(
        snapshot=_make_snapshot(actor),
        window_start=timezone.now() - timedelta(hours=1),
        window_end=timezone.now(),
        rate=1,
        created_by="root",
    )


def _event_schema(actor, slug: str = "schema-svc"):
    from breakers.schemas import create_schema

    return create_schema(
        actor=actor,
        service=_service(actor, slug),
        event_type="order.created",
        mode="lenient",
        fields={"n": {"type": "integer"}},
    )


def _schema_data(svc: Service, **extra) -> dict[str, Any]:
    return {
        "service": svc.pk,
        "event_type": "order.created",
        "version": "1",
        "mode": "coercive",
        "fields": '{"amount": {"type": "integer", "required": true}}',
        **extra,
    }


CASES: dict[str, Case] = {
    "replay.snapshot": Case(_make_snapshot),
    "replay.replayrun": Case(_make_replay_run),
    "auth.group": Case(_make_group, add=lambda a: {"name": "sre"}, change=lambda o: {"name": "r2"}),
    "auth.user": Case(
        _make_user,
        add=lambda a: {
            "username": "carol",
            "usable_password": "true",
            "password1": "An0ther-long-pw!",
            "password2": "An0ther-long-pw!",
        },
        change=_user_change,
    ),
    "controlplane.service": Case(
        lambda a: _service(a, "svc"),
        add=lambda a: {"slug": "pay", "name": "Pay", "team": "t", "tier": "tier-1"},
        change=lambda o: {"slug": o.slug, "name": "Renamed", "team": "t2", "tier": o.tier},
    ),
    "controlplane.apitoken": Case(_make_token),
    "controlplane.auditentry": Case(_make_audit),
    "budgets.slo": Case(_slo),
    "budgets.servicedependency": Case(
        _make_dependency,
        add=lambda a: {
            "service": _service(a, "dep-c").pk,
            "depends_on": _service(a, "dep-d").pk,
        },
    ),
    "budgets.budgetpolicy": Case(
        _make_policy,
        add=lambda a: _policy_data(service=_service(a, "pol-new").pk),
        change=lambda o: _policy_data(freeze_threshold="0.5"),
    ),
    "budgets.freezewindow": Case(
        _make_freeze,
        add=lambda a: {
            "name": "launch",
            "reason": "big day",
            **_split("starts_at", NOW),
            **_split("ends_at", NOW + timedelta(hours=2)),
        },
        change=lambda o: {
            "name": "longer holidays",
            "reason": "",
            **_split("starts_at", o.starts_at),
            **_split("ends_at", o.ends_at + timedelta(days=2)),
        },
    ),
    "budgets.budgetalerthook": Case(
        _make_hook,
        add=lambda a: {"service": _service(a, "hook-new").pk, "url": "http://127.0.0.1:9/new"},
    ),
    "budgets.alertevent": Case(_make_alert),
    "budgets.gatedecision": Case(_make_gate),
    "budgets.canaryverdict": Case(_make_verdict),
    "budgets.workitem": Case(
        _make_work_item,
        add=lambda a: _work_item_data(_service(a, "wi-new"), key="OPS-2"),
        change=lambda o: _work_item_data(o.service, key=o.key, status="done"),
    ),
    "budgets.reportdelivery": Case(_make_delivery),
    "breakers.route": Case(
        _route,
        add=lambda a: _route_data(_service(a, "route-new")),
        change=lambda o: {
            k: v for k, v in _route_data(o.service, timeout_seconds="3").items() if k != "name"
        },
    ),
    "breakers.circuitbreaker": Case(
        _make_breaker,
        change=lambda o: {
            "config": '{"failure_rate_threshold": 0.3}',
            "forced_state": "",
            "reason": "",
            "dynamic_field": "",
            "dynamic_k": "2",
            "dynamic_window_s": "300",
            "dynamic_query": "",
        },
    ),
    "breakers.eventschema": Case(
        _event_schema,
        add=lambda a: _schema_data(_service(a, "schema-new")),
        change=lambda o: _schema_data(o.service, version="2", mode="strict"),
    ),
    "breakers.breakertransition": Case(_make_transition),
    "breakers.workernode": Case(_make_worker),
    "breakers.demodownstream": Case(
        _make_downstream,
        add=lambda a: {
            "name": "new-api",
            "failure_rate": "0.5",
            "latency_ms": "10",
            "traffic_per_tick": "0",
        },
        change=lambda o: {
            "name": o.name,
            "failure_rate": "0.9",
            "latency_ms": "10",
            "traffic_per_tick": "0",
        },
    ),
}


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(username="root", password="pw-root-123!")


@pytest.fixture
def root(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _audit_count() -> int:
    return AuditEntry.objects.count()


def _refused_or_audited(response, before: int, what: str) -> None:
    if response.status_code == 403:
        return
    assert response.status_code == 302, (
        f"{what}: expected 403 or a redirect after saving, got {response.status_code} "
        f"(form errors mean the case's data needs fixing): "
        f"{getattr(response, 'context_data', {}) and response.context_data.get('errors')}"
    )
    assert _audit_count() > before, f"{what} was saved without an audit row"
    assert AuditEntry.objects.latest("pk").actor_label == "root", f"{what}: audited as someone else"


def test_every_registered_admin_model_has_a_case():
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered - set(CASES) == set(), "add a case for each newly registered admin model"


@pytest.mark.parametrize("label", sorted(CASES))
def test_every_admin_change_is_audited_or_refused(label, root, superuser, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:*"]
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    case = CASES[label]

    # add
    data = case.add(superuser) if case.add else {}
    before = _audit_count()
    response = root.post(_url(model, "add"), data)
    _refused_or_audited(response, before, f"{label} add")

    # change
    obj = case.make(superuser)
    if label == "controlplane.auditentry":
        obj = AuditEntry.objects.latest("pk")
    data = case.change(obj) if case.change else {}
    before = _audit_count()
    response = root.post(_url(model, "change", obj.pk), data)
    _refused_or_audited(response, before, f"{label} change")

    # delete, one from its page
    before = _audit_count()
    response = root.post(_url(model, "delete", obj.pk), {"post": "yes"})
    _refused_or_audited(response, before, f"{label} delete")
    if response.status_code == 403:
        assert model.objects.filter(pk=obj.pk).exists()
    else:
        assert not model.objects.filter(pk=obj.pk).exists()

    # delete, in bulk from the list (the "delete selected" action)
    survivor = model.objects.order_by("-pk").first()
    if survivor is None:
        return
    before = _audit_count()
    response = root.post(
        _url(model, "changelist"),
        {"action": "delete_selected", "_selected_action": [survivor.pk], "post": "yes"},
    )
    if model.objects.filter(pk=survivor.pk).exists():
        return  # the action was not offered (or refused)
    assert _audit_count() > before, f"{label} bulk delete without an audit row"


# --- the doors named in the issue, one by one -------------------------------------------------


def test_an_admin_edit_to_a_service_is_audited_with_before_and_after(root, superuser):
    service = _service(superuser, "svc")
    response = root.post(
        _url(Service, "change", service.pk),
        {"slug": "svc", "name": "Renamed", "team": "t", "tier": "tier-1"},
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="service.update")
    assert entry.actor == superuser
    assert (entry.before["name"], entry.after["name"]) == ("Svc", "Renamed")


def test_a_freeze_window_added_in_the_admin_goes_through_the_verb(root, superuser):
    from budgets.models import FreezeWindow

    response = root.post(
        _url(FreezeWindow, "add"),
        {"name": "launch", **_split("starts_at", NOW), **_split("ends_at", NOW + timedelta(1))},
    )
    assert response.status_code == 302
    window = FreezeWindow.objects.get(name="launch")
    entry = AuditEntry.objects.get(action="freeze.create")
    assert entry.object_id == str(window.pk)


def test_a_freeze_window_ending_before_it_starts_is_a_form_error(root):
    from budgets.models import FreezeWindow

    response = root.post(
        _url(FreezeWindow, "add"),
        {"name": "backwards", **_split("starts_at", NOW), **_split("ends_at", NOW)},
    )
    assert response.status_code == 200
    assert "must be after starts_at" in response.content.decode()
    assert not FreezeWindow.objects.exists()


def test_a_freeze_window_changed_in_the_admin_is_audited(root, superuser):
    from budgets.models import FreezeWindow

    window = _make_freeze(superuser)
    response = root.post(
        _url(FreezeWindow, "change", window.pk),
        {
            "name": "holidays",
            "reason": "longer",
            **_split("starts_at", window.starts_at),
            **_split("ends_at", window.ends_at + timedelta(days=2)),
        },
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="freeze.update")
    assert entry.after["reason"] == "longer"
    stored = FreezeWindow.objects.get(pk=window.pk).ends_at  # the form posts whole seconds
    assert stored == window.ends_at.replace(microsecond=0) + timedelta(days=2)


def test_a_gate_decision_cannot_be_deleted_from_the_admin(root, superuser):
    from budgets.models import GateDecision

    decision = _make_gate(superuser)
    assert root.post(_url(GateDecision, "delete", decision.pk), {"post": "yes"}).status_code == 403
    root.post(
        _url(GateDecision, "changelist"),
        {"action": "delete_selected", "_selected_action": [decision.pk], "post": "yes"},
    )
    assert GateDecision.objects.filter(pk=decision.pk).exists()


def test_the_default_policy_is_changed_not_deleted_in_the_admin(root, superuser):
    from budgets import policy
    from budgets.models import BudgetPolicy

    default = policy.save_policy(None, actor=superuser, freeze_threshold="0.8")
    assert root.post(_url(BudgetPolicy, "delete", default.pk), {"post": "yes"}).status_code == 403
    response = root.post(_url(BudgetPolicy, "change", default.pk), _policy_data())
    assert response.status_code == 302
    assert AuditEntry.objects.filter(action="policy.save").count() == 2
    assert BudgetPolicy.objects.get(pk=default.pk).freeze_threshold == Decimal("0.7")


def test_a_policy_value_out_of_range_is_a_form_error(root, superuser):
    from budgets.models import BudgetPolicy

    service = _service(superuser, "pol-bad")
    response = root.post(
        _url(BudgetPolicy, "add"), _policy_data(service=service.pk, canary_confidence="0.2")
    )
    assert response.status_code == 200
    assert "canary_confidence must satisfy" in response.content.decode()
    assert not BudgetPolicy.objects.exists()


def test_an_alert_hook_to_a_host_not_allowed_is_a_form_error(root, superuser, settings):
    from budgets.models import BudgetAlertHook

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:*"]
    service = _service(superuser, "hooked")
    response = root.post(
        _url(BudgetAlertHook, "add"), {"service": service.pk, "url": "http://example.com/x"}
    )
    assert response.status_code == 200
    assert "is not allowed by CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS" in response.content.decode()
    assert not BudgetAlertHook.objects.exists()


def test_giving_a_user_a_role_in_the_admin_is_audited(root, superuser):
    user = _make_user(superuser)
    operators = Group.objects.create(name="operator")
    response = root.post(
        _url(type(user), "change", user.pk), {**_user_change(user), "groups": [operators.pk]}
    )
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="user.update")
    assert (entry.before["groups"], entry.after["groups"]) == ([], ["operator"])
    assert "password" not in entry.after


def test_a_password_set_in_the_admin_is_audited_without_the_password(root, superuser):
    user = _make_user(superuser)
    response = root.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "true", "password1": "N3w-long-pw!x", "password2": "N3w-long-pw!x"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("N3w-long-pw!x")
    entry = AuditEntry.objects.get(action="user.password")
    assert entry.actor == superuser and entry.after == {"usable": True}


def test_a_token_revoked_from_the_admin_is_audited(root, superuser):
    from controlplane.models import ApiToken

    token = _make_token(superuser)
    root.post(_url(ApiToken, "changelist"), {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.filter(action="token.revoke", object_id=str(token.pk)).exists()
