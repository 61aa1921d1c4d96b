"""A service's admission settings change through the audited verbs from every door (API, page,
admin), and bad values are a 400 (or a form error) naming the field."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from controlplane.models import AuditEntry, Service
from controlplane.services import create_service, update_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def audited(slug: str) -> AuditEntry:
    return AuditEntry.objects.filter(action="service.update", object_repr=slug).latest("id")


def test_the_api_sets_the_bucket_and_audits_it(operator, checkout):
    response = operator.client().patch(
        "/api/v1/services/checkout",
        {"admission_rate": 250.5, "admission_burst": 500},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert (response.json()["admission_rate"], response.json()["admission_burst"]) == (250.5, 500)
    entry = audited("checkout")
    assert entry.actor == operator.user
    assert (entry.before["admission_rate"], entry.after["admission_rate"]) == (None, 250.5)
    assert entry.after["admission_burst"] == 500
    # Back to no limit.
    response = operator.client().patch(
        "/api/v1/services/checkout", {"admission_rate": None}, format="json"
    )
    assert response.json()["admission_rate"] is None
    assert audited("checkout").after["admission_rate"] is None


def test_a_service_is_created_with_a_bucket_through_the_api(operator):
    response = operator.client().post(
        "/api/v1/services",
        {"slug": "paced", "name": "Paced", "team": "t", "admission_rate": 5},
        format="json",
    )
    assert response.status_code == 201, response.content
    entry = AuditEntry.objects.get(action="service.create", object_repr="paced")
    assert entry.after["admission_rate"] == 5
    assert Service.objects.get(slug="paced").effective_burst == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"admission_rate": 0}, "admission_rate"),
        ({"admission_rate": -1}, "admission_rate"),
        ({"admission_rate": 1e12}, "admission_rate"),
        ({"admission_rate": "fast"}, "admission_rate"),
        ({"admission_burst": 0}, "admission_burst"),
        ({"admission_burst": 10**9}, "admission_burst"),
        ({"admission_burst": 2.5}, "admission_burst"),
    ],
)
def test_bad_admission_values_are_a_400_naming_the_field(operator, checkout, body, field):
    response = operator.client().patch("/api/v1/services/checkout", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {field}
    assert not AuditEntry.objects.filter(action="service.update").exists()


def test_a_viewer_may_not_set_a_rate(viewer, checkout):
    response = viewer.client().patch(
        "/api/v1/services/checkout", {"admission_rate": 1}, format="json"
    )
    assert response.status_code == 403


def test_the_verbs_refuse_bad_values_from_any_door(operator, checkout):
    with pytest.raises(ValidationError) as caught:
        update_service(checkout, actor=operator.user, admission_rate=float("inf"))
    assert set(caught.value.message_dict) == {"admission_rate"}
    with pytest.raises(ValidationError):
        create_service(actor=operator.user, slug="x", name="X", team="t", admission_burst=0)
    assert not Service.objects.filter(slug="x").exists()


def _form(service: Service, **extra) -> dict:
    return {
        "slug": service.slug,
        "name": service.name,
        "team": service.team,
        "tier": service.tier,
        "description": service.description,
        "admission_rate": "",
        "admission_burst": "",
        **extra,
    }


def test_the_service_page_form_sets_the_bucket_and_audits_it(operator, checkout, client):
    client.force_login(operator.user)
    response = client.post(
        "/services/checkout/", _form(checkout, admission_rate="12.5", admission_burst="40")
    )
    assert response.status_code == 302
    checkout.refresh_from_db()
    assert (checkout.admission_rate, checkout.admission_burst) == (12.5, 40)
    assert audited("checkout").actor == operator.user
    page = client.get("/services/checkout/").content.decode()
    assert "12.5 events/s" in page


def test_the_service_page_form_names_a_bad_rate(operator, checkout, client):
    client.force_login(operator.user)
    response = client.post("/services/checkout/", _form(checkout, admission_rate="0"))
    assert response.status_code == 200
    assert "admission_rate" in response.context["form"].errors
    checkout.refresh_from_db()
    assert checkout.admission_rate is None


def test_the_admin_sets_the_bucket_through_the_verb(operator, checkout, client, django_user_model):
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    client.force_login(root)
    response = client.post(
        f"/admin/controlplane/service/{checkout.pk}/change/",
        _form(checkout, admission_rate="3", admission_burst=""),
    )
    assert response.status_code == 302, response.content
    entry = audited("checkout")
    assert entry.actor == root
    assert (entry.before["admission_rate"], entry.after["admission_rate"]) == (None, 3.0)
    bad = client.post(
        f"/admin/controlplane/service/{checkout.pk}/change/",
        _form(checkout, admission_burst="0"),
    )
    assert bad.status_code == 200
    assert "admission_burst" in bad.context["adminform"].form.errors
