from django import forms

from controlplane.models import Service
from controlplane.services import SERVICE_FIELDS


class ServiceForm(forms.ModelForm):
    class Meta:
        model = Service
        fields = SERVICE_FIELDS
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False, help_text="Empty: never expires."
    )
    ingest = forms.BooleanField(required=False, label="May ingest events")
