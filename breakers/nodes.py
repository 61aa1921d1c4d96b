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
                    delivered=self.delivered,
                )
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

    def stop(self) -> None:
        self._stop.set()
        WorkerNode.objects.filter(name=self.name).update(
            stopped_at=timezone.now(), in_flight=0, delivered=self.delivered
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
    holds nothing either)."""
    cutoff = timezone.now() - unhealthy_after()
    return list(
        WorkerNode.objects.filter(last_heartbeat__lt=cutoff).values_list("name", flat=True)
    ) + list(WorkerNode.objects.filter(stopped_at__isnull=False).values_list("name", flat=True))


def forget_current_node() -> None:
    """Stop this process's heartbeat without touching the database (tests roll it back)."""
    global _node
    if _node is not None:
        _node._stop.set()
        _node = None
