"""Admin for the budgets app. Policies, freeze windows, dependencies, alert hooks and SLO
deletions go through the same audited verbs as the API and the pages (budgets.policy,
budgets.alerts, budgets.slos); the forms ask the verbs' own checks so a bad value is a form
error, not a 500. Gate decisions, alerts and canary verdicts are logs: read only."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from budgets import alerts, policy, slos, work_items
from budgets.maths import InvalidInput
from budgets.models import (
    SLO,
    AlertEvent,
    BudgetAlertHook,
    BudgetPolicy,
    CanaryVerdict,
    FreezeWindow,
    GateDecision,
    ReportDelivery,
    ServiceDependency,
    WorkItem,
)
from controlplane import egress
from controlplane.admin import ReadOnlyAdmin, VerbAdmin


def _add_invalid(form: forms.BaseForm, exc: InvalidInput) -> None:
    """Put a verb's InvalidInput on the field it names (or on the form)."""
    form.add_error(exc.field if exc.field in form.fields else None, f"{exc.field} {exc.problem}")


@admin.register(SLO)
class SloAdmin(VerbAdmin):
    """SLOs are defined through the API, the pages or OpenSLO import; here they are read and
    may be deleted (with their ledger), through the verb."""

    list_display = ["__str__", "sli", "target", "window", "budgeting_method", "updated_at"]
    list_filter = ["sli", "budgeting_method", "window"]
    search_fields = ["name", "service__slug"]

    def remove(self, request, obj):
        slos.delete_slo(obj, actor=request.user)


class DependencyForm(forms.ModelForm):
    class Meta:
        model = ServiceDependency
        fields = ["service", "depends_on"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("service") and data.get("depends_on"):
            try:
                policy.check_dependency(data["service"], data["depends_on"])
            except InvalidInput as exc:
                _add_invalid(self, exc)
        return data


@admin.register(ServiceDependency)
class ServiceDependencyAdmin(VerbAdmin):
    """An edge is added or removed; to move one, remove it and add another."""

    form = DependencyForm
    list_display = ["service", "depends_on", "created_at"]
    search_fields = ["service__slug", "depends_on__slug"]

    def create(self, request, form):
        data = form.cleaned_data
        return policy.add_dependency(data["service"], data["depends_on"], actor=request.user)

    def remove(self, request, obj):
        policy.remove_dependency(obj, actor=request.user)


class PolicyForm(forms.ModelForm):
    class Meta:
        model = BudgetPolicy
        fields = ["service", *policy.POLICY_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        adding_default = self.instance.pk is None and not data.get("service")
        if adding_default and BudgetPolicy.objects.filter(is_default=True).exists():
            self.add_error("service", "The default policy exists: change it instead.")
        try:
            policy.clean_policy_fields({f: data[f] for f in policy.POLICY_FIELDS if f in data})
        except InvalidInput as exc:
            _add_invalid(self, exc)
        return data


@admin.register(BudgetPolicy)
class BudgetPolicyAdmin(VerbAdmin):
    """A service's override, or (no service) the default policy."""

    form = PolicyForm
    list_display = ["__str__", "freeze_threshold", "request_ttl", "approval_ttl", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["service"] if obj else []  # the scope of a policy is fixed

    def has_delete_permission(self, request, obj=None):
        # The default policy can be changed, not deleted (policy.delete_policy refuses too).
        return super().has_delete_permission(request, obj) and not (obj and obj.is_default)

    def create(self, request, form):
        data = form.cleaned_data
        fields = {f: data[f] for f in policy.POLICY_FIELDS}
        return policy.save_policy(data.get("service"), actor=request.user, **fields)

    def update(self, request, obj, changes):
        scope = None if obj.is_default else obj.service
        policy.save_policy(scope, actor=request.user, **changes)

    def remove(self, request, obj):
        policy.delete_policy(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset.filter(is_default=False))


class FreezeWindowForm(forms.ModelForm):
    class Meta:
        model = FreezeWindow
        fields = policy.FREEZE_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at"):
            try:
                policy.check_freeze_window(data["starts_at"], data["ends_at"])
            except InvalidInput as exc:
                _add_invalid(self, exc)
        return data


@admin.register(FreezeWindow)
class FreezeWindowAdmin(VerbAdmin):
    form = FreezeWindowForm
    list_display = ["name", "service", "starts_at", "ends_at"]
    list_filter = ["service"]

    def create(self, request, form):
        fields = {f: form.cleaned_data[f] for f in policy.FREEZE_FIELDS}
        return policy.create_freeze_window(actor=request.user, **fields)

    def update(self, request, obj, changes):
        policy.update_freeze_window(obj, actor=request.user, **changes)

    def remove(self, request, obj):
        policy.delete_freeze_window(obj, actor=request.user)


class AlertHookForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https")

    class Meta:
        model = BudgetAlertHook
        fields = ["service", "url"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        reason = egress.refusal(url, resolve=True)  # the one outbound URL rule
        if reason:
            raise forms.ValidationError(reason)
        return url


@admin.register(BudgetAlertHook)
class BudgetAlertHookAdmin(VerbAdmin):
    """A hook is added or removed; to change its URL, add the new one and remove the old."""

    form = AlertHookForm
    list_display = ["service", "url", "last_status", "last_sent_at"]

    def create(self, request, form):
        data = form.cleaned_data
        return alerts.add_hook(data["service"], data["url"], actor=request.user)

    def remove(self, request, obj):
        alerts.remove_hook(obj, actor=request.user)


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["slo", "rule", "severity", "fired_at", "resolved_at"]
    list_filter = ["severity", "rule"]


@admin.register(GateDecision)
class GateDecisionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "status", "requested_by", "created_at", "decided_by"]
    list_filter = ["status", "kind"]
    search_fields = ["change_id", "service__slug", "requested_by"]


@admin.register(CanaryVerdict)
class CanaryVerdictAdmin(ReadOnlyAdmin):
    list_display = ["change_id", "service", "decision", "created_at", "resolved_at"]
    list_filter = ["decision"]


class WorkItemForm(forms.ModelForm):
    url = forms.URLField(max_length=500, required=False, assume_scheme="https")

    class Meta:
        model = WorkItem
        fields = work_items.FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            work_items.clean({f: data[f] for f in work_items.FIELDS if f in data}, partial=True)
        except InvalidInput as exc:
            _add_invalid(self, exc)
        return data


@admin.register(WorkItem)
class WorkItemAdmin(VerbAdmin):
    form = WorkItemForm
    list_display = ["key", "title", "service", "assignee", "status", "saved_minutes"]
    list_filter = ["status"]
    search_fields = ["key", "title", "assignee", "service__slug"]

    def create(self, request, form):
        fields = {f: form.cleaned_data[f] for f in work_items.FIELDS}
        return work_items.create_work_item(actor=request.user, **fields)

    def update(self, request, obj, changes):
        work_items.update_work_item(obj, actor=request.user, **changes)

    def remove(self, request, obj):
        work_items.delete_work_item(obj, actor=request.user)


@admin.register(ReportDelivery)
class ReportDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["period", "url", "status", "created_at", "sent_at"]
