"""The 7 chat tools. Each validates its arguments with pydantic, checks the caller's role like the
API does, calls the owning app's selector/service (never a second implementation) and returns plain
JSON-able data. The LLM agent and the offline agent call the same ``run_tool``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Literal, TypeAlias, TypedDict

from django.conf import settings
from django.core import signing
from django.db import models
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rest_framework import serializers

from bms.errors import ApplicationError, NotFoundError
from bms.jsontypes import JSONObject, JSONValue, json_object, json_objects
from bms.roles import Role, user_role
from bms.users import User
from predictions import predict as prediction
from programs import export as program_export
from programs import selectors as program_selectors
from programs.models import Channel, Program
from registry import selectors as registry_selectors
from scheduling import services as scheduling_services
from scheduling.models import OptimizationJob
from scheduling.requests import ScheduleRequest, schedule_request_parse

ToolResult: TypeAlias = JSONObject
"""What a tool returns: plain JSON (its selector's result made plain), which the LLM reads as it is and
the offline agent renders; it is also cached and stored with the answer."""

Target = Literal["rating", "revenue", "audience", "engagement"]
TARGETS: tuple[str, ...] = ("rating", "revenue", "audience", "engagement")
EXPORT_SALT = "chat.export-link"


class ToolError(Exception):
    """A tool could not answer: bad arguments, missing role, unknown entity or a missing dependency."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class GetProgramsArgs(_Args):
    """List programs, or rank programs, channels or genres by a target's average when ``target`` is given."""

    target: Target | None = Field(None, description="rank by the average of this target")
    n: int = Field(10, ge=1, le=50, description="how many programs (or groups)")
    channel: str | None = Field(None, max_length=32, description="channel code")
    genre: str | None = Field(None, max_length=32)
    search: str | None = Field(None, max_length=100, description="text in the title or external id")
    since: dt.date | None = Field(None, description="only airings on or after this date (for ranking)")
    until: dt.date | None = Field(None, description="only airings up to and including this date (for ranking)")
    ascending: bool | None = Field(None, description="true: lowest first (bottom / worst); default highest first")
    group_by: Literal["program", "channel", "genre"] | None = Field(
        None, description="rank channels or genres by the average over their airings (default: programs)"
    )


class GetProgramDetailsArgs(_Args):
    program: str = Field(..., min_length=1, max_length=100, description="program id or external id, e.g. ABC123")
    start: dt.date | None = Field(None, description="only airings on or after this date")
    end: dt.date | None = Field(None, description="only airings up to and including this date")


class PredictValuesArgs(_Args):
    program: str = Field(..., min_length=1, max_length=100, description="program id or external id")
    target: Target | Literal["all"] = "all"
    start: dt.datetime | None = Field(None, description="slot start (ISO 8601); default: next airing slot")
    channel: str | None = Field(None, max_length=32)


class GetBestModelArgs(_Args):
    target: Target


class AnalyzeTrendsArgs(_Args):
    target: Target = "rating"
    period: Literal["week", "month"] = "week"
    program: str | None = Field(None, max_length=100)
    genre: str | None = Field(None, max_length=32)
    channel: str | None = Field(None, max_length=32)
    start: dt.date | None = None
    end: dt.date | None = None


class ExportFilters(_Args):
    channel: str | None = Field(None, max_length=32)
    genre: str | None = Field(None, max_length=32)
    program: str | None = Field(None, max_length=100)
    start: dt.date | None = None
    end: dt.date | None = None


class ExportDataArgs(_Args):
    dataset: Literal["airings", "programs"] = "airings"
    format: Literal["json", "csv", "xlsx"] = "xlsx"
    filters: ExportFilters = Field(default_factory=lambda: ExportFilters.model_validate({}))


class OptimizeScheduleArgs(_Args):
    channel: str | None = Field(None, max_length=32, description="channel code; default: the first channel")
    date: dt.date | None = Field(None, description="broadcast day; default: tomorrow")
    daypart: str | None = Field("prime_time", max_length=32, description="null: the whole broadcast day 06:00-02:00")
    slot_minutes: int | None = Field(None, ge=5, le=240, description="start grid in minutes; default 30")


@dataclasses.dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args: type[_Args]
    role: Role
    func: Callable[..., ToolResult]
    cacheable: bool = True  # False: the result is tied to the caller (a link) or starts work


def plain(value: object) -> JSONValue:
    """JSON-able copy of a selector's result (dataclasses, models, numpy, dates)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Enum):
        member: object = value.value
        return plain(member)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, models.Model):
        return _model_dict(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        listed: object = value.tolist()
        return plain(listed)
    if isinstance(value, Path):
        return value.name
    return str(value)


def _model_dict(obj: models.Model) -> JSONObject:
    out: JSONObject = {"id": obj.pk}
    for name in ("external_id", "title", "code", "name", "genre", "algorithm", "target", "version", "status"):
        if hasattr(obj, name):
            out[name] = plain(getattr(obj, name))
    channel = getattr(obj, "channel", None) if hasattr(obj, "channel_id") else None
    if channel is not None:
        out["channel"] = channel.code
    return out


# Other apps' functions are called through their modules (``program_selectors.top_programs``), so a
# test replaces one by patching the module attribute.


def _program(key: str) -> Program:
    try:
        return program_selectors.program_get(key=key)
    except NotFoundError:
        raise ToolError("not_found", f"No program matches {key!r}.") from None


def _channel_get(code: str) -> Channel:
    channel = Channel.objects.filter(code__iexact=code).first()
    if channel is None:
        raise ToolError("not_found", f"No channel with code {code!r}.")
    return channel


def _channel(code: str | None) -> Channel | None:
    return None if code is None else _channel_get(code)


# --- the tools -----------------------------------------------------------------------------------


def _data_end(result: ToolResult, *, since: dt.date | None, empty: bool) -> ToolResult:
    """Name the date the data ends when a period found nothing (or starts after it), instead of a bare
    "nothing matches"."""
    last = program_selectors.data_last_airing()
    if last is None:
        return result
    last_day = timezone.localtime(last).date()
    if empty or (since is not None and last_day < since):
        result["data_ends"] = last_day.isoformat()
    return result


def get_programs(*, user: User, args: GetProgramsArgs) -> ToolResult:
    period = {"since": args.since, "until": args.until}
    ascending = bool(args.ascending)
    if args.group_by in ("channel", "genre"):
        target = args.target or "rating"
        groups = program_selectors.top_groups(
            target=target,
            group_by=args.group_by,
            n=args.n,
            channel=args.channel,
            genre=args.genre,
            ascending=ascending,
            **period,
        )
        result: ToolResult = {
            "ranked_by": target,
            "group_by": args.group_by,
            "ascending": ascending,
            "groups": plain(groups),
        }
        return _data_end(result, since=args.since, empty=not groups) if args.since or args.until else result
    if args.target:
        rows = program_selectors.top_programs(
            target=args.target, n=args.n, channel=args.channel, genre=args.genre, ascending=ascending, **period
        )
        ranked: ToolResult = {"ranked_by": args.target, "programs": plain(list(rows)[: args.n])}
        if ascending:
            ranked["ascending"] = True
        return _data_end(ranked, since=args.since, empty=not rows) if args.since or args.until else ranked
    qs = program_selectors.program_list(search=args.search, channel=args.channel, genre=args.genre)
    total = qs.count()
    return {"total": total, "programs": [_model_dict(p) for p in qs[: args.n]]}


def get_program_details(*, user: User, args: GetProgramDetailsArgs) -> ToolResult:
    program = _program(args.program)
    detail = program_selectors.program_detail(program=program, start=args.start, end=args.end)
    data = plain(detail)
    if isinstance(data, dict):
        data["program"] = _model_dict(program)
        recent = data.get("recent_airings")
        if isinstance(recent, list):  # keep what an answer can use; the page shows the rest
            data["recent_airings"] = recent[:5]
    result: ToolResult = {"program": _model_dict(program), "detail": data}
    if args.start or args.end:
        result = _data_end(result, since=args.start, empty=not detail.airing_count)
    return result


def predict_values(*, user: User, args: PredictValuesArgs) -> ToolResult:
    program = _program(args.program)
    features: dict[str, str] = {}
    if args.start:
        features["start"] = args.start.isoformat()
    if args.channel:
        features["channel"] = args.channel
    targets = TARGETS if args.target == "all" else (args.target,)
    results: list[JSONValue] = []
    for target in targets:
        try:
            answer = prediction.predict(program=program, target=target, features=features, user_key=f"chat:{user.pk}")
        except ApplicationError as exc:
            results.append({"target": target, "error": exc.message})
            continue
        results.append(plain(answer.predictions[0]))  # one target asked: its one prediction
    channel = _channel_get(args.channel) if args.channel else program.channel
    # the zone the slot is read in (the channel's), so an answer can state the slot as the channel airs it
    return {"program": _model_dict(program), "predictions": results, "time_zone": channel.time_zone}


def get_best_model(*, user: User, args: GetBestModelArgs) -> ToolResult:
    version = registry_selectors.best_model(target=args.target)
    if version is None:
        return {"target": args.target, "model": None}
    top = sorted(((k, float(v)) for k, v in version.feature_importance.items()), key=lambda kv: -abs(kv[1]))[:8]
    factors: list[JSONValue] = [{"feature": k, "importance": round(v, 4)} for k, v in top]
    return {
        "target": args.target,
        "model": {
            "id": version.pk,
            "algorithm": version.algorithm,
            "version": version.version,
            "status": plain(version.status),
            "metrics": plain(version.metrics),
        },
        # The naive forecasts it has to beat, on the same test part (never promotable).
        "baselines": plain(version.metrics.get("baselines", {})),
        "top_factors": factors,
    }


def analyze_trends(*, user: User, args: AnalyzeTrendsArgs) -> ToolResult:
    program = _program(args.program) if args.program else None
    channel = _channel(args.channel)
    series = program_selectors.trend_series(
        target=args.target,
        period=args.period,
        program=program,
        genre=args.genre,
        channel=channel.code if channel is not None else None,
        start=args.start,
        end=args.end,
    )
    data = plain(series)
    result: ToolResult = {
        "target": args.target,
        "period": args.period,
        "subject": {
            "program": _model_dict(program) if program else None,
            "genre": args.genre,
            "channel": args.channel,
        },
        "series": data,
    }
    if args.start or args.end:
        result = _data_end(result, since=args.start, empty=not series.points)
    return result


def export_link(*, user: User, path: Path) -> ToolResult:
    root = Path(settings.EXPORT_ROOT).resolve()
    relative = str(path.resolve().relative_to(root))
    token = signing.dumps({"f": relative, "u": user.pk}, salt=EXPORT_SALT, compress=True)
    expires = timezone.now() + dt.timedelta(seconds=settings.EXPORT_LINK_TTL_SECONDS)
    return {"url": f"/api/v1/exports/{token}", "filename": path.name, "expires_at": expires.isoformat()}


def export_file_for(*, user: User, token: str) -> Path:
    """The file behind a download token, if the token is valid, unexpired and the caller's own."""
    try:
        data = signing.loads(token, salt=EXPORT_SALT, max_age=settings.EXPORT_LINK_TTL_SECONDS)
    except signing.SignatureExpired:
        raise ApplicationError("This download link has expired.", code="link_expired") from None
    except signing.BadSignature:
        raise NotFoundError("Unknown download link.") from None
    if data.get("u") != user.pk:
        raise NotFoundError("Unknown download link.")
    root = Path(settings.EXPORT_ROOT).resolve()
    path = (root / str(data.get("f", ""))).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFoundError("The exported file is no longer available.")
    return path


def export_data(*, user: User, args: ExportDataArgs) -> ToolResult:
    filters = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in args.filters.model_dump().items()}
    filters = {k: v for k, v in filters.items() if v is not None}
    path = program_export.export_to_file(user=user, dataset=args.dataset, fmt=args.format, filters=filters)
    path = Path(path)
    return {
        "dataset": args.dataset,
        "format": args.format,
        "filters": filters,
        "size_bytes": path.stat().st_size,
        "download": export_link(user=user, path=path),
    }


def _schedule_request(params: Mapping[str, object]) -> ScheduleRequest:
    """The request as the schedule API validates it (same types and defaults: one path)."""
    try:
        return schedule_request_parse(params)
    except serializers.ValidationError as exc:
        raise ToolError("invalid_arguments", json.dumps(exc.detail, default=str)[:300]) from None


OPTIMIZE_WAIT_SECONDS = 15.0  # a chat answer waits this long for the GA, then points at the job


def _wait_for_job(job: OptimizationJob) -> None:
    """Embedded (eager) jobs are done already; with workers, poll briefly for the proposal."""
    deadline = time.monotonic() + min(OPTIMIZE_WAIT_SECONDS, float(settings.SCHEDULE_TIME_BUDGET_SECONDS) + 5)
    while True:
        job.refresh_from_db()
        if str(job.status) not in ("queued", "running") or time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def optimize_schedule(*, user: User, args: OptimizeScheduleArgs) -> ToolResult:
    channel = _channel_get(args.channel) if args.channel else Channel.objects.order_by("code").first()
    if channel is None:
        raise ToolError("not_found", "There is no channel to schedule.")
    day = args.date or (timezone.localdate() + dt.timedelta(days=1))
    params: JSONObject = {"channel": channel.code, "date": day.isoformat()}
    if args.daypart:
        params["daypart"] = args.daypart
    if args.slot_minutes:
        params["slot_minutes"] = args.slot_minutes
    job = scheduling_services.optimization_job_create(user=user, request=_schedule_request(params))
    _wait_for_job(job)
    result = plain(job.result)
    proposal: JSONValue = None
    if isinstance(result, dict):
        schedules = result.get("schedules")
        best = schedules[0] if isinstance(schedules, list) and schedules else None
        timeline: list[JSONValue] = [
            f"{str(e.get('start', ''))[11:16]}-{str(e.get('end', ''))[11:16]} {e.get('title')} ({e.get('genre')})"
            for e in json_objects(json_object(best).get("entries"))
            if e.get("end")
        ]
        proposal = {
            "best": best,
            "totals": result.get("totals") if "totals" in result else json_object(best).get("totals"),
            "gap": result.get("gap"),
            # the day as airings of their own length, and what the channel really aired in that window
            "timeline": timeline,
            "vs_current_pct": json_object(json_object(result.get("baselines")).get("current")).get("improvement_pct"),
        }
    return {
        "job_id": plain(job.pk),
        "status": plain(job.status),
        "params": params,
        "proposal": proposal,
        "note": "A proposal only: no stored schedule was changed. Save it from the schedule page.",
    }


TOOLS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "get_programs",
            "List programs (filter by channel, genre, search) or rank the top (or, ascending, bottom) N programs "
            "by a target's average over a period; group_by channel or genre ranks channels or genres instead.",
            GetProgramsArgs,
            Role.VIEWER,
            get_programs,
        ),
        ToolSpec(
            "get_program_details",
            "Details of one program: aggregates per target (optionally over a period) and recent airings.",
            GetProgramDetailsArgs,
            Role.VIEWER,
            get_program_details,
        ),
        ToolSpec(
            "predict_values",
            "Predict rating, revenue, audience or engagement (or all) for a program in a slot.",
            PredictValuesArgs,
            Role.ANALYST,
            predict_values,
        ),
        ToolSpec(
            "get_best_model",
            "The best model for a target with its metrics and the factors that matter most.",
            GetBestModelArgs,
            Role.VIEWER,
            get_best_model,
        ),
        ToolSpec(
            "analyze_trends",
            "Weekly or monthly trend of a target for a program, a genre, a channel or everything.",
            AnalyzeTrendsArgs,
            Role.VIEWER,
            analyze_trends,
        ),
        ToolSpec(
            "export_data",
            "Export airings or programs to json, csv or xlsx and return an expiring download link.",
            ExportDataArgs,
            Role.ANALYST,
            export_data,
            cacheable=False,
        ),
        ToolSpec(
            "optimize_schedule",
            "Start a schedule optimisation for a channel, day and daypart and return the proposal.",
            OptimizeScheduleArgs,
            Role.ANALYST,
            optimize_schedule,
            cacheable=False,
        ),
    )
}


def tool_schemas() -> list[JSONObject]:
    """OpenAI-style function specs for ``bind_tools``."""
    return [
        {
            "type": "function",
            "function": {"name": s.name, "description": s.description, "parameters": s.args.model_json_schema()},
        }
        for s in TOOLS.values()
    ]


class ToolFailure(TypedDict):
    code: str
    message: str


@dataclasses.dataclass
class ToolCall:
    name: str
    arguments: JSONObject
    result: ToolResult | None = None
    error: ToolFailure | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> JSONObject:
        out: JSONObject = {"name": self.name, "arguments": self.arguments}
        if self.error is not None:
            out["error"] = {"code": self.error["code"], "message": self.error["message"]}
        else:
            out["result"] = self.result
        return out


def run_tool(*, user: User, name: str, arguments: Mapping[str, JSONValue]) -> ToolCall:
    """Validate, authorise and run one tool. Never raises for bad input: the error is in the call."""
    call = ToolCall(name=name, arguments=dict(arguments) if isinstance(arguments, dict) else {})
    spec = TOOLS.get(name)
    if spec is None:
        call.error = {"code": "unknown_tool", "message": f"There is no tool named {name!r}."}
        return call
    if user_role(user) < spec.role:
        call.error = {"code": "permission_denied", "message": f"{name} needs the {spec.role.label} role."}
        return call
    try:
        args = spec.args.model_validate(call.arguments)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        call.error = {"code": "invalid_arguments", "message": f"{where}: {first.get('msg')}"}
        return call
    call.arguments = args.model_dump(mode="json", exclude_none=True)
    try:
        call.result = spec.func(user=user, args=args)
    except ToolError as exc:
        call.error = {"code": exc.code, "message": exc.message}
    except ApplicationError as exc:
        call.error = {"code": exc.code, "message": exc.message}
    return call
