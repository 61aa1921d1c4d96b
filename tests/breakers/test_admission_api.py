"""Admission at the ingest API: the token bucket per service (most urgent first, the urgent
reserve), shedding for load from a real backlog (events ingested with no worker running),
the statuses and Retry-After, and that every acknowledged event is in the log."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from breakers import admission
from breakers.models import ShedTally
from controlplane.services import create_service
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body

pytestmark = [pytest.mark.django_db]

# A rate so low that nothing refills during a test: counts are exact.
SLOW = 0.001


@pytest.fixture
def limited(operator):
    """burst 10, reserve 0.2 * 10 = 2 tokens for CRITICAL and HIGH."""
    return create_service(
        actor=operator.user,
        slug="limited",
        name="Limited",
        team="t",
        admission_rate=SLOW,
        admission_burst=10,
    )


def post(actor, events):
    return actor.client().post("/api/v1/events", {"events": events}, format="json")


def shed_count(service: str, priority: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "controlplane_ingest_shed_total",
        {"service": service, "priority": priority, "reason": reason},
    )
    return value or 0.0


@pytest.mark.smoke
def test_a_batch_takes_tokens_most_urgent_first_and_sheds_the_rest(operator, limited):
    before = shed_count("limited", "LOW", "rate_limited")
    batch = [
        *(event_body(f"low-{i}", "limited", priority="LOW") for i in range(4)),
        *(event_body(f"med-{i}", "limited", priority="MEDIUM") for i in range(4)),
        *(event_body(f"high-{i}", "limited", priority="HIGH") for i in range(4)),
    ]
    response = post(operator, batch)
    assert response.status_code == 202, response.content
    body = response.json()
    # HIGH takes 4 of 10 tokens; MEDIUM and LOW may take 4 more (2 are the urgent reserve),
    # MEDIUM first: every LOW is shed.
    assert (body["accepted"], body["shed"]) == (8, 4)
    shed = [r for r in body["results"] if r["status"] == "shed"]
    assert [r["id"] for r in shed] == [f"low-{i}" for i in range(4)]
    assert {r["reason"] for r in shed} == {"rate_limited"}
    # 2 tokens left, 2 reserved: 4 LOW need 4 more, at 0.001/s about 4,000 s.
    waits = {r["retry_after"] for r in shed}
    assert len(waits) == 1 and 3_990 <= waits.pop() <= 4_000
    assert response["Retry-After"] == str(max(r["retry_after"] for r in shed))
    # Nothing acknowledged is lost; nothing shed is written.
    stored = set(Event.objects.filter(service=limited).values_list("event_id", flat=True))
    assert stored == {r["id"] for r in body["results"] if r["status"] == "accepted"}
    assert len(stored) == 8
    assert shed_count("limited", "LOW", "rate_limited") - before == 4
    assert sum(ShedTally.objects.filter(service=limited).values_list("count", flat=True)) == 4


@pytest.mark.smoke
def test_a_batch_all_rate_limited_is_429_and_critical_still_gets_the_reserve(operator, limited):
    assert post(operator, [event_body(f"m-{i}", "limited") for i in range(8)]).status_code == 202
    response = post(operator, [event_body(f"again-{i}", "limited") for i in range(3)])
    assert response.status_code == 429, response.content
    body = response.json()
    assert (body["accepted"], body["shed"]) == (0, 3)
    assert int(response["Retry-After"]) >= 1
    assert not Event.objects.filter(event_id__startswith="again-").exists()
    # The 2 reserved tokens are CRITICAL's and HIGH's.
    urgent = post(
        operator,
        [
            event_body("c-1", "limited", priority="CRITICAL"),
            event_body("h-1", "limited", priority="HIGH"),
            event_body("h-2", "limited", priority="HIGH"),
        ],
    )
    assert urgent.status_code == 202
    assert [r["status"] for r in urgent.json()["results"]] == ["accepted", "accepted", "shed"]
    assert set(
        Event.objects.filter(event_id__in=["c-1", "h-1"]).values_list("event_id", flat=True)
    ) == {"c-1", "h-1"}


@pytest.mark.smoke
def test_a_single_event_that_is_shed_is_429_with_the_same_body(operator, limited):
    post(operator, [event_body(f"h-{i}", "limited", priority="HIGH") for i in range(10)])
    response = operator.client().post(
        "/api/v1/events", event_body("one", "limited", priority="CRITICAL"), format="json"
    )
    assert response.status_code == 429
    body = response.json()
    assert body["results"] == [
        {
            "index": 0,
            "id": "one",
            "status": "shed",
            "reason": "rate_limited",
            "retry_after": body["results"][0]["retry_after"],
        }
    ]
    assert response["Retry-After"] == str(body["results"][0]["retry_after"])


def test_rejected_events_and_duplicates_in_the_batch_take_no_token(operator, limited):
    batch = [
        event_body("bad", "limited", occurred_at="yesterday"),
        *(event_body("twice", "limited") for _ in range(5)),
        *(event_body(f"m-{i}", "limited") for i in range(7)),
    ]
    body = post(operator, batch).json()
    # 8 distinct valid events, 8 tokens above the reserve: all accepted.
    assert (body["accepted"], body["duplicates"], body["rejected"], body["shed"]) == (8, 4, 1, 0)


def test_a_service_without_a_rate_is_not_limited(operator, checkout):
    body = post(operator, [event_body(f"e-{i}") for i in range(300)]).json()
    assert (body["accepted"], body["shed"]) == (300, 0)
    assert not ShedTally.objects.exists()  # the normal path writes no tally


def test_replays_and_operator_ingest_skip_admission(limited):
    post_items = [event_body(f"r-{i}", "limited") for i in range(20)]
    results = ingest_events(post_items, is_replay=True)
    assert {r.status for r in results} == {"accepted"}
    results = ingest_events([event_body(f"o-{i}", "limited") for i in range(20)], admission=False)
    assert {r.status for r in results} == {"accepted"}


# --------------------------------------------------------------------------- load


@pytest.fixture
def backlog(settings, checkout):
    """A real backlog: an event ingested with no worker running, and thresholds so small that
    its wait is past them; the lag is read on every request."""
    settings.SHED_CHECK_SECONDS = 0
    settings.SHED_LAG_SECONDS = {"LOW": 0.0, "MEDIUM": 0.0, "HIGH": 0.0}
    assert [r.status for r in ingest_events([event_body("waiting")])] == ["accepted"]
    assert admission.delivery_lag() > 0
    return Event.objects.get(event_id="waiting")


@pytest.mark.smoke
def test_under_load_critical_is_accepted_while_the_other_classes_are_shed(operator, backlog):
    before = shed_count("checkout", "HIGH", "overloaded")
    batch = [
        event_body(f"{p.lower()}-1", priority=p) for p in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    ]
    response = post(operator, batch)
    assert response.status_code == 202
    results = response.json()["results"]
    assert [(r["status"], r.get("reason")) for r in results] == [
        ("shed", "overloaded"),
        ("shed", "overloaded"),
        ("shed", "overloaded"),
        ("accepted", None),
    ]
    assert all(r["retry_after"] >= 1 for r in results[:3])
    assert response["Retry-After"] == str(max(r["retry_after"] for r in results[:3]))
    assert Event.objects.filter(event_id="critical-1").exists()
    assert not Event.objects.filter(event_id__in=["low-1", "medium-1", "high-1"]).exists()
    assert shed_count("checkout", "HIGH", "overloaded") - before == 1


@pytest.mark.smoke
def test_a_batch_all_shed_for_load_is_503(operator, backlog):
    response = post(operator, [event_body("low-1", priority="LOW"), event_body("m-1")])
    assert response.status_code == 503
    assert response.json()["shed"] == 2
    assert int(response["Retry-After"]) >= 1


def test_a_mix_of_overloaded_and_rate_limited_is_503(operator, limited, settings, backlog):
    settings.SHED_LAG_SECONDS = {"LOW": 0.0}
    post(operator, [event_body(f"h-{i}", "limited", priority="HIGH") for i in range(10)])
    response = post(
        operator,
        [event_body("low", "limited", priority="LOW"), event_body("m", "limited")],
    )
    assert response.status_code == 503
    reasons = [r["reason"] for r in response.json()["results"]]
    assert reasons == ["overloaded", "rate_limited"]


def test_an_event_deferred_or_retrying_later_is_not_lag(operator, backlog):
    from datetime import timedelta

    from django.utils import timezone

    Event.objects.filter(pk=backlog.pk).update(
        status=Event.Status.DEFERRED, next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert admission.delivery_lag() == 0.0
    assert post(operator, [event_body("low-1", priority="LOW")]).status_code == 202


def test_shedding_is_off_with_no_thresholds(operator, settings, backlog):
    settings.SHED_LAG_SECONDS = {}
    assert post(operator, [event_body("low-1", priority="LOW")]).json()["shed"] == 0


def test_the_lag_is_read_at_most_once_per_check_interval(operator, settings, backlog):
    settings.SHED_CHECK_SECONDS = 3600
    settings.SHED_LAG_SECONDS = {"LOW": 10_000.0}
    signal = admission.load_signal()
    signal.reset()
    reads = signal.reads
    for i in range(5):
        assert post(operator, [event_body(f"low-{i}", priority="LOW")]).status_code == 202
    assert signal.reads - reads == 1


def test_an_ingest_request_makes_no_admission_query_once_the_lag_is_fresh(
    operator, settings, limited
):
    settings.SHED_CHECK_SECONDS = 3600
    api = operator.client()
    api.post("/api/v1/events", event_body("warm", "limited", priority="LOW"), format="json")
    # Baseline: a service without a bucket and no thresholds at all.
    settings.SHED_LAG_SECONDS = {}
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as plain:
        api.post("/api/v1/events", event_body("p-1", "limited"), format="json")
    settings.SHED_LAG_SECONDS = {"LOW": 10_000.0}
    with CaptureQueriesContext(connection) as guarded:
        api.post("/api/v1/events", event_body("g-1", "limited", priority="LOW"), format="json")
    assert len(guarded) == len(plain)


# --------------------------------------------------------------------------- seen


@pytest.mark.smoke
def test_the_admission_api_and_the_service_page_show_what_was_shed(operator, limited, client):
    post(operator, [event_body(f"m-{i}", "limited") for i in range(12)])  # 8 in, 4 shed
    response = operator.client().get("/api/v1/services/limited/admission")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["rate"], data["burst"], data["effective_burst"]) == (SLOW, 10, 10)
    assert data["urgent_reserve"] == 2.0
    assert data["shed_total"] == 4
    assert data["shed_by_reason"] == {"rate_limited": 4}
    assert [(m["reason"], m["count"]) for m in data["per_minute"]] == [("rate_limited", 4)]
    assert operator.client().get("/api/v1/services/limited/admission?hours=0").status_code == 400
    assert operator.client().get("/api/v1/services/nope/admission").status_code == 404

    client.force_login(operator.user)
    page = client.get("/services/limited/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="section-admission"' in html
    assert 'data-shed-total="4"' in html
    assert "Events shed per minute" in html  # the SVG chart


def test_the_tallies_add_up_across_requests_and_are_purged_after_retention(limited, settings):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    admission.add_tallies({(limited.pk, "rate_limited"): 3}, at=now)
    admission.add_tallies({(limited.pk, "rate_limited"): 2, (limited.pk, "overloaded"): 1}, at=now)
    old = now - timedelta(days=settings.SHED_TALLY_RETENTION_DAYS + 1)
    admission.add_tallies({(limited.pk, "overloaded"): 7}, at=old)
    rows = {
        (t.reason, t.minute == now.replace(second=0, microsecond=0)): t.count
        for t in ShedTally.objects.all()
    }
    assert rows == {("rate_limited", True): 5, ("overloaded", True): 1, ("overloaded", False): 7}
    assert admission.purge_tallies(now) == 1
    assert ShedTally.objects.count() == 2
