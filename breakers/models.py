"""Routes (which handler gets which events) and the worker nodes that run them."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from controlplane.models import Service


def new_signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Route(models.Model):
    """Maps a service's event type (exact, or a pattern such as `order.*`) to a handler."""

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook (HTTP POST)"
        PYTHON = "python", "Python function"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="routes")
    name = models.SlugField(max_length=100, unique=True, help_text="Also names its breaker.")
    event_type = models.CharField(
        max_length=200, help_text="Exact type, or a glob such as order.* or *."
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    target = models.CharField(max_length=500, help_text="URL, or an allow-listed dotted path.")
    secret = models.CharField(
        max_length=100, default=new_signing_secret, help_text="HMAC-SHA256 key for X-Signature."
    )
    timeout_seconds = models.FloatField(default=5.0)
    max_attempts = models.PositiveIntegerField(default=8)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["service_id", "name"]

    def __str__(self) -> str:
        return self.name


class WorkerNode(models.Model):
    """A worker process that dispatches events; it heartbeats while it lives. Events it has
    claimed are released when three heartbeats go missing."""

    name = models.CharField(max_length=200, unique=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat = models.DateTimeField(default=timezone.now, db_index=True)
    in_flight = models.PositiveIntegerField(default=0)
    delivered = models.PositiveBigIntegerField(default=0)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_heartbeat"]

    def __str__(self) -> str:
        return self.name


class DemoDownstream(models.Model):
    """A pretend downstream service for the demo: its failure rate and latency are set from
    the demo page, and demo traffic is sent to it through ordinary webhook routes."""

    name = models.SlugField(max_length=50, unique=True)
    failure_rate = models.FloatField(default=0.05, help_text="Share of calls answered 503.")
    latency_ms = models.PositiveIntegerField(default=30)
    traffic_per_tick = models.PositiveIntegerField(
        default=5, help_text="Demo events emitted every 2 s (0 stops them)."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
