"""REST API of the budgets app: SLOs, the ledger, policies, freeze windows, dependencies, hooks.

Gates and canaries are in ``budgets.api_gates``; OpenSLO in ``budgets.api_openslo``. Every
view calls one domain function; errors from the domain (``InvalidInput``) become 400s that
name the field.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import alerts, ledger, policy, slos
from budgets.maths import InvalidInput
from budgets.models import SLO, AlertEvent, BudgetAlertHook, BudgetPolicy, FreezeWindow
from budgets.status import service_states
from controlplane.models import Service
from controlplane.roles import Role
from controlplane.serializers import StrictModelSerializer, StrictSerializer

LABEL_REGEX = r"^[-a-zA-Z0-9_.:]{0,64}$"


def invalid(exc: InvalidInput) -> ValidationError:
    return ValidationError({exc.field: [str(exc)]})


@extend_schema_field(OpenApiTypes.NUMBER)
class RatioField(serializers.Field):
    """A number given as JSON number or string, kept exact (Decimal); shown as a number."""

    default_error_messages = {"invalid": "Must be a number, such as 0.999."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float | str):
            self.fail("invalid")
        try:
            value = Decimal(str(data).strip())
        except ArithmeticError:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        return value

    def to_representation(self, value):
        return float(value) if value is not None else None


# --------------------------------------------------------------------------- SLOs


class SloSerializer(StrictModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", queryset=Service.objects.all())
    target = RatioField(help_text="0.99 .. 0.999999 (99 % .. 99.9999 %).")
    slice_target = RatioField(required=False, allow_null=True)
    slice_minutes = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=60
    )
    latency_threshold_ms = serializers.FloatField(
        required=False, allow_null=True, min_value=0.001, max_value=1e9
    )
    window = serializers.CharField(max_length=100)

    class Meta:
        model = SLO
        fields = ["id", *slos.SLO_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs):
        try:
            return slos.clean_fields(attrs, existing=self.instance)
        except InvalidInput as exc:
            raise invalid(exc) from None


class AlertEventSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField()

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "rule",
            "severity",
            "state",
            "burn_rate_threshold",
            "long_window",
            "short_window",
            "long_burn_rate",
            "short_burn_rate",
            "fired_at",
            "resolved_at",
        ]

    def get_state(self, obj) -> str:
        return "firing" if obj.is_firing else "resolved"


class SloViewSet(viewsets.ModelViewSet):
    """SLOs. Viewers read; operators write. ``?service=<slug>`` filters.

    The SLI kind and budgeting method (with slice length and target) are fixed once created.
    """

    serializer_class = SloSerializer
    read_role = Role.VIEWER
    write_role = Role.OPERATOR
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        qs = SLO.objects.select_related("service")
        service = self.request.query_params.get("service")
        return qs.filter(service__slug=service) if service else qs

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        service = data.pop("service")
        try:
            serializer.instance = slos.create_slo(actor=self.request.user, service=service, **data)
        except InvalidInput as exc:
            raise invalid(exc) from None

    def perform_update(self, serializer):
        data = {k: v for k, v in serializer.validated_data.items() if k not in slos.FIXED_FIELDS}
        try:
            serializer.instance = slos.update_slo(
                serializer.instance, actor=self.request.user, **data
            )
        except InvalidInput as exc:
            raise invalid(exc) from None

    def perform_destroy(self, instance):
        slos.delete_slo(instance, actor=self.request.user)

    @extend_schema(responses={200: dict})
    @action(detail=True, methods=["get"])
    def budget(self, request, pk=None):
        """Where the SLO's error budget stands now, its firing alerts and its policy."""
        slo = self.get_object()
        state = service_states([slo.service], timezone.now())[slo.service_id]
        figures = next(f for f in state.slos if f.slo.pk == slo.pk)
        firing = AlertEvent.objects.filter(slo=slo, resolved_at__isnull=True)
        return Response(
            {
                **figures.as_json(),
                "frozen": state.frozen,
                "freeze_reasons": state.reasons,
                "policy": policy.policy_json(state.policy),
                "alerts_firing": AlertEventSerializer(firing, many=True).data,
            }
        )

    @extend_schema(responses={200: AlertEventSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="alerts")
    def alert_history(self, request, pk=None):
        """Alert history of the SLO, newest first (firing and resolved)."""
        slo = self.get_object()
        page = self.paginate_queryset(AlertEvent.objects.filter(slo=slo))
        return self.get_paginated_response(AlertEventSerializer(page, many=True).data)


class CountSerializer(StrictSerializer):
    bucket = serializers.DateTimeField(help_text="Start of the minute (UTC), e.g. 12:34:00Z.")
    good = serializers.IntegerField(min_value=0, max_value=10**15)
    total = serializers.IntegerField(min_value=0, max_value=10**15)
    label = serializers.RegexField(LABEL_REGEX, required=False, default="")


class ExternalEventsSerializer(StrictSerializer):
    source = serializers.RegexField(r"^[-a-zA-Z0-9_.:/]{1,100}$")
    counts = CountSerializer(many=True, allow_empty=False, max_length=10_000)


class AlertChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The AlertEvent.")
    slo = serializers.IntegerField()
    rule = serializers.CharField()


class AlertChangesSerializer(serializers.Serializer):
    firing = AlertChangeSerializer(many=True, help_text="Alerts this evaluation opened.")
    resolved = AlertChangeSerializer(many=True, help_text="Alerts this evaluation resolved.")


class EvaluateAlertsSerializer(StrictSerializer):
    service = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Service.objects.all(),
        required=False,
        help_text="Only this service's SLOs (default: every SLO).",
    )


class EvaluateAlertsResultSerializer(AlertChangesSerializer):
    evaluated = serializers.IntegerField(help_text="How many SLOs were evaluated.")


class EvaluateAlertsView(APIView):
    """Evaluate the burn-rate alerts now (as beat does every minute), for every SLO or one
    service's, and answer what started or stopped firing. Hooks are notified as from beat."""

    write_role = Role.OPERATOR

    @extend_schema(
        request=EvaluateAlertsSerializer, responses={200: EvaluateAlertsResultSerializer}
    )
    def post(self, request):
        body = EvaluateAlertsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        service = body.validated_data.get("service")
        slo_list = alerts.slos_to_evaluate(service)
        transitions = alerts.evaluate(slos=slo_list, actor=request.user)
        return Response({"evaluated": len(slo_list), **alerts.summary(transitions)})


class ExternalEventsView(APIView):
    """Push good/total counts of an ``external`` SLO, per minute bucket and source.

    Idempotent per (bucket, source, label): a repeated push replaces what that key said
    before, so retries never double count.
    """

    write_role = Role.OPERATOR
    token_scopes = ("ingest",)

    @extend_schema(
        request=ExternalEventsSerializer,
        responses={
            200: inline_serializer(
                "ExternalEventsResult",
                {
                    "accepted": serializers.IntegerField(),
                    "replaced": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                    "alerts": AlertChangesSerializer(),
                },
            )
        },
    )
    def post(self, request, pk: int):
        slo = get_object_or_404(SLO, pk=pk)
        serializer = ExternalEventsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        counts = [(c["bucket"], c["good"], c["total"], c["label"]) for c in data["counts"]]
        now = timezone.now()
        try:
            summary = ledger.record_external(slo, data["source"], counts, now=now)
        except InvalidInput as exc:
            raise invalid(exc) from None
        # Evaluated at once, so a pipeline or a test sees the alert without waiting for beat.
        transitions = alerts.evaluate(slos=[slo], actor=request.user, now=now)
        return Response({**summary, "alerts": alerts.summary(transitions)})


# --------------------------------------------------------------------------- services


def _service(slug: str) -> Service:
    return get_object_or_404(Service, slug=slug)


class DependenciesSerializer(StrictSerializer):
    depends_on = serializers.ListField(
        child=serializers.SlugField(max_length=63), max_length=500, allow_empty=True
    )


class DependenciesView(APIView):
    """The services this service depends on (PUT replaces the list), and its dependents."""

    write_role = Role.OPERATOR

    def _body(self, service: Service) -> dict:
        return {
            "service": service.slug,
            "depends_on": sorted(service.dependencies.values_list("depends_on__slug", flat=True)),
            "dependents": sorted(service.dependents.values_list("service__slug", flat=True)),
            "impact": [
                {"service": slug, "relation": item.relation, "distance": item.distance}
                for item, slug in _impact_slugs(service)
            ],
        }

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        return Response(self._body(_service(slug)))

    @extend_schema(request=DependenciesSerializer, responses={200: dict})
    def put(self, request, slug: str):
        service = _service(slug)
        serializer = DependenciesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wanted = serializer.validated_data["depends_on"]
        found = {s.slug: s for s in Service.objects.filter(slug__in=wanted)}
        missing = [slug for slug in wanted if slug not in found]
        if missing:
            raise ValidationError({"depends_on": [f"Unknown service: {', '.join(missing)}."]})
        try:
            policy.set_dependencies(service, list(found.values()), actor=request.user)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(self._body(service))


def _impact_slugs(service: Service):
    found = policy.impact(service.pk)
    slugs = dict(
        Service.objects.filter(pk__in={i.service_id for i in found}).values_list("pk", "slug")
    )
    return [(item, slugs[item.service_id]) for item in found]


class ServiceBudgetView(APIView):
    """A service's budget state: every SLO's figures, its policy and why it is frozen."""

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        service = _service(slug)
        return Response(service_states([service], timezone.now())[service.pk].as_json())


class HookSerializer(StrictModelSerializer):
    class Meta:
        model = BudgetAlertHook
        fields = ["id", "url", "created_at", "last_status", "last_sent_at"]
        read_only_fields = ["id", "created_at", "last_status", "last_sent_at"]


class ServiceHooksView(APIView):
    """Alert webhooks of a service: each gets a JSON POST when an alert fires or resolves.

    The URL's host must be in CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS.
    """

    read_role = Role.OPERATOR
    write_role = Role.OPERATOR

    @extend_schema(responses={200: HookSerializer(many=True)})
    def get(self, request, slug: str):
        service = _service(slug)
        return Response(HookSerializer(service.alert_hooks.all(), many=True).data)

    @extend_schema(request=HookSerializer, responses={201: HookSerializer})
    def post(self, request, slug: str):
        service = _service(slug)
        serializer = HookSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            hook = alerts.add_hook(service, serializer.validated_data["url"], actor=request.user)
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(HookSerializer(hook).data, status=status.HTTP_201_CREATED)


class HookDetailView(APIView):
    read_role = Role.OPERATOR
    write_role = Role.OPERATOR

    @extend_schema(responses={200: HookSerializer})
    def get(self, request, pk: int):
        return Response(HookSerializer(get_object_or_404(BudgetAlertHook, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        alerts.remove_hook(get_object_or_404(BudgetAlertHook, pk=pk), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- policy


class PolicySerializer(StrictSerializer):
    freeze_threshold = RatioField(required=False, help_text="0.8 = freeze at 80 % consumed.")
    request_ttl = serializers.DurationField(
        required=False, min_value=timedelta(minutes=1), max_value=timedelta(days=30)
    )
    approval_ttl = serializers.DurationField(
        required=False, min_value=timedelta(minutes=1), max_value=timedelta(days=30)
    )
    deny_on_frozen_critical = serializers.BooleanField(required=False)
    canary_tolerance = serializers.FloatField(required=False, min_value=0, max_value=0.999)
    canary_confidence = serializers.FloatField(required=False, min_value=0.5, max_value=0.9999)
    canary_min_events = serializers.IntegerField(required=False, min_value=1, max_value=10**9)


def _save_policy(service: Service | None, request) -> BudgetPolicy:
    serializer = PolicySerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        return policy.save_policy(service, actor=request.user, **serializer.validated_data)
    except InvalidInput as exc:
        raise invalid(exc) from None


class DefaultPolicyView(APIView):
    """The global error-budget policy. Admins change it (PATCH semantics for PUT)."""

    write_role = Role.ADMIN

    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(policy.policy_json(policy.default_policy()))

    @extend_schema(request=PolicySerializer, responses={200: dict})
    def put(self, request):
        return Response(policy.policy_json(_save_policy(None, request)))


class ServicePolicyView(APIView):
    """A service's policy: GET the one in force; PUT sets an override (starting from the
    default's values); DELETE removes the override. Admins change policies."""

    write_role = Role.ADMIN

    @extend_schema(responses={200: dict})
    def get(self, request, slug: str):
        service = _service(slug)
        current = policy.policies_for([service.pk])[service.pk]
        return Response({**policy.policy_json(current), "overridden": not current.is_default})

    @extend_schema(request=PolicySerializer, responses={200: dict})
    def put(self, request, slug: str):
        saved = _save_policy(_service(slug), request)
        return Response({**policy.policy_json(saved), "overridden": True})

    @extend_schema(responses={204: None})
    def delete(self, request, slug: str):
        service = _service(slug)
        override = get_object_or_404(BudgetPolicy, service=service)
        policy.delete_policy(override, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- freeze windows


class FreezeWindowSerializer(StrictModelSerializer):
    service = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Service.objects.all(),
        required=False,
        allow_null=True,
        help_text="Empty: every service.",
    )

    class Meta:
        model = FreezeWindow
        fields = ["id", "service", "name", "starts_at", "ends_at", "reason", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs):
        if attrs["ends_at"] <= attrs["starts_at"]:
            raise ValidationError({"ends_at": ["Must be after starts_at."]})
        return attrs


class FreezeWindowViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Freeze windows (holidays, events): normal changes are denied in them, urgent ones need
    an approval. Approvers manage them. ``?active=1`` lists those in force now."""

    serializer_class = FreezeWindowSerializer
    read_role = Role.VIEWER
    write_role = Role.APPROVER

    def get_queryset(self):
        qs = FreezeWindow.objects.select_related("service")
        if self.request.query_params.get("active") in ("1", "true"):
            now = timezone.now()
            qs = qs.filter(starts_at__lte=now, ends_at__gt=now)
        return qs

    def perform_create(self, serializer):
        try:
            serializer.instance = policy.create_freeze_window(
                actor=self.request.user, **serializer.validated_data
            )
        except InvalidInput as exc:
            raise invalid(exc) from None

    def perform_destroy(self, instance):
        policy.delete_freeze_window(instance, actor=self.request.user)
