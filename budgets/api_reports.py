"""REST API of budget reports and work items.

- ``GET reports/budget`` (JSON) and ``GET reports/budget.csv``: the report of a period
  (``month=YYYY-MM``, ``quarter=YYYY-Qn`` or ``start``/``end``); viewers read.
- ``POST reports/budget/send``: post it to the report webhook (operators; audited).
- ``work-items``: CRUD (viewers read, operators write), ``work-items/import`` (CSV; bad rows
  reported by line and field, good rows kept) and ``work-items/export`` (the same CSV).

Every view calls one domain function; ``InvalidInput`` becomes a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import report_exports, work_items
from budgets.maths.budget import InvalidInput
from budgets.models import WorkItem
from budgets.reports import Report, build_report, period_from_params
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer

PERIOD_PARAMS = [
    OpenApiParameter("month", str, description="YYYY-MM"),
    OpenApiParameter("quarter", str, description="YYYY-Qn"),
    OpenApiParameter("start", str, description="ISO date-time, UTC, whole hour"),
    OpenApiParameter("end", str, description="ISO date-time, UTC, whole hour (exclusive)"),
]


def invalid(exc: InvalidInput) -> ValidationError:
    return ValidationError({exc.field: [str(exc)]})


def _report(params: Any) -> Report:
    now = timezone.now()
    try:
        clean = {k: params.get(k) for k in ("month", "quarter", "start", "end") if params.get(k)}
        for key, value in clean.items():
            if not isinstance(value, str) or "\x00" in value or len(value) > 40:
                raise InvalidInput(key, "must be a short text")
        return build_report(period_from_params(clean, now), now)
    except InvalidInput as exc:
        raise invalid(exc) from None


class BudgetReportView(APIView):
    """The budget report of a period (default: the current month), as JSON."""

    @extend_schema(parameters=PERIOD_PARAMS, responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response(_report(request.query_params).as_json())


class BudgetReportCsvView(APIView):
    """The budget report of a period as CSV: one row per SLO."""

    @extend_schema(parameters=PERIOD_PARAMS, responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        report = _report(request.query_params)
        response = HttpResponse(report_exports.report_csv(report), content_type="text/csv")
        name = report.period.label.replace(" ", "_").replace(":", "")
        response["Content-Disposition"] = f'attachment; filename="budget-report-{name}.csv"'
        return response


class PeriodSerializer(StrictSerializer):
    month = serializers.CharField(required=False, max_length=40)
    quarter = serializers.CharField(required=False, max_length=40)
    start = serializers.CharField(required=False, max_length=40)
    end = serializers.CharField(required=False, max_length=40)


class BudgetReportSendView(APIView):
    """Post the period's report, as an issue-tracker payload, to BUDGETS_REPORT_WEBHOOK_URL."""

    write_role = Role.OPERATOR

    @extend_schema(request=PeriodSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request):
        body = PeriodSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        report = _report(body.validated_data)
        try:
            delivery = report_exports.send_report(report, actor=request.user)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(
            {
                "id": delivery.pk,
                "period": delivery.period,
                "url": delivery.url,
                "status": delivery.status,
                "delivered": delivery.status.startswith("HTTP 2"),
                "retrying": report_exports.retrying(delivery),
            },
            status=status.HTTP_201_CREATED,
        )


# --------------------------------------------------------------------------- work items


class WorkItemSerializer(StrictSerializer):
    """Shape only: the values are checked by budgets.work_items.clean (same as CSV rows)."""

    id = serializers.IntegerField(read_only=True)
    key = serializers.CharField(max_length=64)
    url = serializers.CharField(max_length=500, required=False, allow_blank=True)
    title = serializers.CharField(max_length=300)
    service = serializers.CharField(max_length=50)
    assignee = serializers.CharField(max_length=150, required=False, allow_blank=True)
    status = serializers.CharField(max_length=20, required=False)
    episode_start = serializers.CharField(max_length=40, required=False, allow_null=True)
    saved_minutes = serializers.FloatField(required=False, allow_null=True)
    saved_share = serializers.FloatField(required=False, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


def item_json(item: WorkItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "key": item.key,
        "url": item.url,
        "title": item.title,
        "service": item.service.slug,
        "assignee": item.assignee,
        "status": item.status,
        "episode_start": item.episode_start.isoformat() if item.episode_start else None,
        "saved_minutes": item.saved_minutes,
        "saved_share": item.saved_share,
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }


def _items():
    return WorkItem.objects.select_related("service")


class WorkItemListView(GenericAPIView):
    """Work items, newest first; ``?service=<slug>``, ``?assignee=``, ``?status=`` filter."""

    serializer_class = WorkItemSerializer

    @extend_schema(responses={200: WorkItemSerializer(many=True)})
    def get(self, request):
        qs = _items()
        for param, lookup in (("service", "service__slug"), ("assignee", "assignee")):
            if value := request.query_params.get(param):
                qs = qs.filter(**{lookup: value})
        if value := request.query_params.get("status"):
            if value not in WorkItem.Status.values:
                raise ValidationError({"status": [f"must be one of {WorkItem.Status.values}"]})
            qs = qs.filter(status=value)
        page = self.paginate_queryset(qs)
        return self.get_paginated_response([item_json(i) for i in page])

    @extend_schema(request=WorkItemSerializer, responses={201: WorkItemSerializer})
    def post(self, request):
        body = WorkItemSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            item = work_items.create_work_item(actor=request.user, **body.validated_data)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(item_json(item), status=status.HTTP_201_CREATED)


class WorkItemDetailView(APIView):
    """One work item: read, change (PATCH) or delete."""

    @extend_schema(responses={200: WorkItemSerializer})
    def get(self, request, pk: int):
        return Response(item_json(get_object_or_404(_items(), pk=pk)))

    @extend_schema(request=WorkItemSerializer, responses={200: WorkItemSerializer})
    def patch(self, request, pk: int):
        item = get_object_or_404(_items(), pk=pk)
        body = WorkItemSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        try:
            item = work_items.update_work_item(item, actor=request.user, **body.validated_data)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(item_json(item))

    def delete(self, request, pk: int):
        item = get_object_or_404(_items(), pk=pk)
        work_items.delete_work_item(item, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def csv_text(request) -> str:
    """The CSV of an import request: a multipart ``file``, JSON ``{"csv": ...}`` or a raw
    ``text/csv`` body. Raises InvalidInput("file") when it is missing or not UTF-8."""
    content_type = request.content_type or ""
    if content_type.startswith("text/csv") or content_type.startswith("text/plain"):
        raw = request.body
    elif content_type.startswith("multipart/"):
        upload = request.FILES.get("file")
        if upload is None:
            raise InvalidInput("file", "is required (a CSV upload)")
        if upload.size > work_items.MAX_IMPORT_BYTES:
            raise InvalidInput("file", f"is larger than {work_items.MAX_IMPORT_BYTES} bytes")
        raw = upload.read()
    else:
        data = request.data
        text = data.get("csv") if isinstance(data, dict) else None
        if not isinstance(text, str):
            raise InvalidInput("csv", "is required: the CSV text, or upload a file")
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("file", "must be UTF-8 text") from None


class WorkItemImportView(APIView):
    """Create or update work items from CSV (header: the work-item fields, key first)."""

    write_role = Role.OPERATOR
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request={
            "application/json": inline_serializer(
                "WorkItemImportJSON", {"csv": serializers.CharField()}
            ),
            "multipart/form-data": inline_serializer(
                "WorkItemImportUpload", {"file": serializers.FileField()}
            ),
            "text/csv": OpenApiTypes.STR,
        },
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        try:
            result = work_items.import_csv(csv_text(request), actor=request.user)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(result.as_json())


class WorkItemExportView(APIView):
    """Every work item as CSV, in the shape the import reads."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request):
        text = work_items.to_csv(_items().order_by("key"))
        response = HttpResponse(text, content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="work-items.csv"'
        return response
