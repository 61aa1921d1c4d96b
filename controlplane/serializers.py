"""Serializer bases shared by every app's API."""

from __future__ import annotations

from rest_framework import serializers


class RejectUnknownFieldsMixin:
    """Unknown keys are a 400 naming them, not silently dropped (a typo must not pass)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            known = set(self.fields)
            unknown = [key for key in data if key not in known]
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class StrictSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    pass
