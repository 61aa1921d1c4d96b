"""Ordering keys: events of one service with the same `ordering_key` are delivered one at a
time in ingest order; a retrying event holds the later events of its key (and only of its
key), a dead-lettered one releases them; events without a key flow as before."""

from __future__ import annotations

import pytest

from breakers.dispatch import dispatch_events
from replay.ingest import ingest_events
from replay.log import claim_events, new_claim_token
from replay.models import Event
from tests.conftest import event_body, make_route, uses_postgres
from tests.workers import celery_worker, wait_for

FINAL = ["delivered", "dead"]


def _keyed(key: str, count: int) -> list[dict]:
    return [event_body(f"{key}-{seq}", ordering_key=key) for seq in range(count)]


# --- at ingest -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.smoke
def test_ingest_keeps_the_ordering_key_and_the_api_shows_it(checkout, operator):
    response = operator.client().post(
        "/api/v1/events",
        {"events": [event_body("a", ordering_key="order-17"), event_body("b")]},
        format="json",
    )
    assert response.status_code == 202, response.content
    keys = dict(Event.objects.values_list("event_id", "ordering_key"))
    assert keys == {"a": "order-17", "b": ""}
    listed = operator.client().get("/api/v1/events").json()["results"]
    assert {row["event_id"]: row["ordering_key"] for row in listed} == keys


@pytest.mark.django_db
@pytest.mark.smoke
@pytest.mark.parametrize(
    "value",
    [17, "", "k" * 201, ["a"], {"k": 1}, True],
    ids=["int", "empty", "long", "list", "object", "bool"],
)
def test_a_bad_ordering_key_rejects_that_event_alone_naming_the_field(checkout, operator, value):
    response = operator.client().post(
        "/api/v1/events",
        {"events": [event_body("bad", ordering_key=value), event_body("good")]},
        format="json",
    )
    assert response.status_code == 202, response.content
    bad, good = response.json()["results"]
    assert bad["status"] == "rejected" and "ordering_key" in bad["errors"], bad
    assert good["status"] == "accepted"


# --- claims ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_claim_takes_only_the_head_of_each_key(checkout, operator):
    ingest_events([*_keyed("a", 3), *_keyed("b", 2), event_body("free-1"), event_body("free-2")])
    pks = list(Event.objects.values_list("pk", flat=True))
    claimed = {e.event_id for e in claim_events(pks, token=new_claim_token(), node="n")}
    assert claimed == {"a-0", "b-0", "free-1", "free-2"}
    # while a-0 is in flight, nothing else of key a can be taken
    again = {e.event_id for e in claim_events(pks, token=new_claim_token(), node="n")}
    assert again == set()


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_key_is_per_service(checkout, operator):
    from controlplane.services import create_service

    create_service(actor=operator.user, slug="billing", name="B", team="t", tier="tier-2")
    ingest_events(
        [event_body("c-0", ordering_key="k"), event_body("b-0", "billing", ordering_key="k")]
    )
    pks = list(Event.objects.values_list("pk", flat=True))
    claimed = {e.event_id for e in claim_events(pks, token=new_claim_token(), node="n")}
    assert claimed == {"c-0", "b-0"}


@pytest.mark.django_db
@pytest.mark.smoke
def test_each_delivery_of_a_head_lets_the_next_event_of_its_key_be_taken(
    checkout, operator, target
):
    make_route(checkout, operator, target=target.url)
    ingest_events(_keyed("a", 3))
    pks = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    for _ in range(3):
        dispatch_events(pks)
    assert [c["event_id"] for c in target.calls] == ["a-0", "a-1", "a-2"]


# --- with a real worker ----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not uses_postgres(), reason="two worker processes need Postgres")
def test_a_real_worker_keeps_each_key_in_order_and_other_keys_flowing(
    checkout, operator, target, tmp_path
):
    target.delay = 0.005
    make_route(checkout, operator, target=target.url, max_attempts=3)
    target.scripts["retry-0"] = [503, 503]  # fails twice, then succeeds: holds its key
    target.scripts["dead-0"] = [400]  # permanent: dead letter, releases its key
    keys = {"retry": 8, "dead": 8, **{f"k{n}": 8 for n in range(6)}}
    events: list[dict] = []
    for seq in range(8):  # interleaved, as producers would send them
        events += [event_body(f"{key}-{seq}", ordering_key=key) for key in keys]
        events += [event_body(f"free-{seq}-{n}") for n in range(4)]
    assert all(r.status == "accepted" for r in ingest_events(events))
    total = len(events)

    env = {"CONTROLPLANE_DISPATCH_BATCH": "5", "CONTROLPLANE_RETRY_BASE_SECONDS": "0.5"}
    with celery_worker(pool="prefork", concurrency=2, extra_env=env, log_path=tmp_path / "w.log"):
        done = wait_for(
            lambda: Event.objects.filter(status__in=FINAL).count() == total, timeout=180
        )
    assert done, (tmp_path / "w.log").read_text()[-3000:]

    calls = list(target.calls)
    per_key: dict[str, list[tuple[int, float]]] = {}
    for call in calls:
        key, seq = call["event_id"].rsplit("-", 1)
        if key in keys:
            per_key.setdefault(key, []).append((int(seq), call["wall"]))
    # In ingest order, each event's calls before the next event's: 0, 0, 0, 1, 2, ...
    for key, seen in per_key.items():
        sequence = [seq for seq, _ in seen]
        assert sequence == sorted(sequence), (key, sequence)
        assert sorted(set(sequence)) == list(range(keys[key])), (key, sequence)
    assert [seq for seq, _ in per_key["retry"]][:4] == [0, 0, 0, 1]
    # One at a time: no event of a key is called before the one ahead of it finished.
    finished = {
        eid: at.timestamp() for eid, at in Event.objects.values_list("event_id", "finished_at")
    }
    for key, seen in per_key.items():
        firsts: dict[int, float] = {}
        for seq, wall in seen:
            firsts.setdefault(seq, wall)
        for seq in range(1, keys[key]):
            assert firsts[seq] >= finished[f"{key}-{seq - 1}"], (key, seq)
    # The dead-lettered head released its key; the retrying head held only its own.
    statuses = dict(Event.objects.values_list("event_id", "status"))
    assert statuses["dead-0"] == "dead"
    assert all(statuses[f"dead-{seq}"] == "delivered" for seq in range(1, 8))
    retry_calls = [i for i, c in enumerate(calls) if c["event_id"] == "retry-0"]
    others_meanwhile = {
        c["event_id"]
        for c in calls[retry_calls[0] : retry_calls[-1]]
        if not c["event_id"].startswith("retry-")
    }
    assert others_meanwhile, "other keys and unkeyed events keep flowing while one key waits"


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_head_lost_too_often_is_dead_and_hands_its_key_on(
    checkout, operator, settings, django_capture_on_commit_callbacks
):
    from django.utils import timezone

    from breakers.models import WorkerNode
    from breakers.relay import sweep

    settings.MAX_CLAIMS = 1
    ingest_events(_keyed("a", 2))
    pks = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    WorkerNode.objects.create(
        name="gone:1", hostname="gone", pid=1, last_heartbeat=now, stopped_at=now
    )
    assert [e.event_id for e in claim_events(pks, token=new_claim_token(), node="gone:1")] == [
        "a-0"
    ]
    with django_capture_on_commit_callbacks() as callbacks:
        assert sweep().dead == 1
    enqueued = [cb.args[0] for cb in callbacks if getattr(cb, "args", None)]
    assert enqueued == [[(pks[1], "MEDIUM")]]
    assert [e.event_id for e in claim_events(pks, token=new_claim_token(), node="n")] == ["a-1"]


@pytest.mark.django_db
@pytest.mark.smoke
def test_the_relay_resends_only_heads_not_events_waiting_for_their_key(checkout, settings):
    from datetime import timedelta

    from django.utils import timezone

    from replay.log import due_for_relay

    ingest_events([*_keyed("a", 3), event_body("free")])
    Event.objects.update(next_attempt_at=timezone.now() - timedelta(hours=1))  # all overdue
    sent = dict(Event.objects.values_list("pk", "event_id"))
    assert sorted(sent[pk] for pk, _ in due_for_relay()) == ["a-0", "free"]
