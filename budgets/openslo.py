"""OpenSLO v1 import and export (Service, SLI and SLO documents).

Supported: ``Service``; ``SLO`` with an inline ``indicator`` or an ``indicatorRef`` to an
``SLI`` document in the same file; ``ratioMetric`` (good or bad, and total) and
``thresholdMetric`` (the pipeline's delivery latency); budgeting methods ``Occurrences`` and
``Timeslices``; one rolling time window of 7, 28, 30 or 90 days (``7d``, ``1w``, ``4w`` ...)
or one UTC calendar month (``1M``) or quarter (``1Q``); one objective per SLO. Anything else
is refused with an error naming the document and the field. docs/budgets.md, "OpenSLO".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import yaml
from django.db import transaction

from budgets import slos
from budgets.maths import InvalidInput
from budgets.models import SLO
from budgets.windows import format_duration, parse_duration
from controlplane import services
from controlplane.models import Service

API_VERSION = "openslo/v1"
SOURCE_TYPE = "ControlPlane"  # metricSource.type of the SLIs the control plane measures itself
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ROLLING = {"7d": 7, "1w": 7, "28d": 28, "4w": 28, "30d": 30, "90d": 90}
CALENDAR = {"1M": "month", "1Q": "quarter"}
UNSUPPORTED_KINDS = {
    "DataSource": "data sources are not used: the control plane measures or is pushed counts",
    "AlertPolicy": "alert policies are not supported: alerts are multiwindow burn-rate rules",
    "AlertCondition": "alert conditions are not supported: alerts are burn-rate rules",
    "AlertNotificationTarget": "use the per-service alert webhooks instead",
}


class OpenSLOError(ValueError):
    """A document we cannot take; ``path`` names where (``documents[1].spec.timeWindow``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass
class _Doc:
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    def path(self, field: str = "") -> str:
        label = f"documents[{self.index}]"
        return f"{label}.{field}" if field else label

    def fail(self, field: str, message: str) -> OpenSLOError:
        name = f" ({self.kind} {self.name})" if self.name else ""
        return OpenSLOError(self.path(field), message + name)


def _load(text: str) -> list[_Doc]:
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise OpenSLOError("yaml", f"is not valid YAML: {exc}") from None
    docs: list[dict[str, Any]] = []
    for item in raw:
        if item is None:
            continue
        items = item if isinstance(item, list) else [item]
        for body in items:
            if not isinstance(body, dict):
                raise OpenSLOError(f"documents[{len(docs)}]", "must be a mapping")
            docs.append(body)
    if not docs:
        raise OpenSLOError("yaml", "holds no OpenSLO documents")
    out = [_Doc(i, body) for i, body in enumerate(docs)]
    for doc in out:
        if doc.body.get("apiVersion") != API_VERSION:
            raise doc.fail(
                "apiVersion", f"must be {API_VERSION}, got {doc.body.get('apiVersion')!r}"
            )
        if doc.kind in UNSUPPORTED_KINDS:
            raise doc.fail("kind", f"{doc.kind} is not supported: {UNSUPPORTED_KINDS[doc.kind]}")
        if doc.kind not in ("Service", "SLO", "SLI"):
            raise doc.fail("kind", f"{doc.kind!r} is not supported; use Service, SLI or SLO")
        if not NAME.match(doc.name):
            raise doc.fail("metadata.name", "must be a DNS label: a-z, 0-9 and -, at most 63")
        if not isinstance(doc.body.get("spec"), dict):
            raise doc.fail("spec", "is required and must be a mapping")
    return out


def _number(doc: _Doc, field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise doc.fail(field, f"must be a number, got {value!r}")
    try:
        return Decimal(str(value))
    except ArithmeticError:
        raise doc.fail(field, f"must be a number, got {value!r}") from None


def _window(doc: _Doc) -> str:
    windows = doc.body["spec"].get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
        raise doc.fail("spec.timeWindow", "must hold exactly one time window")
    window = windows[0]
    duration = str(window.get("duration", ""))
    field = "spec.timeWindow[0]"
    if window.get("isRolling", False) is True:
        if duration not in ROLLING:
            raise doc.fail(
                f"{field}.duration",
                f"rolling window {duration!r} is not supported; use 7d, 28d, 30d or 90d",
            )
        return f"rolling:{ROLLING[duration]}d"
    if duration not in CALENDAR:
        raise doc.fail(
            f"{field}.duration",
            f"calendar window {duration!r} is not supported; use 1M (month) or 1Q (quarter)",
        )
    calendar = window.get("calendar") or {}
    zone = str(calendar.get("timeZone", "UTC"))
    if zone not in ("UTC", "Etc/UTC"):
        raise doc.fail(f"{field}.calendar.timeZone", f"{zone!r} is not supported; only UTC")
    start = calendar.get("startTime")
    if start is not None:
        moment = start if isinstance(start, datetime) else _parse_time(doc, field, start)
        months = (1, 4, 7, 10) if duration == "1Q" else range(1, 13)
        if (moment.day, moment.hour, moment.minute, moment.second) != (1, 0, 0, 0) or (
            moment.month not in months
        ):
            raise doc.fail(
                f"{field}.calendar.startTime",
                "must be midnight on the first day of a "
                + ("quarter" if duration == "1Q" else "month"),
            )
    return f"calendar:{CALENDAR[duration]}"


def _parse_time(doc: _Doc, field: str, value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise doc.fail(f"{field}.calendar.startTime", f"{value!r} is not a date and time") from None


def _source(metric: Any) -> dict[str, Any]:
    if not isinstance(metric, dict) or not isinstance(metric.get("metricSource"), dict):
        return {}
    return metric["metricSource"]


def _indicator(doc: _Doc, slis: dict[str, _Doc]) -> tuple[dict[str, Any], str]:
    spec = doc.body["spec"]
    if spec.get("indicator") is not None and spec.get("indicatorRef") is not None:
        raise doc.fail("spec.indicatorRef", "give indicator or indicatorRef, not both")
    if spec.get("indicatorRef") is not None:
        ref = str(spec["indicatorRef"])
        if ref not in slis:
            raise doc.fail("spec.indicatorRef", f"no SLI document named {ref!r} in this file")
        sli_doc = slis[ref]
        return {"metadata": sli_doc.body.get("metadata"), "spec": sli_doc.body["spec"]}, ref
    indicator = spec.get("indicator")
    if not isinstance(indicator, dict) or not isinstance(indicator.get("spec"), dict):
        raise doc.fail("spec.indicator", "is required (or an indicatorRef)")
    return indicator, ""


def _sli_kind(doc: _Doc, indicator: dict[str, Any], objective: dict[str, Any]) -> dict[str, Any]:
    """The SLO fields the indicator and objective determine: sli, latency threshold."""
    spec = indicator["spec"]
    field = "spec.indicator.spec"
    if "ratioMetric" in spec and "thresholdMetric" in spec:
        raise doc.fail(field, "give ratioMetric or thresholdMetric, not both")
    if "thresholdMetric" in spec:
        source = _source(spec["thresholdMetric"])
        if str(source.get("type", "")).lower() != SOURCE_TYPE.lower() or (
            (source.get("spec") or {}).get("sli") != "latency"
        ):
            raise doc.fail(
                f"{field}.thresholdMetric.metricSource",
                f"a thresholdMetric is supported only as type {SOURCE_TYPE} with spec.sli "
                "latency (the pipeline's delivery latency); push good/total counts with a "
                "ratioMetric instead",
            )
        op = objective.get("op")
        if op != "lte":
            raise doc.fail(
                "spec.objectives[0].op",
                f"{op!r} is not supported for latency; use lte (latency <= value ms)",
            )
        if "value" not in objective:
            raise doc.fail("spec.objectives[0].value", "is required: the threshold in ms")
        value = _number(doc, "spec.objectives[0].value", objective["value"])
        return {"sli": SLO.Sli.LATENCY, "latency_threshold_ms": float(value), "openslo": {}}
    ratio = spec.get("ratioMetric")
    if not isinstance(ratio, dict):
        raise doc.fail(field, "needs a ratioMetric or a thresholdMetric")
    if "raw" in ratio or "rawType" in ratio:
        raise doc.fail(f"{field}.ratioMetric.raw", "raw (pre-computed) ratios are not supported")
    if "total" not in ratio or ("good" in ratio) == ("bad" in ratio):
        raise doc.fail(f"{field}.ratioMetric", "needs total and one of good or bad")
    for name in ("op", "value"):
        if name in objective:
            raise doc.fail(f"spec.objectives[0].{name}", "is only for a thresholdMetric")
    source = _source(ratio["total"])
    if str(source.get("type", "")).lower() == SOURCE_TYPE.lower():
        sli = (source.get("spec") or {}).get("sli")
        if sli not in (SLO.Sli.EVENTS, SLO.Sli.EXTERNAL):
            raise doc.fail(
                f"{field}.ratioMetric.total.metricSource.spec.sli",
                f"must be events or external for a {SOURCE_TYPE} ratio, got {sli!r}",
            )
        return {"sli": sli, "latency_threshold_ms": None, "openslo": {}}
    # Another system's metrics: the counts are pushed to us; keep its definition for export.
    return {
        "sli": SLO.Sli.EXTERNAL,
        "latency_threshold_ms": None,
        "openslo": {"indicator": indicator},
    }


def _slo_fields(doc: _Doc, slis: dict[str, _Doc]) -> tuple[str, dict[str, Any]]:
    spec = doc.body["spec"]
    if spec.get("alertPolicies"):
        raise doc.fail(
            "spec.alertPolicies",
            "alert policies are not supported: alerts are multiwindow burn-rate rules",
        )
    objectives = spec.get("objectives")
    if (
        not isinstance(objectives, list)
        or len(objectives) != 1
        or not isinstance(objectives[0], dict)
    ):
        raise doc.fail("spec.objectives", "must hold exactly one objective")
    objective = objectives[0]
    if "compositeWeight" in objective or "indicator" in objective or "indicatorRef" in objective:
        raise doc.fail("spec.objectives[0]", "composite objectives are not supported")
    if "target" in objective:
        target = _number(doc, "spec.objectives[0].target", objective["target"])
    elif "targetPercent" in objective:
        target = _number(doc, "spec.objectives[0].targetPercent", objective["targetPercent"]) / 100
    else:
        raise doc.fail("spec.objectives[0].target", "is required (or targetPercent)")
    method = spec.get("budgetingMethod")
    fields: dict[str, Any] = {"target": target, "window": _window(doc)}
    if method == "Occurrences":
        fields["budgeting_method"] = SLO.Method.OCCURRENCES
        for name in ("timeSliceTarget", "timeSliceWindow"):
            if name in objective:
                raise doc.fail(f"spec.objectives[0].{name}", "is only for Timeslices")
    elif method == "Timeslices":
        fields["budgeting_method"] = SLO.Method.TIMESLICES
        if "timeSliceTarget" not in objective or "timeSliceWindow" not in objective:
            raise doc.fail(
                "spec.objectives[0]", "Timeslices needs timeSliceTarget and timeSliceWindow"
            )
        fields["slice_target"] = _number(
            doc, "spec.objectives[0].timeSliceTarget", objective["timeSliceTarget"]
        )
        try:
            length = parse_duration(str(objective["timeSliceWindow"]), "timeSliceWindow")
        except InvalidInput as exc:
            raise doc.fail("spec.objectives[0].timeSliceWindow", exc.problem) from None
        fields["slice_minutes"] = int(length.total_seconds() // 60)
        if length.total_seconds() % 60:
            raise doc.fail("spec.objectives[0].timeSliceWindow", "must be whole minutes")
    else:
        raise doc.fail(
            "spec.budgetingMethod",
            f"{method!r} is not supported; use Occurrences or Timeslices",
        )
    indicator, _ref = _indicator(doc, slis)
    fields.update(_sli_kind(doc, indicator, objective))
    metadata = doc.body.get("metadata") or {}
    fields["display_name"] = str(metadata.get("displayName", ""))[:200]
    fields["description"] = str(spec.get("description", ""))
    try:
        slos.clean_fields(fields)  # the same checks as the API, named in OpenSLO terms
    except InvalidInput as exc:
        raise doc.fail(_openslo_field(exc.field), exc.problem) from None
    service = str(spec.get("service", ""))
    if not service:
        raise doc.fail("spec.service", "is required")
    return service, fields


@dataclass(frozen=True)
class ImportResult:
    kind: str
    name: str
    action: str  # created | updated | unchanged

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "action": self.action}


def import_documents(text: str, *, actor: Any, dry_run: bool = False) -> list[ImportResult]:
    """Create or update services and SLOs from OpenSLO YAML, all or nothing.

    An SLO is matched by (service, name). Raises OpenSLOError naming the document and field.
    """
    docs = _load(text)
    slis = {d.name: d for d in docs if d.kind == "SLI"}
    service_docs = {d.name: d for d in docs if d.kind == "Service"}
    planned = [(d, *_slo_fields(d, slis)) for d in docs if d.kind == "SLO"]
    results: list[ImportResult] = []
    with transaction.atomic():
        known = {
            s.slug: s
            for s in Service.objects.filter(
                slug__in={name for _, name, _ in planned} | set(service_docs)
            )
        }
        for name, doc in service_docs.items():
            if name in known:
                results.append(ImportResult("Service", name, "unchanged"))
                continue
            metadata = doc.body.get("metadata") or {}
            team = (metadata.get("labels") or {}).get("team", "unassigned")
            team = team[0] if isinstance(team, list) and team else team
            known[name] = services.create_service(
                actor=actor,
                slug=name,
                name=str(metadata.get("displayName") or name)[:200],
                team=str(team)[:100],
                description=str(doc.body["spec"].get("description", "")),
            )
            results.append(ImportResult("Service", name, "created"))
        for doc, service_slug, fields in planned:
            service = known.get(service_slug)
            if service is None:
                raise doc.fail("spec.service", f"no service {service_slug!r} here or in the file")
            existing = SLO.objects.filter(service=service, name=doc.name).first()
            try:
                if existing is None:
                    slos.create_slo(actor=actor, service=service, name=doc.name, **fields)
                    results.append(ImportResult("SLO", f"{service_slug}/{doc.name}", "created"))
                else:
                    before = slos.snapshot(existing), existing.openslo
                    updated = slos.update_slo(existing, actor=actor, **fields)
                    after = slos.snapshot(updated), updated.openslo
                    action = "unchanged" if before == after else "updated"
                    results.append(ImportResult("SLO", f"{service_slug}/{doc.name}", action))
            except InvalidInput as exc:
                raise doc.fail(_openslo_field(exc.field), exc.problem) from None
        if dry_run:
            transaction.set_rollback(True)
    return results


def _openslo_field(field: str) -> str:
    return {
        "target": "spec.objectives[0].target",
        "window": "spec.timeWindow[0]",
        "slice_minutes": "spec.objectives[0].timeSliceWindow",
        "slice_target": "spec.objectives[0].timeSliceTarget",
        "latency_threshold_ms": "spec.objectives[0].value",
        "budgeting_method": "spec.budgetingMethod",
        "sli": "spec.indicator",
    }.get(field, field)


# --------------------------------------------------------------------------- export


def _own_source(sli: str, part: str) -> dict[str, Any]:
    return {"metricSource": {"type": SOURCE_TYPE, "spec": {"sli": sli, "count": part}}}


def slo_document(slo: SLO) -> dict[str, Any]:
    """One SLO as an OpenSLO v1 document."""
    objective: dict[str, Any] = {
        "displayName": slo.display_name or slo.name,
        "target": float(slo.target),
    }
    if slo.sli == SLO.Sli.LATENCY:
        indicator_spec = {
            "thresholdMetric": {"metricSource": {"type": SOURCE_TYPE, "spec": {"sli": "latency"}}}
        }
        objective.update(op="lte", value=slo.latency_threshold_ms)
        indicator = {"metadata": {"name": f"{slo.name}-sli"}, "spec": indicator_spec}
    elif slo.openslo.get("indicator"):
        indicator = slo.openslo["indicator"]
    else:
        indicator = {
            "metadata": {"name": f"{slo.name}-sli"},
            "spec": {
                "ratioMetric": {
                    "counter": True,
                    "good": _own_source(slo.sli, "good"),
                    "total": _own_source(slo.sli, "total"),
                }
            },
        }
    window = slo.window_spec
    if window.is_calendar:
        time_window = {
            "duration": "1M" if window.period == "month" else "1Q",
            "isRolling": False,
            "calendar": {"startTime": "2020-01-01 00:00:00", "timeZone": "UTC"},
        }
    else:
        time_window = {"duration": f"{window.days}d", "isRolling": True}
    if slo.is_timeslices:
        objective["timeSliceTarget"] = float(slo.slice_target)
        objective["timeSliceWindow"] = format_duration(slo.slice_length)
    metadata = {"name": slo.name}
    if slo.display_name:
        metadata["displayName"] = slo.display_name
    spec = {
        "description": slo.description,
        "service": slo.service.slug,
        "indicator": indicator,
        "timeWindow": [time_window],
        "budgetingMethod": "Timeslices" if slo.is_timeslices else "Occurrences",
        "objectives": [objective],
    }
    return {"apiVersion": API_VERSION, "kind": "SLO", "metadata": metadata, "spec": spec}


def service_document(service: Service) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {
            "name": service.slug,
            "displayName": service.name,
            "labels": {"team": [service.team]},
        },
        "spec": {"description": service.description},
    }


def export_documents(service_slugs: list[str] | None = None) -> str:
    """Services (with SLOs, or those named) and their SLOs as a multi-document YAML stream."""
    slo_qs = SLO.objects.select_related("service").order_by("service__slug", "name")
    service_qs = Service.objects.order_by("slug")
    if service_slugs:
        slo_qs = slo_qs.filter(service__slug__in=service_slugs)
        service_qs = service_qs.filter(slug__in=service_slugs)
    else:
        service_qs = service_qs.filter(slos__isnull=False).distinct()
    docs = [service_document(s) for s in service_qs] + [slo_document(s) for s in slo_qs]
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)
