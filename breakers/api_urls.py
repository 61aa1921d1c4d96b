"""API routes of the breakers app, mounted under /api/v1/."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from breakers import api, breaker_api

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("routes", api.RouteViewSet, basename="route")

NAME = r"(?P<name>[-a-zA-Z0-9_]+)"
urlpatterns = [
    *router.urls,
    re_path(r"^breakers/?$", breaker_api.BreakerListView.as_view(), name="breakers"),
    re_path(rf"^breakers/{NAME}/?$", breaker_api.BreakerDetailView.as_view(), name="breaker"),
    re_path(
        rf"^breakers/{NAME}/force/?$", breaker_api.BreakerForceView.as_view(), name="breaker-force"
    ),
    re_path(
        rf"^breakers/{NAME}/transitions/?$",
        breaker_api.BreakerTransitionsView.as_view(),
        name="breaker-transitions",
    ),
    re_path(
        rf"^breakers/{NAME}/threshold/?$",
        breaker_api.ThresholdPushView.as_view(),
        name="breaker-threshold",
    ),
]
