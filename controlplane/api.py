"""REST API of the project package: services, tokens, the audit log, whoami."""

from __future__ import annotations

from django.db import IntegrityError
from django.db.models import ProtectedError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane import services, tokens
from controlplane.models import ApiToken, AuditEntry, Service
from controlplane.roles import Role, role_of
from controlplane.serializers import StrictModelSerializer, StrictSerializer
from controlplane.services import SERVICE_FIELDS


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Names `Authorization: Bearer <token>` in the OpenAPI schema (drf-spectacular finds it
    by the class path; this module is imported with the URLs)."""

    target_class = "controlplane.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token: cp_..."}


class ServiceSerializer(StrictModelSerializer):
    class Meta:
        model = Service
        fields = [*SERVICE_FIELDS, "created_at", "updated_at"]  # one list: API, page, admin
        read_only_fields = ["created_at", "updated_at"]


class ServiceViewSet(viewsets.ModelViewSet):
    """Services: viewers read, operators write."""

    serializer_class = ServiceSerializer
    lookup_field = "slug"
    lookup_value_regex = r"[-a-zA-Z0-9_]+"
    queryset = Service.objects.all()
    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    def perform_create(self, serializer):
        try:
            serializer.instance = services.create_service(
                actor=self.request.user, **serializer.validated_data
            )
        except IntegrityError:  # lost a race with another request for the same slug
            raise ValidationError({"slug": ["service with this slug already exists."]}) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = services.update_service(
                serializer.instance, actor=self.request.user, **serializer.validated_data
            )
        except IntegrityError:
            raise ValidationError({"slug": ["service with this slug already exists."]}) from None

    def perform_destroy(self, instance):
        try:
            services.delete_service(instance, actor=self.request.user)
        except ProtectedError:
            raise ValidationError(
                {"slug": ["Service still has records that depend on it."]}
            ) from None


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class TokenCreatedSerializer(TokenSerializer):
    token = serializers.CharField(help_text="The secret, shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = [*TokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenCreateSerializer(StrictSerializer):
    name = serializers.CharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiToken.Scope.choices), required=False
    )

    def validate_scopes(self, value):
        if value and not tokens.may_grant_scopes(self.context["request"].user):
            raise ValidationError("Only operators may give tokens scopes.")
        return value

    def validate_name(self, value):
        if ApiToken.objects.filter(user=self.context["request"].user, name=value).exists():
            raise ValidationError("You already have a token with this name.")
        return value


class TokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. Creating one returns its secret once; DELETE revokes it."""

    serializer_class = TokenSerializer
    read_role = Role.VIEWER
    write_role = Role.VIEWER  # anyone may manage their own tokens

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=TokenCreateSerializer, responses={201: TokenCreatedSerializer})
    def create(self, request):
        serializer = TokenCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        try:
            issued = tokens.issue_token(request.user, **serializer.validated_data)
        except ValueError as exc:
            raise ValidationError({"expires_at": [str(exc)]}) from None
        except IntegrityError:  # lost a race with another request for the same name
            raise ValidationError({"name": ["You already have a token with this name."]}) from None
        body = TokenSerializer(issued.token).data | {"token": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        tokens.revoke_token(instance, actor=self.request.user)


class AuditEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor_label",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "reason",
        ]


class AuditFilterSerializer(serializers.Serializer):
    action = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="e.g. service.create"
    )
    object_type = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="e.g. controlplane.service"
    )
    object_id = serializers.CharField(required=False, allow_blank=True, max_length=100)


@extend_schema_view(list=extend_schema(parameters=[AuditFilterSerializer]))
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit log, for admins. Filter with ?action=, ?object_type=, ?object_id=."""

    serializer_class = AuditEntrySerializer
    read_role = Role.ADMIN

    def get_queryset(self):
        qs = AuditEntry.objects.all()
        if self.action != "list":
            return qs
        filters = AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return qs.filter(**{k: v for k, v in filters.validated_data.items() if v})


class WhoAmISerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField(allow_null=True)


class WhoAmIView(APIView):
    """Who the credentials belong to and their role."""

    @extend_schema(responses=WhoAmISerializer)
    def get(self, request):
        role = role_of(request.user)
        return Response(
            {"username": request.user.get_username(), "role": role.name.lower() if role else None}
        )
