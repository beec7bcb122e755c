"""Programs: searchable list, program page with trends, and the "predict for a slot" form."""

from __future__ import annotations

import hashlib
from typing import Literal, TypedDict

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bms.errors import ApplicationError, NotFoundError
from bms.roles import Role
from predictions import predict as prediction
from programs.models import TARGETS, Program
from programs.selectors import data_version_current, program_detail, program_get, program_list, trend_series
from web.forms import PredictForm, ProgramFilterForm
from web.selectors import ChartSeries
from web.views.base import PageView

PAGE_SIZE = 25
IDS_CACHE_SECONDS = 600
TREND_PERIOD = "month"


def program_queryset(form: ProgramFilterForm) -> QuerySet[Program]:
    data = form.cleaned_data if form.is_valid() else {}
    return program_list(
        search=data.get("q") or None,
        channel=data.get("channel") or None,
        genre=data.get("genre") or None,
        ordering=data.get("ordering") or None,
    )


def get_program(key: str) -> Program:
    try:
        return program_get(key=key)
    except NotFoundError as exc:
        raise Http404(str(exc)) from exc


class TrendSummary(TypedDict):
    change_pct: float | None
    direction: Literal["up", "down", "flat"]


def program_context(program: Program) -> dict[str, object]:
    """Aggregates, recent airings and one trend series per target."""
    detail = program_detail(program=program)
    trends: dict[str, ChartSeries] = {}
    trend_summary: dict[str, TrendSummary] = {}
    for target in TARGETS:
        series = trend_series(target=target, period=TREND_PERIOD, program=program)
        trends[target] = {
            "labels": [p.period_start.strftime("%Y-%m") for p in series.points],
            "datasets": [{"label": target, "data": [round(p.mean, 3) for p in series.points]}],
        }
        trend_summary[target] = {"change_pct": series.change_pct, "direction": series.direction}
    aggregates = [
        {"target": t, "mean": stats.mean, "min": stats.min, "max": stats.max}
        for t in TARGETS
        if (stats := detail.targets.get(t)) is not None
    ]
    return {
        "program": program,
        "detail": detail,
        "aggregates": aggregates,
        "recent_airings": detail.recent_airings,
        "trends": trends,
        "trend_summary": trend_summary,
        "targets": TARGETS,
    }


def program_page(form: ProgramFilterForm, number: str | None) -> Page[Program]:
    """One page of the list. The ordered ids are cheap (or cached per data version when the ordering
    needs the aggregates); the per-program aggregates are then computed for this page's rows only."""
    queryset = program_queryset(form)
    params = form.cleaned_data if form.is_valid() else {}
    key = f"web:program-ids:v{data_version_current()}:{hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:24]}"
    ids = cache.get(key)
    if ids is None:
        ids = list(queryset.values_list("pk", flat=True))
        cache.set(key, ids, IDS_CACHE_SECONDS)
    page = Paginator(ids, PAGE_SIZE).get_page(number)
    rows = {p.pk: p for p in queryset.filter(pk__in=list(page.object_list))}
    page.object_list = [rows[pk] for pk in page.object_list if pk in rows]
    return page


class ProgramListPage(PageView):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = ProgramFilterForm(request.GET or None)
        page = program_page(form, request.GET.get("page"))
        paginator = page.paginator
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "web/programs/list.html",
            {"form": form, "page": page, "query": query.urlencode(), "total": paginator.count},
        )


class ProgramPage(PageView):
    def get(self, request: HttpRequest, key: str) -> HttpResponse:
        program = get_program(key)
        context = program_context(program)
        context["predict_form"] = PredictForm(initial={"channel": program.channel.code, "target": "all"})
        return render(request, "web/programs/detail.html", context)


class ProgramPredictPage(PageView):
    """POST: call predictions.predict.predict and show the answer (with its interval) on the page."""

    min_role = Role.ANALYST

    def get(self, request: HttpRequest, key: str) -> HttpResponse:
        return redirect(reverse("web:program", args=[key]))

    def post(self, request: HttpRequest, key: str) -> HttpResponse:
        program = get_program(key)
        context = program_context(program)
        form = PredictForm(request.POST)
        context["predict_form"] = form
        status = 200
        if not form.is_valid():
            status = 400
        else:
            try:
                answer = prediction.predict(
                    program=program,
                    target=form.cleaned_data["target"],
                    features=form.features(),
                    user_key=f"user:{request.user.pk}",
                )
            except ApplicationError as exc:
                context["predict_error"] = exc.message
                status = exc.status_code
            else:
                context["predictions"] = answer.predictions
        return render(request, "web/programs/detail.html", context, status=status)
