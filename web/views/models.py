"""Models: algorithm x target matrix, version history + promotion ledger, admin promote/rollback,
training runs with live progress."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from bms.errors import ApplicationError, NotFoundError
from bms.roles import Role
from programs.models import TARGETS
from web import sources
from web.forms import PromoteForm, ReasonForm, TrainingForm
from web.views.base import PageView
from web.views.dashboard import run_progress

ALGORITHMS = ("random_forest", "xgboost", "catboost", "gradient_boosting", "mlp", "elasticnet")
HISTORY_LIMIT = 60
LEDGER_LIMIT = 40
TERMINAL_RUN_STATES = {"succeeded", "failed", "cancelled"}


def registry_available() -> bool:
    return sources.optional("registry.selectors", "model_version_list") is not None


def _status(version: Any) -> str:
    return str(getattr(version, "status", "")).lower()


def _created(version: Any) -> Any:
    return getattr(version, "created_at", None) or getattr(version, "trained_at", None)


def model_matrix(versions: list[Any]) -> list[dict[str, Any]]:
    """One row per algorithm, one cell per target: the production version, else the newest one."""
    best: dict[tuple[str, str], Any] = {}
    for v in versions:
        key = (str(v.algorithm), str(v.target))
        current = best.get(key)
        if (
            current is None
            or (_status(v) == "production" and _status(current) != "production")
            or (_status(current) != "production" and v.version > current.version)
        ):
            best[key] = v
    rows = []
    algorithms = list(ALGORITHMS) + sorted({a for a, _ in best} - set(ALGORITHMS))
    for algorithm in algorithms:
        cells = []
        for target in TARGETS:
            v = best.get((algorithm, target))
            cells.append(
                None
                if v is None
                else {
                    "version": v,
                    "r2": sources.metric(v, "r2", "R2"),
                    "rmse": sources.metric(v, "rmse", "RMSE"),
                    "status": _status(v),
                    "created": _created(v),
                }
            )
        rows.append({"algorithm": algorithm, "cells": cells})
    return rows


def baseline_rows(baselines: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per naive forecast, one cell per target: its test RMSE / R² in the latest run (never promotable)."""
    names: list[str] = []
    for entry in baselines.values():
        names += [n for n in entry["scores"] if n not in names]
    return [
        {
            "name": name,
            "cells": [
                None
                if t not in baselines or name not in baselines[t]["scores"]
                else {**baselines[t]["scores"][name], "best": baselines[t]["best"] == name}
                for t in TARGETS
            ],
        }
        for name in names
    ]


def get_version(pk: int) -> Any:
    model_version_get = sources.optional("registry.selectors", "model_version_get")
    if model_version_get is None:
        raise Http404("The registry is not available yet.")
    try:
        return model_version_get(version_id=pk)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


class ModelsPage(PageView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not registry_available():
            return render(request, "web/models/index.html", {"available": False})
        model_version_list = sources.optional("registry.selectors", "model_version_list")
        assert model_version_list is not None
        versions = list(model_version_list())
        history = sorted(versions, key=lambda v: (_created(v) or timezone.now(), v.pk), reverse=True)[:HISTORY_LIMIT]
        promotion_history = sources.optional("registry.selectors", "promotion_history")
        ledger = list(promotion_history()[:LEDGER_LIMIT]) if promotion_history is not None else []
        run_model = sources.optional_model("registry", "TrainingRun")
        runs = list(run_model.objects.order_by("-id")[:5]) if run_model is not None else []
        production = {v.target: v for v in versions if _status(v) == "production"}
        baselines = sources.call_optional("registry.selectors", "latest_baselines") or {}
        context = {
            "available": True,
            "matrix": model_matrix(versions),
            "targets": TARGETS,
            "history": [
                {
                    "version": v,
                    "r2": sources.metric(v, "r2", "R2"),
                    "rmse": sources.metric(v, "rmse", "RMSE"),
                    "status": _status(v),
                    "created": _created(v),
                }
                for v in history
            ],
            "ledger": ledger,
            "baselines": baseline_rows(baselines),
            "runs": [{"run": r, "progress": run_progress(r)} for r in runs],
            "production": production,
            "training_form": TrainingForm(),
        }
        return render(request, "web/models/index.html", context)


class ModelPromotePage(PageView):
    """GET: the confirmation step (reason + explicit confirm). POST: promote through the service."""

    min_role = Role.ADMIN

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_version(pk)
        return render(
            request, "web/models/confirm.html", {"action": "promote", "version": version, "form": PromoteForm()}
        )

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        version = get_version(pk)
        form = PromoteForm(request.POST)
        promote = sources.optional("registry.services", "model_version_promote")
        if promote is None or not form.is_valid():
            return render(
                request, "web/models/confirm.html", {"action": "promote", "version": version, "form": form}, status=400
            )
        try:
            # The service locks rows with select_for_update, which needs a transaction on PostgreSQL.
            with transaction.atomic():
                promote(
                    version=version,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    force=form.cleaned_data.get("force", False),
                )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return render(
                request,
                "web/models/confirm.html",
                {"action": "promote", "version": version, "form": form},
                status=exc.status_code,
            )
        messages.success(
            request, f"Promoted {version.algorithm} v{version.version} to production for {version.target}."
        )
        return redirect(reverse("web:models"))


class ModelRollbackPage(PageView):
    min_role = Role.ADMIN

    def _check(self, target: str) -> None:
        if target not in TARGETS:
            raise Http404("Unknown target.")

    def get(self, request: HttpRequest, target: str) -> HttpResponse:
        self._check(target)
        return render(
            request, "web/models/confirm.html", {"action": "rollback", "target": target, "form": ReasonForm()}
        )

    def post(self, request: HttpRequest, target: str) -> HttpResponse:
        self._check(target)
        form = ReasonForm(request.POST)
        rollback = sources.optional("registry.services", "model_version_rollback")
        context = {"action": "rollback", "target": target, "form": form}
        if rollback is None or not form.is_valid():
            return render(request, "web/models/confirm.html", context, status=400)
        try:
            with transaction.atomic():
                rollback(target=target, actor=request.user, reason=form.cleaned_data["reason"])
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return render(request, "web/models/confirm.html", context, status=exc.status_code)
        messages.success(request, f"Rolled back the production model for {target}.")
        return redirect(reverse("web:models"))


class TrainingStartPage(PageView):
    min_role = Role.ADMIN

    def post(self, request: HttpRequest) -> HttpResponse:
        start = sources.optional("registry.services", "training_run_start")
        form = TrainingForm(request.POST)
        if start is None or not form.is_valid():
            messages.error(
                request,
                "Training could not be started: " + ("not available yet." if start is None else "invalid targets."),
            )
            return redirect(reverse("web:models"))
        try:
            run = start(trigger="admin", actor=request.user, targets=form.cleaned_data["targets"] or None)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(reverse("web:models"))
        return redirect(reverse("web:training-run", args=[run.pk]))


def get_run(pk: int) -> Any:
    training_run_get = sources.optional("registry.selectors", "training_run_get")
    if training_run_get is None:
        raise Http404("The registry is not available yet.")
    try:
        return training_run_get(run_id=pk)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def run_state(run: Any) -> dict[str, Any]:
    status = str(getattr(run, "status", "")).lower()
    return {
        "id": run.pk,
        "status": status,
        "finished": status in TERMINAL_RUN_STATES,
        "error": str(getattr(run, "error", "") or ""),
        **run_progress(run),
    }


class TrainingRunPage(PageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_run(pk)
        versions_model = sources.optional_model("registry", "ModelVersion")
        versions = []
        if versions_model is not None:
            versions = [
                {
                    "version": v,
                    "r2": sources.metric(v, "r2", "R2"),
                    "rmse": sources.metric(v, "rmse", "RMSE"),
                    "status": _status(v),
                }
                for v in versions_model.objects.filter(run=run).order_by("target", "algorithm")
            ]
        return render(request, "web/models/run.html", {"run": run, "state": run_state(run), "versions": versions})


class TrainingRunStatusJson(PageView):
    """Small JSON endpoint the run page polls (session auth)."""

    def get(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(run_state(get_run(pk)))
