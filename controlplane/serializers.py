"""Serializer bases shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers


def holds_nul(value) -> bool:
    """Whether a NUL character is in a string anywhere in a parsed JSON value (keys included).
    Iterative, so a deeply nested body cannot exhaust the stack."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class RejectUnknownFieldsMixin:
    """Unknown keys are a 400 naming them, not silently dropped (a typo must not pass)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = set(self.fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class RejectNulMixin:
    """A NUL character anywhere in a field's value is a 400 naming the field.

    PostgreSQL stores NUL neither in text nor in jsonb, and a lookup given one fails in the
    database: fuzzing found 500s from slug-related fields (`"service": "a\\u0000"`) that DRF's
    own NUL check, which covers CharField only, does not reach.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            bad = [key for key, value in data.items() if holds_nul(value)]
            if bad:
                raise serializers.ValidationError(
                    {key: ["Null characters are not allowed."] for key in bad}
                )
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
