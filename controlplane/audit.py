"""The audit log: `record` is called inside the transaction of the change it describes."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db import models, transaction

from controlplane.models import AuditEntry

M = TypeVar("M", bound=models.Model)


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """A JSON-safe picture of the fields of a model instance, for before/after."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(obj, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat()
        elif isinstance(value, models.Model):
            value = str(value.pk)
        out[name] = value
    return out


def record(
    actor: Any,
    action: str,
    obj: models.Model,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of its change")
    user = actor if getattr(actor, "is_authenticated", False) else None
    label = user.get_username() if user else (str(actor) if actor else "system")
    return AuditEntry.objects.create(
        actor=user,
        actor_label=label[:150],
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=before,
        after=after,
        reason=reason,
    )


def update_audited(
    obj: M, changes: dict[str, Any], *, actor: Any, action: str, fields: list[str]
) -> M:
    """Lock the row, apply `changes`, save only those fields (and updated_at) and audit the
    before/after of `fields` when anything changed, all in one transaction."""
    model = type(obj)
    with transaction.atomic():
        obj = model.objects.select_for_update().get(pk=obj.pk)
        before = snapshot(obj, fields)
        for name, value in changes.items():
            setattr(obj, name, value)
        obj.save(update_fields=[*changes, "updated_at"])
        after = snapshot(obj, fields)
        if after != before:
            record(actor, action, obj, before=before, after=after)
    return obj


def delete_audited(obj: models.Model, *, actor: Any, action: str, fields: list[str]) -> None:
    with transaction.atomic():
        record(actor, action, obj, before=snapshot(obj, fields))
        obj.delete()
