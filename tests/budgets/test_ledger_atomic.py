"""The SLI ledger is written in the outcome's transaction: a failure between the outcome and
the ledger write loses neither, so the ledger equals delivered + dead per SLO afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from breakers.dispatch import dispatch_events
from budgets.ledger import read_counts
from budgets.models import LedgerBucket
from replay.ingest import ingest_events
from replay.models import Event
from tests.budgets.conftest import make_slo
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]
TABLE = LedgerBucket._meta.db_table


def _refuse_ledger_writes() -> None:
    """A real database error on the ledger's table, raised by the database itself."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION cp_test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER cp_test_refuse BEFORE INSERT ON {TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION cp_test_refuse()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER cp_test_refuse BEFORE INSERT ON {TABLE} "
                "BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END"
            )


def _allow_ledger_writes() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"DROP TRIGGER cp_test_refuse ON {TABLE}")
            cursor.execute("DROP FUNCTION cp_test_refuse()")
        else:
            cursor.execute("DROP TRIGGER cp_test_refuse")


def _ledger_totals(slos) -> list[int]:
    now = timezone.now().replace(second=0, microsecond=0)
    spans = [(slo.pk, now - timedelta(hours=1), now + timedelta(minutes=2)) for slo in slos]
    counts = read_counts(spans)
    return [counts[span].total for span in spans]


def test_a_failed_ledger_write_leaves_the_outcomes_unwritten_and_redelivery_counts_them(
    checkout, operator, target
):
    events_slo = make_slo(operator, checkout, "delivery")
    latency_slo = make_slo(operator, checkout, "fast", sli="latency", latency_threshold_ms=60_000)
    make_route(checkout, operator, target=target.url)
    target.scripts["bad"] = [400, 400]  # permanent: a dead letter, counted as bad
    ingest_events([event_body(i) for i in ("ok-1", "ok-2", "ok-3", "bad")])
    pks = list(Event.objects.values_list("pk", flat=True))

    _refuse_ledger_writes()
    with pytest.raises(DatabaseError):
        dispatch_events(pks)
    _allow_ledger_writes()

    # Nothing half-written: no event is final without its ledger counts, and none is stuck
    # in its lost claim (it went back to pending for the next delivery).
    statuses = set(Event.objects.values_list("status", flat=True))
    assert statuses == {Event.Status.PENDING}
    assert _ledger_totals([events_slo, latency_slo]) == [0, 0]

    dispatch_events(pks)

    final = Event.objects.filter(status__in=[Event.Status.DELIVERED, Event.Status.DEAD]).count()
    assert final == 4
    assert _ledger_totals([events_slo, latency_slo]) == [final, final]


def test_a_failed_record_gives_back_only_its_own_events_not_others_still_in_flight(
    checkout, operator
):
    """A concurrent pool records one claim's outcomes in several batches: a failed batch must
    not release the claim's other events, whose calls may still be running."""
    from breakers.nodes import current_node
    from breakers.outcomes import record
    from replay.log import Outcome, claim_events, new_claim_token

    make_slo(operator, checkout, "delivery")
    ingest_events([event_body("done"), event_body("still-calling")])
    token = new_claim_token()
    events = {
        e.event_id: e
        for e in claim_events(
            list(Event.objects.values_list("pk", flat=True)), token=token, node="n"
        )
    }
    finished = Outcome(
        events["done"],
        None,
        timezone.now(),
        1.0,
        "permanent",
        Event.Status.DEAD,
        dead_reason="permanent",
    )
    _refuse_ledger_writes()
    with pytest.raises(DatabaseError):
        record([finished], token=token, node=current_node())
    _allow_ledger_writes()
    statuses = dict(Event.objects.values_list("event_id", "status"))
    assert statuses == {"done": Event.Status.PENDING, "still-calling": Event.Status.DISPATCHED}
