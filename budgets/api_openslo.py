"""OpenSLO v1 import and export over the API (the same as ``manage.py openslo_import``)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import openslo
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")


class YamlTextParser(BaseParser):
    """Hands the view the request body as text; openslo parses it (safe_load only)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        data = stream.read() if stream is not None else b""
        try:
            return {"yaml": data.decode("utf-8")}
        except UnicodeDecodeError:
            raise ValidationError({"yaml": ["The body must be UTF-8 text."]}) from None


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"


class XYamlParser(YamlTextParser):
    media_type = "application/x-yaml"


class ImportSerializer(StrictSerializer):
    yaml = serializers.CharField(max_length=2_000_000, trim_whitespace=False)


class OpenSLOImportView(APIView):
    """Import OpenSLO v1 YAML (body as application/yaml, or JSON ``{"yaml": "..."}``).

    Creates missing services and creates or updates SLOs, all or nothing; ``?dry_run=1``
    checks without saving. What is not supported is refused with a 400 naming the document
    and field.
    """

    write_role = Role.OPERATOR
    parser_classes = [JSONParser, YamlTextParser, TextYamlParser, XYamlParser]

    @extend_schema(
        request=ImportSerializer,
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, required=False)],
        responses={200: dict},
    )
    def post(self, request):
        serializer = ImportSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dry_run = request.query_params.get("dry_run") in ("1", "true")
        try:
            results = openslo.import_documents(
                serializer.validated_data["yaml"], actor=request.user, dry_run=dry_run
            )
        except openslo.OpenSLOError as exc:
            raise ValidationError({exc.path: [exc.message]}) from None
        return Response({"dry_run": dry_run, "results": [r.as_json() for r in results]})


class OpenSLOExportView(APIView):
    """Export services and their SLOs as OpenSLO v1 YAML; ``?service=a&service=b`` narrows."""

    @extend_schema(
        parameters=[OpenApiParameter("service", OpenApiTypes.STR, many=True, required=False)],
        responses={
            # A multi-document YAML stream of OpenSLO objects, not one string value.
            (200, "application/yaml"): OpenApiResponse(
                OpenApiTypes.ANY, description="OpenSLO v1 documents (Service, SLO), `---` apart."
            )
        },
    )
    def get(self, request):
        slugs = request.query_params.getlist("service")
        body = openslo.export_documents(slugs or None)
        return HttpResponse(body, content_type="application/yaml; charset=utf-8")
