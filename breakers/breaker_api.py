"""API of the breakers: list, detail, thresholds, force, transitions, threshold push."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from breakers import control
from breakers.guard import effective_config
from breakers.models import BreakerTransition, CircuitBreaker
from breakers.stats import recent_stats
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer


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
