import re
from datetime import timedelta

from django import forms
from django.apps import apps
from django.utils import timezone

from controlplane.models import Service
from replay.models import Event, ReplayRun, Snapshot

EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.:\-]+$")  # as ingest accepts them


class DeadLetterFilterForm(forms.Form):
    service = forms.SlugField(required=False)
    type = forms.CharField(required=False, max_length=200)
    route = forms.SlugField(required=False)
    reason = forms.ChoiceField(
        required=False,
        choices=[
            ("", "any"),
            ("max_attempts", "max attempts"),
            ("permanent", "permanent"),
            ("no_route", "no route"),
            ("redelivery_cap", "redelivery cap"),
            ("schema", "schema"),
        ],
    )
    since = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )


class EventFilterForm(forms.Form):
    service = forms.SlugField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Event.Status.choices])
    type = forms.CharField(required=False, max_length=200)


class SnapshotForm(forms.Form):
    """The snapshot create form; times are UTC, the window is [start, end)."""

    service = forms.ModelChoiceField(
        queryset=Service.objects.order_by("slug"),
        to_field_name="slug",
        required=False,
        empty_label="all services",
    )
    types = forms.CharField(
        required=False, max_length=2000, help_text="Comma-separated event types; empty: all."
    )
    window_start = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    window_end = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean_types(self) -> list[str]:
        types = [t.strip() for t in self.cleaned_data["types"].split(",") if t.strip()]
        bad = [t for t in types if not EVENT_TYPE.match(t) or len(t) > 200]
        if bad:
            raise forms.ValidationError(f"Not an event type: {', '.join(bad)}")
        return types

    def clean(self):
        data = super().clean()
        end = data.get("window_end") or timezone.now()
        start = data.get("window_start") or end - timedelta(hours=24)
        if "window_start" in data and "window_end" in data and start >= end:
            self.add_error("window_end", "Must be after the start.")
        data["window_start"], data["window_end"] = start, end
        return data


class ReplayForm(forms.Form):
    """The replay form. Forcing is offered to admins only (the view checks it again)."""

    snapshot = forms.ModelChoiceField(
        queryset=Snapshot.objects.filter(status=Snapshot.Status.READY).select_related("service")
    )
    window_start = forms.DateTimeField(
        required=False,
        label="From (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Empty: the snapshot's window.",
    )
    window_end = forms.DateTimeField(
        required=False,
        label="Until (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    types = forms.CharField(
        required=False, max_length=2000, help_text="Comma-separated; empty: all."
    )
    route = forms.CharField(
        required=False,
        max_length=100,
        help_text="An alternate route's name; empty: today's routes.",
    )
    mode = forms.ChoiceField(choices=ReplayRun.Mode.choices, initial=ReplayRun.Mode.DRY_RUN)
    rate = forms.FloatField(initial=100, max_value=100_000, label="Rate (events/s)")
    force = forms.BooleanField(required=False, label="Also re-deliver what was delivered")

    clean_types = SnapshotForm.clean_types

    def clean_route(self):
        name = self.cleaned_data["route"].strip()
        if not name:
            return None
        # By app label, not an import: replay imports controlplane only (DESIGN.md).
        route = apps.get_model("breakers", "Route").objects.filter(name=name).first()
        if route is None:
            raise forms.ValidationError(f"Unknown route {name!r}.")
        return route

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if not rate > 0:
            raise forms.ValidationError("Must be above 0 events per second.")
        return rate

    def clean(self):
        data = super().clean()
        start, end, snapshot = (
            data.get("window_start"),
            data.get("window_end"),
            data.get("snapshot"),
        )
        if snapshot is not None and (end or snapshot.window_end) <= (
            start or snapshot.window_start
        ):
            self.add_error("window_end", "Must be after the start.")
        elif snapshot is not None and min(end or snapshot.window_end, snapshot.window_end) <= max(
            start or snapshot.window_start, snapshot.window_start
        ):
            self.add_error("window_start", "Outside the snapshot's window.")
        route = data.get("route")
        if (
            route is not None
            and snapshot is not None
            and snapshot.service_id
            not in (
                None,
                route.service_id,
            )
        ):
            self.add_error("route", "Not a route of the snapshot's service.")
        return data
