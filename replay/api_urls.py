"""API routes of the replay app, mounted under /api/v1/."""

from django.urls import path, re_path

from replay import api

urlpatterns = [
    re_path(r"^events/?$", api.EventsView.as_view(), name="events"),
    path("events/<int:pk>", api.EventDetailView.as_view(), name="event-detail"),
    re_path(r"^dead-letters/?$", api.DeadLetterListView.as_view(), name="dead-letters"),
    re_path(r"^dead-letters/redrive/?$", api.RedriveView.as_view(), name="dead-letters-redrive"),
    re_path(r"^snapshots/?$", api.SnapshotListView.as_view(), name="snapshots"),
    path("snapshots/<int:pk>", api.SnapshotDetailView.as_view(), name="snapshot-detail"),
    path(
        "snapshots/<int:pk>/download",
        api.SnapshotDownloadView.as_view(),
        name="snapshot-download",
    ),
    path("snapshots/<int:pk>/verify", api.SnapshotVerifyView.as_view(), name="snapshot-verify"),
    re_path(r"^replays/?$", api.ReplayListView.as_view(), name="replays"),
    path("replays/fallback", api.FallbackReplayView.as_view(), name="replay-fallback"),
    path("replays/<int:pk>", api.ReplayDetailView.as_view(), name="replay-detail"),
    path("replays/<int:pk>/pause", api.ReplayPauseView.as_view(), name="replay-pause"),
    path("replays/<int:pk>/resume", api.ReplayResumeView.as_view(), name="replay-resume"),
    path("replays/<int:pk>/cancel", api.ReplayCancelView.as_view(), name="replay-cancel"),
]
