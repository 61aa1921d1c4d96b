"""Schema tolerance: how strictly an event's payload is held to the shape its type declares.

Pure Python on plain dicts (no ORM), so it is tested with hypothesis and benchmarked alone.

- strict: unknown fields refused, required fields present, types exact; nothing is changed.
- lenient: unknown fields pass through unchanged; a missing optional field gets its default;
  a required field missing or of the wrong type is refused.
- coercive: lenient, plus the coercions that are unambiguous ("42" -> 42, "3.5" -> 3.5,
  42 -> "42", "true" -> True, 1.0 -> 1 for an integer, timestamps normalised to UTC).

A definition (`fields`) maps a field name to its spec: `type` (one of TYPES), and optionally
`required`, `default` (not with `required`) and `nullable`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STRICT, LENIENT, COERCIVE = "strict", "lenient", "coercive"
MODES = (STRICT, LENIENT, COERCIVE)
TYPES = ("string", "integer", "number", "boolean", "object", "array", "timestamp")
SPEC_KEYS = {"type", "required", "default", "nullable"}
MAX_FIELDS = 200
MAX_NAME = 200

_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_MISSING = object()


class SchemaViolation(ValueError):
    """The payload does not fit its schema; `field` names where (`payload`, `schema_version`
    or a field's name), `why` says how."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field, self.why = field, why


class DefinitionError(ValueError):
    """A schema definition that breaks a rule; `field` is the path at fault
    (`fields.amount.default`), `path` the same as parts (a field name may hold a dot)."""

    def __init__(self, message: str, *path: str) -> None:
        self.path = ("fields", *path)
        self.field, self.message = ".".join(self.path), message
        super().__init__(f"{self.field}: {message}")


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    nullable: bool = False
    default: Any = _MISSING

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING


@dataclass(frozen=True)
class Schema:
    """One registered version of an event type's shape, compiled for `apply`."""

    mode: str
    version: int = 1
    fields: tuple[Field, ...] = ()
    names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(cls, mode: str, fields: dict[str, Any], version: int = 1) -> Schema:
        """From a stored definition (assumed checked by `check_definition`)."""
        compiled = tuple(
            Field(
                name,
                spec["type"],
                bool(spec.get("required", False)),
                bool(spec.get("nullable", False)),
                spec.get("default", _MISSING),
            )
            # by name: Postgres's jsonb does not keep the definition's order, notes should
            for name, spec in sorted(fields.items())
        )
        return cls(mode, version, compiled, frozenset(fields))


# --- types ---------------------------------------------------------------------------------------


def parse_timestamp(value: str) -> datetime | None:
    """An ISO 8601 date and time that carries its zone, else None."""
    if len(value) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None  # a bare date, or a local time: ambiguous
        parsed.astimezone(UTC)  # 0001-01-01T00:00+01:00 has no UTC time
    except (ValueError, OverflowError):
        return None
    return parsed


def utc_iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def is_type(kind: str, value: Any) -> bool:
    """Exactly of the type: an int is a number, a bool is neither an integer nor a number."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "timestamp":
        return isinstance(value, str) and parse_timestamp(value) is not None
    return False


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shown(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python prints
        return "a very long number"
    return text if len(text) <= 40 else text[:37] + "..."


def coerce(kind: str, value: Any) -> Any:
    """The value as `kind` where the conversion is unambiguous, else _MISSING."""
    if kind == "integer":
        if isinstance(value, str) and _INTEGER.fullmatch(value):
            try:
                return int(value)
            except ValueError:  # more digits than Python converts
                return _MISSING
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
    elif kind == "number":
        if isinstance(value, str) and len(value) <= 400 and _NUMBER.fullmatch(value):
            if _INTEGER.fullmatch(value):
                try:
                    return int(value)
                except ValueError:
                    return _MISSING
            number = float(value)
            return number if math.isfinite(number) else _MISSING
    elif kind == "string":
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return str(value)
            except ValueError:  # more digits than Python prints
                return _MISSING
        if isinstance(value, float) and math.isfinite(value):
            return repr(value)
    elif kind == "boolean":
        if value == "true" and isinstance(value, str):
            return True
        if value == "false" and isinstance(value, str):
            return False
    elif kind == "timestamp" and isinstance(value, str):
        parsed = parse_timestamp(value)
        if parsed is not None:
            return utc_iso(parsed)
    return _MISSING


# --- applying a schema ---------------------------------------------------------------------------


def apply(schema: Schema, payload: Any) -> tuple[Any, list[str]]:
    """The payload the handler gets and what was done to it, or SchemaViolation.

    Strict returns the payload object itself (it never changes one); the other modes return a
    shallow copy when they change anything, so the stored event keeps what the producer sent."""
    if not isinstance(payload, dict):
        raise SchemaViolation("payload", f"must be an object, got {_json_kind(payload)}")
    mode = schema.mode
    if mode == STRICT:
        for key in payload:
            if key not in schema.names:
                # an empty key cannot name itself: the payload is at fault
                raise SchemaViolation(str(key) or "payload", f"unknown field {key!r} (strict)")
    out: dict[str, Any] | None = None
    notes: list[str] = []
    for spec in schema.fields:
        value = payload.get(spec.name, _MISSING)
        if value is _MISSING:
            if spec.required:
                raise SchemaViolation(spec.name, "required field is missing")
            if spec.has_default and mode != STRICT:
                out = dict(payload) if out is None else out
                out[spec.name] = copy.deepcopy(spec.default)
                notes.append(f"{spec.name}: missing, defaulted to {_shown(spec.default)}")
            continue
        if value is None:
            if spec.nullable:
                continue
            raise SchemaViolation(spec.name, f"must be {spec.type}, got null (not nullable)")
        if spec.type == "timestamp" and mode == COERCIVE:
            # A timestamp is normalised even when it is one already (another zone, no Z).
            fixed = coerce("timestamp", value)
            if fixed is _MISSING:
                raise SchemaViolation(spec.name, _wrong(spec, value, coercing=True))
            if fixed != value:
                out = dict(payload) if out is None else out
                out[spec.name] = fixed
                notes.append(f"{spec.name}: {_shown(value)} normalised to {fixed!r}")
            continue
        if is_type(spec.type, value):
            continue
        if mode != COERCIVE:
            raise SchemaViolation(spec.name, _wrong(spec, value, coercing=False))
        fixed = coerce(spec.type, value)
        if fixed is _MISSING:
            raise SchemaViolation(spec.name, _wrong(spec, value, coercing=True))
        out = dict(payload) if out is None else out
        out[spec.name] = fixed
        notes.append(f"{spec.name}: coerced {_shown(value)} to {_shown(fixed)}")
    return (payload if out is None else out), notes


def _wrong(spec: Field, value: Any, *, coercing: bool) -> str:
    got = _json_kind(value)
    if spec.type == "timestamp" and isinstance(value, str):
        return f"must be an ISO 8601 timestamp with a zone, got {_shown(value)}"
    if coercing:
        return f"must be {spec.type}, got {got} {_shown(value)} (no unambiguous coercion)"
    return f"must be {spec.type}, got {got}"


def choose(schemas: Sequence[Schema], version: int) -> tuple[Schema, str | None]:
    """The schema an event of `version` is held to, from the registered ones sorted by version,
    and a note when it is not that version's own. Strict: only its own version. Lenient and
    coercive: a newer version is held to the newest registered (producers ship before the
    schema is updated), an unregistered older one to the nearest older registered."""
    older = None
    for schema in schemas:
        if schema.version == version:
            return schema, None
        if schema.version < version:
            older = schema
    if older is None:
        oldest = schemas[0].version if schemas else None
        raise SchemaViolation(
            "schema_version", f"version {version} is older than any registered ({oldest})"
        )
    if older.mode == STRICT:
        registered = ", ".join(str(s.version) for s in schemas)
        raise SchemaViolation(
            "schema_version", f"version {version} is not registered (strict; have {registered})"
        )
    which = "newest" if older is schemas[-1] else "nearest older"
    return older, f"schema_version: {version} held to version {older.version} ({which} registered)"


def tolerate(schemas: Sequence[Schema], version: int, payload: Any) -> tuple[Any, list[str]]:
    """`choose` then `apply`: the payload for the handler and the notes, or SchemaViolation."""
    schema, note = choose(schemas, version)
    out, notes = apply(schema, payload)
    return out, ([note, *notes] if note else notes)


# --- checking a definition -----------------------------------------------------------------------


def check_definition(fields: Any) -> dict[str, dict[str, Any]]:
    """The definition as stored, or DefinitionError naming the field at fault."""
    if not isinstance(fields, dict):
        raise DefinitionError("must be an object of field name to spec")
    if len(fields) > MAX_FIELDS:
        raise DefinitionError(f"at most {MAX_FIELDS} fields")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in fields.items():
        if not isinstance(name, str) or not name or len(name) > MAX_NAME:
            raise DefinitionError(f"a field name must be 1-{MAX_NAME} characters")
        if not isinstance(spec, dict):
            raise DefinitionError('must be an object such as {"type": "string"}', name)
        unknown = sorted(str(k) for k in spec if k not in SPEC_KEYS)
        if unknown:
            known = ", ".join(sorted(SPEC_KEYS))
            raise DefinitionError(f"unknown key (known: {known})", name, unknown[0])
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in TYPES:
            raise DefinitionError(f"must be one of {', '.join(TYPES)}", name, "type")
        for flag in ("required", "nullable"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise DefinitionError("must be true or false", name, flag)
        nullable = spec.get("nullable", False)
        if "default" in spec:
            if spec.get("required"):
                raise DefinitionError("a required field takes no default", name, "default")
            default = spec["default"]
            if default is None and not nullable:
                raise DefinitionError("null, but the field is not nullable", name, "default")
            if default is not None and not is_type(kind, default):
                raise DefinitionError(f"is not of the type {kind}", name, "default")
        out[str(name)] = {
            k: spec[k] for k in ("type", "required", "default", "nullable") if k in spec
        }
    return out


def json_schema(fields: dict[str, dict[str, Any]], mode: str = STRICT) -> dict[str, Any]:
    """The equivalent JSON Schema (draft 2020-12) of a definition, for producers and the bench.
    Timestamps are strings with `format: date-time` (asserted only by format-checking
    validators); defaults are annotations there, applied by nobody."""
    names = {
        "string": "string",
        "integer": "integer",
        "number": "number",
        "boolean": "boolean",
        "object": "object",
        "array": "array",
        "timestamp": "string",
    }
    props: dict[str, Any] = {}
    for name, spec in fields.items():
        kind: Any = names[spec["type"]]
        prop: dict[str, Any] = {"type": [kind, "null"] if spec.get("nullable") else kind}
        if spec["type"] == "timestamp":
            prop["format"] = "date-time"
        if "default" in spec:
            prop["default"] = spec["default"]
        props[name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": props,
        "required": [n for n, s in fields.items() if s.get("required")],
        "additionalProperties": mode != STRICT,
    }
