import re
from datetime import timedelta

from django import forms
from django.utils import timezone

from controlplane.models import Service
from replay.models import Event

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
