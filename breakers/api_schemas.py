"""API of event schemas: CRUD through the audited verbs (breakers/schemas.py), and
`POST /schemas/check`, which answers what a handler would get for an event (producers' CI)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from breakers import schemas
from breakers.models import EventSchema
from controlplane.models import Service
from controlplane.roles import Role
from controlplane.serializers import StrictModelSerializer, StrictSerializer


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": list(schemas.tolerance.TYPES)},
                "required": {"type": "boolean"},
                "nullable": {"type": "boolean"},
                "default": {},
            },
            "required": ["type"],
            "additionalProperties": False,
        },
        "description": 'Field name -> spec, e.g. {"amount": {"type": "integer", "required": '
        'true}, "currency": {"type": "string", "default": "EUR"}}.',
    }
)
class DefinitionField(serializers.JSONField):
    """Checked by the verbs (schema_tolerance.check_definition), which name the field."""


def _as_validation_error(exc: schemas.SchemaError) -> serializers.ValidationError:
    return serializers.ValidationError(exc.as_errors())


class EventSchemaSerializer(StrictModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    event_type = serializers.RegexField(schemas.EVENT_TYPE, max_length=200)
    version = serializers.IntegerField(min_value=1, max_value=schemas.MAX_VERSION, required=False)
    mode = serializers.ChoiceField(choices=EventSchema.Mode.choices, required=False)
    fields = DefinitionField(required=False)

    class Meta:
        model = EventSchema
        fields = ["id", *schemas.SCHEMA_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators: list = []  # (service, event_type, version) is checked by the verbs

    def validate(self, attrs):
        try:
            return schemas.check(attrs)
        except schemas.SchemaError as exc:
            raise _as_validation_error(exc) from None


class EventSchemaViewSet(viewsets.ModelViewSet):
    """Event schemas: per service, event type and version, the shape payloads are held to at
    dispatch and how strictly (strict, lenient, coercive). Viewers read; operators write.
    Running workers follow a change within seconds."""

    serializer_class = EventSchemaSerializer
    lookup_value_regex = r"[0-9]+"
    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    def get_queryset(self):
        qs = EventSchema.objects.select_related("service")
        service = self.request.query_params.get("service")
        event_type = self.request.query_params.get("type")
        if service:
            qs = qs.filter(service__slug=service)
        if event_type:
            qs = qs.filter(event_type=event_type)
        return qs

    def perform_create(self, serializer):
        try:
            serializer.instance = schemas.create_schema(
                actor=self.request.user, **serializer.validated_data
            )
        except schemas.SchemaError as exc:
            raise _as_validation_error(exc) from None

    def perform_update(self, serializer):
        try:
            serializer.instance = schemas.update_schema(
                serializer.instance, actor=self.request.user, **serializer.validated_data
            )
        except schemas.SchemaError as exc:
            raise _as_validation_error(exc) from None

    def perform_destroy(self, instance):
        schemas.delete_schema(instance, actor=self.request.user)


class SchemaCheckSerializer(StrictSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    type = serializers.RegexField(schemas.EVENT_TYPE, max_length=200)
    schema_version = serializers.IntegerField(
        min_value=1, max_value=schemas.MAX_VERSION, required=False, default=1
    )
    payload = serializers.JSONField(help_text="The event's payload, as a producer would send it.")


class HeldTo(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    mode = serializers.ChoiceField(choices=EventSchema.Mode.choices)


class Violation(serializers.Serializer):
    field = serializers.CharField(help_text="The payload's field at fault, or schema_version.")
    why = serializers.CharField()


class CheckAnswer(serializers.Serializer):
    """Documentation only: the check's answer."""

    ok = serializers.BooleanField()
    schema = HeldTo(allow_null=True, help_text="The schema it is held to; null: none, as sent.")
    payload = serializers.JSONField(required=False, help_text="What the handler would get.")
    notes = serializers.ListField(child=serializers.CharField(), required=False)
    violation = Violation(required=False)


class SchemaCheckView(APIView):
    """What would a handler get for this event? 200 with the payload as tolerated (and notes
    on what was defaulted or coerced), or 422 with the violation. Changes nothing: any role
    may ask, viewers and their ingest tokens included (producers' CI)."""

    write_role = Role.VIEWER

    @extend_schema(request=SchemaCheckSerializer, responses={200: CheckAnswer, 422: CheckAnswer})
    def post(self, request):
        body = SchemaCheckSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        answer = schemas.check_payload(
            data["service"], data["type"], data["schema_version"], data["payload"]
        )
        return Response(answer, status=200 if answer["ok"] else 422)
