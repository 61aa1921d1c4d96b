"""Settings are read in a fresh interpreter for each mode, as a process would start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, django; from django.conf import settings; settings.DATABASES; "
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'], "
    "'db': str(settings.DATABASES['default']['NAME']), 'broker': settings.CELERY_BROKER_URL, "
    "'cache': settings.CACHES['default']['BACKEND'], 'debug': settings.DEBUG, "
    "'secure': getattr(settings, 'SESSION_COOKIE_SECURE', False), 'key': settings.SECRET_KEY}))"
)


def load(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE", "REDIS", "CONTROL", "SECRET", "ALLOWED", "DEBUG"))
    }
    clean.update(
        {
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "CONTROLPLANE_VAR_DIR": str(tmp_path / "var"),
        }
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_environment_gives_the_embedded_default(tmp_path):
    result = load({}, tmp_path)
    assert result.returncode == 0, result.stderr
    cfg = json.loads(result.stdout)
    assert cfg["engine"].endswith("sqlite3")
    assert cfg["db"] == str(tmp_path / "var" / "controlplane.sqlite3")
    assert cfg["broker"] == "filesystem://"
    assert cfg["cache"].endswith("LocMemCache")
    assert cfg["debug"] is True
    assert (tmp_path / "var" / "secret_key").read_text() == cfg["key"]


def test_the_generated_secret_key_is_kept_across_restarts(tmp_path):
    first = json.loads(load({}, tmp_path).stdout)["key"]
    second = json.loads(load({}, tmp_path).stdout)["key"]
    assert first == second and len(first) > 40


def test_urls_select_postgres_and_redis(tmp_path):
    result = load(
        {
            "DATABASE_URL": "postgres://u:p@db.example:5432/cp",
            "REDIS_URL": "redis://cache.example:6379/0",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    cfg = json.loads(result.stdout)
    assert cfg["engine"].endswith("postgresql")
    assert cfg["db"] == "cp"
    assert cfg["broker"] == "redis://cache.example:6379/0"
    assert cfg["cache"].endswith("InstrumentedRedisCache")


def test_production_refuses_to_start_naming_what_is_missing(tmp_path):
    result = load({"CONTROLPLANE_ENV": "production", "SECRET_KEY": "x" * 50}, tmp_path)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "ALLOWED_HOSTS, DATABASE_URL, CONTROLPLANE_SNAPSHOT_KEYS" in result.stderr
    assert "SECRET_KEY," not in result.stderr


def test_production_with_its_settings_turns_debug_off_and_cookies_secure(tmp_path):
    result = load(
        {
            "CONTROLPLANE_ENV": "production",
            "SECRET_KEY": "s" * 50,
            "ALLOWED_HOSTS": "cp.example",
            "DATABASE_URL": "postgres://u@db/cp",
            "CONTROLPLANE_SNAPSHOT_KEYS": "k1:" + "k" * 32,
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    cfg = json.loads(result.stdout)
    assert cfg["debug"] is False and cfg["secure"] is True


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG must be a boolean"),
        ({"CONTROLPLANE_MAX_BODY_BYTES": "lots"}, "CONTROLPLANE_MAX_BODY_BYTES must be an integer"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must be a postgres"),
    ],
)
def test_a_bad_variable_fails_with_its_name(tmp_path, env, named):
    result = load(env, tmp_path)
    assert result.returncode != 0
    assert named in result.stderr
