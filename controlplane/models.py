"""Project-wide models: API tokens, services and the audit log."""

from __future__ import annotations

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

# Bounds of a service's token bucket: far above any real producer, low enough that a typo
# (an extra six zeros) is caught rather than silently meaning "no limit".
MAX_ADMISSION_RATE = 1_000_000.0
MAX_ADMISSION_BURST = 10_000_000


def validate_admission_rate(value: float | None) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value <= 0 or value > MAX_ADMISSION_RATE:
        raise ValidationError(
            f"Events per second: a number above 0 and at most {MAX_ADMISSION_RATE:,.0f} "
            "(empty: no limit).",
            code="invalid",
        )


def validate_admission_burst(value: int | None) -> None:
    if value is None:
        return
    if value < 1 or value > MAX_ADMISSION_BURST:
        raise ValidationError(
            f"Burst: a whole number from 1 to {MAX_ADMISSION_BURST:,} (empty: one second of rate).",
            code="invalid",
        )


class ApiToken(models.Model):
    """A named bearer token. Only its SHA-256 is stored; the secret is shown once."""

    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest events"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters, to recognise a token.")
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="uniq_token_name_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable(self, now=None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class Service(models.Model):
    """A service whose events we dispatch and whose error budgets we keep."""

    class Tier(models.TextChoices):
        TIER_1 = "tier-1", "Tier 1 (critical)"
        TIER_2 = "tier-2", "Tier 2"
        TIER_3 = "tier-3", "Tier 3"
        TIER_4 = "tier-4", "Tier 4 (best effort)"

    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    team = models.CharField(max_length=100, help_text="Owning team.")
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.TIER_2)
    description = models.TextField(blank=True)
    # Admission at ingest (breakers/admission.py): a token bucket per service.
    admission_rate = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_admission_rate],
        help_text="Events per second admitted at ingest (token bucket). Empty: no limit.",
    )
    admission_burst = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[validate_admission_burst],
        help_text="Bucket size: events admitted at once. Empty: one second of rate (at least 1).",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    @property
    def effective_burst(self) -> int | None:
        """The bucket's size as admission uses it; None when there is no bucket."""
        return effective_burst(self.admission_rate, self.admission_burst)


def effective_burst(rate: float | None, burst: int | None) -> int | None:
    if rate is None:
        return None
    return burst if burst is not None else max(1, math.ceil(rate))


class AuditEntry(models.Model):
    """One row per change, written in the same transaction as the change itself."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_label = models.CharField(max_length=150, help_text="Username, kept if the user goes.")
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=100)
    object_repr = models.CharField(max_length=200)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_repr}"
