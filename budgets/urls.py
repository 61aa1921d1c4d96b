"""Pages of the budgets app."""

from django.urls import path

from budgets import views

app_name = "budgets"
urlpatterns = [
    path("budgets/", views.budget_list, name="list"),
    path("budgets/slos/<int:pk>/", views.slo_detail, name="slo-detail"),
    path("changes/", views.changes, name="changes"),
    path("changes/decisions/<int:pk>/approve", views.decision_approve, name="decision-approve"),
    path("changes/decisions/<int:pk>/reject", views.decision_reject, name="decision-reject"),
    path("changes/canaries/<int:pk>/resolve", views.canary_resolve, name="canary-resolve"),
]
