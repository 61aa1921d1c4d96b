"""POST /api/v1/slos/{id}/events: external counts, idempotent per (bucket, source)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from budgets.models import LedgerBucket
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def pushed(operator):
    service = make_service(operator, "search")
    return make_slo(operator, service, "queries", sli="external")


def minute_ago(n: int = 1) -> datetime:
    return timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=n)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def day_row(slo, label=""):
    row = LedgerBucket.objects.filter(slo=slo, granularity="d", label=label).order_by("bucket")
    return [(r.good, r.total) for r in row]


def test_counts_land_in_the_ledger_and_a_retry_does_not_double_them(operator, pushed):
    bucket = minute_ago(3)
    body = {"source": "prom-a", "counts": [{"bucket": iso(bucket), "good": 95, "total": 100}]}
    api = operator.client()
    first = api.post(f"/api/v1/slos/{pushed.pk}/events", body, format="json")
    assert first.status_code == 200, first.content
    assert first.json() | {"alerts": None} == {
        "accepted": 1,
        "replaced": 0,
        "unchanged": 0,
        "alerts": None,  # what the push made fire: tests/budgets/test_alerts_on_demand.py
    }
    again = api.post(f"/api/v1/slos/{pushed.pk}/events", body, format="json")
    assert again.json() | {"alerts": None} == {
        "accepted": 0,
        "replaced": 0,
        "unchanged": 1,
        "alerts": None,
    }
    assert day_row(pushed)[-1] == (95, 100)


def test_a_new_push_for_the_same_key_replaces_and_another_source_adds(operator, pushed):
    bucket = iso(minute_ago(2))
    api = operator.client()
    url = f"/api/v1/slos/{pushed.pk}/events"
    api.post(
        url, {"source": "a", "counts": [{"bucket": bucket, "good": 9, "total": 10}]}, format="json"
    )
    replaced = api.post(
        url, {"source": "a", "counts": [{"bucket": bucket, "good": 7, "total": 12}]}, format="json"
    )
    assert replaced.json()["replaced"] == 1
    api.post(
        url, {"source": "b", "counts": [{"bucket": bucket, "good": 1, "total": 1}]}, format="json"
    )
    minute = LedgerBucket.objects.get(slo=pushed, granularity="m", label="")
    assert (minute.good, minute.total) == (8, 13)
    assert sum(r[1] for r in day_row(pushed)) == 13


def test_labelled_counts_are_kept_under_their_label_too(operator, pushed):
    bucket = iso(minute_ago())
    counts = [
        {"bucket": bucket, "good": 90, "total": 100, "label": "canary"},
        {"bucket": bucket, "good": 900, "total": 900, "label": "baseline"},
    ]
    response = operator.client().post(
        f"/api/v1/slos/{pushed.pk}/events", {"source": "lb", "counts": counts}, format="json"
    )
    assert response.json()["accepted"] == 2
    assert day_row(pushed)[-1] == (990, 1000)
    assert day_row(pushed, "canary")[-1] == (90, 100)
    assert day_row(pushed, "baseline")[-1] == (900, 900)


@pytest.mark.parametrize(
    ("count", "field"),
    [
        ({"good": -1, "total": 10}, "good"),
        ({"good": 1, "total": -10}, "total"),
        ({"good": 11, "total": 10}, "counts[0].good"),
        ({"good": 1.5, "total": 10}, "good"),
    ],
)
def test_bad_counts_are_refused_naming_the_field(operator, pushed, count, field):
    body = {"source": "a", "counts": [{"bucket": iso(minute_ago()), **count}]}
    response = operator.client().post(f"/api/v1/slos/{pushed.pk}/events", body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json()["errors"])
    assert not LedgerBucket.objects.exists()


@pytest.mark.parametrize(
    ("bucket", "words"),
    [
        (lambda: iso(minute_ago() + timedelta(seconds=30)), "start of a minute"),
        (lambda: iso(minute_ago(-3)), "future"),
        (lambda: iso(minute_ago(200 * 1440)), "older"),
    ],
)
def test_bad_buckets_are_refused(operator, pushed, bucket, words):
    body = {"source": "a", "counts": [{"bucket": bucket(), "good": 1, "total": 1}]}
    response = operator.client().post(f"/api/v1/slos/{pushed.pk}/events", body, format="json")
    assert response.status_code == 400
    assert words in response.json()["errors"]["counts[0].bucket"][0]


def test_a_repeated_key_in_one_push_is_refused(operator, pushed):
    bucket = iso(minute_ago())
    counts = [{"bucket": bucket, "good": 1, "total": 1}, {"bucket": bucket, "good": 2, "total": 2}]
    response = operator.client().post(
        f"/api/v1/slos/{pushed.pk}/events", {"source": "a", "counts": counts}, format="json"
    )
    assert response.status_code == 400
    assert "counts[1]" in response.json()["errors"]


def test_pipeline_slos_do_not_take_pushes(operator, shop):
    _, events_slo = shop
    body = {"source": "a", "counts": [{"bucket": iso(minute_ago()), "good": 1, "total": 1}]}
    response = operator.client().post(f"/api/v1/slos/{events_slo.pk}/events", body, format="json")
    assert response.status_code == 400
    assert "sli" in response.json()["errors"]


def test_viewers_may_not_push(viewer, pushed):
    body = {"source": "a", "counts": [{"bucket": iso(minute_ago()), "good": 1, "total": 1}]}
    assert (
        viewer.client().post(f"/api/v1/slos/{pushed.pk}/events", body, format="json").status_code
        == 403
    )


def test_an_ingest_token_may_push(viewer, pushed):
    from rest_framework.test import APIClient

    from controlplane.tokens import issue_token

    secret = issue_token(viewer.user, name="pusher", scopes=["ingest"]).secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"source": "a", "counts": [{"bucket": iso(minute_ago()), "good": 1, "total": 1}]}
    assert client.post(f"/api/v1/slos/{pushed.pk}/events", body, format="json").status_code == 200
