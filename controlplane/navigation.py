"""The navigation bar. Pages of later apps join by URL name; an entry whose page does not
exist yet (its app has not landed) is left out rather than linking to a 404."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from controlplane.roles import Role

NAV = [
    ("Overview", "overview", Role.VIEWER),
    ("Services", "service-list", Role.VIEWER),
    ("Breakers", "breakers:board", Role.VIEWER),
    ("Routes", "breakers:routes", Role.VIEWER),
    ("Schemas", "breakers:schemas", Role.VIEWER),
    ("Events", "replay:events", Role.VIEWER),
    ("Budgets", "budgets:list", Role.VIEWER),
    ("Changes", "budgets:changes", Role.VIEWER),
    ("Snapshots", "replay:snapshots", Role.VIEWER),
    ("Replay", "replay:runs", Role.VIEWER),
    ("Dead letters", "replay:dead-letters", Role.VIEWER),
    ("Reports", "budgets:reports", Role.VIEWER),
    ("Workers", "breakers:nodes", Role.VIEWER),
    ("Demo", "breakers:demo", Role.VIEWER),
    ("Audit", "audit-log", Role.ADMIN),
    ("Admin", "admin:index", Role.ADMIN),
]


def nav_items(path: str, role: Role | None) -> list[dict]:
    items = []
    for label, url_name, needed in NAV:
        if role is None or role < needed:
            continue
        if url_name == "breakers:demo" and not settings.DEMO_ENABLED:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = path == url if url == "/" else path.startswith(url)
        items.append({"label": label, "url": url, "active": active})
    return items
