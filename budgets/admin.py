"""Admin for the budgets app. Changes that matter go through the API or the pages, which
audit them; the admin edits dependencies, hooks, freeze windows and policies, and reads the
rest."""

from django.contrib import admin

from budgets.models import (
    SLO,
    AlertEvent,
    BudgetAlertHook,
    BudgetPolicy,
    CanaryVerdict,
    FreezeWindow,
    GateDecision,
    ServiceDependency,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SLO)
class SloAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "sli", "target", "window", "budgeting_method", "updated_at"]
    list_filter = ["sli", "budgeting_method", "window"]
    search_fields = ["name", "service__slug"]


@admin.register(ServiceDependency)
class ServiceDependencyAdmin(admin.ModelAdmin):
    list_display = ["service", "depends_on", "created_at"]
    search_fields = ["service__slug", "depends_on__slug"]


@admin.register(BudgetPolicy)
class BudgetPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "freeze_threshold", "request_ttl", "approval_ttl", "updated_at"]


@admin.register(FreezeWindow)
class FreezeWindowAdmin(admin.ModelAdmin):
    list_display = ["name", "service", "starts_at", "ends_at"]
    list_filter = ["service"]


@admin.register(BudgetAlertHook)
class BudgetAlertHookAdmin(admin.ModelAdmin):
    list_display = ["service", "url", "last_status", "last_sent_at"]


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
