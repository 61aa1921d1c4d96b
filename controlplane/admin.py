"""The admin's shared bases, and the project's own models and accounts.

Every admin save and delete goes through the owning app's audited verbs, as the pages and the
API do (`VerbAdmin`); logs are only read (`ReadOnlyAdmin`). tests/controlplane/
test_admin_audited.py walks every registered model to keep it so.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group, User
from django.db import models
from django.http import HttpRequest

from controlplane import services, tokens
from controlplane.models import ApiToken, AuditEntry, Service


class ReadOnlyAdmin(admin.ModelAdmin):
    """For logs and rows the system writes: no add, no change, no delete (a deleted gate
    decision would let CI ask about a denied change afresh)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class VerbAdmin(admin.ModelAdmin):
    """Saves and deletes through verbs. Override `create`, `update` and `remove`; an admin
    that does not override one refuses that kind of change (403)."""

    def create(self, request: HttpRequest, form: Any) -> models.Model:
        raise NotImplementedError

    def update(self, request: HttpRequest, obj: Any, changes: dict[str, Any]) -> None:
        raise NotImplementedError

    def remove(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def _has_verb(self, name: str) -> bool:
        return getattr(type(self), name) is not getattr(VerbAdmin, name)

    def has_add_permission(self, request, obj=None):
        return self._has_verb("create") and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._has_verb("update") and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._has_verb("remove") and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            if changes:
                self.update(request, obj, changes)
        else:
            obj.pk = self.create(request, form).pk

    def save_related(self, request, form, formsets, change):
        # Many-to-many fields are the verbs' to save (form.save_m2m would skip the audit).
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        self.remove(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.remove(request, obj)


@admin.register(Service)
class ServiceAdmin(VerbAdmin):
    list_display = ["slug", "name", "team", "tier", "updated_at"]
    list_filter = ["tier", "team"]
    search_fields = ["slug", "name", "team"]
    fields = services.SERVICE_FIELDS

    def create(self, request, form):
        return services.create_service(
            actor=request.user, **{f: form.cleaned_data[f] for f in services.SERVICE_FIELDS}
        )

    def update(self, request, obj, changes):
        services.update_service(obj, actor=request.user, **changes)

    def remove(self, request, obj):
        services.delete_service(obj, actor=request.user)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued by `create_api_token` or the tokens page; here they are read, and
    revoked through the same verb as the tokens page."""

    list_display = [
        "name",
        "user",
        "prefix",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    fields = [f.name for f in ApiToken._meta.fields if f.name != "token_hash"]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked_at__isnull=True):
            tokens.revoke_token(token, actor=request.user)
        messages.success(request, "Revoked.")


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_label", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_repr", "actor_label", "object_id"]


# --------------------------------------------------------------------------- accounts

# The password view builds its form itself (`change_password_form(user, data)`), so the form
# learns who is acting from here; a context variable is per request, also under threads.
_password_actor: ContextVar[Any] = ContextVar("password_actor")


class AuditedPasswordChangeForm(AdminPasswordChangeForm):
    def save(self, commit: bool = True) -> Any:
        usable = self.cleaned_data.get("set_usable_password", True)
        raw = self.cleaned_data["password1"] if usable else None
        return services.set_user_password(self.user, raw, actor=_password_actor.get())


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(UserAdmin, VerbAdmin):
    change_password_form = AuditedPasswordChangeForm

    def create(self, request, form):
        return services.save_user(form.instance, actor=request.user)

    def update(self, request, obj, changes):
        # `obj` carries the form's field changes; groups (the role) and permissions go with
        # them, so the whole edit is one audit row.
        services.save_user(
            obj,
            actor=request.user,
            groups=changes.get("groups"),
            permissions=changes.get("user_permissions"),
        )

    def remove(self, request, obj):
        services.delete_user(obj, actor=request.user)

    def user_change_password(self, request, id, form_url=""):
        token = _password_actor.set(request.user)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _password_actor.reset(token)


@admin.register(Group)
class AuditedGroupAdmin(GroupAdmin, VerbAdmin):
    def create(self, request, form):
        return services.save_group(
            form.instance, actor=request.user, permissions=form.cleaned_data.get("permissions")
        )

    def update(self, request, obj, changes):
        services.save_group(obj, actor=request.user, permissions=changes.get("permissions"))

    def remove(self, request, obj):
        services.delete_group(obj, actor=request.user)
