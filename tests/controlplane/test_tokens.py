from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from controlplane.models import ApiToken
from controlplane.tokens import authenticate_secret, hash_secret, issue_token, revoke_token

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def test_only_the_hash_is_stored(viewer):
    token = ApiToken.objects.get(user=viewer.user)
    assert token.token_hash == hash_secret(viewer.token)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM controlplane_apitoken")
        rows = cursor.fetchall()
    assert viewer.token not in repr(rows)
    assert viewer.token[:10] == token.prefix


def test_an_expired_token_is_refused(viewer):
    ApiToken.objects.filter(user=viewer.user).update(expires_at=timezone.now() - timedelta(1))
    assert viewer.client().get("/api/v1/services").status_code == 401


def test_a_revoked_token_is_refused_and_audited(viewer):
    assert viewer.client().get("/api/v1/services").status_code == 200
    revoke_token(ApiToken.objects.get(user=viewer.user), actor=viewer.user)
    assert viewer.client().get("/api/v1/services").status_code == 401


def test_a_token_of_an_inactive_user_is_refused(viewer):
    viewer.user.is_active = False
    viewer.user.save()
    assert viewer.client().get("/api/v1/services").status_code == 401


def test_last_used_is_touched_at_most_once_a_minute(viewer):
    assert authenticate_secret(viewer.token).last_used_at is not None
    first = ApiToken.objects.get(user=viewer.user).last_used_at
    authenticate_secret(viewer.token)
    assert ApiToken.objects.get(user=viewer.user).last_used_at == first


def test_expiry_in_the_past_is_refused(viewer):
    with pytest.raises(ValueError, match="future"):
        issue_token(viewer.user, name="old", expires_at=timezone.now() - timedelta(1))


def test_tokens_api_creates_shows_once_and_revokes(operator):
    api = operator.client()
    created = api.post("/api/v1/tokens", {"name": "ci", "scopes": ["ingest"]}, format="json")
    assert created.status_code == 201, created.content
    secret = created.json()["token"]
    token_id = created.json()["id"]
    assert "token" not in api.get(f"/api/v1/tokens/{token_id}").json()
    assert authenticate_secret(secret).scopes == ["ingest"]
    assert api.delete(f"/api/v1/tokens/{token_id}").status_code == 204
    assert authenticate_secret(secret) is None


def test_tokens_api_rejects_a_duplicate_name_and_bad_scope(viewer):
    api = viewer.client()
    assert api.post("/api/v1/tokens", {"name": "test"}, format="json").json()["errors"]["name"]
    bad = api.post("/api/v1/tokens", {"name": "x", "scopes": ["root"]}, format="json")
    assert "scopes" in bad.json()["errors"]


def test_users_see_only_their_own_tokens(viewer, operator):
    ids = [t["id"] for t in viewer.client().get("/api/v1/tokens").json()["results"]]
    assert ids == [ApiToken.objects.get(user=viewer.user).pk]
    other = ApiToken.objects.get(user=operator.user).pk
    assert viewer.client().delete(f"/api/v1/tokens/{other}").status_code == 404


def test_the_management_command_prints_a_working_token(viewer, capsys):
    call_command("create_api_token", "viewer", "--name", "cli")
    secret = capsys.readouterr().out.strip()
    assert authenticate_secret(secret).user == viewer.user
