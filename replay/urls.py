"""Pages of the replay app."""

from django.urls import path

from replay import views

app_name = "replay"
urlpatterns = [
    path("events/", views.event_list, name="events"),
    path("events/<int:pk>/", views.event_detail, name="event-detail"),
    path("dead-letters/", views.dead_letter_list, name="dead-letters"),
    path("events/summary", views.event_summary, name="events-summary"),
    path("snapshots/", views.snapshot_list, name="snapshots"),
    path("snapshots/<int:pk>/verify", views.snapshot_verify, name="snapshot-verify"),
    path("replays/", views.replay_list, name="runs"),
    path("replays/<int:pk>/", views.replay_detail, name="run-detail"),
    path("replays/<int:pk>/<slug:action>", views.replay_action, name="run-action"),
]
