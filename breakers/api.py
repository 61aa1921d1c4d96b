"""API of the breakers app: routes, and the breakers guarding them (list, detail, thresholds,
force, transitions, threshold push)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from breakers import admission, control, routes
from breakers.models import BreakerTransition, CircuitBreaker, Route
from breakers.registry import effective_config
from breakers.stats import recent_stats
from controlplane.models import Service
from controlplane.roles import Role, has_role
from controlplane.serializers import StrictModelSerializer, StrictSerializer


class RouteSerializer(StrictModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    timeout_seconds = serializers.FloatField(min_value=0.01, max_value=300, required=False)
    max_attempts = serializers.IntegerField(min_value=1, max_value=100, required=False)
    max_concurrent_calls = serializers.IntegerField(min_value=0, max_value=100_000, required=False)
    max_wait_ms = serializers.IntegerField(min_value=0, max_value=60_000, required=False)
    fallback_route = serializers.SlugRelatedField(
        slug_field="name", queryset=Route.objects.all(), allow_null=True, required=False
    )

    class Meta:
        model = Route
        # The writable fields are the one list the page form and the admin also use.
        fields = [*routes.ROUTE_FIELDS, "secret", "created_at", "updated_at"]
        read_only_fields = ["secret", "created_at", "updated_at"]

    def validate(self, attrs):
        kind = attrs.get("kind", getattr(self.instance, "kind", None))
        target = attrs.get("target", getattr(self.instance, "target", ""))
        error = kind and routes.target_error(kind, target)
        if error:
            raise serializers.ValidationError({"target": [error]})
        service = attrs.get("service", getattr(self.instance, "service", None))
        fallback = attrs.get("fallback_route", getattr(self.instance, "fallback_route", None))
        if error := routes.fallback_error(self.instance, service, fallback):
            raise serializers.ValidationError({"fallback_route": [error]})
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if not (request and has_role(request.user, Role.OPERATOR)):
            data.pop("secret")  # the signing secret is for those who configure receivers
        return data


class RouteViewSet(viewsets.ModelViewSet):
    """Routes: a service's event type (exact or a glob such as `order.*`) to a handler.
    Viewers read; operators write. Edits reach running workers within seconds."""

    serializer_class = RouteSerializer
    lookup_field = "name"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    def get_queryset(self):
        qs = Route.objects.select_related("service")
        service = self.request.query_params.get("service")
        return qs.filter(service__slug=service) if service else qs

    def perform_create(self, serializer):
        try:
            serializer.instance = routes.create_route(
                actor=self.request.user, **serializer.validated_data
            )
        except routes.RouteError as exc:  # a concurrent change broke a rule validate() saw hold
            raise serializers.ValidationError({exc.field: [exc.message]}) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = routes.update_route(
                serializer.instance, actor=self.request.user, **serializer.validated_data
            )
        except routes.RouteError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from None

    def perform_destroy(self, instance):
        routes.delete_route(instance, actor=self.request.user)


# --- breakers -------------------------------------------------------------------------------------


def breakers_queryset():
    return CircuitBreaker.objects.select_related("route__service")


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BreakerTransition
        fields = [
            "at",
            "from_state",
            "to_state",
            "reason",
            "node",
            "calls",
            "failures",
            "slow_calls",
            "failure_rate",
            "slow_call_rate",
        ]


class BreakerSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="route.name")
    service = serializers.CharField(source="route.service.slug")
    config = serializers.SerializerMethodField()
    overrides = serializers.JSONField(source="config")
    recent = serializers.SerializerMethodField()
    dynamic = serializers.SerializerMethodField()

    class Meta:
        model = CircuitBreaker
        fields = [
            "name",
            "service",
            "state",
            "state_changed_at",
            "forced_state",
            "forced_reason",
            "forced_by",
            "forced_at",
            "config",
            "overrides",
            "dynamic",
            "recent",
        ]

    def get_config(self, obj) -> dict:
        return effective_config(obj).to_dict()

    def get_dynamic(self, obj) -> dict | None:
        if not obj.dynamic_field:
            return None
        return {
            "field": obj.dynamic_field,
            "k": obj.dynamic_k,
            "window_s": obj.dynamic_window_s,
            "query": obj.dynamic_query,
            "value": obj.dynamic_value,
            "source": obj.dynamic_source or None,
            "computed_at": obj.dynamic_computed_at,
        }

    def get_recent(self, obj) -> dict:
        stats = self.context.get("stats", {})
        return stats.get(
            obj.route_id, {"calls": 0, "failures": 0, "rejected": 0, "failure_rate": 0.0}
        )


def with_stats(view, breakers) -> dict:
    return {**view.get_serializer_context(), "stats": recent_stats([b.route_id for b in breakers])}


class BreakerListView(generics.ListAPIView):
    """Every breaker (one per route) with its state, effective thresholds and the last
    five minutes' calls and failure rate."""

    serializer_class = BreakerSerializer
    read_role = Role.VIEWER

    def get_queryset(self):
        return breakers_queryset()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        serializer = BreakerSerializer(page, many=True, context=with_stats(self, page))
        return self.get_paginated_response(serializer.data)


class ThresholdsSerializer(StrictSerializer):
    config = serializers.DictField(required=False, help_text="BreakerConfig fields to change.")
    dynamic_field = serializers.ChoiceField(
        choices=CircuitBreaker.Dynamic.choices, required=False, allow_blank=True
    )
    dynamic_k = serializers.FloatField(min_value=0, max_value=10, required=False)
    dynamic_window_s = serializers.IntegerField(min_value=30, max_value=86400, required=False)
    dynamic_query = serializers.CharField(max_length=500, required=False, allow_blank=True)


class BreakerDetailView(APIView):
    """GET one breaker; PATCH its thresholds (operator). Running workers apply a change
    within seconds."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    @extend_schema(responses=BreakerSerializer)
    def get(self, request, name):
        breaker = get_object_or_404(breakers_queryset(), route__name=name)
        return Response(BreakerSerializer(breaker, context=with_stats(self, [breaker])).data)

    def get_serializer_context(self):
        return {"request": self.request, "view": self}

    @extend_schema(request=ThresholdsSerializer, responses=BreakerSerializer)
    def patch(self, request, name):
        breaker = get_object_or_404(breakers_queryset(), route__name=name)
        body = ThresholdsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        changes = data.pop("config", {})
        try:
            breaker = control.update_thresholds(breaker, changes, actor=request.user, dynamic=data)
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationError({"config": {field: [message or str(exc)]}}) from None
        breaker = breakers_queryset().get(pk=breaker.pk)
        return Response(BreakerSerializer(breaker, context=with_stats(self, [breaker])).data)


class ForceSerializer(StrictSerializer):
    mode = serializers.ChoiceField(choices=sorted(control.MODES))
    reason = serializers.CharField(max_length=1000)


class BreakerForceView(APIView):
    """Force a breaker open, closed or disabled, or hand it back to automatic (operator;
    a reason is required and audited)."""

    write_role = Role.OPERATOR

    @extend_schema(request=ForceSerializer, responses=BreakerSerializer)
    def post(self, request, name):
        breaker = get_object_or_404(breakers_queryset(), route__name=name)
        body = ForceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        control.force_breaker(
            breaker,
            body.validated_data["mode"],
            actor=request.user,
            reason=body.validated_data["reason"],
        )
        breaker = breakers_queryset().get(pk=breaker.pk)
        context = {"request": request, "stats": recent_stats([breaker.route_id])}
        return Response(BreakerSerializer(breaker, context=context).data)


class BreakerTransitionsView(generics.ListAPIView):
    """The breaker's transitions, newest first."""

    serializer_class = TransitionSerializer
    read_role = Role.VIEWER

    def get_queryset(self):
        breaker = get_object_or_404(CircuitBreaker, route__name=self.kwargs["name"])
        return breaker.transitions.all()


class ThresholdPushSerializer(StrictSerializer):
    value = serializers.FloatField(min_value=0.0001, max_value=3600)


class ThresholdPushView(APIView):
    """Push a value for the breaker's dynamic threshold (e.g. from an external detector)."""

    write_role = Role.OPERATOR

    @extend_schema(request=ThresholdPushSerializer, responses=BreakerSerializer)
    def post(self, request, name):
        breaker = get_object_or_404(breakers_queryset(), route__name=name)
        body = ThresholdPushSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            control.set_dynamic_value(
                breaker, body.validated_data["value"], source="push", actor=request.user
            )
        except ValueError as exc:
            field, _, message = str(exc).partition(": ")
            raise ValidationError({field if message else "value": [message or str(exc)]}) from None
        breaker = breakers_queryset().get(pk=breaker.pk)
        context = {"request": request, "stats": recent_stats([breaker.route_id])}
        return Response(BreakerSerializer(breaker, context=context).data)


# --------------------------------------------------------------------------- admission


class ShedMinuteSerializer(serializers.Serializer):
    minute = serializers.DateTimeField(help_text="The minute's start, UTC.")
    reason = serializers.ChoiceField(choices=[admission.RATE_LIMITED, admission.OVERLOADED])
    count = serializers.IntegerField()


class AdmissionSerializer(serializers.Serializer):
    rate = serializers.FloatField(allow_null=True, help_text="admission_rate: events/s.")
    burst = serializers.IntegerField(allow_null=True, help_text="admission_burst as set.")
    effective_burst = serializers.IntegerField(
        allow_null=True, help_text="The bucket's size (burst, or one second of rate)."
    )
    urgent_reserve = serializers.FloatField(
        allow_null=True, help_text="Tokens of the burst only CRITICAL and HIGH may take."
    )
    shed_lag_seconds = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Per class: the delivery lag past which new events of it are shed.",
    )
    since = serializers.DateTimeField()
    shed_total = serializers.IntegerField()
    shed_by_reason = serializers.DictField(child=serializers.IntegerField())
    per_minute = ShedMinuteSerializer(many=True)


class AdmissionQuerySerializer(serializers.Serializer):  # query strings: "6" is an int here
    hours = serializers.IntegerField(
        min_value=1, max_value=168, required=False, help_text="Default 6."
    )


class ServiceAdmissionView(APIView):
    """A service's admission settings (set them on the service) and the events shed at
    ingest per minute over the last `hours`."""

    read_role = Role.VIEWER

    @extend_schema(parameters=[AdmissionQuerySerializer], responses=AdmissionSerializer)
    def get(self, request, slug):
        unknown = sorted(set(request.query_params) - set(AdmissionQuerySerializer().fields))
        if unknown:  # a typo must not pass (as StrictSerializer does for bodies)
            raise ValidationError({name: ["Unknown parameter."] for name in unknown})
        query = AdmissionQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        service = get_object_or_404(Service, slug=slug)
        data = admission.summary(service, timezone.now(), query.validated_data.get("hours", 6))
        return Response(AdmissionSerializer(data).data)
