"""API routes of the budgets app, mounted under /api/v1/ (a trailing slash is optional)."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from budgets import api, api_gates, api_openslo, api_reports

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("slos", api.SloViewSet, basename="slo")
router.register("freeze-windows", api.FreezeWindowViewSet, basename="freeze-window")

SLUG = r"(?P<slug>[-a-zA-Z0-9_]+)"
PK = r"(?P<pk>[0-9]+)"

urlpatterns = [
    *router.urls,
    re_path(rf"^slos/{PK}/events/?$", api.ExternalEventsView.as_view(), name="slo-events"),
    re_path(
        rf"^services/{SLUG}/dependencies/?$",
        api.DependenciesView.as_view(),
        name="service-dependencies",
    ),
    re_path(rf"^services/{SLUG}/budget/?$", api.ServiceBudgetView.as_view(), name="service-budget"),
    re_path(rf"^services/{SLUG}/policy/?$", api.ServicePolicyView.as_view(), name="service-policy"),
    re_path(
        rf"^services/{SLUG}/alert-hooks/?$",
        api.ServiceHooksView.as_view(),
        name="service-alert-hooks",
    ),
    re_path(rf"^alert-hooks/{PK}/?$", api.HookDetailView.as_view(), name="alert-hook"),
    re_path(r"^alerts/evaluate/?$", api.EvaluateAlertsView.as_view(), name="alerts-evaluate"),
    re_path(r"^policies/default/?$", api.DefaultPolicyView.as_view(), name="default-policy"),
    re_path(r"^gates/check/?$", api_gates.GateCheckView.as_view(), name="gate-check"),
    re_path(r"^gates/decisions/?$", api_gates.DecisionListView.as_view(), name="gate-decisions"),
    re_path(
        rf"^gates/decisions/{PK}/?$", api_gates.DecisionDetailView.as_view(), name="gate-decision"
    ),
    re_path(
        rf"^gates/decisions/{PK}/approve/?$", api_gates.ApproveView.as_view(), name="gate-approve"
    ),
    re_path(
        rf"^gates/decisions/{PK}/reject/?$", api_gates.RejectView.as_view(), name="gate-reject"
    ),
    re_path(
        r"^changes/(?P<change_id>[-a-zA-Z0-9_.:#@+]{1,200})/canary/?$",
        api_gates.CanaryView.as_view(),
        name="change-canary",
    ),
    re_path(r"^canaries/?$", api_gates.CanaryListView.as_view(), name="canaries"),
    re_path(
        rf"^canaries/{PK}/resolve/?$", api_gates.CanaryResolveView.as_view(), name="canary-resolve"
    ),
    re_path(r"^reports/budget/?$", api_reports.BudgetReportView.as_view(), name="budget-report"),
    re_path(
        r"^reports/budget\.csv$",
        api_reports.BudgetReportCsvView.as_view(),
        name="budget-report-csv",
    ),
    re_path(
        r"^reports/budget/send/?$",
        api_reports.BudgetReportSendView.as_view(),
        name="budget-report-send",
    ),
    re_path(r"^work-items/?$", api_reports.WorkItemListView.as_view(), name="work-items"),
    re_path(
        r"^work-items/import/?$", api_reports.WorkItemImportView.as_view(), name="work-item-import"
    ),
    re_path(
        r"^work-items/export/?$", api_reports.WorkItemExportView.as_view(), name="work-item-export"
    ),
    re_path(rf"^work-items/{PK}/?$", api_reports.WorkItemDetailView.as_view(), name="work-item"),
    re_path(r"^openslo/import/?$", api_openslo.OpenSLOImportView.as_view(), name="openslo-import"),
    re_path(r"^openslo/export/?$", api_openslo.OpenSLOExportView.as_view(), name="openslo-export"),
]
