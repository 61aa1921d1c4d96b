"""SLOs, the SLI ledger, alerts, the error-budget policy, change gates and canary verdicts.

Domain logic lives in plain functions (``ledger``, ``status``, ``policy``, ``gates``,
``canaries``, ``alerts``, ``slos``, ``openslo``); these classes hold data and small derived
properties only.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from budgets.maths.windows import Window, parse_window
from controlplane.models import Service

RATIO = {"max_digits": 7, "decimal_places": 6}  # 0.990000 .. 0.999999, and 1.000000


class SLO(models.Model):
    """A service level objective: an SLI, a target over a window, and a budgeting method.

    ``events`` and ``latency`` SLIs are fed by the event pipeline (``ledger.record_outcomes``);
    ``external`` SLIs take good/total counts through ``POST /api/v1/slos/{id}/events``.
    The SLI kind and the budgeting method (with its slice length and slice target) are fixed
    when the SLO is created: the ledger's slice tallies depend on them.
    """

    class Sli(models.TextChoices):
        EVENTS = "events", "Delivery success ratio"
        LATENCY = "latency", "Deliveries under a latency threshold"
        EXTERNAL = "external", "External good/total counts"

    class Method(models.TextChoices):
        OCCURRENCES = "occurrences", "Occurrences"
        TIMESLICES = "timeslices", "Timeslices"

    PIPELINE_SLIS = (Sli.EVENTS, Sli.LATENCY)

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="slos")
    name = models.SlugField(max_length=63)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    sli = models.CharField(max_length=10, choices=Sli.choices)
    target = models.DecimalField(**RATIO, help_text="0.99 .. 0.999999 (99 % .. 99.9999 %).")
    window = models.CharField(
        max_length=100,
        help_text="rolling:<3..92>d, or calendar:month, calendar:quarter, calendar:week ... "
        "with optional ;start=<local anchor> and ;tz=<IANA zone> (budgets/maths/windows.py).",
    )
    budgeting_method = models.CharField(
        max_length=12, choices=Method.choices, default=Method.OCCURRENCES
    )
    slice_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Timeslices only: slice length, a divisor of 60."
    )
    slice_target = models.DecimalField(
        **RATIO, null=True, blank=True, help_text="Timeslices only: a slice is good at this SLI."
    )
    latency_threshold_ms = models.FloatField(
        null=True, blank=True, help_text="Latency SLIs only: a delivery is good at or under it."
    )
    openslo = models.JSONField(
        default=dict, blank=True, help_text="OpenSLO details kept for export (metric sources)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "SLO"
        ordering = ["service__slug", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="uniq_slo_name_per_service")
        ]

    def __str__(self) -> str:
        return f"{self.service.slug}/{self.name}" if self.service_id else self.name

    @property
    def window_spec(self) -> Window:
        return parse_window(self.window)

    @property
    def is_timeslices(self) -> bool:
        return self.budgeting_method == self.Method.TIMESLICES

    @property
    def slice_length(self) -> timedelta | None:
        return timedelta(minutes=self.slice_minutes) if self.is_timeslices else None

    @property
    def target_percent(self) -> Decimal:
        return (self.target * 100).normalize()


class LedgerBucket(models.Model):
    """Good/total counts of one SLO over one UTC-aligned bucket.

    Minute rows and their hourly and daily roll-ups are written by the same upsert, so they
    always agree. Label ``""`` holds all traffic; a labelled row (``canary``, ``v2``) is an
    extra copy of the labelled part, read only for canary comparisons. For a timeslices SLO,
    ``bad_slices`` counts the bad slices starting in an hour or day row; on a slice row it is
    1 when that slice is bad. Slice rows are the minute rows for 1-minute slices, else rows of
    granularity ``s`` at each slice start. See docs/budgets.md, "The ledger".
    """

    class Granularity(models.TextChoices):
        MINUTE = "m", "Minute"
        HOUR = "h", "Hour"
        DAY = "d", "Day"
        SLICE = "s", "Slice"

    # no index of its own: the unique constraint's index leads with slo
    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="+", db_index=False)
    label = models.CharField(max_length=64, blank=True, default="")
    granularity = models.CharField(max_length=1, choices=Granularity.choices)
    bucket = models.DateTimeField()
    good = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    bad_slices = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slo", "label", "granularity", "bucket"], name="uniq_ledger_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.granularity} {self.bucket:%Y-%m-%d %H:%M} {self.label}"


class ExternalCount(models.Model):
    """Counts pushed for an ``external`` SLO: one row per (bucket, source, label).

    Pushing the same key again replaces the counts; the ledger moves by the difference, so a
    retried push never counts twice.
    """

    slo = models.ForeignKey(
        SLO, on_delete=models.CASCADE, related_name="external_counts", db_index=False
    )
    bucket = models.DateTimeField()
    source = models.CharField(max_length=100)
    label = models.CharField(max_length=64, blank=True, default="")
    good = models.BigIntegerField()
    total = models.BigIntegerField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slo", "bucket", "source", "label"], name="uniq_external_count"
            )
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.bucket:%Y-%m-%d %H:%M} {self.source} {self.good}/{self.total}"


class AlertEvent(models.Model):
    """One firing of a burn-rate rule on an SLO, open until ``resolved_at`` is set."""

    class Severity(models.TextChoices):
        PAGE = "page", "Page"
        TICKET = "ticket", "Ticket"

    slo = models.ForeignKey(SLO, on_delete=models.CASCADE, related_name="alerts")
    rule = models.CharField(max_length=40)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    burn_rate_threshold = models.FloatField()
    long_window = models.DurationField()
    short_window = models.DurationField()
    long_burn_rate = models.FloatField(help_text="When it fired.")
    short_burn_rate = models.FloatField(help_text="When it fired.")
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["slo", "rule"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert_per_rule",
            )
        ]

    def __str__(self) -> str:
        return f"{self.slo_id} {self.rule} {'firing' if self.is_firing else 'resolved'}"

    @property
    def is_firing(self) -> bool:
        return self.resolved_at is None


class BudgetAlertHook(models.Model):
    """A URL that receives a JSON POST each time an alert of the service fires or resolves."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="alert_hooks")
    url = models.URLField(max_length=500)
    created_at = models.DateTimeField(default=timezone.now)
    last_status = models.CharField(max_length=200, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service__slug", "id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "url"], name="uniq_hook_per_service")
        ]

    def __str__(self) -> str:
        return f"{self.service.slug} -> {self.url}"


class ServiceDependency(models.Model):
    """``service`` depends on ``depends_on``: a change to either may impact the other."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="dependents")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "service dependencies"
        constraints = [
            models.UniqueConstraint(fields=["service", "depends_on"], name="uniq_dependency"),
            models.CheckConstraint(
                condition=~Q(service=F("depends_on")), name="no_self_dependency"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id} -> {self.depends_on_id}"


class BudgetPolicy(models.Model):
    """The error-budget policy: one global default (``service`` empty) and per-service overrides.

    An override is a whole policy: a service with one does not read the default at all.
    """

    service = models.OneToOneField(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="budget_policy"
    )
    is_default = models.BooleanField(default=False, editable=False)
    freeze_threshold = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.8"),
        help_text="Freeze when an SLO has consumed this share of its budget (0.8 = 80 %).",
    )
    request_ttl = models.DurationField(
        default=timedelta(hours=24), help_text="A request for approval lapses after this."
    )
    approval_ttl = models.DurationField(
        default=timedelta(hours=4), help_text="An approval is good for this long."
    )
    deny_on_frozen_critical = models.BooleanField(
        default=True,
        help_text="Treat a change as frozen when a tier-1 service it may impact is frozen.",
    )
    canary_tolerance = models.FloatField(
        default=0.001, help_text="Error-ratio increase a canary may show (0.001 = 0.1 point)."
    )
    canary_confidence = models.FloatField(default=0.95)
    canary_min_events = models.PositiveIntegerField(default=1000)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "budget policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_policy"
            ),
            models.CheckConstraint(
                condition=Q(is_default=True, service__isnull=True)
                | Q(is_default=False, service__isnull=False),
                name="default_policy_has_no_service",
            ),
        ]

    def __str__(self) -> str:
        return f"policy for {self.service.slug}" if self.service_id else "default policy"


class FreezeWindow(models.Model):
    """A period in which normal changes are denied and urgent ones need approval.

    Without a service it freezes every service (holidays, company events).
    """

    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="freeze_windows"
    )
    name = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="freeze_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.name


class GateDecision(models.Model):
    """The answer to "may this change go out?", one per (service, change_id).

    Status moves allow/deny (final), or approval_required -> approved | rejected | expired,
    and approved -> expired when the approval lapses. ``figures`` is the budget snapshot the
    decision was based on; ``impacted`` the services the change may affect.
    """

    class Kind(models.TextChoices):
        NORMAL = "normal", "Normal"
        URGENT = "urgent", "Urgent"
        ROLLBACK = "rollback", "Rollback"
        SECURITY = "security", "Security"

    class Status(models.TextChoices):
        ALLOW = "allow", "Allowed"
        DENY = "deny", "Denied"
        APPROVAL_REQUIRED = "approval_required", "Approval required"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        EXPIRED = "expired", "Expired"

    ALWAYS_ALLOWED = (Kind.ROLLBACK, Kind.SECURITY)

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="gate_decisions")
    change_id = models.CharField(max_length=200)
    version = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    description = models.TextField(blank=True)
    requested_by = models.CharField(max_length=150, help_text="Who asked, as CI names them.")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The account whose credentials made the check.",
    )
    status = models.CharField(max_length=20, choices=Status.choices)
    reasons = models.JSONField(default=list)
    figures = models.JSONField(default=dict)
    impacted = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a pending request or a granted approval lapses.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["service", "change_id"], name="uniq_change_per_service")
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.service.slug}:{self.change_id}" if self.service_id else self.change_id

    @property
    def permits_change(self) -> bool:
        return self.status in (self.Status.ALLOW, self.Status.APPROVED)


class CanaryVerdict(models.Model):
    """A canary comparison for a change. An unresolved ``rollback`` freezes the service."""

    class Decision(models.TextChoices):
        PROMOTE = "promote", "Promote"
        ROLLBACK = "rollback", "Roll back"
        INCONCLUSIVE = "inconclusive", "Inconclusive"

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="canary_verdicts")
    change_id = models.CharField(max_length=200)
    decision = models.CharField(max_length=12, choices=Decision.choices)
    explanation = models.TextField()
    figures = models.JSONField(default=dict)
    source = models.JSONField(default=dict, help_text="Counts given, or SLO, window and labels.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["service", "decision", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.change_id}: {self.decision}"

    @property
    def freezes(self) -> bool:
        return self.decision == self.Decision.ROLLBACK and self.resolved_at is None


class WorkItem(models.Model):
    """A tracker ticket (``OPS-123``) that addresses a service's budget spend.

    ``episode_start`` names the report episode it addresses (with ``service``); the estimated
    budget saved is given as minutes, as a share of the period's budget, or both. Changed only
    through ``budgets.work_items`` (audited).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        WONT_DO = "wont_do", "Won't do"

    key = models.CharField(max_length=64, unique=True, help_text="Tracker key, e.g. OPS-123.")
    url = models.URLField(max_length=500, blank=True)
    title = models.CharField(max_length=300)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="work_items")
    assignee = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    episode_start = models.DateTimeField(
        null=True, blank=True, help_text="Start of the report episode it addresses (UTC)."
    )
    saved_minutes = models.FloatField(
        null=True, blank=True, help_text="Estimated budget saved, in bad minutes."
    )
    saved_share = models.FloatField(
        null=True, blank=True, help_text="Estimated budget saved, as a share (0.25 = 25 %)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["service", "created_at"], name="work_item_service_at")]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"[:200]


class ReportDelivery(models.Model):
    """One post of a period's budget report to the report webhook (the audited action's row)."""

    period = models.CharField(max_length=100)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    url = models.URLField(max_length=500)
    status = models.CharField(max_length=200, blank=True, help_text="What the receiver said.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    body = models.JSONField(default=dict, blank=True, help_text="What is posted, every attempt.")
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "report deliveries"

    def __str__(self) -> str:
        return f"report {self.period} -> {self.url}"
