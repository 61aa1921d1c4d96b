"""Worker nodes: each dispatching process heartbeats; three missed heartbeats = unhealthy, and
the events it holds are released by the relay."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from breakers.models import WorkerNode

log = logging.getLogger(__name__)
MISSED_BEATS = 3


class NodeState:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.name = f"{socket.gethostname()}:{self.pid}"
        self.in_flight = 0
        self.delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        WorkerNode.objects.update_or_create(
            name=self.name,
            defaults={
                "hostname": socket.gethostname(),
                "pid": self.pid,
                "started_at": timezone.now(),
                "last_heartbeat": timezone.now(),
                "stopped_at": None,
                "in_flight": 0,
                "delivered": 0,
            },
        )
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(settings.HEARTBEAT_SECONDS):
            try:
                WorkerNode.objects.filter(name=self.name).update(
                    last_heartbeat=timezone.now(),
                    in_flight=self.current_in_flight(),
                    in_flight_by_route=self.current_by_route(),
                    delivered=self.delivered,
                )
                observe_backlog(backlog())
            except Exception:  # the database may blink; the next beat tries again
                log.exception("heartbeat failed")
            finally:
                connection.close()  # a beat every few seconds; holding a connection is worse

    def current_in_flight(self) -> int:
        """Calls running plus events queued in this process's delivery pool."""
        from breakers import pool

        current = pool._pool
        if current is None or current.pid != self.pid:
            return self.in_flight
        return current.in_flight()

    def current_by_route(self) -> dict[str, int]:
        from breakers import pool

        current = pool._pool
        if current is None or current.pid != self.pid:
            return {}
        with current.cv:
            return {name: n for name, n in current.running_by_route.items() if n}

    def stop(self) -> None:
        self._stop.set()
        WorkerNode.objects.filter(name=self.name).update(
            stopped_at=timezone.now(), in_flight=0, in_flight_by_route={}, delivered=self.delivered
        )


_node: NodeState | None = None
_lock = threading.Lock()


def current_node() -> NodeState:
    """This process's node, started on first use (after a fork, the child starts its own)."""
    global _node
    if _node is None or _node.pid != os.getpid():
        with _lock:
            if _node is None or _node.pid != os.getpid():
                node = NodeState()
                node.start()
                _node = node
    return _node


def stop_current_node() -> None:
    if _node is not None and _node.pid == os.getpid():
        _node.stop()


def unhealthy_after() -> timedelta:
    return timedelta(seconds=settings.HEARTBEAT_SECONDS * MISSED_BEATS)


def dead_node_names() -> list[str]:
    """Nodes that stopped heartbeating without saying goodbye (or said it: a stopped node
    holds nothing either). Only those that could still hold an unexpired claim: an older
    node's claims have expired anyway, and the list stays short however many nodes ever ran."""
    now = timezone.now()
    cutoff = now - unhealthy_after()
    recent = now - unhealthy_after() - timedelta(seconds=settings.CLAIM_SECONDS)
    return list(
        WorkerNode.objects.filter(last_heartbeat__gte=recent)
        .filter(Q(last_heartbeat__lt=cutoff) | Q(stopped_at__isnull=False))
        .values_list("name", flat=True)
    )


def forget_current_node() -> None:
    """Stop this process's heartbeat without touching the database (tests roll it back)."""
    global _node
    if _node is not None:
        _node._stop.set()
        _node = None


# --- what waits: the event log's backlog, whatever the workers say ---------------------------

PRIORITIES = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]


def backlog(now=None) -> list[dict]:
    """Per priority class: events not finished (pending, deferred or dispatched) and the age in
    seconds of the oldest of them. One grouped query on the event log."""
    from django.db.models import Count, Min

    from replay.models import Event

    now = now or timezone.now()
    waiting = [Event.Status.PENDING, Event.Status.DEFERRED, Event.Status.DISPATCHED]
    found = {
        row["priority"]: row
        for row in Event.objects.filter(status__in=waiting)
        .values("priority")
        .annotate(n=Count("id"), oldest=Min("received_at"))
    }
    rows = []
    for priority in PRIORITIES:
        row = found.get(priority)
        age = (now - row["oldest"]).total_seconds() if row and row["oldest"] else 0.0
        rows.append({"priority": priority, "waiting": row["n"] if row else 0, "oldest_s": age})
    return rows


def observe_backlog(rows: list[dict]) -> None:
    from breakers.telemetry import OLDEST_PENDING_SECONDS, PENDING

    for row in rows:
        PENDING.labels(row["priority"]).set(row["waiting"])
        OLDEST_PENDING_SECONDS.labels(row["priority"]).set(row["oldest_s"])


def in_flight_by_route() -> dict[str, int]:
    """Calls running per route over the healthy nodes, as of their last heartbeats."""
    cutoff = timezone.now() - unhealthy_after()
    totals: dict[str, int] = {}
    for by_route in WorkerNode.objects.filter(
        stopped_at__isnull=True, last_heartbeat__gte=cutoff
    ).values_list("in_flight_by_route", flat=True):
        for name, n in (by_route or {}).items():
            totals[name] = totals.get(name, 0) + int(n)
    return totals
