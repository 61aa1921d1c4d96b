"""The project's URLs plus a plain page mounted where the old prefix list let anyone in."""

from django.http import HttpResponse
from django.urls import include, path


def report(request):
    return HttpResponse("a page")


urlpatterns = [
    path("api/report-page", report),
    path("healthz-history", report),
    path("", include("controlplane.urls")),
]
