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


class StrictSerializer(RejectUnknownFieldsMixin, RejectNulMixin, serializers.Serializer):
    pass


class StrictModelSerializer(RejectUnknownFieldsMixin, RejectNulMixin, serializers.ModelSerializer):
    pass
