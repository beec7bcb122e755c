"""Programs: searchable list, program page with trends, and the "predict for a slot" form."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from bms.errors import ApplicationError, NotFoundError
from bms.roles import Role
from programs.models import TARGETS, Airing, Program
from programs.selectors import data_version_current
from web import sources
from web.forms import PredictForm, ProgramFilterForm
from web.views.base import PageView

PAGE_SIZE = 25
IDS_CACHE_SECONDS = 600
TREND_PERIOD = "month"


def program_queryset(form: ProgramFilterForm) -> QuerySet[Program]:
    data = form.cleaned_data if form.is_valid() else {}
    program_list = sources.optional("programs.selectors", "program_list")
    search = data.get("q") or None
    channel = data.get("channel") or None
    genre = data.get("genre") or None
    ordering = data.get("ordering") or None
    if program_list is not None:
        queryset: QuerySet[Program] = program_list(search=search, channel=channel, genre=genre, ordering=ordering)
        return queryset.select_related("channel")
    # Before programs.selectors.program_list exists: the same filters, without the aggregates.
    queryset = Program.objects.select_related("channel").order_by("title")
    if search:
        queryset = queryset.filter(title__icontains=search) | queryset.filter(external_id__iexact=search)
    if channel:
        queryset = queryset.filter(channel__code=channel)
    if genre:
        queryset = queryset.filter(genre=genre)
    return queryset


def get_program(key: str) -> Program:
    program_get = sources.optional("programs.selectors", "program_get")
    if program_get is not None:
        try:
            program: Program = program_get(key=key)
        except NotFoundError as exc:
            raise Http404(str(exc)) from exc
        return program
    lookup = {"pk": int(key)} if key.isdigit() else {"external_id": key}
    try:
        return Program.objects.select_related("channel").get(**lookup)
    except Program.DoesNotExist as exc:
        raise Http404("No such program.") from exc


def program_context(program: Program) -> dict[str, Any]:
    """Aggregates, recent airings and one trend series per target."""
    detail_func = sources.optional("programs.selectors", "program_detail")
    detail = detail_func(program=program) if detail_func is not None else None
    recent = getattr(detail, "recent_airings", None)
    if recent is None:
        recent = list(Airing.objects.filter(program=program).select_related("channel").order_by("-start")[:20])
    trend_func = sources.optional("programs.selectors", "trend_series")
    trends: dict[str, Any] = {}
    trend_summary: dict[str, Any] = {}
    if trend_func is not None:
        for target in TARGETS:
            series = trend_func(target=target, period=TREND_PERIOD, program=program)
            points = list(getattr(series, "points", []))
            trends[target] = {
                "labels": [_period_label(p) for p in points],
                "datasets": [{"label": target, "data": [_point_value(p) for p in points]}],
            }
            trend_summary[target] = {
                "change_pct": getattr(series, "change_pct", None),
                "direction": getattr(series, "direction", ""),
            }
    stats = getattr(detail, "targets", None) or {}
    aggregates = [
        {"target": t, "mean": stats[t].mean, "min": stats[t].min, "max": stats[t].max} for t in TARGETS if t in stats
    ]
    return {
        "program": program,
        "detail": detail,
        "aggregates": aggregates,
        "recent_airings": recent,
        "trends": trends if trend_func is not None else None,
        "trend_summary": trend_summary,
        "targets": TARGETS,
    }


def _period_label(point: Any) -> str:
    start = point[0] if isinstance(point, tuple | list) else getattr(point, "period_start", None) or point.get("period")
    return start.strftime("%Y-%m") if hasattr(start, "strftime") else str(start)


def _point_value(point: Any) -> float | None:
    value = point[1] if isinstance(point, tuple | list) else getattr(point, "mean", None)
    if value is None and isinstance(point, dict):
        value = point.get("mean")
    return None if value is None else round(float(value), 3)


def program_page(form: ProgramFilterForm, number: str | None) -> Page:
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
        context["predict_available"] = sources.optional("predictions.services", "predict") is not None
        return render(request, "web/programs/detail.html", context)


class ProgramPredictPage(PageView):
    """POST: call predictions.services.predict and show the answer (with its interval) on the page."""

    min_role = Role.ANALYST

    def get(self, request: HttpRequest, key: str) -> HttpResponse:
        return redirect(reverse("web:program", args=[key]))

    def post(self, request: HttpRequest, key: str) -> HttpResponse:
        program = get_program(key)
        context = program_context(program)
        form = PredictForm(request.POST)
        context["predict_form"] = form
        predict = sources.optional("predictions.services", "predict")
        context["predict_available"] = predict is not None
        status = 200
        if predict is None:
            status = 503
        elif not form.is_valid():
            status = 400
        else:
            try:
                answer = predict(
                    program=program,
                    target=form.cleaned_data["target"],
                    features=form.features(),
                    user_key=f"user:{request.user.pk}",
                )
            except ApplicationError as exc:
                context["predict_error"] = exc.message
                status = exc.status_code
            else:
                answers = answer.get("predictions", [answer])
                context["predictions"] = answers
        return render(request, "web/programs/detail.html", context, status=status)
