"""The admin site: every change made in Django admin is also an ``AuditEvent`` (action ``admin``).

Django's admin already funnels each add/change/delete through ``ModelAdmin.log_*`` and each bulk
action through ``response_action``; the site wraps every registered ModelAdmin with a mixin that
records those in the audit trail as well, so no app has to remember to do it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse

from bms.models import AuditEvent
from bms.services import audit_event_record, user_refresh_tokens_revoke

_MAX_PKS = 50  # pks listed in one event's details; the count is always exact


def _target(obj: Model) -> str:
    return f"{obj._meta.label}:{obj.pk}"


def _audit(request: HttpRequest, *, target: str, details: Mapping[str, object]) -> None:
    audit_event_record(
        action=AuditEvent.Action.ADMIN, actor=request.user, target=target, details=details, request=request
    )


class AuditedAdminMixin:
    def log_addition(self, request: HttpRequest, obj: Model, message: object) -> LogEntry:
        # The mixin's super() is AdminSite, which mypy cannot see from a bare mixin.
        entry: LogEntry = super().log_addition(request, obj, message)  # type: ignore[misc]
        _audit(request, target=_target(obj), details={"op": "add"})
        return entry

    def log_change(self, request: HttpRequest, obj: Model, message: object) -> LogEntry:
        entry: LogEntry = super().log_change(request, obj, message)  # type: ignore[misc]
        text = message if isinstance(message, (list, str)) else str(message)
        _audit(request, target=_target(obj), details={"op": "change", "message": text})
        return entry

    def log_deletions(self, request: HttpRequest, queryset: Iterable[Model]) -> list[LogEntry]:
        objects = list(queryset)
        entries: list[LogEntry] = super().log_deletions(request, objects)  # type: ignore[misc]
        if objects:
            pks = [str(o.pk) for o in objects[:_MAX_PKS]]
            _audit(request, target=objects[0]._meta.label, details={"op": "delete", "count": len(objects), "pks": pks})
        return entries

    def response_action(self, request: HttpRequest, queryset: QuerySet[Model]) -> HttpResponseBase | None:
        action = request.POST.get("action", "")
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        across = request.POST.get("select_across") == "1"
        response: HttpResponseBase | None = super().response_action(request, queryset)  # type: ignore[misc]
        # delete_selected answers first with a confirmation page; its deletions are logged above.
        if action and action != "delete_selected" and (selected or across):
            count = queryset.count() if across else len(selected)
            details = {"op": "action", "name": action, "count": count, "pks": selected[:_MAX_PKS]}
            _audit(request, target=queryset.model._meta.label, details=details)
        return response


class AuditedAdminSite(admin.AdminSite):
    site_header = "BMS administration"
    site_title = "BMS admin"

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(
                admin_class.__name__, (AuditedAdminMixin, admin_class), {"__module__": admin_class.__module__}
            )
        super().register(model_or_iterable, admin_class, **options)

    def logout(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> TemplateResponse:
        """As the pages' logout (web.views.base.LogoutView): the user's refresh tokens are revoked too."""
        if request.method == "POST" and request.user.is_authenticated:
            user_refresh_tokens_revoke(user=request.user)
        return super().logout(request, extra_context)
