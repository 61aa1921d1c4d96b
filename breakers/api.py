"""API of the dispatcher: routes."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from breakers import routes
from breakers.models import Route
from controlplane.models import Service
from controlplane.roles import Role, has_role
from controlplane.serializers import StrictModelSerializer


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
