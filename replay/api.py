"""API of the event log: ingest, events, dead letters and redrive."""

from __future__ import annotations

from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.models import Service
from controlplane.pagination import PageNumberPagination
from controlplane.roles import Role, has_role
from controlplane.serializers import StrictSerializer
from replay.dead_letters import dead_letters, redrive
from replay.ingest import ingest_events
from replay.models import Event, ReplayRun, Snapshot
from replay.replay_runs import (
    ReplayError,
    cancel_replay,
    create_fallback_replay,
    create_replay,
    pause_replay,
    resume_replay,
)
from replay.replay_runs import outcomes as replay_outcomes
from replay.serializers import (
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


# A batch's items are checked one by one, each answered in the 202's results (an item that is
# not a valid EventIn is "rejected" there, the rest of the batch goes on): so the schema of a
# batch item is any JSON value, described as EventIn, and not EventIn itself.
INGEST_BATCH = inline_serializer(
    "IngestBatch",
    {
        "events": serializers.ListField(
            child=serializers.JSONField(help_text="An EventIn; checked per item."),
            min_length=1,
            help_text="At most INGEST_BATCH_LIMIT events (413 beyond). Each is answered in "
            "`results`: a bad one is rejected alone.",
        )
    },
)


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    int,
    location=OpenApiParameter.HEADER,
    response=[202, 429, 503],
    required=False,
    description="When events were shed: the largest `retry_after` of the results, in seconds.",
)


def ingest_response(results) -> Response:
    """202 with a result per event; when every event was shed, 429 (rate limited) or 503 (any
    shed because delivery is behind), and a Retry-After header whenever any was shed."""
    counts = {
        s: sum(1 for r in results if r.status == s)
        for s in ("accepted", "duplicate", "rejected", "shed")
    }
    code = status.HTTP_202_ACCEPTED
    headers = {}
    if counts["shed"]:
        shed = [r for r in results if r.status == "shed"]
        headers["Retry-After"] = str(max(r.retry_after or 1 for r in shed))
        if counts["shed"] == len(results):
            overloaded = any(r.reason == "overloaded" for r in shed)
            code = (
                status.HTTP_503_SERVICE_UNAVAILABLE
                if overloaded
                else status.HTTP_429_TOO_MANY_REQUESTS
            )
    return Response(
        {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "shed": counts["shed"],
            "results": [r.as_dict() for r in results],
        },
        status=code,
        headers=headers,
    )


class EventsView(APIView):
    """GET: the event log, newest first (?service=&status=&type=&priority=).
    POST: ingest one event, or `{"events": [...]}`. 202 with a result per event: accepted,
    duplicate (same id seen before: no second delivery), rejected with the reason, or shed
    (admission: rate_limited or overloaded, with retry_after; not acknowledged, not written).
    Every event shed: 429 (rate limited) or 503 (overloaded), with Retry-After."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    token_scopes = ("ingest",)
    pagination_class = PageNumberPagination  # tells the schema that GET is paginated

    @extend_schema(
        parameters=[
            OpenApiParameter(n, str, required=False)
            for n in ("service", "status", "type", "priority")
        ],
        responses=EventOutSerializer(many=True),
    )
    def get(self, request):
        qs = filter_events(
            Event.objects.select_related("service", "route", "served_for"), request.query_params
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(qs.order_by("-pk"), request, self)
        return paginator.get_paginated_response(
            EventOutSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        request=PolymorphicProxySerializer(
            component_name="IngestRequest",
            serializers=[EventInSerializer, INGEST_BATCH],
            resource_type_field_name=None,
        ),
        parameters=[RETRY_AFTER],
        responses={
            202: IngestResponseSerializer,
            429: OpenApiResponse(
                IngestResponseSerializer,
                description="Every event shed by its service's token bucket (`rate_limited`): "
                "nothing was written. Send again after Retry-After seconds.",
            ),
            503: OpenApiResponse(
                IngestResponseSerializer,
                description="Every event shed, some because delivery is behind for their "
                "priority class (`overloaded`): nothing was written. Retry-After says when.",
            ),
        },
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
        return ingest_response(results)


class EventDetailView(generics.RetrieveAPIView):
    """One event with its delivery attempts."""

    read_role = Role.VIEWER
    serializer_class = EventDetailSerializer
    queryset = Event.objects.select_related("service", "route", "served_for").prefetch_related(
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
    pagination_class = PageNumberPagination  # tells the schema that GET is paginated

    @extend_schema(parameters=FILTER_PARAMS, responses=EventOutSerializer(many=True))
    def get(self, request):
        query = {k: v for k, v in request.query_params.items() if k not in ("page", "page_size")}
        filters = DeadLetterFilterSerializer(data=query)
        filters.is_valid(raise_exception=True)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(dead_letters(**filters.validated_data), request, self)
        return paginator.get_paginated_response(
            EventOutSerializer(page, many=True, context={"request": request}).data
        )


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
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
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
    pagination_class = PageNumberPagination  # tells the schema that GET is paginated

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


# --------------------------------------------------------------------------- replay runs


def route_model():
    # By app label, not an import: replay imports controlplane only (DESIGN.md).
    return apps.get_model("breakers", "Route")


class ReplayCreateSerializer(StrictSerializer):
    snapshot = serializers.IntegerField(min_value=1)
    window_start = serializers.DateTimeField(required=False)
    window_end = serializers.DateTimeField(required=False)
    types = serializers.ListField(
        child=serializers.RegexField(EVENT_TYPE, max_length=200), required=False, max_length=100
    )
    route = serializers.SlugField(required=False, allow_null=True, max_length=100)
    mode = serializers.ChoiceField(choices=ReplayRun.Mode.choices, default=ReplayRun.Mode.DRY_RUN)
    rate = serializers.FloatField(max_value=100_000)
    force = serializers.BooleanField(default=False)

    def validate_snapshot(self, pk):
        snapshot = Snapshot.objects.filter(pk=pk).first()
        if snapshot is None:
            raise ValidationError(f"Unknown snapshot {pk}.")
        if snapshot.status != Snapshot.Status.READY:
            reason = f": {snapshot.status_reason}" if snapshot.status_reason else ""
            raise ValidationError(
                f"Snapshot {pk} is {snapshot.status}{reason}; it cannot be replayed."
            )
        return snapshot

    def validate_route(self, name):
        if name is None:
            return None
        route = route_model().objects.filter(name=name).first()
        if route is None:
            raise ValidationError(f"Unknown route {name!r}.")
        return route

    def validate_rate(self, rate):
        if not rate > 0:  # also refuses NaN
            raise ValidationError("Must be above 0 events per second.")
        return rate

    def validate(self, attrs):
        start, end = attrs.get("window_start"), attrs.get("window_end")
        snapshot, route = attrs["snapshot"], attrs.get("route")
        if start and end and start >= end:
            raise ValidationError({"window_end": ["Must be after window_start."]})
        if (end or snapshot.window_end) <= (start or snapshot.window_start):
            raise ValidationError({"window_end": ["Must be after window_start."]})
        if min(end or snapshot.window_end, snapshot.window_end) <= max(
            start or snapshot.window_start, snapshot.window_start
        ):
            raise ValidationError({"window_start": ["Outside the snapshot's window."]})
        if route is not None and snapshot.service_id not in (None, route.service_id):
            raise ValidationError({"route": ["Not a route of the snapshot's service."]})
        return attrs


class FallbackReplaySerializer(StrictSerializer):
    route = serializers.SlugField(max_length=100)
    rate = serializers.FloatField(max_value=100_000, required=False)
    mode = serializers.ChoiceField(choices=ReplayRun.Mode.choices, default=ReplayRun.Mode.LIVE)

    def validate_route(self, name):
        route = route_model().objects.filter(name=name).first()
        if route is None:
            raise ValidationError(f"Unknown route {name!r}.")
        return route

    def validate_rate(self, rate):
        if not rate > 0:  # also refuses NaN
            raise ValidationError("Must be above 0 events per second.")
        return rate


class ReplayRunSerializer(serializers.ModelSerializer):
    route = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    outcomes = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = ReplayRun
        fields = [
            "id",
            "source",
            "snapshot",
            "window_start",
            "window_end",
            "types",
            "route",
            "mode",
            "rate",
            "force",
            "status",
            "status_reason",
            "total",
            "done",
            "skipped",
            "failed",
            "checkpoint",
            "outcomes",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "links",
        ]

    def get_outcomes(self, obj) -> dict[str, int]:
        """Live runs: the copies' event statuses in dispatch so far."""
        return replay_outcomes(obj) if obj.mode == ReplayRun.Mode.LIVE else {}

    def get_links(self, obj) -> dict[str, str]:
        return {
            action: reverse(f"v1:replay-{action}", args=[obj.pk])
            for action in ("pause", "resume", "cancel")
        } | {"self": reverse("v1:replay-detail", args=[obj.pk])}


class ReplayListView(APIView):
    """GET: replay runs, newest first. POST: start a run over a ready snapshot; 202 with the
    run. `force` (re-deliver what was already delivered on the target route) needs the admin
    role."""

    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    pagination_class = PageNumberPagination  # tells the schema that GET is paginated

    @extend_schema(responses=ReplayRunSerializer(many=True))
    def get(self, request):
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(ReplayRun.objects.select_related("route"), request, self)
        return paginator.get_paginated_response(ReplayRunSerializer(page, many=True).data)

    @extend_schema(request=ReplayCreateSerializer, responses={202: ReplayRunSerializer})
    def post(self, request):
        body = ReplayCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["force"] and not has_role(request.user, Role.ADMIN):
            raise PermissionDenied("Forcing a replay needs the admin role.")
        try:
            run = create_replay(
                actor=request.user,
                snapshot=data["snapshot"],
                mode=data["mode"],
                rate=data["rate"],
                start=data.get("window_start"),
                end=data.get("window_end"),
                types=data.get("types"),
                route=data.get("route"),
                force=data["force"],
            )
        except ReplayError as exc:
            raise Conflict(str(exc)) from None
        return Response(ReplayRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class FallbackReplayView(APIView):
    """POST: re-deliver to `route` what its fallback served while its breaker was open (from
    the event log, no snapshot), skipping events the route has delivered since; 202 with the
    run. The breaker page's "replay what the fallback served" button does the same."""

    write_role = Role.OPERATOR

    @extend_schema(request=FallbackReplaySerializer, responses={202: ReplayRunSerializer})
    def post(self, request):
        body = FallbackReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        extra = {"rate": data["rate"]} if "rate" in data else {}
        try:
            run = create_fallback_replay(
                actor=request.user, route=data["route"], mode=data["mode"], **extra
            )
        except ReplayError as exc:
            raise Conflict(str(exc)) from None
        return Response(ReplayRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ReplayDetailView(generics.RetrieveAPIView):
    """A run: its progress (total, done, skipped, failed, checkpoint) and, for live runs, how its
    copies fared in dispatch."""

    read_role = Role.VIEWER
    serializer_class = ReplayRunSerializer
    queryset = ReplayRun.objects.select_related("route")


class ReplayActionView(APIView):
    """POST pause, resume or cancel; 409 when the run's state does not allow it."""

    write_role = Role.OPERATOR
    verb = None

    @extend_schema(request=None, responses={200: ReplayRunSerializer})
    def post(self, request, pk: int):
        run = get_object_or_404(ReplayRun, pk=pk)
        try:
            run = type(self).verb(run, actor=request.user)
        except ReplayError as exc:
            raise Conflict(str(exc)) from None
        return Response(ReplayRunSerializer(run).data)


class ReplayPauseView(ReplayActionView):
    verb = pause_replay


class ReplayResumeView(ReplayActionView):
    verb = resume_replay


class ReplayCancelView(ReplayActionView):
    verb = cancel_replay
