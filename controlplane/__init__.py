"""The project package: settings, the Celery app, auth, services and the audit log."""

from controlplane.celery import app as celery_app

__all__ = ["celery_app"]
