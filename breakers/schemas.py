"""Verb functions for event schemas: validated, audited, in one transaction. Every door (API,
page, admin) calls these; running workers see a change within ROUTE_REFRESH_SECONDS."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from breakers import schema_tolerance as tolerance
from breakers.models import EventSchema
from controlplane import audit

SCHEMA_FIELDS = ["service", "event_type", "version", "mode", "fields"]
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.:\-]+$")  # as ingest accepts them (replay/serializers.py)
MAX_VERSION = 10_000  # as ingest accepts schema_version


class SchemaError(ValueError):
    """A schema change that breaks a rule checked here; `field` names the field at fault
    (`fields.amount.default` for a field's spec), `path` is the same as parts."""

    def __init__(self, field: str, message: str, path: tuple[str, ...] | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message, self.path = field, message, path or (field,)

    def as_errors(self) -> dict[str, Any]:
        """The API's error shape: nested for a field's spec, {"fields": {"amount": {...}}}."""
        errors: Any = [self.message]
        for part in reversed(self.path):
            errors = {part: errors}
        return errors


def check(fields: dict[str, Any]) -> dict[str, Any]:
    """The changes as they will be stored, or SchemaError naming the first field at fault."""
    out = dict(fields)
    if "event_type" in out:
        event_type = out["event_type"]
        if not isinstance(event_type, str) or not EVENT_TYPE.match(event_type):
            raise SchemaError("event_type", "letters, digits and _ . : - only (an exact type)")
        if len(event_type) > 200:
            raise SchemaError("event_type", "at most 200 characters")
    if "version" in out:
        version = out["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise SchemaError("version", "must be a whole number")
        if not 1 <= version <= MAX_VERSION:
            raise SchemaError("version", f"must be from 1 to {MAX_VERSION}")
    if "mode" in out and out["mode"] not in EventSchema.Mode.values:
        raise SchemaError("mode", f"must be one of {', '.join(EventSchema.Mode.values)}")
    if "fields" in out:
        try:
            out["fields"] = tolerance.check_definition(out["fields"])
        except tolerance.DefinitionError as exc:
            raise SchemaError(exc.field, exc.message, exc.path) from None
    return out


def _taken(service: Any, event_type: str, version: int, exclude: int | None = None) -> bool:
    qs = EventSchema.objects.filter(service=service, event_type=event_type, version=version)
    return qs.exclude(pk=exclude).exists() if exclude else qs.exists()


def _duplicate(version: int) -> SchemaError:
    return SchemaError("version", f"version {version} of this event type is already registered")


def create_schema(*, actor: Any, **fields: Any) -> EventSchema:
    fields = check(fields)
    if _taken(fields["service"], fields["event_type"], fields.get("version", 1)):
        raise _duplicate(fields.get("version", 1))
    try:
        with transaction.atomic():
            schema = EventSchema.objects.create(**fields)
            audit.record(
                actor, "schema.create", schema, after=audit.snapshot(schema, SCHEMA_FIELDS)
            )
    except IntegrityError:  # a concurrent create of the same version won
        raise _duplicate(fields.get("version", 1)) from None
    return schema


def update_schema(schema: EventSchema, *, actor: Any, **changes: Any) -> EventSchema:
    changes = check(changes)
    key = {k: changes.get(k, getattr(schema, k)) for k in ("service", "event_type", "version")}
    if {"service", "event_type", "version"} & set(changes) and _taken(**key, exclude=schema.pk):
        raise _duplicate(key["version"])
    try:
        return audit.update_audited(
            schema, changes, actor=actor, action="schema.update", fields=SCHEMA_FIELDS
        )
    except IntegrityError:
        raise _duplicate(key["version"]) from None


def delete_schema(schema: EventSchema, *, actor: Any) -> None:
    audit.delete_audited(schema, actor=actor, action="schema.delete", fields=SCHEMA_FIELDS)


def check_payload(service: Any, event_type: str, version: int, payload: Any) -> dict[str, Any]:
    """What a handler would get for this event now, as the check endpoint and page answer it:
    `ok`, the `schema` it is held to (None: no schema, it goes as sent) and the `payload` and
    `notes`, or the `violation`. Reads the rows, not the workers' cache, so it answers for
    what was just saved (workers follow within ROUTE_REFRESH_SECONDS)."""
    rows = {
        row.version: row
        for row in EventSchema.objects.filter(service=service, event_type=event_type)
    }
    schemas = [tolerance.Schema.build(r.mode, r.fields, r.version) for r in rows.values()]
    if not schemas:
        return {"ok": True, "schema": None, "payload": payload, "notes": []}
    schemas.sort(key=lambda s: s.version)
    held: dict[str, Any] | None = None
    try:
        chosen, note = tolerance.choose(schemas, version)
        row = rows[chosen.version]
        held = {"id": row.pk, "version": row.version, "mode": row.mode}
        out, notes = tolerance.apply(chosen, payload)
    except tolerance.SchemaViolation as exc:
        violation = {"field": exc.field, "why": exc.why}
        return {"ok": False, "schema": held, "violation": violation}
    return {"ok": True, "schema": held, "payload": out, "notes": [note, *notes] if note else notes}
