"""Pages of the project package, and the health endpoints."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from controlplane import health, services, tokens
from controlplane.forms import ServiceForm, TokenForm
from controlplane.models import ApiToken, AuditEntry, Service
from controlplane.roles import Role, has_role


def require_role(request: HttpRequest, role: Role) -> None:
    if not has_role(request.user, role):
        raise PermissionDenied(f"This needs the {role.name.lower()} role.")


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    return render(request, "controlplane/overview.html", {"services": Service.objects.all()})


@require_http_methods(["GET", "POST"])
def service_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    form = ServiceForm()
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = ServiceForm(request.POST)
        if form.is_valid():
            service = services.create_service(actor=request.user, **form.cleaned_data)
            messages.success(request, f"Service {service.slug} created.")
            return redirect("service-list")
    return render(
        request,
        "controlplane/services.html",
        {"services": Service.objects.all(), "form": form},
    )


@require_http_methods(["GET", "POST"])
def service_detail(request: HttpRequest, slug: str) -> HttpResponse:
    require_role(request, Role.VIEWER)
    service = get_object_or_404(Service, slug=slug)
    form = ServiceForm(instance=service)
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = ServiceForm(request.POST, instance=Service.objects.get(pk=service.pk))
        if form.is_valid():
            changes = {k: v for k, v in form.cleaned_data.items() if k != "slug"}
            services.update_service(service, actor=request.user, **changes)
            messages.success(request, "Saved.")
            return redirect("service-detail", slug=service.slug)
    form.fields["slug"].disabled = True
    return render(request, "controlplane/service_detail.html", {"service": service, "form": form})


@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    """Manage your own API tokens; a new token's secret is shown once."""
    require_role(request, Role.VIEWER)
    form = TokenForm()
    issued = None
    if request.method == "POST":
        form = TokenForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            if ApiToken.objects.filter(user=request.user, name=data["name"]).exists():
                form.add_error("name", "You already have a token with this name.")
            elif data.get("ingest") and not tokens.may_grant_scopes(request.user):
                form.add_error("ingest", "Only operators may give tokens scopes.")
            else:
                days = data.get("expires_in_days")
                issued = tokens.issue_token(
                    request.user,
                    name=data["name"],
                    expires_at=timezone.now() + timedelta(days=days) if days else None,
                    scopes=["ingest"] if data.get("ingest") else [],
                )
                form = TokenForm()
    if not tokens.may_grant_scopes(request.user):
        form.fields.pop("ingest", None)
    context = {
        "tokens": ApiToken.objects.filter(user=request.user),
        "form": form,
        "issued": issued,
        "now": timezone.now(),
    }
    return render(request, "controlplane/tokens.html", context)


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    require_role(request, Role.VIEWER)
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    tokens.revoke_token(token, actor=request.user)
    if request.htmx:
        return render(
            request, "controlplane/partials/token_row.html", {"t": token, "now": timezone.now()}
        )
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("token-list")


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.ADMIN)
    entries = AuditEntry.objects.select_related("actor")
    action = request.GET.get("action", "")
    if action:
        entries = entries.filter(action=action)
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    return render(
        request,
        "controlplane/audit.html",
        {"entries": entries[:200], "actions": actions, "action": action},
    )


@login_not_required  # probes carry no session
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@login_not_required
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = health.readiness()
    failing = {name: err for name, err in results.items() if err}
    if failing:
        return JsonResponse(
            {
                "status": "unavailable",
                "failing": sorted(failing),
                "errors": failing,
                "detail": "Not ready: " + ", ".join(sorted(failing)) + " unreachable.",
            },
            status=503,
        )
    return JsonResponse({"status": "ok", "checks": dict.fromkeys(results, "ok")})
