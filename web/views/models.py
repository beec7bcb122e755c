"""Models: algorithm x target matrix, version history + promotion ledger, admin promote/rollback,
training runs with live progress."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bms.errors import ApplicationError, NotFoundError
from bms.roles import Role
from programs.models import TARGETS
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import ModelVersion, TrainingRun
from registry.selectors import LatestBaselines
from web.forms import PromoteForm, ReasonForm, TrainingForm
from web.views.base import PageView
from web.views.dashboard import RunProgress, run_progress

HISTORY_LIMIT = 60
LEDGER_LIMIT = 40
TERMINAL_RUN_STATES = {TrainingRun.Status.SUCCEEDED, TrainingRun.Status.PARTIAL, TrainingRun.Status.FAILED}


class VersionCell(TypedDict):
    version: ModelVersion
    r2: float | None
    rmse: float | None
    status: str
    created: datetime


class MatrixRow(TypedDict):
    algorithm: str
    cells: list[VersionCell | None]  # one per target


class BaselineRow(TypedDict):
    name: str
    cells: list[dict[str, float | bool] | None]  # one per target: the scores and "best"


class RunState(RunProgress):
    id: int
    status: str
    finished: bool
    error: str


def version_cell(v: ModelVersion) -> VersionCell:
    """A version as the pages show it: test R² / RMSE, status, when it was trained."""
    rmse = v.metrics.get("rmse")
    return {
        "version": v,
        "r2": v.r2,
        "rmse": None if rmse is None else float(rmse),
        "status": v.status,
        "created": v.created_at,
    }


def matrix_rows() -> list[MatrixRow]:
    """registry.selectors.model_matrix (production version, else the newest) as table rows."""
    rows: list[MatrixRow] = []
    for algorithm, cells in registry_selectors.model_matrix().items():
        versions = [cells.get(t) for t in TARGETS]
        rows.append({"algorithm": algorithm, "cells": [None if v is None else version_cell(v) for v in versions]})
    return rows


def baseline_rows(baselines: dict[str, LatestBaselines]) -> list[BaselineRow]:
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


def get_version(pk: int) -> ModelVersion:
    try:
        return registry_selectors.model_version_get(version_id=pk)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


class ModelsPage(PageView):
    def get(self, request: HttpRequest) -> HttpResponse:
        history = registry_selectors.model_version_list().order_by("-created_at", "-pk")[:HISTORY_LIMIT]
        production = registry_selectors.production_models()
        runs = list(TrainingRun.objects.order_by("-id")[:5])
        context = {
            "matrix": matrix_rows(),
            "targets": TARGETS,
            "history": [version_cell(v) for v in history],
            "ledger": list(registry_selectors.promotion_history()[:LEDGER_LIMIT]),
            "baselines": baseline_rows(registry_selectors.latest_baselines()),
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
        if not form.is_valid():
            return render(
                request, "web/models/confirm.html", {"action": "promote", "version": version, "form": form}, status=400
            )
        try:
            # The service locks rows with select_for_update, which needs a transaction on PostgreSQL.
            with transaction.atomic():
                registry_services.model_version_promote(
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
        context = {"action": "rollback", "target": target, "form": form}
        if not form.is_valid():
            return render(request, "web/models/confirm.html", context, status=400)
        try:
            with transaction.atomic():
                registry_services.model_version_rollback(
                    target=target, actor=request.user, reason=form.cleaned_data["reason"]
                )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            return render(request, "web/models/confirm.html", context, status=exc.status_code)
        messages.success(request, f"Rolled back the production model for {target}.")
        return redirect(reverse("web:models"))


class TrainingStartPage(PageView):
    min_role = Role.ADMIN

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TrainingForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Training could not be started: invalid targets.")
            return redirect(reverse("web:models"))
        try:
            run = registry_services.training_run_start(
                trigger="admin", actor=request.user, targets=form.cleaned_data["targets"] or None
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(reverse("web:models"))
        return redirect(reverse("web:training-run", args=[run.pk]))


def get_run(pk: int) -> TrainingRun:
    try:
        return registry_selectors.training_run_get(run_id=pk)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def run_state(run: TrainingRun) -> RunState:
    return {
        "id": run.pk,
        "status": run.status,
        "finished": run.status in TERMINAL_RUN_STATES,
        "error": run.error,
        **run_progress(run),
    }


class TrainingRunPage(PageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_run(pk)
        versions = [version_cell(v) for v in run.versions.order_by("target", "algorithm")]
        return render(request, "web/models/run.html", {"run": run, "state": run_state(run), "versions": versions})


class TrainingRunStatusJson(PageView):
    """Small JSON endpoint the run page polls (session auth)."""

    def get(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(run_state(get_run(pk)))
