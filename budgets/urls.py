"""Pages of the budgets app."""

from django.urls import path

from budgets import views, views_reports

app_name = "budgets"
urlpatterns = [
    path("budgets/", views.budget_list, name="list"),
    path("budgets/slos/<int:pk>/", views.slo_detail, name="slo-detail"),
    path("changes/", views.changes, name="changes"),
    path("reports/", views_reports.report_page, name="reports"),
    path("reports/print", views_reports.report_print, name="report-print"),
    path("reports/send", views_reports.report_send, name="report-send"),
    path("reports/work-items/", views_reports.work_item_list, name="work-items"),
    path("reports/work-items/import", views_reports.work_item_import, name="work-item-import"),
    path("reports/work-items/<int:pk>/", views_reports.work_item_edit, name="work-item-edit"),
    path("changes/decisions/<int:pk>/approve", views.decision_approve, name="decision-approve"),
    path("changes/decisions/<int:pk>/reject", views.decision_reject, name="decision-reject"),
    path("changes/canaries/<int:pk>/resolve", views.canary_resolve, name="canary-resolve"),
]
