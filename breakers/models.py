"""Routes (which handler gets which events) and the worker nodes that run them."""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from breakers.engine import OPERATOR_STATES
from breakers.engine import State as EngineState
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
    max_concurrent_calls = models.PositiveIntegerField(
        default=0,
        help_text="Bulkhead: calls in flight at most, over all workers (0 = no limit).",
    )
    max_wait_ms = models.PositiveIntegerField(
        default=50,
        help_text="Bulkhead: how long an event waits for a slot before it is deferred.",
    )
    max_attempts = models.PositiveIntegerField(default=8)
    enabled = models.BooleanField(default=True)
    when_open = models.CharField(
        max_length=12,
        choices=[("defer", "Defer until the breaker closes"), ("dead_letter", "Dead-letter")],
        default="defer",
        help_text="What happens to an event while the route's breaker is open (when no "
        "fallback route is set).",
    )
    fallback_route = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="fallback_for",
        help_text="Receives this route's events while its breaker is open (a cache warmer, a "
        "degraded handler); takes precedence over when_open. Same service, one hop.",
    )
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
    in_flight_by_route = models.JSONField(
        default=dict, blank=True, help_text="Calls running per route, as of the last heartbeat."
    )
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


def _choices(states: list[EngineState]) -> list[tuple[str, tuple[str, str]]]:
    return [(s.name, (s.slug, s.slug.replace("_", " ").capitalize())) for s in states]


# The engine's states as stored (`State.slug`): the one vocabulary of breaker states for the
# models, pages, metrics and admin. Generated, so it cannot drift from breakers.engine.State.
BreakerState = models.TextChoices("BreakerState", _choices(list(EngineState)))
ForcedState = models.TextChoices(
    "ForcedState", _choices([s for s in EngineState if s in OPERATOR_STATES])
)


class CircuitBreaker(models.Model):
    """The breaker guarding one route (it takes the route's name): thresholds as a
    BreakerConfig dict, the operator's override, a dynamic threshold, and the state as workers
    last reported it. Workers re-read this row within seconds of a change."""

    State = BreakerState
    Forced = ForcedState  # the states an operator may force

    class Dynamic(models.TextChoices):
        NONE = "", "None"
        SLOW_CALL_DURATION = "slow_call_duration_s", "Slow-call duration"

    route = models.OneToOneField(Route, on_delete=models.CASCADE, related_name="breaker")
    config = models.JSONField(default=dict, blank=True, help_text="BreakerConfig overrides.")
    forced_state = models.CharField(max_length=16, choices=Forced.choices, blank=True)
    forced_reason = models.TextField(blank=True)
    forced_by = models.CharField(max_length=150, blank=True)
    forced_at = models.DateTimeField(null=True, blank=True)

    dynamic_field = models.CharField(
        max_length=32, choices=Dynamic.choices, blank=True, default=Dynamic.NONE
    )
    dynamic_k = models.FloatField(default=2.0)
    dynamic_window_s = models.PositiveIntegerField(default=300)
    dynamic_query = models.CharField(
        max_length=500, blank=True, help_text="PromQL, used when PROMETHEUS_URL is set."
    )
    dynamic_value = models.FloatField(null=True, blank=True)
    dynamic_source = models.CharField(max_length=20, blank=True)
    dynamic_computed_at = models.DateTimeField(null=True, blank=True)

    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["route__name"]

    def __str__(self) -> str:
        return self.route.name if self.route_id else "breaker"


class BreakerTransition(models.Model):
    """One state change of a breaker, with the window's figures that caused it."""

    breaker = models.ForeignKey(
        CircuitBreaker, on_delete=models.CASCADE, related_name="transitions"
    )
    name = models.CharField(max_length=100, db_index=True)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=200)
    node = models.CharField(max_length=200)
    at = models.DateTimeField(db_index=True)
    calls = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0)
    slow_calls = models.PositiveIntegerField(default=0)
    failure_rate = models.FloatField(default=0)
    slow_call_rate = models.FloatField(default=0)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["breaker", "-at"], name="transition_breaker_at")]

    def __str__(self) -> str:
        return f"{self.name}: {self.from_state} -> {self.to_state}"


class ShedTally(models.Model):
    """Events shed at ingest per service, minute and reason (rate_limited, overloaded), for the
    service page's chart and the admission API. Written only when something was shed."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    reason = models.CharField(max_length=20)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "minute", "reason"], name="uniq_shed_tally_minute"
            )
        ]
        indexes = [models.Index(fields=["minute"])]

    def __str__(self) -> str:
        return f"{self.service_id} {self.minute:%Y-%m-%d %H:%M} {self.reason}: {self.count}"


class EventSchema(models.Model):
    """The declared shape of one version of a service's event type, and how strictly workers
    hold payloads to it before the handler is called (breakers/schema_tolerance.py). `fields`
    maps a field name to {"type", "required", "default", "nullable"}; it is checked by
    `schema_tolerance.check_definition` in the verbs (breakers/schemas.py)."""

    class Mode(models.TextChoices):
        STRICT = "strict", "Strict (exact shape, nothing changed)"
        LENIENT = "lenient", "Lenient (unknown fields pass, defaults filled)"
        COERCIVE = "coercive", "Coercive (lenient, plus unambiguous conversions)"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="event_schemas")
    event_type = models.CharField(max_length=200, help_text="Exact event type (no pattern).")
    version = models.PositiveIntegerField(default=1, help_text="The events' schema_version.")
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LENIENT)
    fields = models.JSONField(default=dict, blank=True, help_text="Field name -> spec.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["service_id", "event_type", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "event_type", "version"], name="uniq_schema_version"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="schema_version_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version}"
