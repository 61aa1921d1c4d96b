"""Report API: JSON and CSV of a period, bad periods naming the parameter, roles, and the
audited webhook post to a real receiver (allow-listed hosts only)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from budgets.ledger import record_outcomes
from budgets.models import ReportDelivery
from controlplane.models import AuditEntry
from tests.budgets.conftest import make_service, make_slo
from tests.budgets.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

URL = "/api/v1/reports/budget"


@pytest.fixture
def pay(operator):
    service = make_service(operator, "pay")
    make_slo(operator, service, target="0.99")
    when = datetime(2025, 3, 5, 8, 10, tzinfo=UTC)
    record_outcomes([(service.pk, when, True, 1.0)] * 80 + [(service.pk, when, False, 1.0)] * 20)
    return service


def test_the_json_report_of_a_month(viewer, pay):
    response = viewer.client().get(URL, {"month": "2025-03"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["period"]["start"] == "2025-03-01T00:00:00+00:00"
    assert body["episode_bucket_seconds"] == 3600
    [service] = body["services"]
    [slo] = service["slos"]
    assert (slo["good"], slo["total"], slo["consumed_events"]) == (80, 100, 20)
    assert slo["consumed"] == pytest.approx(20.0)
    assert slo["over_budget"] is True
    [episode] = slo["episodes"]
    assert episode["needs_postmortem"] is True
    assert episode["start"] == "2025-03-05T08:00:00+00:00"


def test_the_csv_report_has_one_row_per_slo(viewer, pay):
    response = viewer.client().get(f"{URL}.csv", {"quarter": "2025-Q1"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["service"], r["slo"], r["total"], r["episodes"]) for r in rows] == [
        ("pay", "delivery", "100", "1")
    ]
    assert float(rows[0]["consumed"]) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"month": "2025-13"}, "month"),
        ({"month": "99999-01"}, "month"),
        ({"quarter": "2025-Q5"}, "quarter"),
        ({"quarter": "9999-Q4"}, "quarter"),
        ({"start": "2025-03-01"}, "end"),
        ({"end": "2025-03-01"}, "start"),
        ({"start": "2025-03-02", "end": "2025-03-01"}, "end"),
        ({"start": "2025-03-01T00:30Z", "end": "2025-03-02"}, "start"),
        ({"start": "2025-03-01T00:00", "end": "2025-03-02"}, "start"),
        ({"start": "0001-01-01T00:00+01:00", "end": "2025-03-02"}, "start"),
        ({"start": "2020-01-01", "end": "2025-03-02"}, "end"),
        ({"month": "2025-03", "quarter": "2025-Q1"}, "quarter"),
    ],
)
def test_a_bad_period_is_a_400_naming_the_parameter(viewer, params, field):
    response = viewer.client().get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


def test_a_custom_period_in_whole_hours(viewer, pay):
    response = viewer.client().get(URL, {"start": "2025-03-05T08:00Z", "end": "2025-03-05T09:00Z"})
    assert response.status_code == 200
    assert response.json()["services"][0]["slos"][0]["total"] == 100


def test_the_report_needs_a_role(outsider, anon):
    assert outsider.client().get(URL).status_code == 403
    assert anon.get(URL).status_code == 401


def test_sending_posts_a_tracker_payload_and_is_audited(operator, viewer, pay, settings):
    with Receiver() as receiver:
        settings.BUDGETS_REPORT_WEBHOOK_URL = receiver.url
        assert (
            viewer.client().post(f"{URL}/send", {"month": "2025-03"}, format="json").status_code
            == 403
        )
        response = operator.client().post(f"{URL}/send", {"month": "2025-03"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["delivered"] is True
    [post] = receiver.posts
    assert post["content_type"] == "application/json"
    body = post["json"]
    assert body["summary"].startswith("Error-budget report 2025-03: 1 service(s) over budget")
    assert body["priority"] == "High"
    assert body["report"]["services"][0]["service"] == "pay"
    delivery = ReportDelivery.objects.get()
    assert delivery.status == "HTTP 200"
    entry = AuditEntry.objects.get(action="report.send")
    assert entry.object_id == str(delivery.pk) and entry.actor == operator.user


@pytest.mark.django_db(transaction=True)
def test_a_report_the_receiver_could_not_take_is_posted_again_with_the_same_body(
    operator, pay, settings
):
    from budgets.tasks import resend_report

    with Receiver(status=503) as receiver:
        settings.BUDGETS_REPORT_WEBHOOK_URL = receiver.url
        response = operator.client().post(f"{URL}/send", {"month": "2025-03"}, format="json")
        assert (response.json()["delivered"], response.json()["retrying"]) == (False, True)
        delivery = ReportDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("HTTP 503", 1)
        # The task (run here as the worker would, retries included): still 503, then 200.
        statuses = iter([503, 200])

        def next_status(*_):
            receiver.status = next(statuses)

        receiver.on_post = next_status
        assert resend_report.apply(args=[delivery.pk]).get() == "HTTP 200"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("HTTP 200", 3)
    assert len(receiver.posts) == 3
    assert receiver.posts[0]["json"] == receiver.posts[2]["json"] == delivery.body
    assert AuditEntry.objects.filter(action="report.send").count() == 1  # one send, retried


@pytest.mark.parametrize("answer", [400, 404])
def test_a_report_refused_by_the_receiver_is_not_retried(operator, pay, settings, answer):
    from budgets.report_exports import post_delivery

    with Receiver(status=answer) as receiver:
        settings.BUDGETS_REPORT_WEBHOOK_URL = receiver.url
        response = operator.client().post(f"{URL}/send", {"month": "2025-03"}, format="json")
        assert response.json()["retrying"] is False
        delivery = ReportDelivery.objects.get()
        assert delivery.status == f"HTTP {answer}"
        assert post_delivery(delivery) is False


def test_sending_to_a_host_off_the_allow_list_is_refused(operator, settings):
    settings.BUDGETS_REPORT_WEBHOOK_URL = "http://tracker.example.com/hook"
    response = operator.client().post(f"{URL}/send", {}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["errors"]
    assert not ReportDelivery.objects.exists()


def test_sending_without_a_configured_url_names_the_url(operator, settings):
    settings.BUDGETS_REPORT_WEBHOOK_URL = ""
    response = operator.client().post(f"{URL}/send", {"month": "2025-03"}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["errors"]


def test_sending_with_an_unknown_field_names_it(operator, settings):
    response = operator.client().post(f"{URL}/send", {"year": 2025}, format="json")
    assert response.status_code == 400
    assert "year" in response.json()["errors"]
