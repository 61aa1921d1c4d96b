"""seed_demo makes the approval flow work out of the box, and a missing button says why."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from budgets import gates
from budgets.models import GateDecision
from budgets.policy import create_freeze_window
from controlplane.models import Service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def seeded(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def login(username: str, password: str) -> Client:
    client = Client()
    assert client.login(username=username, password=password)
    return client


def test_seed_demo_creates_the_role_groups_and_an_approver(seeded, settings):
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "viewer",
        "operator",
        "approver",
        "admin",
    }
    password = re.search(r"Demo approver: username approver  password (\S+)", seeded).group(1)
    assert (settings.VAR_DIR / "demo_approver_password").read_text() == password
    again = StringIO()
    call_command("seed_demo", stdout=again)  # safe to run again: same password
    assert f"password {password}" in again.getvalue()


def test_the_demo_approver_approves_the_admins_urgent_change(seeded, viewer):
    from django.contrib.auth import get_user_model

    admin_password = re.search(r"Demo admin:  username admin  password (\S+)", seeded).group(1)
    approver_password = re.search(r"username approver  password (\S+)", seeded).group(1)
    admin = get_user_model().objects.get(username="admin")
    checkout = Service.objects.get(slug="checkout")
    now = timezone.now()
    create_freeze_window(
        actor=admin,
        name="demo freeze",
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        service=checkout,
    )
    result = gates.check_change(
        service=checkout,
        change_id="demo-42",
        version="1.2.3",
        kind="urgent",
        description="",
        requested_by="admin",
        actor=admin,
    )
    decision = result.decision
    assert decision.status == GateDecision.Status.APPROVAL_REQUIRED

    own = login("admin", admin_password).get("/changes/").content.decode()
    assert "You cannot approve your own request." in own
    seen_by_viewer = Client()
    seen_by_viewer.force_login(viewer.user)
    assert "Approver role needed." in seen_by_viewer.get("/changes/").content.decode()

    approver = login("approver", approver_password)
    page = approver.get("/changes/").content.decode()
    assert f"/changes/decisions/{decision.pk}/approve" in page
    response = approver.post(f"/changes/decisions/{decision.pk}/approve", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    decision.refresh_from_db()
    assert decision.status == GateDecision.Status.APPROVED
    assert decision.decided_by.username == "approver"
