"""API routes of the breakers app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from breakers import api

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("routes", api.RouteViewSet, basename="route")

urlpatterns = [*router.urls]
