"""API routes of the replay app, mounted under /api/v1/."""

from django.urls import path, re_path

from replay import api

urlpatterns = [
    re_path(r"^events/?$", api.EventsView.as_view(), name="events"),
    path("events/<int:pk>", api.EventDetailView.as_view(), name="event-detail"),
    re_path(r"^dead-letters/?$", api.DeadLetterListView.as_view(), name="dead-letters"),
    re_path(r"^dead-letters/redrive/?$", api.RedriveView.as_view(), name="dead-letters-redrive"),
]
