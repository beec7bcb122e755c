"""Schedule optimiser: the form, the job page (progress, then timeline / top-K / Pareto / gaps), save, export."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TypedDict

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from rest_framework.exceptions import ValidationError

from bms.errors import ApplicationError, NotFoundError
from bms.jsontypes import JSONObject, JSONValue, json_object, json_objects
from bms.roles import Role
from scheduling import services as scheduling_services
from scheduling.export import schedule_csv, schedule_entries
from scheduling.models import OptimizationJob
from scheduling.requests import ScheduleRequest, schedule_request_parse
from scheduling.selectors import optimization_job_get
from web.forms import ScheduleForm
from web.views.base import PageView

TERMINAL_JOB_STATES = {"succeeded", "failed", "cancelled"}


def validated_request(form: ScheduleForm) -> tuple[ScheduleRequest | None, str]:
    """The form's payload checked by the API's own rules (same defaults, same messages)."""
    try:
        return schedule_request_parse(form.payload()), ""
    except ValidationError as exc:
        return None, _first_error(exc.detail)


def _first_error(errors: object) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            inner = _first_error(value)
            return inner if key in ("non_field_errors", "detail") else f"{key}: {inner}"
    if isinstance(errors, list) and errors:
        return _first_error(errors[0])
    return str(errors)


def get_job(request: HttpRequest, pk: int) -> OptimizationJob:
    try:
        return optimization_job_get(job_id=pk, user=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


class JobState(TypedDict):
    id: int
    status: str
    finished: bool
    done: int
    total: int
    percent: int
    error: str


def job_state(job: OptimizationJob) -> JobState:
    status = str(job.status).lower()
    done = int(job.progress_generation or 0)
    total = int(job.progress_max or 0)
    if status in TERMINAL_JOB_STATES:
        done = total = max(total, 1)
    return {
        "id": job.pk,
        "status": status,
        "finished": status in TERMINAL_JOB_STATES,
        "done": done,
        "total": total,
        "percent": round(100 * done / total) if total else 0,
        "error": str(job.error or ""),
    }


best_entries = schedule_entries

GENRE_HUES = {
    "news": 210,
    "drama": 280,
    "comedy": 45,
    "sports": 120,
    "reality": 330,
    "documentary": 170,
    "kids": 60,
    "movie": 0,
    "talk": 25,
    "game": 190,
    "animation": 90,
    "other": 240,
}
PX_PER_MINUTE = 1.2


class Block(TypedDict):
    """An airing drawn on the day's timeline (px from the window's start)."""

    top: float
    height: float
    start: str
    end: str
    minutes: int
    title: JSONValue
    genre: JSONValue
    rating: JSONValue
    hue: int


class HourMark(TypedDict):
    top: float
    label: str


class TimelineDay(TypedDict):
    label: str
    span: str
    height: float
    hours: list[HourMark]
    proposal: list[Block]
    current: list[Block]


class ChartPoint(TypedDict):
    x: float
    y: float


class ChartDataset(TypedDict):
    label: str
    data: list[ChartPoint]


class ParetoChart(TypedDict):
    labels: list[str]
    datasets: list[ChartDataset]


def _float(value: JSONValue) -> float:
    """A stored number (the optimiser writes numbers; anything else is not a result of it)."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _block(entry: JSONObject, origin: datetime) -> Block:
    start = datetime.fromisoformat(str(entry["start"]))
    end = (
        datetime.fromisoformat(str(entry["end"]))
        if entry.get("end")
        else start + timedelta(minutes=int(_float(entry["length_minutes"])))
    )
    top = (start - origin).total_seconds() / 60
    minutes = (end - start).total_seconds() / 60
    return {
        "top": round(top * PX_PER_MINUTE, 1),
        "height": round(max(minutes, 5) * PX_PER_MINUTE, 1),
        "start": start.strftime("%H:%M"),
        "end": end.strftime("%H:%M"),
        "minutes": int(minutes),
        "title": entry.get("title", ""),
        "genre": entry.get("genre", ""),
        "rating": entry.get("content_rating", ""),
        "hue": GENRE_HUES.get(str(entry.get("genre")), 240),
    }


def timeline_days(result: Mapping[str, object], index: int = 0) -> list[TimelineDay]:
    """Per on-air window: the proposal's and the current airings as blocks as long as the airings."""
    segments = json_objects(json_object(result.get("window")).get("segments"))
    proposal = schedule_entries(result, index)
    current = json_objects(json_object(json_object(result.get("baselines")).get("current")).get("entries"))
    days: list[TimelineDay] = []
    for seg in segments:
        lo, hi = datetime.fromisoformat(str(seg["start"])), datetime.fromisoformat(str(seg["end"]))

        def inside(e: JSONObject, lo: datetime = lo, hi: datetime = hi) -> bool:
            return lo <= datetime.fromisoformat(str(e["start"])) < hi

        minutes = (hi - lo).total_seconds() / 60
        hours: list[HourMark] = [
            {"top": round(m * PX_PER_MINUTE, 1), "label": (lo + timedelta(minutes=m)).strftime("%H:%M")}
            for m in range(0, int(minutes), 60)
        ]
        days.append(
            {
                "label": lo.strftime("%a %d %b %Y"),
                "span": f"{lo:%H:%M}-{hi:%H:%M}",
                "height": round(minutes * PX_PER_MINUTE, 1),
                "hours": hours,
                "proposal": [_block(e, lo) for e in proposal if inside(e)],
                "current": [_block(e, lo) for e in current if inside(e)],
            }
        )
    return days


def pareto_chart(result: Mapping[str, object]) -> ParetoChart | None:
    points: list[ChartPoint] = [
        {"x": _float(p["audience"]), "y": _float(p["revenue"])} for p in json_objects(result.get("pareto"))
    ]
    if not points:
        return None
    return {"labels": [], "datasets": [{"label": "Pareto front", "data": points}]}


class SchedulePage(PageView):
    min_role = Role.ANALYST

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "web/schedule/form.html", {"form": ScheduleForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ScheduleForm(request.POST)
        context: dict[str, object] = {"form": form}
        if not form.is_valid():
            return render(request, "web/schedule/form.html", context, status=400)
        schedule_request, error = validated_request(form)
        if schedule_request is None:
            form.add_error(None, error)
            return render(request, "web/schedule/form.html", context, status=400)
        try:
            job = scheduling_services.optimization_job_create(user=request.user, request=schedule_request)
        except ApplicationError as exc:
            form.add_error(None, exc.message)
            context["conflicts"] = (exc.details or {}).get("conflicts", []) if isinstance(exc.details, dict) else []
            return render(request, "web/schedule/form.html", context, status=exc.status_code)
        return redirect(reverse("web:schedule-job", args=[job.pk]))


class ScheduleJobPage(PageView):
    min_role = Role.ANALYST

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_job(request, pk)
        state = job_state(job)
        result = dict(job.result or {}) if state["status"] == "succeeded" else {}
        schedules = result.get("schedules") or []
        baselines = result.get("baselines") or {}
        context = {
            "job": job,
            "state": state,
            "result": result,
            "entries": schedule_entries(result),
            "days": timeline_days(result),
            "alternatives": schedules[1:],
            "best": schedules[0] if schedules else None,
            "pareto": pareto_chart(result),
            "params": job.params or {},
            "greedy_pct": (baselines.get("greedy") or {}).get("improvement_pct"),
            "current": baselines.get("current") or {},
            "hard_violations": ((result.get("constraint_report") or {}).get("hard") or {}).get("violations"),
        }
        return render(request, "web/schedule/job.html", context)


class ScheduleJobStatusJson(PageView):
    min_role = Role.ANALYST

    def get(self, request: HttpRequest, pk: int) -> JsonResponse:
        return JsonResponse(job_state(get_job(request, pk)))


class ScheduleSavePage(PageView):
    min_role = Role.ANALYST

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_job(request, pk)
        name = request.POST.get("name", "").strip()[:200]
        try:
            index = int(request.POST.get("index", "0"))
        except ValueError:
            index = -1
        if not name or index < 0:
            messages.error(request, "Give the proposal a name.")
            return redirect(reverse("web:schedule-job", args=[pk]))
        try:
            schedule = scheduling_services.schedule_save(job=job, user=request.user, name=name, index=index)
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return redirect(reverse("web:schedule-job", args=[pk]))
        messages.success(request, f"Saved proposal “{name}” (#{schedule.pk}).")
        return redirect(reverse("web:schedule-job", args=[pk]))


class ScheduleExport(PageView):
    """The chosen schedule of a finished job as CSV (cells that could be formulas are quoted)."""

    min_role = Role.ANALYST

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_job(request, pk)
        try:
            index = int(request.GET.get("index", "0"))
        except ValueError:
            index = -1
        try:
            body = schedule_csv(job=job, index=index)
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="schedule-job-{job.pk}-{index}.csv"'
        return response
