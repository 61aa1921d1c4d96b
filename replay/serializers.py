"""Shapes of events as they come in and go out."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import serializers

from controlplane.serializers import StrictSerializer
from replay.models import DeliveryAttempt, Event


class EventInSerializer(StrictSerializer):
    id = serializers.CharField(max_length=200)
    service = serializers.SlugField(max_length=63)
    type = serializers.RegexField(r"^[A-Za-z0-9_.:\-]+$", max_length=200)
    schema_version = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    priority = serializers.ChoiceField(choices=Event.PriorityChoices.choices, default="MEDIUM")
    occurred_at = serializers.DateTimeField()
    payload = serializers.JSONField(default=dict)

    def validate_payload(self, value):
        size = len(json.dumps(value, separators=(",", ":")))
        if size > settings.MAX_EVENT_BYTES:
            raise serializers.ValidationError(
                f"Payload is {size} bytes; the limit is {settings.MAX_EVENT_BYTES}."
            )
        return value


class EventBatchSerializer(StrictSerializer):
    events = EventInSerializer(many=True)


class IngestResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected"])
    reason = serializers.CharField(required=False)
    errors = serializers.DictField(required=False)


class IngestResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    results = IngestResultSerializer(many=True)


class AttemptSerializer(serializers.ModelSerializer):
    route = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = DeliveryAttempt
        fields = ["number", "route", "started_at", "duration_ms", "outcome", "error", "node"]


class EventOutSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="pk")
    event_id = serializers.CharField()
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    route = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)

    class Meta:
        model = Event
        fields = [
            "id",
            "event_id",
            "service",
            "type",
            "schema_version",
            "priority",
            "occurred_at",
            "received_at",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "dead_reason",
            "route",
            "is_replay",
            "finished_at",
            "payload",
        ]


class EventDetailSerializer(EventOutSerializer):
    attempts_log = AttemptSerializer(source="attempt_log", many=True, read_only=True)

    class Meta(EventOutSerializer.Meta):
        fields = [*EventOutSerializer.Meta.fields, "attempts_log"]
