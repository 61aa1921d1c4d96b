"""The write-ahead event log, the delivery attempts made for each event, and delivery records."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from controlplane.models import Service
from controlplane.queues import Priority


class Event(models.Model):
    """An event as accepted: it is committed here before the client hears "accepted"."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # waiting to be dispatched (first time or retry)
        DISPATCHED = "dispatched", "Dispatched"  # claimed by a worker until claimed_until
        DELIVERED = "delivered", "Delivered"
        DEFERRED = "deferred", "Deferred"  # breaker open: waits for it to close
        DEAD = "dead", "Dead letter"

    class PriorityChoices(models.TextChoices):
        CRITICAL = Priority.CRITICAL.value, "Critical"
        HIGH = Priority.HIGH.value, "High"
        MEDIUM = Priority.MEDIUM.value, "Medium"
        LOW = Priority.LOW.value, "Low"

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="events")
    event_id = models.CharField(max_length=200, help_text="Client-chosen id: the dedupe key.")
    type = models.CharField(max_length=200)
    schema_version = models.PositiveIntegerField(default=1)
    priority = models.CharField(
        max_length=8, choices=PriorityChoices.choices, default=PriorityChoices.MEDIUM
    )
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    payload = models.JSONField(default=dict)
    batch_id = models.UUIDField(help_text="The ingest request that wrote this row.")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    dead_reason = models.CharField(max_length=40, blank=True)
    route = models.ForeignKey(
        "breakers.Route", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_token = models.CharField(max_length=32, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claims = models.PositiveIntegerField(default=0, help_text="Times a worker took it.")
    ordering_key = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="Events of one service with the same key are delivered one at a time, in "
        "ingest order. Empty: no order.",
    )
    is_replay = models.BooleanField(default=False)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["service", "event_id"], name="uniq_event_per_service")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["claim_token"]),
            models.Index(fields=["status", "finished_at"]),
            models.Index(fields=["batch_id"]),
            # "Is an earlier event of this key still in play?": only keyed events that are not
            # final are in it, so it stays small and costs unkeyed events nothing.
            models.Index(
                fields=["service", "ordering_key", "id"],
                name="event_key_in_play",
                condition=~models.Q(ordering_key="")
                & models.Q(status__in=["pending", "deferred", "dispatched"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id}:{self.event_id}"


class DeliveryAttempt(models.Model):
    """One call of a handler (or one decision not to call it), kept for the retention period."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (retryable)"
        TIMEOUT = "timeout", "Timed out"
        PERMANENT = "permanent", "Failed permanently"
        BREAKER_OPEN = "breaker_open", "Not called: breaker open"
        DUPLICATE = "duplicate", "Not called: already delivered"
        NO_ROUTE = "no_route", "Not called: no route"
        LOST = "lost", "Outcome lost: claim given back"
        BULKHEAD_FULL = "bulkhead_full", "Not called: bulkhead full"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attempt_log")
    route = models.ForeignKey(
        "breakers.Route", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    node = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["started_at"]), models.Index(fields=["event", "number"])]

    def __str__(self) -> str:
        return f"{self.event_id}#{self.number} {self.outcome}"


class DeliveryRecord(models.Model):
    """The durable half of idempotency: at most one row per (route, event) that was delivered.
    Written in the same transaction as the event's status, so a Redis restart lets nothing
    through twice."""

    route = models.ForeignKey("breakers.Route", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    delivered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["route", "event"], name="uniq_delivery_per_route")
        ]

    def __str__(self) -> str:
        return f"route {self.route_id} event {self.event_id}"
