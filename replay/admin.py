"""Snapshots in the admin: read, verified and deleted through the audited verbs."""

from __future__ import annotations

from django.contrib import admin, messages

from controlplane.admin import VerbAdmin
from replay import snapshots
from replay.models import Snapshot


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
