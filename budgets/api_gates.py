"""REST API for change gates and canary verdicts.

``POST /gates/check`` answers 200 allow, 423 deny (with reasons) or 202 approval_required
(with the decision id and where to poll). Approvers approve or reject; nobody their own.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import canary_verdicts, gates
from budgets.api import LABEL_REGEX, invalid
from budgets.maths.budget import InvalidInput
from budgets.maths.windows import parse_duration
from budgets.models import SLO, CanaryVerdict, GateDecision
from controlplane.models import Service
from controlplane.roles import Role
from controlplane.serializers import StrictSerializer

S = GateDecision.Status
HTTP_FOR_STATUS = {
    S.ALLOW: status.HTTP_200_OK,
    S.APPROVED: status.HTTP_200_OK,
    S.APPROVAL_REQUIRED: status.HTTP_202_ACCEPTED,
    S.DENY: status.HTTP_423_LOCKED,
    S.REJECTED: status.HTTP_423_LOCKED,
    S.EXPIRED: status.HTTP_423_LOCKED,
}
CHANGE_ID_REGEX = r"^[-a-zA-Z0-9_.:#@+]{1,200}$"  # no "/": it appears in URLs


def decision_json(decision: GateDecision, request=None) -> dict[str, Any]:
    """The decision as the API shows it, with where to poll, approve and look."""
    poll = reverse("v1:gate-decision", args=[decision.pk])
    build = request.build_absolute_uri if request is not None else (lambda url: url)
    return {
        "id": decision.pk,
        "decision": decision.status,
        "permits_change": decision.permits_change,
        "service": decision.service.slug,
        "change_id": decision.change_id,
        "version": decision.version,
        "kind": decision.kind,
        "description": decision.description,
        "requested_by": decision.requested_by,
        "reasons": decision.reasons,
        "budget": decision.figures,
        "impacted": decision.impacted,
        "created_at": decision.created_at.isoformat(),
        "updated_at": decision.updated_at.isoformat(),
        "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
        "decided_by": decision.decided_by.get_username() if decision.decided_by else None,
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
        "note": decision.decision_note,
        "poll_url": build(poll),
        "approve_url": build(reverse("v1:gate-approve", args=[decision.pk])),
        "reject_url": build(reverse("v1:gate-reject", args=[decision.pk])),
        "page_url": build(reverse("budgets:changes") + f"#decision-{decision.pk}"),
    }


def gate_error_response(exc: gates.GateError) -> Response:
    http = {
        "conflict": status.HTTP_409_CONFLICT,
        "self_approval": status.HTTP_403_FORBIDDEN,
        "forbidden": status.HTTP_403_FORBIDDEN,
    }.get(exc.code, status.HTTP_400_BAD_REQUEST)
    return Response(
        {"detail": exc.message, "code": exc.code, "errors": {exc.field: [exc.message]}},
        status=http,
    )


class GateCheckSerializer(StrictSerializer):
    service = serializers.SlugField(max_length=63)
    change_id = serializers.RegexField(CHANGE_ID_REGEX, help_text="Unique per service.")
    version = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=GateDecision.Kind.choices)
    description = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default=""
    )
    requested_by = serializers.CharField(max_length=150, help_text="The person behind it.")


class DecisionResponse(serializers.Serializer):
    """Documentation only: the shape of a gate decision."""

    id = serializers.IntegerField()
    decision = serializers.ChoiceField(choices=S.choices)
    permits_change = serializers.BooleanField()
    reasons = serializers.ListField(child=serializers.DictField())
    budget = serializers.DictField()
    impacted = serializers.ListField(child=serializers.DictField())
    poll_url = serializers.URLField()


class GateCheckView(APIView):
    """May this change go out? 200 allow, 423 deny, 202 approval_required.

    Checking the same change id again returns its current decision. CI tokens are
    operator tokens.
    """

    write_role = Role.OPERATOR

    @extend_schema(
        request=GateCheckSerializer,
        responses={
            200: DecisionResponse,
            202: DecisionResponse,
            423: DecisionResponse,
            409: OpenApiResponse(description="Change id reused with another version or kind."),
        },
    )
    def post(self, request):
        serializer = GateCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        service = Service.objects.filter(slug=data.pop("service")).first()
        if service is None:
            raise ValidationError({"service": ["Unknown service."]})
        try:
            result = gates.check_change(service=service, actor=request.user, **data)
        except gates.GateError as exc:
            return gate_error_response(exc)
        body = decision_json(result.decision, request)
        response = Response(body, status=HTTP_FOR_STATUS[result.decision.status])
        if result.decision.status == S.APPROVAL_REQUIRED:
            response["Location"] = body["poll_url"]
        return response


class DecisionSerializer(serializers.ModelSerializer):
    """A decision as listed (see decision_json for the full shape)."""

    class Meta:
        model = GateDecision
        fields = ["id"]

    def to_representation(self, instance):
        return decision_json(instance, self.context.get("request"))


class DecisionListView(ListAPIView):
    """Gate decisions, newest first. Filter with ``?status=``, ``?service=``."""

    serializer_class = DecisionSerializer

    def get_queryset(self):
        gates.expire_due(timezone.now())
        qs = GateDecision.objects.select_related("service", "decided_by")
        for name, lookup in (("status", "status"), ("service", "service__slug")):
            value = self.request.query_params.get(name)
            if value:
                qs = qs.filter(**{lookup: value})
        return qs


class DecisionDetailView(APIView):
    """One decision: poll it until it is approved, rejected or expired."""

    @extend_schema(responses={200: DecisionResponse})
    def get(self, request, pk: int):
        decision = get_object_or_404(GateDecision.objects.select_related("service"), pk=pk)
        decision = gates.refresh_expiry(decision, timezone.now())
        return Response(decision_json(decision, request))


class NoteSerializer(StrictSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class _DecideView(APIView):
    write_role = Role.APPROVER
    approve = True

    @extend_schema(request=NoteSerializer, responses={200: DecisionResponse})
    def post(self, request, pk: int):
        decision = get_object_or_404(GateDecision.objects.select_related("service"), pk=pk)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        verb = gates.approve if self.approve else gates.reject
        try:
            decision = verb(decision, actor=request.user, note=serializer.validated_data["note"])
        except gates.GateError as exc:
            return gate_error_response(exc)
        return Response(decision_json(decision, request))


class ApproveView(_DecideView):
    """Approve a pending request (approvers; not your own). The approval lapses per policy."""

    approve = True


class RejectView(_DecideView):
    """Reject a pending request (approvers; not your own)."""

    approve = False


# --------------------------------------------------------------------------- canary


class GoodTotalSerializer(StrictSerializer):
    good = serializers.IntegerField(min_value=0, max_value=10**15)
    total = serializers.IntegerField(min_value=0, max_value=10**15)

    def validate(self, attrs):
        if attrs["good"] > attrs["total"]:
            raise ValidationError({"good": ["Must not exceed total."]})
        return attrs


class CanarySerializer(StrictSerializer):
    service = serializers.SlugField(max_length=63)
    canary = GoodTotalSerializer(required=False)
    baseline = GoodTotalSerializer(required=False)
    slo = serializers.IntegerField(required=False, min_value=1, help_text="Ledger mode.")
    window = serializers.CharField(required=False, max_length=10, help_text="e.g. 30m, 1h.")
    canary_label = serializers.RegexField(LABEL_REGEX, required=False, default="")
    baseline_label = serializers.RegexField(LABEL_REGEX, required=False, default="")


def canary_json(verdict: CanaryVerdict) -> dict[str, Any]:
    return {
        "id": verdict.pk,
        "service": verdict.service.slug,
        "change_id": verdict.change_id,
        "verdict": verdict.decision,
        "explanation": verdict.explanation,
        "figures": verdict.figures,
        "source": verdict.source,
        "freezes_gate": verdict.freezes,
        "created_at": verdict.created_at.isoformat(),
        "resolved_at": verdict.resolved_at.isoformat() if verdict.resolved_at else None,
        "resolution": verdict.resolution,
    }


class CanaryView(APIView):
    """Judge a canary: counts for canary and baseline, or an SLO, a window and two ledger
    labels. Answers promote, rollback or inconclusive with the numbers explained; a rollback
    freezes the service's gate until it is resolved."""

    write_role = Role.OPERATOR

    @extend_schema(request=CanarySerializer, responses={200: dict})
    def post(self, request, change_id: str):
        serializer = CanarySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        service = Service.objects.filter(slug=data["service"]).first()
        if service is None:
            raise ValidationError({"service": ["Unknown service."]})
        if len(change_id) > 200:
            raise ValidationError({"change_id": ["At most 200 characters."]})
        kwargs: dict[str, Any] = {}
        try:
            if "slo" in data:
                slo = SLO.objects.filter(pk=data["slo"]).first()
                if slo is None:
                    raise InvalidInput("slo", "is not a known SLO")
                kwargs = {
                    "slo": slo,
                    "window": parse_duration(data.get("window", ""), "window"),
                    "canary_label": data["canary_label"],
                    "baseline_label": data["baseline_label"],
                }
            for side in ("canary", "baseline"):
                if side in data:
                    kwargs[side] = (data[side]["good"], data[side]["total"])
            verdict = canary_verdicts.judge_canary(
                service=service, change_id=change_id, actor=request.user, **kwargs
            )
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(canary_json(verdict))


class CanaryListView(APIView):
    """Canary verdicts, newest first; ``?service=``, ``?unresolved=1`` (freezing rollbacks)."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        qs = CanaryVerdict.objects.select_related("service")
        service = request.query_params.get("service")
        if service:
            qs = qs.filter(service__slug=service)
        if request.query_params.get("unresolved") in ("1", "true"):
            qs = qs.filter(decision=CanaryVerdict.Decision.ROLLBACK, resolved_at__isnull=True)
        return Response({"results": [canary_json(v) for v in qs[:200]]})


class CanaryResolveView(APIView):
    """Mark a rollback verdict resolved (the rollback is done); the gate unfreezes."""

    write_role = Role.OPERATOR

    @extend_schema(request=NoteSerializer, responses={200: dict})
    def post(self, request, pk: int):
        verdict = get_object_or_404(CanaryVerdict.objects.select_related("service"), pk=pk)
        serializer = NoteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            verdict = canary_verdicts.resolve_canary(
                verdict, actor=request.user, note=serializer.validated_data["note"]
            )
        except InvalidInput as exc:
            raise invalid(exc) from None
        return Response(canary_json(verdict))
