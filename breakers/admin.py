"""Admin for the breakers app. Routes and breakers are saved through their verb functions
(breakers.routes, breakers.control), so an admin edit is validated and audited like one made
through the API or the pages; transitions and worker nodes are written by the workers and
only read here."""

from __future__ import annotations

from django.contrib import admin

from breakers import control, demo, routes, schemas
from breakers.engine import BreakerConfig
from breakers.forms import DYNAMIC_FIELDS, CircuitBreakerAdminForm, EventSchemaForm, RouteForm
from breakers.models import (
    BreakerTransition,
    CircuitBreaker,
    DemoDownstream,
    EventSchema,
    Route,
    WorkerNode,
)
from controlplane.admin import ReadOnlyAdmin


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    list_display = [
        "name",
        "service",
        "event_type",
        "kind",
        "timeout_seconds",
        "max_concurrent_calls",
        "max_attempts",
        "when_open",
        "fallback_route",
        "enabled",
    ]
    list_filter = ["service", "kind", "enabled", "when_open"]
    search_fields = ["name", "event_type", "target"]

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj else []  # the name is also the breaker's

    def save_model(self, request, obj, form, change):
        if change:
            changes = {f: form.cleaned_data[f] for f in form.changed_data if f != "name"}
            if changes:
                routes.update_route(obj, actor=request.user, **changes)
        else:
            fields = {f: form.cleaned_data[f] for f in routes.ROUTE_FIELDS}
            obj.pk = routes.create_route(actor=request.user, **fields).pk

    def delete_model(self, request, obj):
        routes.delete_route(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for route in queryset:
            routes.delete_route(route, actor=request.user)


@admin.register(CircuitBreaker)
class CircuitBreakerAdmin(admin.ModelAdmin):
    """Thresholds (the config overrides, as JSON) and the forced state. Breakers come and go
    with their routes, so none is added or deleted here."""

    form = CircuitBreakerAdminForm
    list_display = [
        "__str__",
        "state",
        "forced_state",
        "forced_by",
        "dynamic_field",
        "dynamic_value",
        "updated_at",
    ]
    list_filter = ["state", "forced_state", "dynamic_field"]
    search_fields = ["route__name"]
    list_select_related = ["route"]
    readonly_fields = [
        "route",
        "state",
        "state_changed_at",
        "forced_reason",
        "forced_by",
        "forced_at",
        "dynamic_value",
        "dynamic_source",
        "dynamic_computed_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["route", "state", "state_changed_at", "config"]}),
        (
            "Operator override",
            {"fields": ["forced_state", "reason", "forced_reason", "forced_by", "forced_at"]},
        ),
        (
            "Dynamic threshold",
            {"fields": [*DYNAMIC_FIELDS, "dynamic_value", "dynamic_source", "dynamic_computed_at"]},
        ),
        (None, {"fields": ["updated_at"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        current = CircuitBreaker.objects.get(pk=obj.pk)
        changed = set(form.changed_data)
        dynamic = {f: form.cleaned_data[f] for f in DYNAMIC_FIELDS if f in changed}
        if "config" in changed or dynamic:
            config = form.cleaned_data["config"]
            # update_thresholds merges into the stored overrides; a key removed here goes
            # back to its default value.
            defaults = BreakerConfig().to_dict()
            removed = {k: defaults[k] for k in (current.config or {}) if k not in config}
            control.update_thresholds(
                current, {**removed, **config}, actor=request.user, dynamic=dynamic
            )
        if "forced_state" in changed:
            control.force_breaker(
                current,
                form.cleaned_data["forced_state"] or "automatic",
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )


@admin.register(BreakerTransition)
class BreakerTransitionAdmin(ReadOnlyAdmin):
    list_display = ["at", "name", "from_state", "to_state", "reason", "failure_rate", "node"]
    list_filter = ["to_state", "from_state"]
    search_fields = ["name", "reason", "node"]
    date_hierarchy = "at"


@admin.register(WorkerNode)
class WorkerNodeAdmin(ReadOnlyAdmin):
    list_display = [
        "name",
        "hostname",
        "pid",
        "started_at",
        "last_heartbeat",
        "in_flight",
        "delivered",
        "stopped_at",
    ]
    search_fields = ["name", "hostname"]


@admin.register(DemoDownstream)
class DemoDownstreamAdmin(admin.ModelAdmin):
    list_display = ["name", "failure_rate", "latency_ms", "traffic_per_tick"]
    readonly_fields = ["name"]

    # Downstreams come from seed_demo; a change goes through the audited verb the Demo page uses.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f != "name"}
        if changes:
            demo.update_downstream(obj, actor=request.user, **changes)


@admin.register(EventSchema)
class EventSchemaAdmin(admin.ModelAdmin):
    """Saved through the verbs of breakers.schemas, which check the definition and audit."""

    form = EventSchemaForm
    list_display = ["event_type", "service", "version", "mode", "updated_at"]
    list_filter = ["service", "mode"]
    search_fields = ["event_type"]

    def save_model(self, request, obj, form, change):
        if change:
            changes = {f: form.cleaned_data[f] for f in form.changed_data}
            if changes:
                schemas.update_schema(obj, actor=request.user, **changes)
        else:
            fields = {f: form.cleaned_data[f] for f in schemas.SCHEMA_FIELDS}
            obj.pk = schemas.create_schema(actor=request.user, **fields).pk

    def delete_model(self, request, obj):
        schemas.delete_schema(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for schema in queryset:
            schemas.delete_schema(schema, actor=request.user)
