"""API of the event log: ingest, events, dead letters and redrive."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.pagination import PageNumberPagination
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer
from replay.dead_letters import dead_letters, redrive
from replay.ingest import ingest_events
from replay.models import Event
from replay.serializers import (
    EventDetailSerializer,
    EventInSerializer,
    EventOutSerializer,
    IngestResponseSerializer,
)


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


class EventsView(APIView):
    """GET: the event log, newest first (?service=&status=&type=&priority=).
    POST: ingest one event, or `{"events": [...]}`. 202 with a result per event: accepted,
    duplicate (same id seen before: no second delivery) or rejected with the reason."""

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
        qs = filter_events(Event.objects.select_related("service", "route"), request.query_params)
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
