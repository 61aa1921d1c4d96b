"""The Demo page changes what workers do (the pretend downstreams' failure rate and latency,
and the demo traffic), so every change to it is an audited verb, whatever the door."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from breakers import demo
from breakers.models import DemoDownstream
from controlplane.models import AuditEntry

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

PAGE_FORM = {"name": "payments-api", "failure_rate": "0.5", "latency_ms": "200"}


@pytest.fixture
def downstream(admin):
    return demo.create_downstream("payments-api", actor=admin.user)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def rows(action: str = "demo_downstream.update"):
    return list(AuditEntry.objects.filter(action=action))


def test_a_change_on_the_demo_page_writes_one_audit_row_naming_the_operator(operator, downstream):
    response = logged_in(operator.user).post("/demo/", {**PAGE_FORM, "traffic_per_tick": "5"})
    assert response.status_code == 302
    downstream.refresh_from_db()
    assert (downstream.failure_rate, downstream.latency_ms) == (0.5, 200)
    [entry] = rows()
    assert entry.actor == operator.user and entry.object_id == str(downstream.pk)
    assert entry.before == {"failure_rate": 0.05, "latency_ms": 30, "traffic_per_tick": 5}
    assert entry.after == {"failure_rate": 0.5, "latency_ms": 200, "traffic_per_tick": 5}


def test_applying_the_same_values_again_writes_no_second_row(operator, downstream):
    client = logged_in(operator.user)
    client.post("/demo/", {**PAGE_FORM, "traffic_per_tick": "5"})
    client.post("/demo/", {**PAGE_FORM, "traffic_per_tick": "5"})
    assert len(rows()) == 1


def test_out_of_range_values_are_refused_naming_the_field_and_change_nothing(operator, downstream):
    page = logged_in(operator.user).post(
        "/demo/", {**PAGE_FORM, "traffic_per_tick": "100000"}, follow=True
    )
    assert "traffic_per_tick" in page.content.decode()
    with pytest.raises(ValidationError) as refused:
        demo.update_downstream(downstream, actor=operator.user, latency_ms=-1, failure_rate=2)
    assert set(refused.value.message_dict) == {"latency_ms", "failure_rate"}
    downstream.refresh_from_db()
    assert (downstream.failure_rate, downstream.latency_ms, downstream.traffic_per_tick) == (
        0.05,
        30,
        5,
    )
    assert rows() == []


def test_viewers_cannot_change_the_demo(viewer, downstream):
    response = logged_in(viewer.user).post("/demo/", {**PAGE_FORM, "traffic_per_tick": "5"})
    assert response.status_code == 403
    assert rows() == []


def test_an_admin_edit_goes_through_the_same_audited_verb(admin, downstream):
    user = admin.user
    user.is_staff = user.is_superuser = True
    user.save()
    url = f"/admin/breakers/demodownstream/{downstream.pk}/change/"
    response = logged_in(user).post(
        url, {"failure_rate": "1", "latency_ms": "30", "traffic_per_tick": "0"}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    [entry] = rows()
    assert entry.actor == user
    assert entry.after == {"failure_rate": 1.0, "latency_ms": 30, "traffic_per_tick": 0}


def test_seeding_the_demo_audits_the_downstreams_it_creates(admin):
    from controlplane.services import create_service

    create_service(actor=admin.user, slug="checkout", name="Checkout", team="t", tier="tier-1")
    demo.seed(admin.user)
    demo.seed(admin.user)  # again: nothing new, nothing audited
    assert [e.object_repr for e in rows("demo_downstream.create")] == ["payments-api"]
    assert DemoDownstream.objects.count() == 1
