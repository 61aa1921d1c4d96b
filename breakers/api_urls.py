"""API routes of the breakers app, mounted under /api/v1/."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from breakers import api, api_schemas

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("routes", api.RouteViewSet, basename="route")
router.register("schemas", api_schemas.EventSchemaViewSet, basename="event-schema")

NAME = r"(?P<name>[-a-zA-Z0-9_]+)"
urlpatterns = [
    re_path(r"^schemas/check/?$", api_schemas.SchemaCheckView.as_view(), name="schema-check"),
    *router.urls,
    re_path(r"^breakers/?$", api.BreakerListView.as_view(), name="breakers"),
    re_path(rf"^breakers/{NAME}/?$", api.BreakerDetailView.as_view(), name="breaker"),
    re_path(rf"^breakers/{NAME}/force/?$", api.BreakerForceView.as_view(), name="breaker-force"),
    re_path(
        rf"^breakers/{NAME}/transitions/?$",
        api.BreakerTransitionsView.as_view(),
        name="breaker-transitions",
    ),
    re_path(
        rf"^breakers/{NAME}/threshold/?$",
        api.ThresholdPushView.as_view(),
        name="breaker-threshold",
    ),
    re_path(
        r"^services/(?P<slug>[-a-zA-Z0-9_]+)/admission/?$",
        api.ServiceAdmissionView.as_view(),
        name="service-admission",
    ),
]
