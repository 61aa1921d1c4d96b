"""One date format on every page, in the viewer's zone (see TimezoneMiddleware)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

FORMATS = {"datetime": "%Y-%m-%d %H:%M:%S", "time": "%H:%M:%S", "date": "%Y-%m-%d"}


def format_moment(value: datetime, style: str = "datetime") -> str:
    """``2026-12-01 21:37:05 UTC`` in the active zone (the viewer's choice)."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return (
        f"{local.strftime(FORMATS.get(style, FORMATS['datetime']))} {local.tzname() or ''}".strip()
    )


@register.filter(is_safe=True)
def cp_time(value: datetime | None, style: str = "datetime") -> str:
    """A ``<time>`` element: the ISO instant for machines, our one format for people."""
    if not isinstance(value, datetime):
        return "—" if value in (None, "") else str(value)
    return format_html(
        '<time datetime="{}" data-cp-time="{}">{}</time>',
        value.isoformat(),
        style,
        format_moment(value, style),
    )
