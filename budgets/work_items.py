"""Work items: tracker tickets that address budget spend. Every change is one audited verb;
the API, the page, the admin and the CSV import all come through here.

Values are cleaned here, from text or typed values alike, so a CSV cell and a JSON field meet
the same rules and the same messages (``InvalidInput`` names the field).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from budgets.maths import InvalidInput
from budgets.models import WorkItem
from controlplane import audit
from controlplane.models import Service

FIELDS = [
    "key",
    "url",
    "title",
    "service",
    "assignee",
    "status",
    "episode_start",
    "saved_minutes",
    "saved_share",
]
AUDITED = FIELDS
REQUIRED = ("key", "title", "service")
MAX_IMPORT_ROWS = 5000
MAX_IMPORT_BYTES = 2 * 1024 * 1024


def key_pattern() -> re.Pattern[str]:
    return re.compile(settings.BUDGETS_WORK_ITEM_KEY_PATTERN)


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(name, f"must be text, got {type(value).__name__}")
    value = value.strip()
    if "\x00" in value:
        raise InvalidInput(name, "must not contain NUL characters")
    if len(value) > limit:
        raise InvalidInput(name, f"must be at most {limit} characters")
    return value


def _number(value: Any, name: str, *, high: float) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput(name, "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(name, f"must be a number, got {value!r}") from None
    if not math.isfinite(number) or not 0 <= number <= high:
        raise InvalidInput(name, f"must be between 0 and {high:g}, got {value!r}")
    return number


def _moment(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(name, f"must be an ISO date-time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise InvalidInput(name, "must be an ISO date-time")
    if value.tzinfo is None:
        raise InvalidInput(name, "must include a time zone (Z for UTC)")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(name, "is out of range") from None
    if not 1970 <= value.year <= 9000:
        raise InvalidInput(name, "must be between the years 1970 and 9000")
    if value.minute or value.second or value.microsecond:
        # report episodes start on whole hours (their bucket); anything else would never match
        raise InvalidInput(name, "must be an episode start: a whole UTC hour")
    return value


def clean(data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Checked field values from ``data`` (text or typed). ``partial``: only those given."""
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        raise InvalidInput(unknown[0], "is not a work-item field")
    out: dict[str, Any] = {}
    if not partial:
        for name in REQUIRED:
            if data.get(name) in (None, ""):
                raise InvalidInput(name, "is required")
    for name, value in data.items():
        if name == "key":
            key = _text(value, name, 64)
            if not key_pattern().fullmatch(key):
                raise InvalidInput(
                    name, f"must match {settings.BUDGETS_WORK_ITEM_KEY_PATTERN} (e.g. OPS-123)"
                )
            out[name] = key
        elif name == "title":
            out[name] = _text(value, name, 300)
            if not out[name]:
                raise InvalidInput(name, "is required")
        elif name == "url":
            url = _text(value, name, 500)
            if url:
                try:
                    URLValidator(schemes=["http", "https"])(url)
                except ValidationError:
                    raise InvalidInput(name, "must be an http(s) URL") from None
            out[name] = url
        elif name == "assignee":
            out[name] = _text(value, name, 150)
        elif name == "service":
            if isinstance(value, Service):
                out[name] = value
                continue
            slug = _text(value, name, 50)
            service = Service.objects.filter(slug=slug).first()
            if service is None:
                raise InvalidInput(name, f"no service with slug {slug!r}")
            out[name] = service
        elif name == "status":
            status = _text(value, name, 20) or WorkItem.Status.OPEN
            if status not in WorkItem.Status.values:
                raise InvalidInput(name, f"must be one of {', '.join(WorkItem.Status.values)}")
            out[name] = status
        elif name == "episode_start":
            out[name] = _moment(value, name)
        elif name == "saved_minutes":
            out[name] = _number(value, name, high=10**7)
        elif name == "saved_share":
            out[name] = _number(value, name, high=1.0)
    return out


def _check_key_free(key: str, exclude: int | None = None) -> None:
    qs = WorkItem.objects.filter(key=key)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    if qs.exists():
        raise InvalidInput("key", f"{key} already exists")


def create_work_item(*, actor: Any, **data: Any) -> WorkItem:
    fields = clean(data)
    _check_key_free(fields["key"])
    with transaction.atomic():
        item = WorkItem.objects.create(**fields)
        audit.record(actor, "work_item.create", item, after=audit.snapshot(item, AUDITED))
    return item


def update_work_item(item: WorkItem, *, actor: Any, **data: Any) -> WorkItem:
    changes = clean(data, partial=True)
    if "key" in changes:
        _check_key_free(changes["key"], exclude=item.pk)
    return audit.update_audited(
        item,
        changes,
        actor=actor,
        action="work_item.update",
        fields=AUDITED,
    )


def delete_work_item(item: WorkItem, *, actor: Any) -> None:
    audit.delete_audited(item, actor=actor, action="work_item.delete", fields=AUDITED)


# --------------------------------------------------------------------------- CSV


def to_csv(items: Iterable[WorkItem]) -> str:
    """Work items as CSV with a header row of FIELDS (what import_csv reads back)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for item in items:
        writer.writerow(
            [
                item.key,
                item.url,
                item.title,
                item.service.slug,
                item.assignee,
                item.status,
                item.episode_start.isoformat() if item.episode_start else "",
                "" if item.saved_minutes is None else repr(item.saved_minutes),
                "" if item.saved_share is None else repr(item.saved_share),
            ]
        )
    return out.getvalue()


@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {line, field, message}

    def as_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "errors": self.errors}


def import_csv(text: str, *, actor: Any) -> ImportResult:
    """Create or update (by key) one work item per CSV row. A bad row is reported with its
    line (the header is line 1) and field and skipped; good rows are kept, each in its own
    transaction. Raises InvalidInput("file", ...) when the file itself is unreadable."""
    if len(text) > MAX_IMPORT_BYTES:
        raise InvalidInput("file", f"is larger than {MAX_IMPORT_BYTES} bytes")
    if "\x00" in text:
        raise InvalidInput("file", "must not contain NUL characters")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("file", "is empty: a header row is required") from None
    except csv.Error as exc:
        raise InvalidInput("file", f"is not CSV: {exc}") from None
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in FIELDS]
    if unknown:
        raise InvalidInput("file", f"header names unknown columns: {', '.join(unknown)}")
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        raise InvalidInput("file", f"header lacks required columns: {', '.join(missing)}")
    result = ImportResult()
    seen: dict[str, int] = {}
    rows = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append({"line": reader.line_num, "field": "", "message": str(exc)})
            break
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        rows += 1
        if rows > MAX_IMPORT_ROWS:
            result.errors.append(
                {"line": line, "field": "", "message": f"more than {MAX_IMPORT_ROWS} rows"}
            )
            break
        if len(cells) != len(header):
            result.errors.append(
                {
                    "line": line,
                    "field": "",
                    "message": f"has {len(cells)} cells, the header has {len(header)}",
                }
            )
            continue
        data = dict(zip(header, cells, strict=True))
        key = data["key"].strip()
        if key in seen:
            result.errors.append(
                {"line": line, "field": "key", "message": f"repeats line {seen[key]}"}
            )
            continue
        try:
            existing = WorkItem.objects.filter(key=key).first()
            if existing is None:
                create_work_item(actor=actor, **data)
                result.created.append(key)
            else:
                update_work_item(existing, actor=actor, **data)
                result.updated.append(key)
            seen[key] = line
        except InvalidInput as exc:
            result.errors.append({"line": line, "field": exc.field, "message": str(exc)})
    return result
