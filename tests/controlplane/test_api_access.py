"""Every /api/v1/ route, found by walking the URL conf: 401 without credentials, 403 for a user
with no role. A new endpoint that forgets its permission check fails here."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

_GROUP = re.compile(r"\(\?P<\w+>[^)]*\)|<(?:\w+:)?\w+>")


def _walk(patterns, prefix=""):
    for p in patterns:
        text = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, text)
        elif isinstance(p, URLPattern):
            yield text, p.callback


def api_routes() -> list[tuple[str, str]]:
    routes = []
    for text, callback in _walk(get_resolver().url_patterns):
        path = "/" + _GROUP.sub("1", text).replace("^", "").replace("$", "").replace(
            "/?", "/"
        ).replace("\\.", ".")
        if not path.startswith("/api/v1/"):
            continue
        actions = getattr(callback, "actions", None)
        if actions:
            methods = list(actions)
        else:
            cls = callback.cls
            methods = [m for m in cls.http_method_names if m != "options" and hasattr(cls, m)]
        routes.extend((m.upper(), path) for m in methods if m != "head")
    return sorted(set(routes))


ROUTES = api_routes()


def test_the_walk_finds_the_api():
    assert ("GET", "/api/v1/services/") in ROUTES
    assert len(ROUTES) >= 8


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_credentials(anon, method, path):
    response = anon.generic(method, path, data="{}", content_type="application/json")
    assert response.status_code == 401, (method, path, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_refuses_a_user_without_a_role(outsider, method, path):
    response = outsider.client().generic(method, path, data="{}", content_type="application/json")
    assert response.status_code == 403, (method, path, response.content)
    assert response.json()["code"] == "permission_denied"


def test_a_bad_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Bearer cp_not-a-real-token")
    response = anon.get("/api/v1/services")
    assert response.status_code == 401
    assert "Invalid" in response.json()["detail"]


def test_a_session_login_works_for_the_api(client, viewer):
    client.force_login(viewer.user)
    assert client.get("/api/v1/services").status_code == 200
