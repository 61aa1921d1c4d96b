"""Snapshots in the admin: read, verified and deleted through the audited verbs."""

from __future__ import annotations

from django.contrib import admin, messages

from controlplane.admin import VerbAdmin
from replay import replay_runs, snapshots
from replay.models import ReplayRun, Snapshot


@admin.register(Snapshot)
class SnapshotAdmin(VerbAdmin):
    """No add or change: a snapshot is made by an export and its fields are signed."""

    list_display = [
        "pk",
        "service",
        "status",
        "event_count",
        "byte_size",
        "created_by",
        "created_at",
    ]
    list_filter = ["status"]
    readonly_fields = [f.name for f in Snapshot._meta.fields]
    actions = ["verify"]

    def remove(self, request, obj):
        snapshots.delete_snapshot(obj, actor=request.user)

    @admin.action(description="Verify the selected snapshots")
    def verify(self, request, queryset):
        for snapshot in queryset.exclude(status__in=["pending", "failed"]):
            snapshots.verify_snapshot(snapshot, actor=request.user)
        messages.success(request, "Verified.")


@admin.register(ReplayRun)
class ReplayRunAdmin(VerbAdmin):
    """Read, paused, resumed and cancelled through the verbs; runs start from the page or API."""

    list_display = ["pk", "snapshot", "mode", "status", "total", "done", "skipped", "failed"]
    list_filter = ["status", "mode"]
    readonly_fields = [f.name for f in ReplayRun._meta.fields]
    actions = ["pause", "resume", "cancel"]

    def _each(self, request, queryset, verb) -> None:
        for run in queryset:
            try:
                verb(run, actor=request.user)
            except replay_runs.ReplayError as exc:
                messages.warning(request, str(exc))

    @admin.action(description="Pause the selected runs")
    def pause(self, request, queryset):
        self._each(request, queryset, replay_runs.pause_replay)

    @admin.action(description="Resume the selected runs")
    def resume(self, request, queryset):
        self._each(request, queryset, replay_runs.resume_replay)

    @admin.action(description="Cancel the selected runs")
    def cancel(self, request, queryset):
        self._each(request, queryset, replay_runs.cancel_replay)
