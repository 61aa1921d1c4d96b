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
    with transaction.atomic():
        service = Service.objects.select_for_update().get(pk=service.pk)
        before = audit.snapshot(service, SERVICE_FIELDS)
        for name, value in changes.items():
            setattr(service, name, value)
        service.save(update_fields=[*changes, "updated_at"])
        after = audit.snapshot(service, SERVICE_FIELDS)
        if after != before:
            audit.record(actor, "service.update", service, before=before, after=after)
    return service


def delete_service(service: Service, *, actor: Any) -> None:
    with transaction.atomic():
        before = audit.snapshot(service, SERVICE_FIELDS)
        audit.record(actor, "service.delete", service, before=before)
        service.delete()
