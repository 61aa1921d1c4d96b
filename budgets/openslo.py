"""OpenSLO v1 import and export (Service, SLI and SLO documents).

Import takes what the v1 specification allows and the control plane can represent, and
refuses the rest with an ``OpenSLOError`` naming the document and field; any document
shape (lists for mappings, huge numbers, odd unicode) is refused that way, never with
another exception. docs/budgets.md, "OpenSLO", has the mapping and the stated rules:

- an SLO with several objectives becomes one SLO per objective, named
  ``<metadata.name>-<objective displayName as a DNS label>`` (or ``-<n>``);
- rolling windows of any unit are converted to whole days (M = 30 d, Q = 90 d);
- calendar windows keep their time zone and anchor (``startTime`` is local time in
  ``timeZone``; a ``startTime`` with an offset is converted to that zone);
- ``RatioTimeslices`` is measured as ``Occurrences`` (said in the import result's notes)
  and exported back as it came.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from django.db import transaction

from budgets import slos
from budgets.maths import InvalidInput
from budgets.models import SLO
from budgets.windows import (
    MAX_WINDOW_DAYS,
    MIN_WINDOW_DAYS,
    CalendarPeriod,
    Window,
    format_window,
)
from controlplane import services
from controlplane.models import Service

API_VERSION = "openslo/v1"
SOURCE_TYPE = "ControlPlane"  # metricSource.type of the SLIs the control plane measures itself
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-zA-Z0-9.-]{1,253}/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]{0,61}[a-zA-Z0-9])?$")
DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhdwMQY])$")  # the spec's shorthand, case-sensitive
OPS = ("lte", "gte", "lt", "gt")
START_TIME = re.compile(r"^documents\[\d+\]\.spec\.timeWindow\[0\]\.calendar\.startTime$")
MAX_DISPLAY_NAME = 200  # SLO.display_name and Service.name
MAX_TEAM = 100  # Service.team
MAX_DESCRIPTION = 1050  # the specification's limit
MAX_NODES = 50_000  # YAML aliases can expand a small text into a huge tree; refuse past this
MAX_DEPTH = 64
METHODS = {
    "Occurrences": SLO.Method.OCCURRENCES,
    "Timeslices": SLO.Method.TIMESLICES,
    "RatioTimeslices": SLO.Method.OCCURRENCES,  # measured as occurrences: see the notes
}
UNSUPPORTED_KINDS = {
    "DataSource": "data sources are not used: the control plane measures or is pushed counts",
    "AlertPolicy": "alert policies are not supported: alerts are multiwindow burn-rate rules",
    "AlertCondition": "alert conditions are not supported: alerts are burn-rate rules",
    "AlertNotificationTarget": "use the per-service alert webhooks instead",
}
RATIO_TIMESLICES_NOTE = (
    "budgetingMethod RatioTimeslices is measured as Occurrences (good / total over the "
    "window), not as the average of the slices' ratios; it is exported as RatioTimeslices"
)


class OpenSLOError(ValueError):
    """A document we cannot take; ``path`` names where (``documents[1].spec.timeWindow``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def _show(value: Any) -> str:
    """A short repr of user input for an error message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass
class _Doc:
    index: int
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        kind = self.body.get("kind")
        return kind if isinstance(kind, str) else ""

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.body.get("metadata")
        return metadata if isinstance(metadata, dict) else {}

    @property
    def name(self) -> str:
        name = self.metadata.get("name")
        return name if isinstance(name, str) and NAME.match(name) else ""

    @property
    def spec(self) -> dict[str, Any]:
        return self.body["spec"]  # checked to be a mapping by _load()

    def path(self, field: str = "") -> str:
        label = f"documents[{self.index}]"
        return f"{label}.{field}" if field else label

    def fail(self, field: str, message: str) -> OpenSLOError:
        name = f" ({self.kind} {self.name})" if self.name and self.kind else ""
        return OpenSLOError(self.path(field), message + name)


def _check_tree(path: str, root: Any) -> None:
    """Every value is plain YAML: string keys, text that is valid unicode, finite numbers.

    Walked without recursion and with a node budget, so aliases that expand a small text
    into a huge (or cyclic) tree are refused instead of exhausting memory or the stack.
    """
    stack: list[tuple[str, Any, int]] = [(path, root, 0)]
    seen = 0
    while stack:
        where, value, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES or depth > MAX_DEPTH:
            raise OpenSLOError(where, "the document is too large or nests too deeply")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise OpenSLOError(where, f"keys must be strings, got {_show(key)}")
                _check_text(where, key, what="a key")  # before the key goes into a path
                stack.append((f"{where}.{key}" if where else key, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_text(where, value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise OpenSLOError(where, f"must be a finite number, got {value}")
        elif isinstance(value, datetime | date):
            if not START_TIME.match(where):  # anywhere else it could not be stored as JSON
                raise OpenSLOError(where, "a date or time is only allowed in calendar.startTime")
        elif value is not None and not isinstance(value, int):  # bool is an int
            raise OpenSLOError(where, f"is not a plain YAML value ({type(value).__name__})")


def _check_text(where: str, text: str, what: str = "the text") -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise OpenSLOError(
            where, f"{what} {_show(text)} holds a lone surrogate, which is not valid unicode"
        ) from None
    if "\x00" in text:
        raise OpenSLOError(where, f"{what} {_show(text)} holds a NUL character")


def _load(text: str) -> list[_Doc]:
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise OpenSLOError("yaml", f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise OpenSLOError("yaml", "nests too deeply") from None
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
        _check_tree(doc.path(), doc.body)
        if doc.body.get("apiVersion") != API_VERSION:
            raise doc.fail(
                "apiVersion", f"must be {API_VERSION}, got {_show(doc.body.get('apiVersion'))}"
            )
        kind = doc.kind  # "" unless text, so the lookups below never meet a list
        if kind in UNSUPPORTED_KINDS:
            raise doc.fail("kind", f"{kind} is not supported: {UNSUPPORTED_KINDS[kind]}")
        if kind not in ("Service", "SLO", "SLI"):
            raise doc.fail(
                "kind", f"{_show(doc.body.get('kind'))} is not supported; use Service, SLI or SLO"
            )
        _check_metadata(doc, "metadata", doc.body.get("metadata"), required=True)
        if not isinstance(doc.body.get("spec"), dict):
            raise doc.fail("spec", "is required and must be a mapping")
        _text(doc, "spec.description", doc.spec.get("description"), MAX_DESCRIPTION)
    first: dict[tuple[str, str], int] = {}
    for doc in out:
        if (doc.kind, doc.name) in first:
            raise doc.fail(
                "metadata.name",
                f"documents[{first[(doc.kind, doc.name)]}] is a {doc.kind} of the same name",
            )
        first[(doc.kind, doc.name)] = doc.index
    return out


def _check_metadata(doc: _Doc, field: str, metadata: Any, *, required: bool) -> None:
    if metadata is None and not required:
        return
    if not isinstance(metadata, dict):
        raise doc.fail(field, "is required and must be a mapping")
    name = metadata.get("name")
    if name is None and not required:
        pass
    elif not isinstance(name, str) or not NAME.match(name):
        raise doc.fail(
            f"{field}.name",
            "must be a DNS label: a-z, 0-9 and -, starting and ending with a letter or "
            f"digit, at most 63 characters; got {_show(name)}",
        )
    _text(doc, f"{field}.displayName", metadata.get("displayName"), MAX_DISPLAY_NAME)
    labels = metadata.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            raise doc.fail(f"{field}.labels", "must be a mapping of names to text or lists")
        for key, value in labels.items():
            if not LABEL_KEY.match(key):
                raise doc.fail(f"{field}.labels", f"{_show(key)} is not a label name")
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise doc.fail(
                    f"{field}.labels.{key}",
                    f"must be text or a list of text, got {_show(value)}",
                )
    annotations = metadata.get("annotations")
    if annotations is not None and (
        not isinstance(annotations, dict)
        or not all(isinstance(v, str) for v in annotations.values())
    ):
        raise doc.fail(f"{field}.annotations", "must be a mapping of names to text")


def _text(doc: _Doc, field: str, value: Any, limit: int) -> str:
    """Optional text up to ``limit`` characters; longer is refused, never truncated."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise doc.fail(field, f"must be text, got {_show(value)}")
    if len(value) > limit:
        raise doc.fail(field, f"is {len(value)} characters long; at most {limit} are allowed")
    return value


def _mapping(doc: _Doc, field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise doc.fail(field, f"must be a mapping, got {_show(value)}")
    return value


def _number(doc: _Doc, field: str, value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise doc.fail(field, f"must be a number, got {_show(value)}")
    if isinstance(value, int) and abs(value) > 10**12:
        raise doc.fail(field, f"is out of range, got {_show(value)}")
    try:
        exact = Decimal(str(value).strip())
    except ArithmeticError:
        raise doc.fail(field, f"must be a number, got {_show(value)}") from None
    # 1e400 (a string to YAML) or 1e300: refused here, before any arithmetic overflows.
    if not exact.is_finite() or exact.adjusted() > 12:
        raise doc.fail(field, f"must be a finite number of sensible size, got {_show(value)}")
    return exact


def _duration(doc: _Doc, field: str, value: Any) -> tuple[int, str]:
    """The spec's duration shorthand: a positive integer and one of m h d w M Q Y."""
    match = DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise doc.fail(
            field,
            f"{_show(value)} is not a duration: a whole number and one of m (minutes), h, d, "
            "w, M (months), Q, Y, such as 28d or 1M",
        )
    return int(match[1]), match[2]


_DAYS_PER = {"d": 1, "w": 7, "M": 30, "Q": 90, "Y": 365}  # rolling windows: M = 30 d ...
_MINUTES_PER = {"m": 1, "h": 60}


def _rolling(doc: _Doc, field: str, count: int, unit: str) -> Window:
    if unit in _MINUTES_PER:
        minutes = count * _MINUTES_PER[unit]
        days = minutes // 1440 if minutes % 1440 == 0 else None
    else:
        days = count * _DAYS_PER[unit]
    if days is None or not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise doc.fail(
            field,
            f"a rolling window of {count}{unit} is not supported: windows are whole days from "
            f"{MIN_WINDOW_DAYS} (the longest burn-rate alert rule looks back 3 days) to "
            f"{MAX_WINDOW_DAYS} (the ledger keeps its fine rows 94 days or more)",
        )
    return Window.rolling(days)


def _calendar_period(doc: _Doc, field: str, count: int, unit: str) -> tuple[str, int]:
    if unit == "M":
        return CalendarPeriod.MONTH, count
    if unit == "Q":
        return CalendarPeriod.QUARTER, count
    if unit == "w":
        return CalendarPeriod.WEEK, count
    if unit == "d":
        return CalendarPeriod.DAY, count
    if unit in _MINUTES_PER and (count * _MINUTES_PER[unit]) % 1440 == 0:
        return CalendarPeriod.DAY, count * _MINUTES_PER[unit] // 1440
    hint = " (m is minutes; a month is 1M)" if unit == "m" else ""
    raise doc.fail(
        field,
        f"a calendar window of {count}{unit}{hint} is not supported: calendar windows are "
        f"{MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days (d), weeks (w), 1 to 3 months (1M to "
        "3M) or a quarter (1Q)",
    )


def _start_time(doc: _Doc, field: str, value: Any, zone: str) -> datetime:
    """Local wall-clock time in ``zone``; a value with an offset is converted to it."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)  # noqa: DTZ001 - local time
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise doc.fail(field, f"{_show(value)} is not a date and time") from None
    else:
        raise doc.fail(field, f"must be a date and time, got {_show(value)}")
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        try:
            moment = moment.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        except (OverflowError, ValueError):
            raise doc.fail(field, f"{_show(value)} is out of range") from None
    return moment.replace(tzinfo=None)


def _window(doc: _Doc) -> str:
    windows = doc.spec.get("timeWindow")
    if not isinstance(windows, list) or len(windows) != 1:
        raise doc.fail("spec.timeWindow", "must hold exactly one time window")
    field = "spec.timeWindow[0]"
    window = _mapping(doc, field, windows[0])
    count, unit = _duration(doc, f"{field}.duration", window.get("duration"))
    rolling = window.get("isRolling", False)  # absent: calendar, as before (and as the spec
    if not isinstance(rolling, bool):  # says when calendar is given)
        raise doc.fail(f"{field}.isRolling", f"must be true or false, got {_show(rolling)}")
    if rolling:
        if window.get("calendar") is not None:
            raise doc.fail(f"{field}.calendar", "is only for a window with isRolling false")
        return format_window(_rolling(doc, f"{field}.duration", count, unit))
    period, periods = _calendar_period(doc, f"{field}.duration", count, unit)
    calendar = window.get("calendar")
    calendar = {} if calendar is None else _mapping(doc, f"{field}.calendar", calendar)
    zone = calendar.get("timeZone", "UTC")
    if not isinstance(zone, str):
        raise doc.fail(f"{field}.calendar.timeZone", f"must be text, got {_show(zone)}")
    try:
        Window.calendar(period, time_zone=zone)
    except InvalidInput as exc:
        raise doc.fail(f"{field}.calendar.timeZone", exc.problem) from None
    start = None
    if calendar.get("startTime") is not None:
        start = _start_time(doc, f"{field}.calendar.startTime", calendar["startTime"], zone)
    try:
        parsed = Window.calendar(period, count=periods, time_zone=zone, start=start)
    except InvalidInput as exc:
        where = {"start": "calendar.startTime", "time_zone": "calendar.timeZone"}
        raise doc.fail(f"{field}.{where.get(exc.field, 'duration')}", exc.problem) from None
    return format_window(parsed)


def _slice_minutes(doc: _Doc, field: str, value: Any) -> int:
    """timeSliceWindow: a number of minutes, or a duration such as 5m or 1h."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    else:
        count, unit = _duration(doc, field, value)
        if unit not in _MINUTES_PER:
            raise doc.fail(field, f"{value!r}: a time slice must divide an hour (1m to 1h)")
        minutes = count * _MINUTES_PER[unit]
    if minutes <= 0 or 60 % minutes:
        raise doc.fail(field, f"{_show(value)}: a time slice must divide an hour (1m to 1h)")
    return minutes


def _metric_source(doc: _Doc, field: str, metric: Any) -> dict[str, Any]:
    metric = _mapping(doc, field, metric)
    source = _mapping(doc, f"{field}.metricSource", metric.get("metricSource"))
    if source.get("type") is not None and not isinstance(source["type"], str):
        raise doc.fail(f"{field}.metricSource.type", f"must be text, got {_show(source['type'])}")
    if source.get("spec") is not None:
        _mapping(doc, f"{field}.metricSource.spec", source["spec"])
    return source


def _is_own(source: dict[str, Any]) -> bool:
    return str(source.get("type") or "").lower() == SOURCE_TYPE.lower()


def _check_indicator(doc: _Doc, field: str, spec: Any) -> dict[str, Any]:
    """The shape of an SLI's spec (inline or a standalone SLI document)."""
    spec = _mapping(doc, field, spec)
    _text(doc, f"{field}.description", spec.get("description"), MAX_DESCRIPTION)
    if ("ratioMetric" in spec) == ("thresholdMetric" in spec):
        raise doc.fail(field, "needs one of ratioMetric or thresholdMetric")
    if "thresholdMetric" in spec:
        _metric_source(doc, f"{field}.thresholdMetric", spec["thresholdMetric"])
        return spec
    ratio = _mapping(doc, f"{field}.ratioMetric", spec["ratioMetric"])
    if "raw" in ratio or "rawType" in ratio:
        raise doc.fail(
            f"{field}.ratioMetric.raw",
            "raw (pre-computed) ratios are not supported: push good and total counts",
        )
    if "total" not in ratio or ("good" in ratio) == ("bad" in ratio):
        raise doc.fail(f"{field}.ratioMetric", "needs total and one of good or bad")
    if "counter" in ratio and not isinstance(ratio["counter"], bool):
        raise doc.fail(f"{field}.ratioMetric.counter", "must be true or false")
    for part in ("good", "bad", "total"):
        if part in ratio:
            _metric_source(doc, f"{field}.ratioMetric.{part}", ratio[part])
    return spec


def _indicator(doc: _Doc, slis: dict[str, _Doc]) -> tuple[dict[str, Any], str]:
    """The indicator ({metadata, spec}) and the path of its spec, for errors."""
    spec = doc.spec
    if spec.get("indicator") is not None and spec.get("indicatorRef") is not None:
        raise doc.fail("spec.indicatorRef", "give indicator or indicatorRef, not both")
    if spec.get("indicatorRef") is not None:
        ref = spec["indicatorRef"]
        if not isinstance(ref, str) or ref not in slis:
            raise doc.fail("spec.indicatorRef", f"no SLI document named {_show(ref)} in this file")
        sli_doc = slis[ref]
        return {"metadata": sli_doc.body.get("metadata"), "spec": sli_doc.spec}, ""
    indicator = spec.get("indicator")
    if not isinstance(indicator, dict):
        raise doc.fail("spec.indicator", "is required (or an indicatorRef)")
    _check_metadata(doc, "spec.indicator.metadata", indicator.get("metadata"), required=False)
    _check_indicator(doc, "spec.indicator.spec", indicator.get("spec"))
    return indicator, "spec.indicator.spec"


def _sli_kind(
    doc: _Doc, indicator: dict[str, Any], objective: dict[str, Any], at: str
) -> dict[str, Any]:
    """The SLO fields the indicator and objective determine: sli, latency threshold."""
    spec = indicator["spec"]
    field = "spec.indicator.spec"
    keep: dict[str, Any] = {}
    if "thresholdMetric" in spec:
        source = _metric_source(doc, f"{field}.thresholdMetric", spec["thresholdMetric"])
        op = objective.get("op")
        if op not in OPS:
            raise doc.fail(
                f"{at}.op", f"is required for a thresholdMetric: one of {', '.join(OPS)}"
            )
        if "value" not in objective:
            raise doc.fail(f"{at}.value", "is required for a thresholdMetric")
        value = _number(doc, f"{at}.value", objective["value"])
        if _is_own(source):
            if (source.get("spec") or {}).get("sli") != "latency":
                raise doc.fail(
                    f"{field}.thresholdMetric.metricSource.spec.sli",
                    f"a {SOURCE_TYPE} thresholdMetric measures latency: set sli: latency",
                )
            if op != "lte":
                raise doc.fail(
                    f"{at}.op",
                    f"{op!r} is not supported for the pipeline's latency, which counts a "
                    "delivery as good at or under the value; use lte",
                )
            if not 0 < value < 10**9:
                raise doc.fail(f"{at}.value", f"must be above 0 ms, got {value}")
            return {"sli": SLO.Sli.LATENCY, "latency_threshold_ms": float(value), "keep": keep}
        # Another system's threshold metric: it pushes good (meeting op value) and total.
        keep["indicator"] = indicator
        keep["objective"] = {"op": op, "value": objective["value"]}
        return {"sli": SLO.Sli.EXTERNAL, "latency_threshold_ms": None, "keep": keep}
    op = objective.get("op")  # allowed and kept on a ratio, where it has no effect
    if op is not None and op not in OPS:
        raise doc.fail(f"{at}.op", f"must be one of {', '.join(OPS)}, got {_show(op)}")
    for name in ("op", "value"):
        if name in objective:
            keep.setdefault("objective", {})[name] = objective[name]
    if "value" in objective:
        _number(doc, f"{at}.value", objective["value"])
    ratio = spec["ratioMetric"]
    source = _metric_source(doc, f"{field}.ratioMetric.total", ratio["total"])
    if _is_own(source):
        sli = (source.get("spec") or {}).get("sli")
        if sli not in (SLO.Sli.EVENTS, SLO.Sli.EXTERNAL):
            raise doc.fail(
                f"{field}.ratioMetric.total.metricSource.spec.sli",
                f"must be events or external for a {SOURCE_TYPE} ratio, got {_show(sli)}",
            )
        return {"sli": sli, "latency_threshold_ms": None, "keep": keep}
    # Another system's metrics: the counts are pushed to us; keep its definition for export.
    keep["indicator"] = indicator
    return {"sli": SLO.Sli.EXTERNAL, "latency_threshold_ms": None, "keep": keep}


def _objective_names(doc: _Doc, objectives: list[dict[str, Any]]) -> list[str]:
    """One SLO name per objective: the document's, or ``<name>-<displayName>`` for several."""
    if len(objectives) == 1:
        return [doc.name]
    names: list[str] = []
    for i, objective in enumerate(objectives):
        label = objective.get("displayName") or ""
        suffix = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or str(i + 1)
        name = f"{doc.name}-{suffix}"
        field = f"spec.objectives[{i}].displayName"
        if not NAME.match(name):
            raise doc.fail(
                field,
                f"each objective becomes an SLO named <metadata.name>-<displayName>; "
                f"{name!r} is longer than 63 characters: shorten either",
            )
        if name in names:
            raise doc.fail(field, f"gives the same SLO name {name!r} as another objective")
        names.append(name)
    return names


@dataclass
class _Planned:
    doc: _Doc
    name: str
    service: str
    fields: dict[str, Any]
    notes: tuple[str, ...] = ()


def _slo_fields(doc: _Doc, slis: dict[str, _Doc]) -> list[_Planned]:
    spec = doc.spec
    if spec.get("alertPolicies"):
        raise doc.fail(
            "spec.alertPolicies",
            "alert policies are not supported: alerts are multiwindow burn-rate rules",
        )
    service = spec.get("service")
    if not isinstance(service, str) or not service:
        raise doc.fail("spec.service", f"is required: a Service name, got {_show(service)}")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise doc.fail("spec.objectives", "must hold at least one objective")
    for i, objective in enumerate(objectives):
        at = f"spec.objectives[{i}]"
        _mapping(doc, at, objective)
        if {"compositeWeight", "indicator", "indicatorRef"} & set(objective):
            raise doc.fail(at, "composite objectives are not supported")
        _text(doc, f"{at}.displayName", objective.get("displayName"), MAX_DISPLAY_NAME)
    indicator, _ = _indicator(doc, slis)
    if "thresholdMetric" in indicator["spec"] and len(objectives) > 1:
        raise doc.fail("spec.objectives", "a thresholdMetric takes exactly one objective")
    method_name = spec.get("budgetingMethod")
    if not isinstance(method_name, str) or method_name not in METHODS:
        raise doc.fail(
            "spec.budgetingMethod",
            f"{_show(method_name)} is not supported; use Occurrences, Timeslices or "
            "RatioTimeslices",
        )
    window = _window(doc)
    display = _text(doc, "metadata.displayName", doc.metadata.get("displayName"), MAX_DISPLAY_NAME)
    names = _objective_names(doc, objectives)
    planned = []
    for i, (name, objective) in enumerate(zip(names, objectives, strict=True)):
        planned.append(
            _objective_fields(
                doc,
                i,
                objective,
                name,
                service,
                window,
                method_name,
                display,
                indicator,
                several=len(objectives) > 1,
            )
        )
    return planned


def _objective_fields(
    doc: _Doc,
    i: int,
    objective: dict[str, Any],
    name: str,
    service: str,
    window: str,
    method_name: str,
    display: str,
    indicator: dict[str, Any],
    *,
    several: bool,
) -> _Planned:
    at = f"spec.objectives[{i}]"
    if "target" in objective and "targetPercent" in objective:
        raise doc.fail(f"{at}.targetPercent", "give target or targetPercent, not both")
    if "target" in objective:
        target = _number(doc, f"{at}.target", objective["target"])
    elif "targetPercent" in objective:
        target = _number(doc, f"{at}.targetPercent", objective["targetPercent"]) / 100
    else:
        raise doc.fail(f"{at}.target", "is required (or targetPercent)")
    fields: dict[str, Any] = {
        "target": target,
        "window": window,
        "budgeting_method": METHODS[method_name],
    }
    keep: dict[str, Any] = {}
    notes: tuple[str, ...] = ()
    if method_name == "Occurrences":
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key in objective:
                raise doc.fail(f"{at}.{key}", "is only for Timeslices and RatioTimeslices")
    elif method_name == "Timeslices":
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key not in objective:
                raise doc.fail(f"{at}.{key}", "is required for Timeslices")
        fields["slice_target"] = _number(doc, f"{at}.timeSliceTarget", objective["timeSliceTarget"])
        fields["slice_minutes"] = _slice_minutes(
            doc, f"{at}.timeSliceWindow", objective["timeSliceWindow"]
        )
    else:  # RatioTimeslices, measured as occurrences; the slicing is kept for export
        if "timeSliceWindow" not in objective:
            raise doc.fail(f"{at}.timeSliceWindow", "is required for RatioTimeslices")
        minutes = _slice_minutes(doc, f"{at}.timeSliceWindow", objective["timeSliceWindow"])
        keep["budgetingMethod"] = method_name
        keep["timeSliceWindow"] = f"{minutes}m" if minutes < 60 else "1h"
        if "timeSliceTarget" in objective:
            keep["timeSliceTarget"] = float(
                _number(doc, f"{at}.timeSliceTarget", objective["timeSliceTarget"])
            )
        notes = (RATIO_TIMESLICES_NOTE,)
    kind = _sli_kind(doc, indicator, objective, at)
    keep.update(kind.pop("keep"))
    fields.update(kind)
    label = objective.get("displayName") or ""
    if several:
        display = " / ".join(part for part in (display, label) if part)
        if len(display) > MAX_DISPLAY_NAME:
            raise doc.fail(
                f"{at}.displayName",
                f"with metadata.displayName it makes a name of {len(display)} characters; "
                f"at most {MAX_DISPLAY_NAME}",
            )
    if label and label != (display or name):  # the export's default; kept only when it differs
        keep.setdefault("objective", {})["displayName"] = label
    fields["display_name"] = display
    fields["description"] = _text(
        doc, "spec.description", doc.spec.get("description"), MAX_DESCRIPTION
    )
    fields["openslo"] = keep
    try:
        cleaned = slos.clean_fields(fields)  # the same checks as the API, named in OpenSLO terms
    except InvalidInput as exc:
        raise doc.fail(_openslo_field(exc.field, at), exc.problem) from None
    return _Planned(doc, name, service, cleaned, notes)


@dataclass(frozen=True)
class ImportResult:
    kind: str
    name: str
    action: str  # created | updated | unchanged
    notes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "action": self.action}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _service_fields(doc: _Doc) -> dict[str, str]:
    metadata = doc.metadata
    team = (metadata.get("labels") or {}).get("team", "unassigned")
    team = (team[0] if team else "unassigned") if isinstance(team, list) else team
    if len(team) > MAX_TEAM:
        raise doc.fail("metadata.labels.team", f"is longer than {MAX_TEAM} characters")
    return {
        "slug": doc.name,
        "name": metadata.get("displayName") or doc.name,
        "team": team or "unassigned",
        "description": doc.spec.get("description") or "",
    }


def import_documents(text: str, *, actor: Any, dry_run: bool = False) -> list[ImportResult]:
    """Create or update services and SLOs from OpenSLO YAML, all or nothing.

    An SLO is matched by (service, name). Raises OpenSLOError naming the document and field.
    """
    if not isinstance(text, str):
        raise OpenSLOError("yaml", "must be text")
    docs = _load(text)
    slis = {d.name: d for d in docs if d.kind == "SLI"}
    for sli in slis.values():  # checked even when no SLO refers to it
        _check_indicator(sli, "spec", sli.spec)
    service_docs = {d.name: d for d in docs if d.kind == "Service"}
    service_fields = {name: _service_fields(d) for name, d in service_docs.items()}
    planned = [p for d in docs if d.kind == "SLO" for p in _slo_fields(d, slis)]
    seen: dict[tuple[str, str], _Planned] = {}
    for p in planned:
        if (p.service, p.name) in seen:
            raise p.doc.fail(
                "metadata.name",
                f"SLO {p.service}/{p.name} is also made by {seen[(p.service, p.name)].doc.path()}",
            )
        seen[(p.service, p.name)] = p
    results: list[ImportResult] = []
    with transaction.atomic():
        known = {
            s.slug: s
            for s in Service.objects.filter(
                slug__in={p.service for p in planned} | set(service_docs)
            )
        }
        for name in service_docs:
            if name in known:
                results.append(ImportResult("Service", name, "unchanged"))
                continue
            known[name] = services.create_service(actor=actor, **service_fields[name])
            results.append(ImportResult("Service", name, "created"))
        for p in planned:
            service = known.get(p.service)
            if service is None:
                raise p.doc.fail("spec.service", f"no service {p.service!r} here or in the file")
            existing = SLO.objects.filter(service=service, name=p.name).first()
            label = f"{p.service}/{p.name}"
            try:
                if existing is None:
                    slos.create_slo(actor=actor, service=service, name=p.name, **p.fields)
                    results.append(ImportResult("SLO", label, "created", p.notes))
                else:
                    before = slos.snapshot(existing), existing.openslo
                    updated = slos.update_slo(existing, actor=actor, **p.fields)
                    after = slos.snapshot(updated), updated.openslo
                    action = "unchanged" if before == after else "updated"
                    results.append(ImportResult("SLO", label, action, p.notes))
            except InvalidInput as exc:
                raise p.doc.fail(_openslo_field(exc.field), exc.problem) from None
        if dry_run:
            transaction.set_rollback(True)
    return results


def _openslo_field(field: str, objective: str = "spec.objectives[0]") -> str:
    return {
        "target": f"{objective}.target",
        "window": "spec.timeWindow[0]",
        "slice_minutes": f"{objective}.timeSliceWindow",
        "slice_target": f"{objective}.timeSliceTarget",
        "latency_threshold_ms": f"{objective}.value",
        "budgeting_method": "spec.budgetingMethod",
        "sli": "spec.indicator",
    }.get(field, field)


# --------------------------------------------------------------------------- export


def _own_source(sli: str, part: str) -> dict[str, Any]:
    return {"metricSource": {"type": SOURCE_TYPE, "spec": {"sli": sli, "count": part}}}


_LETTER = {
    CalendarPeriod.DAY: "d",
    CalendarPeriod.WEEK: "w",
    CalendarPeriod.MONTH: "M",
    CalendarPeriod.QUARTER: "Q",
}


def _time_window(window: Window) -> dict[str, Any]:
    if not window.is_calendar:
        return {"duration": f"{window.days}d", "isRolling": True}
    return {
        "duration": f"{window.count}{_LETTER[window.period]}",
        "isRolling": False,
        "calendar": {
            "startTime": window.anchor.strftime("%Y-%m-%d %H:%M:%S"),
            "timeZone": window.time_zone,
        },
    }


def slo_document(slo: SLO) -> dict[str, Any]:
    """One SLO as an OpenSLO v1 document (one objective: see the module docstring)."""
    kept = slo.openslo if isinstance(slo.openslo, dict) else {}
    kept_objective = kept.get("objective") or {}
    objective: dict[str, Any] = {
        "displayName": kept_objective.get("displayName") or slo.display_name or slo.name
    }
    if slo.sli == SLO.Sli.LATENCY:
        indicator_spec = {
            "thresholdMetric": {"metricSource": {"type": SOURCE_TYPE, "spec": {"sli": "latency"}}}
        }
        objective.update(op="lte", value=slo.latency_threshold_ms)
        indicator = {"metadata": {"name": f"{slo.name}-sli"}, "spec": indicator_spec}
    elif kept.get("indicator"):
        indicator = kept["indicator"]
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
    for key in ("op", "value"):
        if key in kept_objective:
            objective[key] = kept_objective[key]
    objective["target"] = float(slo.target)
    method = "Timeslices" if slo.is_timeslices else "Occurrences"
    if slo.is_timeslices:
        objective["timeSliceTarget"] = float(slo.slice_target)
        objective["timeSliceWindow"] = f"{slo.slice_minutes}m" if slo.slice_minutes < 60 else "1h"
    elif kept.get("budgetingMethod") == "RatioTimeslices":
        method = "RatioTimeslices"
        objective["timeSliceWindow"] = kept.get("timeSliceWindow", "1m")
        if "timeSliceTarget" in kept:
            objective["timeSliceTarget"] = kept["timeSliceTarget"]
    metadata = {"name": slo.name}
    if slo.display_name:
        metadata["displayName"] = slo.display_name
    spec = {
        "description": slo.description,
        "service": slo.service.slug,
        "indicator": indicator,
        "timeWindow": [_time_window(slo.window_spec)],
        "budgetingMethod": method,
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
