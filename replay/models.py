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
    served_for = models.ForeignKey(
        "breakers.Route",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Delivered by this route's fallback (then `route`) while its breaker was open.",
    )
    is_replay = models.BooleanField(default=False)
    replay_run = models.ForeignKey(
        "ReplayRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="copies"
    )
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
        FALLBACK = "fallback", "Delivered by the fallback route (breaker open)"
        SCHEMA_REJECTED = "schema_rejected", "Not called: payload refused by its schema"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="attempt_log")
    route = models.ForeignKey(
        "breakers.Route", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.FloatField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error = models.TextField(blank=True)
    # What schema tolerance did to the payload the handler got (defaults, coercions).
    note = models.TextField(blank=True)
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


class Snapshot(models.Model):
    """A signed export of events to gzip JSON Lines: metadata and the signed manifest here, the
    file in the "snapshots" storage. The window is [window_start, window_end) on `received_at`."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # requested, the export task has not finished
        READY = "ready", "Ready"  # written and signed; verified if verified_at is set
        INVALID = "invalid", "Invalid"  # verification failed: cannot be replayed
        FAILED = "failed", "Export failed"

    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.PROTECT, related_name="snapshots"
    )
    types = models.JSONField(default=list, blank=True, help_text="Event types; empty: all.")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    file_name = models.CharField(max_length=300, blank=True)
    event_count = models.PositiveBigIntegerField(default=0)
    byte_size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=64, blank=True)
    manifest = models.JSONField(null=True, blank=True)
    signature = models.CharField(max_length=64, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    exported_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"snapshot {self.pk} ({self.status})"


class ReplayRun(models.Model):
    """Re-delivery of a verified snapshot's events (a sub-window, some types) through the normal
    dispatch, at a rate limit, resumable: `checkpoint` is the next line of the file to read,
    saved with the counts in the transaction that writes the replay copies."""

    class Mode(models.TextChoices):
        DRY_RUN = "dry_run", "Dry run (counts only)"
        LIVE = "live", "Live"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Source(models.TextChoices):
        SNAPSHOT = "snapshot", "A snapshot's events"
        FALLBACK = "fallback", "What the fallback served"

    FINISHED = (Status.CANCELLED, Status.DONE, Status.FAILED)

    # A "fallback" run reads the event log, not a snapshot: the events `route`'s fallback
    # served while its breaker was open, re-delivered to `route`; `checkpoint` is then the
    # next event pk to read.
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.SNAPSHOT)
    snapshot = models.ForeignKey(
        Snapshot, null=True, on_delete=models.SET_NULL, related_name="replay_runs"
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    types = models.JSONField(default=list, blank=True, help_text="Event types; empty: all.")
    route = models.ForeignKey(
        "breakers.Route",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A named alternate route; empty: today's route for each event's type.",
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.DRY_RUN)
    rate = models.FloatField(help_text="Events per second, above 0.")
    force = models.BooleanField(
        default=False, help_text="Deliver events already delivered on the target route too."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True)
    total = models.PositiveBigIntegerField(null=True, blank=True)
    done = models.PositiveBigIntegerField(default=0)
    skipped = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    checkpoint = models.PositiveBigIntegerField(default=0, help_text="Next line to read.")
    # One task works a run at a time: it holds the lease and renews it with every chunk; a task
    # of a killed worker lets it lapse within LEASE_SECONDS and another takes over.
    lease_token = models.CharField(max_length=32, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"replay {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
