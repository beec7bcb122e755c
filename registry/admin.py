"""Registry admin: versions as an algorithm x target matrix, promotion and rollback with confirmation.

Every change goes through registry.services (the same path as the API and commands). The registry
rows are read-only here; PromotionEvent is append-only (no add, change or delete).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from bms.errors import ApplicationError
from programs.models import TARGETS
from registry import selectors, services
from registry.models import ModelVersion, PromotionEvent, TrainingJob, TrainingRun


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=1000)


class PromoteForm(ReasonForm):
    force = forms.BooleanField(
        required=False,
        label="Force",
        help_text="Promote even if it does not beat production or the best baseline on the same test data "
        "(the reason is recorded in the ledger).",
    )


_M = TypeVar("_M", bound=Model)


class _ReadOnlyAdmin(admin.ModelAdmin[_M]):
    def has_add_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: _M | None = None) -> bool:
        return False


def _confirm(
    modeladmin: admin.ModelAdmin[_M],
    request: HttpRequest,
    queryset: QuerySet[_M],
    *,
    action: str,
    title: str,
    description: str,
    perform: Callable[[_M, dict[str, Any]], object],
    form_class: type[ReasonForm] = ReasonForm,
) -> HttpResponse | None:
    """Show a confirmation page with a reason field; on "apply" call ``perform(obj, cleaned_data)`` per object."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        for obj in queryset:
            try:
                result = perform(obj, form.cleaned_data)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.message}", level=messages.ERROR)
            else:
                modeladmin.message_user(request, f"{result}", level=messages.SUCCESS)
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "description": description,
        "objects": list(queryset),
        "form": form,
        "action": action,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "registry/admin/action_confirm.html", context)


@admin.register(ModelVersion)
class ModelVersionAdmin(_ReadOnlyAdmin[ModelVersion]):
    change_list_template = "admin/registry/modelversion/change_list.html"
    list_display = (
        "__str__",
        "target",
        "algorithm",
        "version",
        "status",
        "holdout_r2",
        "holdout_rmse",
        "run",
        "created_at",
    )
    list_filter = ("status", "target", "algorithm")
    search_fields = ("artifact_sha256", "dataset_fingerprint")
    list_select_related = ("run",)
    actions = ["promote", "rollback_target"]

    def has_change_permission(self, request: HttpRequest, obj: ModelVersion | None = None) -> bool:
        # The change form stays read-only; the actions need "change" to be offered to staff.
        return obj is None and bool(request.user.is_staff)

    @admin.display(description="R² (holdout)")
    def holdout_r2(self, obj: ModelVersion) -> str:
        return "" if obj.r2 is None else f"{obj.r2:.3f}"

    @admin.display(description="RMSE")
    def holdout_rmse(self, obj: ModelVersion) -> str:
        value = obj.metrics.get("rmse")
        return "" if value is None else f"{float(value):.4g}"

    @admin.action(description="Promote the selected version to production")
    def promote(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to promote.", level=messages.ERROR)
            return None
        return _confirm(
            self,
            request,
            queryset,
            action="promote",
            title="Promote to production",
            description="The current production model of this target becomes archived.",
            perform=lambda v, data: services.model_version_promote(
                version=v, actor=request.user, reason=data["reason"], force=data["force"]
            ),
            form_class=PromoteForm,
        )

    @admin.action(description="Roll back the target of the selected version to its previous production model")
    def rollback_target(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        targets = sorted({v.target for v in queryset})
        firsts = (queryset.filter(target=t).first() for t in targets)  # one per target (none is missing)
        versions = queryset.filter(pk__in=[v.pk for v in firsts if v is not None])
        return _confirm(
            self,
            request,
            versions,
            action="rollback_target",
            title="Roll back " + ", ".join(targets),
            description="Each target's production model is archived and the previous production version restored.",
            perform=lambda v, data: services.model_version_rollback(
                target=v.target, actor=request.user, reason=data["reason"]
            ),
        )

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        matrix = selectors.model_matrix()
        rows = [
            {"algorithm": algorithm, "cells": [cells.get(t) for t in TARGETS]} for algorithm, cells in matrix.items()
        ]
        context = {**(extra_context or {}), "matrix_targets": TARGETS, "matrix_rows": rows}
        return super().changelist_view(request, extra_context=context)


class TrainingJobInline(admin.TabularInline[TrainingJob, TrainingRun]):
    model = TrainingJob
    extra = 0
    can_delete = False
    fields = ("target", "algorithm", "status", "attempts", "model_version", "error", "started_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(_ReadOnlyAdmin[TrainingRun]):
    list_display = ("id", "status", "trigger", "progress", "models_failed", "dataset_rows", "created_at", "finished_at")
    list_filter = ("status", "trigger")
    inlines = [TrainingJobInline]
    actions = ["retrain"]

    def has_change_permission(self, request: HttpRequest, obj: TrainingRun | None = None) -> bool:
        return obj is None and bool(request.user.is_staff)

    @admin.display(description="progress")
    def progress(self, obj: TrainingRun) -> str:
        return f"{obj.models_done}/{obj.models_total}"

    @admin.action(description="Start a new run with the same targets and algorithms")
    def retrain(self, request: HttpRequest, queryset: QuerySet[TrainingRun]) -> HttpResponse | None:
        return _confirm(
            self,
            request,
            queryset[:1],
            action="retrain",
            title="Start a training run",
            description="Trains the models in the background; promotion follows the registry rules.",
            perform=lambda run, data: services.training_run_start(
                trigger=TrainingRun.Trigger.ADMIN, actor=request.user, targets=run.targets, algorithms=run.algorithms
            ),
        )


@admin.register(PromotionEvent)
class PromotionEventAdmin(_ReadOnlyAdmin[PromotionEvent]):
    list_display = [
        "created_at",
        "target",
        "version",
        "kind",
        "from_status",
        "to_status",
        "forced",
        "actor_name",
        "reason",
        "notes",
    ]
    list_filter = ("target", "to_status", "kind", "forced")
    list_select_related = ("version",)
    search_fields = ("reason", "actor_name")

    @admin.display(description="checked / done")
    def notes(self, obj: PromotionEvent) -> str:
        d = obj.details or {}
        parts = [f"FORCED past: {'; '.join(d['forced_past'])}"] if d.get("forced_past") else []
        comparison = d.get("comparison") or {}
        if comparison:
            parts.append(str(comparison.get("summary", "")))
        parts += [f"ended A/B test #{t['id']} {t['name']!r}: {t['reason']}" for t in d.get("ab_tests_ended", [])]
        return " | ".join(parts)
