"""SLOs through the API: roles, validation that names the field, fixed fields, audit."""

from __future__ import annotations

import pytest

from budgets.models import SLO
from controlplane.models import AuditEntry
from tests.budgets.conftest import logged_in, make_service

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

BODY = {
    "service": "shop",
    "name": "delivery",
    "sli": "events",
    "target": 0.999,
    "window": "rolling:30d",
}


@pytest.fixture
def service(operator):
    return make_service(operator, "shop")


def test_operator_creates_an_slo_and_viewer_reads_it(operator, viewer, service):
    created = operator.client().post("/api/v1/slos", BODY, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["target"] == 0.999 and body["window"] == "rolling:30d"
    assert body["budgeting_method"] == "occurrences"
    listed = viewer.client().get("/api/v1/slos?service=shop").json()
    assert [s["name"] for s in listed["results"]] == ["delivery"]
    assert AuditEntry.objects.filter(action="slo.create").count() == 1


def test_a_viewer_may_not_create_an_slo(viewer, service):
    response = viewer.client().post("/api/v1/slos", BODY, format="json")
    assert response.status_code == 403
    assert not SLO.objects.exists()


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"target": 1}, "target", "between 0.99 and 0.999999"),
        ({"target": 1.0}, "target", "between"),
        ({"target": 0}, "target", "between"),
        ({"target": 99.9}, "target", "0.999"),
        ({"target": "0.98"}, "target", "between"),
        ({"target": "0.9999995"}, "target", "6 decimal places"),
        ({"target": "abc"}, "target", "number"),
        ({"target": True}, "target", "number"),
        ({"window": "rolling:120d"}, "window", "3 to 92 days"),
        ({"window": "weekly"}, "window", "not a window"),
        ({"window": "calendar:year"}, "window", "month"),
        ({"sli": "availability"}, "sli", ""),
        ({"budgeting_method": "timeslices"}, "slice_minutes", "divides an hour"),
        (
            {"budgeting_method": "timeslices", "slice_minutes": 7, "slice_target": 0.9},
            "slice_minutes",
            "divides an hour",
        ),
        ({"budgeting_method": "timeslices", "slice_minutes": 5}, "slice_target", "required"),
        (
            {"budgeting_method": "timeslices", "slice_minutes": 5, "slice_target": 0},
            "slice_target",
            "above 0",
        ),
        ({"slice_minutes": 5}, "slice_minutes", "only for the timeslices"),
        ({"sli": "latency"}, "latency_threshold_ms", "required"),
        ({"latency_threshold_ms": 200}, "latency_threshold_ms", "only for a latency"),
        ({"colour": "blue"}, "colour", "Unknown"),
        ({"service": "nope"}, "service", ""),
    ],
)
def test_bad_input_is_a_400_naming_the_field(operator, service, change, field, words):
    response = operator.client().post("/api/v1/slos", {**BODY, **change}, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["code"] == "invalid"
    assert field in payload["errors"], payload
    assert words in " ".join(payload["errors"][field])
    assert not SLO.objects.exists()


def test_a_timeslices_latency_slo_is_accepted(operator, service):
    body = {
        **BODY,
        "sli": "latency",
        "latency_threshold_ms": 250,
        "budgeting_method": "timeslices",
        "slice_minutes": 5,
        "slice_target": "0.95",
        "target": "0.99",
    }
    response = operator.client().post("/api/v1/slos", body, format="json")
    assert response.status_code == 201, response.content
    slo = SLO.objects.get()
    assert (slo.slice_minutes, str(slo.slice_target), slo.latency_threshold_ms) == (
        5,
        "0.950000",
        250.0,
    )


def test_target_and_window_change_but_the_method_is_fixed(operator, service):
    pk = operator.client().post("/api/v1/slos", BODY, format="json").json()["id"]
    api = operator.client()
    ok = api.patch(
        f"/api/v1/slos/{pk}", {"target": "0.9995", "window": "calendar:month"}, format="json"
    )
    assert ok.status_code == 200, ok.content
    assert ok.json()["target"] == 0.9995 and ok.json()["window"] == "calendar:month"
    fixed = api.patch(f"/api/v1/slos/{pk}", {"budgeting_method": "timeslices"}, format="json")
    assert fixed.status_code == 400
    assert "cannot change" in fixed.json()["errors"]["budgeting_method"][0]
    update = AuditEntry.objects.get(action="slo.update")
    assert update.before["target"] == "0.999000" and update.after["target"] == "0.999500"


def test_a_duplicate_name_is_refused(operator, service):
    api = operator.client()
    assert api.post("/api/v1/slos", BODY, format="json").status_code == 201
    again = api.post("/api/v1/slos", BODY, format="json")
    assert again.status_code == 400


def test_a_service_with_slos_cannot_be_deleted(operator, service):
    operator.client().post("/api/v1/slos", BODY, format="json")
    response = operator.client().delete("/api/v1/services/shop")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target": 1e22}, "target"),
        ({"target": "1e300"}, "target"),
        ({"target": "-1e40"}, "target"),
        (
            {"budgeting_method": "timeslices", "slice_minutes": 5, "slice_target": 1e30},
            "slice_target",
        ),
    ],
)
def test_a_huge_target_on_create_is_refused_naming_the_field(operator, service, change, field):
    response = operator.client().post("/api/v1/slos", {**BODY, **change}, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert not SLO.objects.exists()


@pytest.mark.parametrize("value", [1e300, "1e400", "9" * 40])
def test_a_huge_target_in_a_patch_is_refused_naming_the_field(operator, service, value):
    created = operator.client().post("/api/v1/slos", BODY, format="json").json()
    url = f"/api/v1/slos/{created['id']}"
    response = operator.client().patch(url, {"target": value}, format="json")
    assert response.status_code == 400, response.content
    assert "target" in str(response.json())
    assert str(SLO.objects.get().target) == "0.999000"


def test_a_calendar_window_with_a_zone_is_kept_and_honoured(operator, service):
    window = "calendar:month;tz=Asia/Kolkata"
    response = operator.client().post("/api/v1/slos", {**BODY, "window": window}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["window"] == window
    assert SLO.objects.get().window == window


def test_timeslices_refuse_a_calendar_period_that_starts_off_a_slice_boundary(operator, service):
    body = {
        **BODY,
        "window": "calendar:month;tz=Asia/Kolkata",  # UTC+05:30: months start at :30 UTC
        "budgeting_method": "timeslices",
        "slice_minutes": 60,
        "slice_target": 0.95,
    }
    response = operator.client().post("/api/v1/slos", body, format="json")
    assert response.status_code == 400, response.content
    assert "window" in response.json()["errors"]
    thirty = operator.client().post("/api/v1/slos", {**body, "slice_minutes": 30}, format="json")
    assert thirty.status_code == 201, thirty.content


def test_a_zone_whose_offset_moves_by_half_an_hour_is_refused_for_hourly_slices(operator, service):
    body = {
        **BODY,
        "window": "calendar:month;tz=Australia/Lord_Howe",  # +10:30 in winter, +11 in summer
        "budgeting_method": "timeslices",
        "slice_minutes": 60,
        "slice_target": 0.95,
    }
    response = operator.client().post("/api/v1/slos", body, format="json")
    assert response.status_code == 400, response.content
    assert "window" in response.json()["errors"]


@pytest.mark.parametrize("method", ["occurrences", "timeslices"])
def test_the_budget_of_a_zoned_calendar_slo_is_computed(operator, viewer, service, method):
    body = {**BODY, "window": "calendar:week;start=2024-01-06T12:00;tz=America/New_York"}
    if method == "timeslices":
        body.update(budgeting_method="timeslices", slice_minutes=5, slice_target=0.9)
    created = operator.client().post("/api/v1/slos", body, format="json")
    assert created.status_code == 201, created.content
    budget = viewer.client().get(f"/api/v1/slos/{created.json()['id']}/budget")
    assert budget.status_code == 200, budget.content
    page = logged_in(viewer).get(f"/budgets/slos/{created.json()['id']}/")
    assert page.status_code == 200, page.status_code
