"""Forms of the breaker pages and the admin. They check types and ranges; the engine's own
rules (breakers.engine.BreakerConfig, through breakers.control) have the last word, and an
error it raises ("field: message") is put on the field it names."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from typing import Any

from django import forms

from breakers import control, routes, schema_tolerance, schemas
from breakers.engine import BreakerConfig, HalfOpenPolicy, Outcome, WindowType
from breakers.models import CircuitBreaker, EventSchema, Route
from controlplane.models import Service

MODES = [
    (CircuitBreaker.Forced.FORCED_OPEN, "Force open"),
    (CircuitBreaker.Forced.FORCED_CLOSED, "Force closed"),
    (CircuitBreaker.Forced.DISABLED, "Disable"),
    ("automatic", "Back to automatic"),
]

# Every BreakerConfig setting, in its declared order: the page edits what the API's `config`
# and the admin's JSON accept (tests/breakers/test_half_open_policy_doors.py).
CONFIG_FIELDS = [f.name for f in dataclass_fields(BreakerConfig)]
DYNAMIC_FIELDS = list(control.DYNAMIC_SETTINGS)


def add_engine_error(form: forms.Form, exc: ValueError, default_field: str | None = None) -> None:
    """Put an engine ValueError ("field: message") on the field it names, if the form has it."""
    field, sep, message = str(exc).partition(": ")
    if sep and field in form.fields:
        form.add_error(field, message)
    else:
        form.add_error(default_field, str(exc))


def stored_config(breaker: CircuitBreaker) -> dict[str, Any]:
    """Defaults plus the row's overrides (the dynamic value is not part of it)."""
    try:
        return BreakerConfig.from_dict(breaker.config or {}).to_dict()
    except ValueError:  # rows are validated on write; an old bad row shows the defaults
        return BreakerConfig().to_dict()


class ForceForm(forms.Form):
    mode = forms.ChoiceField(choices=MODES)
    reason = forms.CharField(
        max_length=1000,
        widget=forms.TextInput(attrs={"placeholder": "Why? (required, audited)", "size": 48}),
    )


class ThresholdsForm(forms.Form):
    consecutive_failures = forms.IntegerField(
        min_value=0, max_value=10_000, help_text="Failures in a row that trip it; 0 turns it off."
    )
    failure_rate_threshold = forms.FloatField(
        label="Failure-rate threshold (%)",
        required=False,
        min_value=0,
        max_value=100,
        help_text="Percent; empty turns it off.",
    )
    slow_call_rate_threshold = forms.FloatField(
        label="Slow-call-rate threshold (%)",
        required=False,
        min_value=0,
        max_value=100,
        help_text="Percent; empty turns it off.",
    )
    slow_call_duration_s = forms.FloatField(
        label="Slow-call duration (s)",
        min_value=0.001,
        max_value=3600,
        help_text="Seconds; a call this long is slow.",
    )
    window_type = forms.ChoiceField(
        choices=[
            (WindowType.COUNT.value, "count: the last N calls"),
            (WindowType.TIME.value, "time: the last N seconds"),
        ]
    )
    window_size = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        help_text="Calls (count, up to 10 000) or seconds (time, up to 3 600).",
    )
    minimum_calls = forms.IntegerField(
        min_value=1,
        max_value=10_000,
        help_text="Rates are judged from this many calls; at most the size of a count window.",
    )
    failure_outcomes = forms.MultipleChoiceField(
        choices=[(o.value, o.value) for o in Outcome if o is not Outcome.SUCCESS],
        widget=forms.CheckboxSelectMultiple,
        help_text="Outcomes that count as failures.",
    )
    open_wait_s = forms.FloatField(
        label="Open wait (s)",
        min_value=0.001,
        max_value=3600,
        help_text="Seconds of the first OPEN period.",
    )
    open_wait_multiplier = forms.FloatField(
        min_value=1,
        max_value=100,
        help_text="Each failed probe multiplies the next OPEN period by this.",
    )
    max_open_wait_s = forms.FloatField(
        label="Max open wait (s)",
        min_value=0.001,
        max_value=86_400,
        help_text="Cap of the backed-off OPEN period.",
    )
    half_open_policy = forms.ChoiceField(
        label="Half-open policy",
        choices=[
            (HalfOpenPolicy.FIRST_FAILURE.value, "first failure re-opens (probes)"),
            (
                HalfOpenPolicy.FAILURE_RATE.value,
                "failure rate of permitted calls (Resilience4j)",
            ),
        ],
        help_text="How HALF_OPEN decides; see docs/breakers.md.",
    )
    half_open_max_probes = forms.IntegerField(
        label="Half-open max probes",
        min_value=1,
        max_value=1000,
        help_text="first failure: probes in flight at once, cluster-wide.",
    )
    half_open_success_threshold = forms.IntegerField(
        label="Half-open success threshold",
        min_value=1,
        max_value=1000,
        help_text="first failure: successful probes that close it.",
    )
    half_open_probe_interval_s = forms.FloatField(
        label="Half-open probe interval (s)",
        min_value=0,
        max_value=3600,
        help_text="Minimum spacing of probe starts, cluster-wide.",
    )
    probe_lease_s = forms.FloatField(
        label="Probe lease (s)",
        min_value=0.001,
        max_value=3600,
        help_text="A probe never recorded frees its slot after this.",
    )
    half_open_permitted_calls = forms.IntegerField(
        label="Half-open permitted calls",
        min_value=1,
        max_value=10_000,
        help_text="failure rate: calls let through in total, judged together once done.",
    )
    half_open_max_wait_s = forms.FloatField(
        label="Half-open max wait (s)",
        min_value=0,
        max_value=86_400,
        help_text="HALF_OPEN longer than this re-opens; 0: no limit.",
    )
    dynamic_field = forms.ChoiceField(
        choices=CircuitBreaker.Dynamic.choices,
        required=False,
        label="Dynamic threshold",
        help_text="Set this threshold from its metric: mean + k sigma over the window.",
    )
    dynamic_k = forms.FloatField(min_value=0, max_value=10, label="k")
    dynamic_window_s = forms.IntegerField(
        min_value=30, max_value=86_400, label="Dynamic window (s)"
    )
    dynamic_query = forms.CharField(
        max_length=500,
        required=False,
        label="PromQL query",
        help_text="Used instead of the control plane's own samples when PROMETHEUS_URL is set.",
    )

    @staticmethod
    def initial_for(breaker: CircuitBreaker) -> dict[str, Any]:
        config = stored_config(breaker)
        return {
            **{name: config[name] for name in CONFIG_FIELDS},
            **{name: getattr(breaker, name) for name in DYNAMIC_FIELDS},
        }

    def clean_failure_outcomes(self) -> list[str]:
        return sorted(self.cleaned_data["failure_outcomes"])  # as BreakerConfig.to_dict() has it

    def changes(self, breaker: CircuitBreaker) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config changes, dynamic-setting changes) against the breaker's stored values:
        a field left as it was is not sent, so it does not become an override."""
        current = self.initial_for(breaker)
        data = self.cleaned_data
        config = {n: data[n] for n in CONFIG_FIELDS if data[n] != current[n]}
        dynamic = {n: data[n] for n in DYNAMIC_FIELDS if data[n] != current[n]}
        return config, dynamic


class CircuitBreakerAdminForm(forms.ModelForm):
    """The admin edits the overrides as JSON; the engine validates them here, and the admin
    saves through breakers.control so every change is audited."""

    reason = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Required when the forced state changes; recorded in the audit log.",
    )

    class Meta:
        model = CircuitBreaker
        fields = ["config", "forced_state", *DYNAMIC_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["forced_state"].choices = [("", "Automatic"), *CircuitBreaker.Forced.choices]

    def clean_config(self) -> dict[str, Any]:
        config = self.cleaned_data.get("config")
        if config in (None, ""):
            return {}
        if not isinstance(config, dict):
            raise forms.ValidationError("A JSON object of BreakerConfig settings.")
        try:
            BreakerConfig.from_dict(config)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        return config

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "forced_state" in self.changed_data and not data.get("reason", "").strip():
            self.add_error("reason", "A reason is required to change the forced state.")
        return data


class RouteForm(forms.ModelForm):
    """A route, with both allow-lists checked (the page and the admin use it)."""

    # The bulkhead is optional: left empty, a route has none (and waits the default).
    max_concurrent_calls = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=100_000,
        help_text="Bulkhead: calls in flight at most, over all workers (empty or 0 = no limit).",
    )
    max_wait_ms = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=60_000,
        help_text="Bulkhead: how long an event waits for a slot before it is deferred (ms).",
    )

    class Meta:
        model = Route
        fields = routes.ROUTE_FIELDS

    def clean_max_concurrent_calls(self) -> int:
        value = self.cleaned_data.get("max_concurrent_calls")
        return 0 if value is None else value

    def clean_max_wait_ms(self) -> int:
        value = self.cleaned_data.get("max_wait_ms")
        return Route._meta.get_field("max_wait_ms").default if value is None else value

    def clean(self):
        data = super().clean()
        error = routes.target_error(data.get("kind", ""), data.get("target", ""))
        if error:
            self.add_error("target", error)
        route = self.instance if self.instance.pk else None
        service = data.get("service")
        if service is not None and (
            error := routes.fallback_error(route, service, data.get("fallback_route"))
        ):
            self.add_error("fallback_route", error)
        return data


class EventSchemaForm(forms.ModelForm):
    """An event schema (the page and the admin use it); the verbs' own check
    (breakers.schemas.check) has the last word and names the field at fault."""

    fields = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text='Field name -> spec, e.g. {"amount": {"type": "integer", "required": true}, '
        '"currency": {"type": "string", "default": "EUR"}}. Types: '
        + ", ".join(schema_tolerance.TYPES)
        + ".",
    )

    class Meta:
        model = EventSchema
        fields = schemas.SCHEMA_FIELDS

    def clean_fields(self):
        value = self.cleaned_data.get("fields")
        return {} if value is None else value

    def clean(self):
        data = super().clean()
        try:
            checked = schemas.check({k: data[k] for k in schemas.SCHEMA_FIELDS if k in data})
        except schemas.SchemaError as exc:
            where = exc.path[0] if exc.path[0] in self.fields else None
            inner = ".".join(exc.path[1:])
            self.add_error(where, f"{inner}: {exc.message}" if inner else exc.message)
            return data
        data.update(checked)
        return data


class SchemaCheckForm(forms.Form):
    """The page's "try a payload" box: what would a handler get?"""

    service = forms.ModelChoiceField(
        queryset=Service.objects.order_by("slug"), to_field_name="slug"
    )
    type = forms.RegexField(regex=schemas.EVENT_TYPE, max_length=200, label="Event type")
    schema_version = forms.IntegerField(min_value=1, max_value=schemas.MAX_VERSION, initial=1)
    payload = forms.JSONField(widget=forms.Textarea(attrs={"rows": 5, "cols": 60}))
