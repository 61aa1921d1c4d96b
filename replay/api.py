"""API of the event log: ingest, events, dead letters and redrive."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.models import Service
from controlplane.pagination import PageNumberPagination
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer
from replay.dead_letters import dead_letters, redrive
from replay.ingest import ingest_events
from replay.models import Event, Snapshot
from replay.serializers import (
    EventBatchSerializer,
    EventDetailSerializer,
    EventInSerializer,
    EventOutSerializer,
    IngestResponseSerializer,
)
from replay.snapshots import SnapshotError, request_snapshot, verify_snapshot
from replay.snapshots import storage as snapshot_storage


def filter_events(qs, params):
    for name in ("status", "type", "priority"):
        if params.get(name):
            qs = qs.filter(**{name: params[name]})
    if params.get("service"):
        qs = qs.filter(service__slug=params["service"])
    return qs


class EventsView(APIView):
    """GET: the event log, newest first (?service=&status=&type=&priority=).
    POST: ingest one event, or `{"events": [...]}`. 202 with a result per event: accepted,
    duplicate (same id seen before: no second delivery) or rejected with the reason."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    token_scopes = ("ingest",)

    @extend_schema(
        parameters=[
            OpenApiParameter(n, str, required=False)
            for n in ("service", "status", "type", "priority")
        ],
        responses=EventOutSerializer(many=True),
    )
    def get(self, request):
        qs = filter_events(Event.objects.select_related("service", "route"), request.query_params)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs.order_by("-pk"), request, self)
        return paginator.get_paginated_response(EventOutSerializer(page, many=True).data)

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="IngestRequest",
            serializers=[EventInSerializer, EventBatchSerializer],
            resource_type_field_name=None,
        ),
        responses={202: IngestResponseSerializer},
    )
    def post(self, request):
        body = request.data
        if isinstance(body, dict) and "events" in body:
            extra = sorted(set(body) - {"events"})
            if extra:
                raise ValidationError({name: ["Unknown field."] for name in extra})
            items = body["events"]
            if not isinstance(items, list):
                raise ValidationError({"events": ["Expected a list of events."]})
            if not items:
                raise ValidationError({"events": ["The batch is empty."]})
            if len(items) > settings.INGEST_BATCH_LIMIT:
                return Response(
                    {
                        "detail": f"Batch of {len(items)} events; the limit is "
                        f"{settings.INGEST_BATCH_LIMIT}.",
                        "code": "too_large",
                        "errors": {"events": [f"At most {settings.INGEST_BATCH_LIMIT} events."]},
                    },
                    status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                )
            single = False
        elif isinstance(body, dict):
            items, single = [body], True
        else:
            raise ValidationError({"non_field_errors": ['Expected an event or {"events": [...]}.']})
        results = ingest_events(items)
        if single and results[0].status == "rejected":
            raise ValidationError(results[0].errors)
        counts = {
            s: sum(1 for r in results if r.status == s)
            for s in ("accepted", "duplicate", "rejected")
        }
        return Response(
            {
                "accepted": counts["accepted"],
                "duplicates": counts["duplicate"],
                "rejected": counts["rejected"],
                "results": [r.as_dict() for r in results],
            },
            status=status.HTTP_202_ACCEPTED,
        )


class EventDetailView(generics.RetrieveAPIView):
    """One event with its delivery attempts."""

    read_role = Role.VIEWER
    serializer_class = EventDetailSerializer
    queryset = Event.objects.select_related("service", "route").prefetch_related(
        "attempt_log__route"
    )


class DeadLetterFilterSerializer(StrictSerializer):
    service = serializers.SlugField(required=False)
    type = serializers.CharField(required=False, max_length=200)
    route = serializers.SlugField(required=False)
    reason = serializers.CharField(required=False, max_length=40)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


FILTER_PARAMS = [
    OpenApiParameter(name, str, required=False)
    for name in ("service", "type", "route", "reason", "since", "until")
]


class DeadLetterListView(APIView):
    """Dead letters, newest first, filtered by service, type, route, reason and time."""

    read_role = Role.VIEWER

    @extend_schema(parameters=FILTER_PARAMS, responses=EventOutSerializer(many=True))
    def get(self, request):
        query = {k: v for k, v in request.query_params.items() if k not in ("page", "page_size")}
        filters = DeadLetterFilterSerializer(data=query)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(dead_letters(**filters.validated_data), request, self)
        return paginator.get_paginated_response(EventOutSerializer(page, many=True).data)


class RedriveSerializer(StrictSerializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=10_000
    )
    filter = DeadLetterFilterSerializer(required=False)

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise ValidationError({"ids": ["Give either ids or a filter."]})
        return attrs


class RedriveView(APIView):
    """Put dead letters back into dispatch: by ids, or everything a filter matches."""

    write_role = Role.OPERATOR

    @extend_schema(
        request=RedriveSerializer,
        responses={
            202: inline_serializer(
                "RedriveResult",
                {
                    "redriven": serializers.IntegerField(),
                    "ids": serializers.ListField(child=serializers.IntegerField()),
                },
            )
        },
    )
    def post(self, request):
        body = RedriveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if "ids" in body.validated_data:
            events = dead_letters().filter(pk__in=body.validated_data["ids"])
        else:
            events = dead_letters(**body.validated_data["filter"])
        pks = redrive(events, actor=request.user)
        return Response({"redriven": len(pks), "ids": pks}, status=status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------------------- snapshots

EVENT_TYPE = r"^[A-Za-z0-9_.:\-]+$"  # as ingest accepts them


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class SnapshotCreateSerializer(StrictSerializer):
    service = serializers.SlugField(required=False, allow_null=True, max_length=63)
    types = serializers.ListField(
        child=serializers.RegexField(EVENT_TYPE, max_length=200),
        required=False,
        max_length=100,
    )
    window_start = serializers.DateTimeField(required=False)
    window_end = serializers.DateTimeField(required=False)

    def validate_service(self, slug):
        if slug is None:
            return None
        service = Service.objects.filter(slug=slug).first()
        if service is None:
            raise ValidationError(f"Unknown service {slug!r}.")
        return service

    def validate(self, attrs):
        end = attrs.get("window_end") or timezone.now()
        start = attrs.get("window_start") or end - timedelta(hours=24)
        if start >= end:
            raise ValidationError({"window_end": ["Must be after window_start."]})
        return {**attrs, "window_start": start, "window_end": end}


class SnapshotSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "service",
            "types",
            "window_start",
            "window_end",
            "status",
            "status_reason",
            "event_count",
            "byte_size",
            "sha256",
            "key_id",
            "manifest",
            "signature",
            "created_by",
            "created_at",
            "exported_at",
            "verified_at",
            "links",
        ]

    def get_links(self, obj) -> dict[str, str]:
        return {
            "self": reverse("v1:snapshot-detail", args=[obj.pk]),
            "download": reverse("v1:snapshot-download", args=[obj.pk]),
            "verify": reverse("v1:snapshot-verify", args=[obj.pk]),
        }


class SnapshotListView(APIView):
    """GET: snapshots, newest first. POST: export the events of a service (or all), types (or
    all) and a window [window_start, window_end) (default: the last 24 h); 202 with the pending
    snapshot, which a worker writes, signs and marks ready."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR

    @extend_schema(responses=SnapshotSerializer(many=True))
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(
            Snapshot.objects.select_related("service"), request, self
        )
        return paginator.get_paginated_response(SnapshotSerializer(page, many=True).data)

    @extend_schema(request=SnapshotCreateSerializer, responses={202: SnapshotSerializer})
    def post(self, request):
        body = SnapshotCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        snapshot = request_snapshot(
            actor=request.user,
            service=data.get("service"),
            types=data.get("types"),
            start=data["window_start"],
            end=data["window_end"],
        )
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_202_ACCEPTED)


class SnapshotDetailView(generics.RetrieveAPIView):
    """A snapshot's metadata, its signed manifest and the signature."""

    read_role = Role.VIEWER
    serializer_class = SnapshotSerializer
    queryset = Snapshot.objects.select_related("service")


class SnapshotDownloadView(APIView):
    """The gzip JSON Lines file, streamed from storage (operators only: it holds payloads)."""

    read_role = Role.OPERATOR

    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        snapshot = get_object_or_404(Snapshot, pk=pk)
        if snapshot.status not in (Snapshot.Status.READY, Snapshot.Status.INVALID):
            raise Conflict(f"Snapshot {pk} is {snapshot.status}: there is no file to download.")
        try:
            handle = snapshot_storage().open(snapshot.file_name, "rb")
        except OSError:
            raise Conflict(f"Snapshot {pk}'s file is missing from storage.") from None
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"snapshot-{pk}.jsonl.gz",
            content_type="application/gzip",
        )
        response["X-Snapshot-SHA256"] = snapshot.sha256
        response["X-Snapshot-Signature"] = f"{snapshot.key_id}:{snapshot.signature}"
        return response


class SnapshotVerifyView(APIView):
    """Recompute the file's hash and the manifest's signature; the snapshot comes back ready
    (verified now) or invalid with the reason."""

    write_role = Role.OPERATOR

    @extend_schema(request=None, responses={200: SnapshotSerializer})
    def post(self, request, pk: int):
        snapshot = get_object_or_404(Snapshot.objects.select_related("service"), pk=pk)
        try:
            snapshot = verify_snapshot(snapshot, actor=request.user)
        except SnapshotError as exc:
            raise Conflict(str(exc)) from None
        return Response(SnapshotSerializer(snapshot).data)
