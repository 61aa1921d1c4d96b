from django import forms

from replay.models import Event


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
