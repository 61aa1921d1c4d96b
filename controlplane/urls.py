from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django_prometheus import exports as prometheus_exports
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny
from rest_framework.routers import SimpleRouter

from controlplane import api, views

router = SimpleRouter()
router.trailing_slash = "/?"  # /api/v1/services and /api/v1/services/ both answer
router.register("services", api.ServiceViewSet, basename="service")
router.register("tokens", api.TokenViewSet, basename="token")
router.register("audit", api.AuditEntryViewSet, basename="audit")

api_v1 = [
    path("whoami", api.WhoAmIView.as_view(), name="whoami"),
    *router.urls,
    path("", include("replay.api_urls")),
    path("", include("breakers.api_urls")),
    path("", include("budgets.api_urls")),
]

urlpatterns = [
    path("", views.overview, name="overview"),
    path("services/", views.service_list, name="service-list"),
    path("services/<slug:slug>/", views.service_detail, name="service-detail"),
    path("tokens/", views.token_list, name="token-list"),
    path("tokens/<int:pk>/revoke", views.token_revoke, name="token-revoke"),
    path("audit/", views.audit_log, name="audit-log"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    # Logging out needs no login (as before LoginRequiredMiddleware): it just redirects.
    path("accounts/logout/", login_not_required(auth_views.LogoutView.as_view()), name="logout"),
    path("", include("replay.urls")),
    path("", include("breakers.urls")),
    path("", include("budgets.urls")),
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    # django_prometheus's own view, made public for the scraper (it sends no session).
    path(
        "metrics",
        login_not_required(prometheus_exports.ExportToDjangoView),
        name="prometheus-django-metrics",
    ),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="schema", permission_classes=[AllowAny], authentication_classes=[]
        ),
        name="api-docs",
    ),
]
