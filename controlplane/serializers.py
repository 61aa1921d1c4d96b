"""Serializer bases shared by every app's API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(part: object) -> str:
    """A path component safe to echo back (the bad characters themselves cannot be encoded)."""
    return str(part).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first string (keys included) in a parsed JSON value that no database can store, as
    ``(problem, where)``: ``("nul", "payload.a.0")`` or ``("surrogate", "payload.s")``, else None.

    PostgreSQL stores NUL neither in text nor in jsonb; a lone UTF-16 surrogate (JSON text
    ``"\\ud800"``, which Python's json accepts) cannot be encoded as UTF-8, so psycopg, jsonb
    and the JSON renderer all fail on it. Iterative, so deep nesting cannot exhaust the stack.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "nul", where
            if _LONE_SURROGATE.search(item):
                return "surrogate", where
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                inner = f"{where}.{_printable(key)}" if where else _printable(key)
                stack.append((child, inner))
                stack.append((key, f"{inner} (the key)"))
        elif isinstance(item, list):
            stack.extend((child, f"{where}.{i}") for i, child in reversed(list(enumerate(item))))
    return None


def holds_nul(value: Any) -> bool:
    found = bad_text(value)
    return found is not None and found[0] == "nul"


def bad_text_message(problem: str, where: str) -> str:
    if problem == "nul":
        return "Null characters are not allowed."
    return f"Not valid Unicode at {where}: a lone surrogate (U+D800 to U+DFFF) is not text."


class RejectUnknownFieldsMixin:
    """Unknown keys are a 400 naming them, not silently dropped (a typo must not pass)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = set(self.fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                raise serializers.ValidationError(
                    {_printable(key): ["Unknown field."] for key in unknown}
                )
        return super().to_internal_value(data)


class RejectNulMixin:
    """Text no database can store is a 400 naming the field: a NUL character, or a lone
    surrogate, anywhere in a field's value (keys and nested values included).

    PostgreSQL stores NUL neither in text nor in jsonb, and a lookup given one fails in the
    database: fuzzing found 500s from slug-related fields (`"service": "a\\u0000"`) that DRF's
    own NUL check, which covers CharField only, does not reach. A lone surrogate gave 500 on
    PostgreSQL and, stored on SQLite, broke every listing that rendered it.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            errors = {}
            for key, value in data.items():
                found = bad_text(value, _printable(key))
                if found is not None:
                    errors[_printable(key)] = [bad_text_message(*found)]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


def json_type_error(field: serializers.Field, value) -> str | None:
    """The message when a JSON value is not of the type the schema documents for `field`.

    DRF coerces (`"description": 0` becomes "0", `"max_attempts": "3"` becomes 3, `1` becomes
    True) while the OpenAPI schema says string, integer, boolean: the fuzzer's invalid input
    was accepted. Strict bodies take the documented type only (None is left to allow_null).
    """
    if value is None or isinstance(field, serializers.ChoiceField):
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be a boolean."
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "Not a valid string."
    if isinstance(field, serializers.IntegerField):
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if whole and not isinstance(value, bool) else "A valid integer is required."
    if isinstance(field, serializers.FloatField):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return None if number else "A valid number is required."
    return None


class RejectCoercionMixin:
    """A JSON value of another type than the field's is a 400 naming the field."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            bad = {}
            for key, value in data.items():
                field = self.fields.get(key)
                if field is None or field.read_only:
                    continue  # unknown fields have their own message; read-only are ignored
                message = json_type_error(field, value)
                if message:
                    bad[key] = [message]
            if bad:
                raise serializers.ValidationError(bad)
        return super().to_internal_value(data)


class StrictSerializer(
    RejectUnknownFieldsMixin, RejectNulMixin, RejectCoercionMixin, serializers.Serializer
):
    pass


class StrictModelSerializer(
    RejectUnknownFieldsMixin, RejectNulMixin, RejectCoercionMixin, serializers.ModelSerializer
):
    pass


class AwareDateTimeField(serializers.DateTimeField):
    """A time that must carry its zone (``Z`` or ``+01:00``): DRF would read a naive one in
    the server's zone without a word, and a client's local time would be stored hours off."""

    default_error_messages = {
        "naive": "Give a time zone (2026-11-28T12:00:00Z or 2026-11-28T13:00:00+01:00): "
        "a time without one is ambiguous."
    }

    def to_internal_value(self, value: Any) -> datetime:
        if isinstance(value, str):
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # DRF's own parsing names the format
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        elif isinstance(value, datetime) and value.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(value)
