"""Dependency checks behind /readyz: each returns None when healthy, else what is wrong."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from controlplane.celery import app as celery_app


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


def check_broker() -> str | None:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            if str(celery_app.conf.broker_url).startswith("redis"):
                conn.default_channel.client.ping()  # connecting alone is lazy on redis
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()[:300]
    return None


CHECKS = {"database": check_database, "broker": check_broker}


def readiness() -> dict[str, str | None]:
    return {name: check() for name, check in CHECKS.items()}
