"""Verb functions for services: each runs in one transaction and writes its audit row in it."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from controlplane import audit
from controlplane.models import Service

SERVICE_FIELDS = ["slug", "name", "team", "tier", "description"]


def create_service(*, actor: Any, **fields: Any) -> Service:
    with transaction.atomic():
        service = Service.objects.create(**fields)
        audit.record(
            actor, "service.create", service, after=audit.snapshot(service, SERVICE_FIELDS)
        )
    return service


def update_service(service: Service, *, actor: Any, **changes: Any) -> Service:
    return audit.update_audited(
        service, changes, actor=actor, action="service.update", fields=SERVICE_FIELDS
    )


def delete_service(service: Service, *, actor: Any) -> None:
    audit.delete_audited(service, actor=actor, action="service.delete", fields=SERVICE_FIELDS)
