"""A per-process table built from rows, kept until the rows change: the route table and the
schema table both work this way, so the hot path reads memory and an edit still reaches every
running worker within ROUTE_REFRESH_SECONDS, without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.conf import settings
from django.db.models import Count, Max, Model

T = TypeVar("T")


class Refreshed(Generic[T]):
    def __init__(self, model: type[Model], load: Callable[[], T]) -> None:
        self._model = model
        self._load = load
        self._lock = threading.Lock()
        self._table: T | None = None
        self._stamp: tuple | None = None
        self._checked = 0.0

    def get(self) -> T:
        now = time.monotonic()
        table = self._table
        if table is not None and now - self._checked < settings.ROUTE_REFRESH_SECONDS:
            return table
        with self._lock:
            # Count and latest edit: a delete changes the count, an edit the latest updated_at
            # (one aggregate query per refresh, whatever the number of rows).
            found = self._model._default_manager.aggregate(n=Count("id"), at=Max("updated_at"))
            stamp = tuple(found.values())
            if self._table is None or stamp != self._stamp:
                self._table, self._stamp = self._load(), stamp
            self._checked = now
            return self._table

    def forget(self) -> None:
        """Drop the cached table (tests roll back rows behind its back)."""
        with self._lock:
            self._table, self._stamp = None, None
