"""Pages of the dispatcher: routes, worker nodes and the demo downstream."""

from __future__ import annotations

import random
import time

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from breakers import demo as demo_service
from breakers import routes
from breakers.forms import RouteForm
from breakers.models import DemoDownstream, Route, WorkerNode
from breakers.nodes import backlog, observe_backlog, unhealthy_after
from controlplane.roles import Role
from controlplane.views import require_role


@require_http_methods(["GET", "POST"])
def route_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    form = RouteForm()
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        form = RouteForm(request.POST)
        if form.is_valid():
            route = routes.create_route(actor=request.user, **form.cleaned_data)
            messages.success(request, f"Route {route.name} created.")
            return redirect("breakers:routes")
    context = {
        "routes": Route.objects.select_related("service"),
        "form": form,
        "allowed_hosts": settings.WEBHOOK_ALLOWED_HOSTS,
        "python_handlers": settings.PYTHON_HANDLERS,
    }
    return render(request, "breakers/routes.html", context)


@require_POST
def route_toggle(request: HttpRequest, name: str) -> HttpResponse:
    require_role(request, Role.OPERATOR)
    route = get_object_or_404(Route.objects.select_related("service"), name=name)
    route = routes.update_route(route, actor=request.user, enabled=not route.enabled)
    if request.htmx:
        return render(request, "breakers/partials/route_row.html", {"route": route})
    return redirect("breakers:routes")


@require_GET
def node_list(request: HttpRequest) -> HttpResponse:
    require_role(request, Role.VIEWER)
    cutoff = timezone.now() - unhealthy_after()
    nodes = [
        {"node": n, "healthy": n.stopped_at is None and n.last_heartbeat >= cutoff}
        for n in WorkerNode.objects.all()[:200]
    ]
    waiting = backlog()
    observe_backlog(waiting)
    context = {
        "nodes": nodes,
        "backlog": waiting,
        "waiting": sum(row["waiting"] for row in waiting),
        "healthy": sum(1 for row in nodes if row["healthy"]),
    }
    template = "breakers/partials/node_table.html" if request.htmx else "breakers/nodes.html"
    return render(request, template, context)


class DemoForm(forms.ModelForm):
    class Meta:
        model = DemoDownstream
        fields = ["failure_rate", "latency_ms", "traffic_per_tick"]
        widgets = {"failure_rate": forms.NumberInput(attrs={"step": "0.05", "min": 0, "max": 1})}

    def clean_failure_rate(self):
        value = self.cleaned_data["failure_rate"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("Between 0 and 1.")
        return value


def _demo_enabled() -> None:
    if not settings.DEMO_ENABLED:
        raise Http404("The demo is off (CONTROLPLANE_DEMO).")


@require_http_methods(["GET", "POST"])
def demo(request: HttpRequest) -> HttpResponse:
    _demo_enabled()
    require_role(request, Role.VIEWER)
    if request.method == "POST":
        require_role(request, Role.OPERATOR)
        downstream = get_object_or_404(DemoDownstream, name=request.POST.get("name", ""))
        form = DemoForm(request.POST, instance=downstream)
        try:
            if not form.is_valid():
                raise ValidationError(form.errors)
            demo_service.update_downstream(
                downstream, actor=request.user, **{f: form.cleaned_data[f] for f in form.fields}
            )
            messages.success(request, f"{downstream.name} updated.")
        except ValidationError as exc:
            named = [f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items()]
            messages.error(request, f"{downstream.name}: {'; '.join(named)}")
        return redirect("breakers:demo")
    rows = [(d, DemoForm(instance=d)) for d in DemoDownstream.objects.all()]
    return render(request, "breakers/demo.html", {"rows": rows})


@login_not_required  # a webhook target, called by workers
@csrf_exempt
@require_POST
def demo_downstream(request: HttpRequest, name: str) -> JsonResponse:
    """The pretend downstream: answers webhooks slowly or with errors, as the demo page says."""
    _demo_enabled()
    downstream = get_object_or_404(DemoDownstream, name=name)
    time.sleep(downstream.latency_ms / 1000 * random.uniform(0.5, 1.5))
    if random.random() < downstream.failure_rate:
        return JsonResponse({"error": "demo failure"}, status=503)
    return JsonResponse({"ok": True, "event": request.headers.get("X-Event-Id")})
