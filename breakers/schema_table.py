"""The event schemas workers hold payloads to: cached per process and reloaded when any schema
changes, on the route table's clock (ROUTE_REFRESH_SECONDS), so an edit reaches running workers
within seconds and dispatch costs no query per event or batch."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, Max

from breakers.models import EventSchema
from breakers.schema_tolerance import Schema


@dataclass(frozen=True)
class SchemaTable:
    # service id -> event type -> its versions, oldest first (nested: no tuple built per event)
    by_service: dict[int, dict[str, list[Schema]]]


EMPTY = SchemaTable({})


def load_table() -> SchemaTable:
    by_service: dict[int, dict[str, list[Schema]]] = {}
    for row in EventSchema.objects.order_by("service_id", "event_type", "version"):
        types = by_service.setdefault(row.service_id, {})
        types.setdefault(row.event_type, []).append(Schema.build(row.mode, row.fields, row.version))
    return SchemaTable(by_service) if by_service else EMPTY


_lock = threading.Lock()
_table: SchemaTable | None = None
_stamp: tuple | None = None
_checked = 0.0


def schema_table() -> SchemaTable:
    global _table, _stamp, _checked
    now = time.monotonic()
    if _table is not None and now - _checked < settings.ROUTE_REFRESH_SECONDS:
        return _table
    with _lock:
        # count and latest edit: a delete changes the count, an edit the latest updated_at
        stamp = tuple(EventSchema.objects.aggregate(n=Count("id"), at=Max("updated_at")).values())
        if _table is None or stamp != _stamp:
            _table, _stamp = load_table(), stamp
        _checked = now
        return _table


def forget_schemas() -> None:
    """Drop the cached table (tests roll back rows behind its back)."""
    global _table, _stamp
    with _lock:
        _table, _stamp = None, None
