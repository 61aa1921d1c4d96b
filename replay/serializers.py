"""Shapes of events as they come in and go out."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import serializers

from controlplane.roles import Role, has_role
from controlplane.serializers import AwareDateTimeField, StrictSerializer
from replay.models import DeliveryAttempt, Event
from replay.redaction import redact_error


class StringField(serializers.CharField):
    """A CharField that takes only JSON strings (DRF's also turns numbers into text)."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class EventInSerializer(StrictSerializer):
    id = serializers.CharField(max_length=200)
    service = serializers.SlugField(max_length=63)
    type = serializers.RegexField(r"^[A-Za-z0-9_.:\-]+$", max_length=200)
    schema_version = serializers.IntegerField(min_value=1, max_value=10_000, default=1)
    priority = serializers.ChoiceField(choices=Event.PriorityChoices.choices, default="MEDIUM")
    occurred_at = AwareDateTimeField()
    payload = serializers.JSONField(default=dict)
    # Optional: events of the service with the same key are delivered one at a time in ingest
    # order (docs/pipeline.md, "Ordering keys"). null or absent: no order.
    ordering_key = StringField(
        max_length=200, required=False, allow_null=True, allow_blank=False, trim_whitespace=False
    )

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
    status = serializers.ChoiceField(choices=["accepted", "duplicate", "rejected", "shed"])
    reason = serializers.CharField(
        required=False,
        help_text="rejected: the first bad field and why. shed: rate_limited (the service's "
        "token bucket is empty) or overloaded (delivery is behind for this priority class).",
    )
    errors = serializers.DictField(required=False)
    retry_after = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="shed only: whole seconds after which sending it again may be admitted.",
    )


class IngestResponseSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = serializers.IntegerField()
    shed = serializers.IntegerField(
        help_text="Not acknowledged and not written: send them again after `retry_after`."
    )
    results = IngestResultSerializer(many=True)


class DeliveryErrorField(serializers.CharField):
    """A delivery error: in full for operators and above, redacted for everyone else
    (it may quote the downstream's answer). Without a request in the context: redacted."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        context = self.context  # the root serializer's dict: the role is looked up once
        if "show_delivery_errors" not in context:
            request = context.get("request")
            context["show_delivery_errors"] = bool(
                request and has_role(request.user, Role.OPERATOR)
            )
        text = super().to_representation(value)
        return text if context["show_delivery_errors"] else redact_error(text)


class AttemptSerializer(serializers.ModelSerializer):
    route = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    error = DeliveryErrorField()

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "route",
            "started_at",
            "duration_ms",
            "outcome",
            "error",
            "note",
            "node",
        ]


class EventOutSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="pk")
    event_id = serializers.CharField()
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    route = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    served_for = serializers.SlugRelatedField(
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="Served by its fallback (`route`) while this route's breaker was open.",
    )
    last_error = DeliveryErrorField()

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
            "served_for",
            "is_replay",
            "ordering_key",
            "finished_at",
            "payload",
        ]


class EventDetailSerializer(EventOutSerializer):
    attempts_log = AttemptSerializer(source="attempt_log", many=True, read_only=True)

    class Meta(EventOutSerializer.Meta):
        fields = [*EventOutSerializer.Meta.fields, "attempts_log"]
