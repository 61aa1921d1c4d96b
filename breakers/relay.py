"""The relay: nothing acknowledged is stranded. Releases events held by dead workers or past
their claim, and re-enqueues events whose dispatch task was lost."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction

from breakers.nodes import dead_node_names
from breakers.outcomes import settle_released
from replay.enqueue import enqueue_dispatch
from replay.log import due_for_relay, release_lost_claims

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    released: int
    dead: int
    enqueued: int


def sweep() -> SweepResult:
    """Lost claims first: their events are enqueued at once (a dead node's events are moving
    again one sweep after it is declared dead), then the overdue ones."""
    with transaction.atomic():
        lost = release_lost_claims(dead_node_names())
        settle_released(lost)  # dead letters counted in the ledger in the same transaction
    released, dead = len(lost.pending), len(lost.dead_services)
    due = due_for_relay()
    if due:
        transaction.on_commit(lambda: enqueue_dispatch(due))
    if released or dead or due:
        log.info("relay: released %d, dead %d, re-enqueued %d", released, dead, len(due))
    return SweepResult(released, dead, len(due))
