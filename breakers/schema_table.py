"""The event schemas workers hold payloads to: cached per process and reloaded when any schema
changes, on the route table's clock (ROUTE_REFRESH_SECONDS), so an edit reaches running workers
within seconds and dispatch costs no query per event or batch."""

from __future__ import annotations

from dataclasses import dataclass

from breakers.models import EventSchema
from breakers.refreshed import Refreshed
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


_cache: Refreshed[SchemaTable] = Refreshed(EventSchema, load_table)


def schema_table() -> SchemaTable:
    return _cache.get()


def forget_schemas() -> None:
    """Drop the cached table (tests roll back rows behind its back)."""
    _cache.forget()
