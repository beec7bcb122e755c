"""Optimisation jobs and saved schedules: the only writers of this app."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from bms.broker import broker_require
from bms.errors import ApplicationError, InvalidStateError, NotFoundError
from bms.jsontypes import JSONObject, JSONValue, json_value
from bms.metrics import SCHEDULE_GAP, SCHEDULE_JOB_DURATION, SCHEDULE_JOBS
from bms.roles import Role, has_role
from bms.users import RequestUser, User
from programs.models import Airing, Channel, Program
from scheduling import matrices
from scheduling.build import ProblemSpec, TimelineSpec, spec_build, timeline_spec_build
from scheduling.exact import assignment
from scheduling.models import OptimizationJob, Schedule, ScheduleEntry
from scheduling.optimizer import GAParams, OptimizeResult, Solution, optimize
from scheduling.problem import FloatArray, InfeasibleProblemError, IntArray, Problem, weighted_linear
from scheduling.requests import ScheduleRequest
from scheduling.timeline import Timeline, airings_of
from scheduling.timeline_exact import timeline_conflicts
from scheduling.timeline_ga import (
    InfeasibleTimelineError,
    TimelineParams,
    TimelineResult,
    TimelineSolution,
    optimize_timeline,
)

logger = logging.getLogger(__name__)
Status = OptimizationJob.Status


def _user_or_none(user: RequestUser) -> User | None:
    return user if isinstance(user, User) else None


def _conflicts_body(exc: InfeasibleProblemError, programs: list[Program] | None = None) -> list[JSONValue]:
    """The conflicts as JSON; timeline conflicts name their programs by external id."""
    out: list[JSONValue] = []
    for c in exc.conflicts:
        body = asdict(c)
        if programs is not None:
            body["programs"] = [programs[i].external_id for i in c.programs]
        else:
            body.pop("programs", None)
        out.append(body)
    return out


def _ga_params(req: ScheduleRequest) -> GAParams:
    """The GA settings of a request; its time budget is capped by ``SCHEDULE_TIME_BUDGET_SECONDS``."""
    cap = float(settings.SCHEDULE_TIME_BUDGET_SECONDS)
    return GAParams(
        seed=req.seed,
        time_budget=min(req.time_budget or cap, cap),
        generations=req.generations,
        population=req.population,
        plateau=int(settings.SCHEDULE_GA_PLATEAU),
        top_k=req.top_k,
        selection=req.selection,
        crossover=req.crossover,
        mutation=req.mutation,
        pareto=req.pareto,
    )


def _timeline_params(req: ScheduleRequest) -> TimelineParams:
    ga = _ga_params(req)
    return TimelineParams(
        seed=ga.seed,
        time_budget=ga.time_budget,
        generations=ga.generations,
        population=min(ga.population, 16),
        top_k=ga.top_k,
        pareto=ga.pareto,
    )


def optimization_job_create(*, user: RequestUser, request: ScheduleRequest) -> OptimizationJob:
    """Check the request (channel, slots, candidates, hard-constraint feasibility) and queue a job.

    Impossible constraints are refused here with the conflict report, before any job exists. The task
    is enqueued once the row is committed.
    """
    spec: ProblemSpec | TimelineSpec
    if request.is_timeline:
        spec = timeline_spec_build(request)
        conflicts = timeline_conflicts(spec.zeros())
        if conflicts:
            raise ApplicationError(
                "No schedule satisfies the hard constraints.",
                code="infeasible_constraints",
                details={"conflicts": _conflicts_body(InfeasibleProblemError(conflicts), spec.programs)},
            )
    else:
        spec = spec_build(request)
        try:
            assignment(spec.zeros())
        except InfeasibleProblemError as exc:
            raise ApplicationError(
                "No schedule satisfies the hard constraints.",
                code="infeasible_constraints",
                details={"conflicts": _conflicts_body(exc)},
            ) from None
    broker_require(what="an optimisation")  # 503 broker_unavailable, before any row is written
    job = OptimizationJob.objects.create(
        created_by=_user_or_none(user),
        channel=spec.channel,
        params={**request.to_json(), "channel": spec.channel.code},
        progress_max=request.generations,
    )

    def enqueue() -> None:
        from scheduling.tasks import optimization_job_run_task

        optimization_job_run_task.delay(job.pk)

    transaction.on_commit(enqueue)
    return job


def optimization_job_run(*, job_id: int, token: str = "") -> OptimizationJob | None:
    """Run a queued job. Claimed with a conditional update, so a duplicate delivery is a no-op; a
    cancellation (seen between generations) stops the GA and is never overwritten.

    ``token`` (the task's id) may claim again a RUNNING job it claimed before: the same message
    redelivered after its worker died. The GA starts over (it is seeded: the same result).
    """
    now = timezone.now()
    claimed = OptimizationJob.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=now, heartbeat_at=now, claimed_by=token
    )
    if not claimed and token:
        claimed = OptimizationJob.objects.filter(pk=job_id, status=Status.RUNNING, claimed_by=token).update(
            started_at=now, heartbeat_at=now, progress_generation=0
        )
        if claimed:
            logger.warning("optimisation job %s: running again after its worker was lost", job_id)
    if not claimed:
        return None
    job = OptimizationJob.objects.select_related("channel").get(pk=job_id)
    started = time.perf_counter()
    try:
        result = _run(job)
    except InfeasibleProblemError as exc:
        _finish(job, Status.FAILED, error=str(exc), result={"conflicts": _conflicts_body(exc)}, started=started)
    except ApplicationError as exc:
        _finish(
            job,
            Status.FAILED,
            error=exc.message,
            result={"error": {"code": exc.code, "details": json_value(dict(exc.details))}},
            started=started,
        )
    except Exception as exc:
        logger.exception("optimisation job %s failed", job_id)
        _finish(job, Status.FAILED, error=f"{type(exc).__name__}: {exc}", result=None, started=started)
    else:
        _finish(job, Status.SUCCEEDED, error="", result=result, started=started)
    job.refresh_from_db()
    return job


def _finish(job: OptimizationJob, status: str, *, error: str, result: JSONObject | None, started: float) -> None:
    updated = OptimizationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
        status=status, error=error, result=result, finished_at=timezone.now()
    )
    if updated:
        SCHEDULE_JOBS.labels(status=status).inc()
        SCHEDULE_JOB_DURATION.observe(time.perf_counter() - started)
        gap = result.get("gap") if result else None
        if status == Status.SUCCEEDED and isinstance(gap, (int, float)):
            SCHEDULE_GAP.set(gap)
    else:  # cancelled meanwhile
        SCHEDULE_JOBS.labels(status=Status.CANCELLED).inc()


def _run(job: OptimizationJob) -> JSONObject:
    req = ScheduleRequest.from_json(job.params)
    last_write = [0.0]

    def progress(generation: int, maximum: int) -> bool:
        now = time.perf_counter()
        if now - last_write[0] < 0.5 and generation < maximum:
            return True
        last_write[0] = now
        return bool(
            OptimizationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(
                progress_generation=generation, progress_max=maximum, heartbeat_at=timezone.now()
            )
        )

    if req.is_timeline:
        tspec = timeline_spec_build(req)
        revenue, audience = matrices.value_matrices(programs=tspec.programs, starts=tspec.starts, channel=tspec.channel)
        tl = tspec.timeline(revenue, audience)
        try:
            tres = optimize_timeline(tl, _timeline_params(req), progress=progress)
        except InfeasibleTimelineError:
            raise InfeasibleProblemError(timeline_conflicts(tl)) from None
        OptimizationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(progress_generation=tres.generations)
        return _timeline_result_body(tspec, tl, tres)
    spec = spec_build(req)
    revenue, audience = matrices.value_matrices(programs=spec.programs, starts=spec.starts, channel=spec.channel)
    problem = spec.problem(revenue, audience)
    result = optimize(problem, _ga_params(req), progress=progress)
    OptimizationJob.objects.filter(pk=job.pk, status=Status.RUNNING).update(progress_generation=result.generations)
    return _result_body(spec, problem, result)


def optimization_jobs_sweep(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Fail the jobs nothing will move on any more (a periodic task, ``OPTIMIZATION_SWEEP_CRON``).

    A killed worker's message comes back after the broker's visibility timeout and the job runs again
    (:func:`optimization_job_run`); only when that did not happen either — no progress for the
    visibility timeout plus the task's time limit — is the message taken as lost:
    - RUNNING with no heartbeat for that long: FAILED ("worker lost");
    - QUEUED for that long: FAILED (never started).
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=optimization_stale_seconds())
    out: dict[str, list[int]] = {"failed": []}
    lost = (
        (Status.RUNNING, Q(heartbeat_at__lt=stale), "its worker was lost (no progress for too long)"),
        (Status.QUEUED, Q(created_at__lt=stale), "never started (its message was lost)"),
    )
    for status, old, error in lost:
        for job_id in OptimizationJob.objects.filter(old, status=status).values_list("pk", flat=True):
            # Conditional on the state seen: a job its worker finished meanwhile keeps its outcome.
            if OptimizationJob.objects.filter(old, pk=job_id, status=status).update(
                status=Status.FAILED, error=error, finished_at=now
            ):
                SCHEDULE_JOBS.labels(status=Status.FAILED).inc()
                out["failed"].append(job_id)
    if out["failed"]:
        logger.warning("swept optimisation jobs %s", out["failed"])
    return out


def optimization_stale_seconds() -> int:
    """How long a job may show no progress before the sweep fails it (redelivery had its chance)."""
    return int(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]) + settings.SCHEDULE_TASK_TIME_LIMIT


# ---- timeline results ---------------------------------------------------------------------------


def _program_fields(program: Program) -> JSONObject:
    """How a schedule row names its program (both models)."""
    return {
        "program_id": program.pk,
        "external_id": program.external_id,
        "title": program.title,
        "genre": program.genre,
        "content_rating": program.content_rating,
    }


def _timeline_entries(spec: TimelineSpec, tl: Timeline, schedule: list[int]) -> list[JSONValue]:
    out: list[JSONValue] = []
    for n, (cell, p) in enumerate(airings_of(schedule)):
        program = spec.programs[p]
        start = spec.starts[cell]
        out.append(
            {
                "position": n,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=program.duration_minutes)).isoformat(),
                "length_minutes": program.duration_minutes,
                **_program_fields(program),
                "revenue": round(float(tl.revenue[p, cell]), 4),
                "audience": round(float(tl.audience[p, cell]), 4),
            }
        )
    return out


def _aired_values(
    channel: Channel, programs: list[Program], *, starts: list[datetime], aired: list[int]
) -> tuple[FloatArray, FloatArray, list[int], IntArray]:
    """What the channel actually aired, valued by the job's models: the value matrices of ``programs`` at
    ``starts`` and the (row, column) of each airing in them (``aired``: its program's id, one per start)."""
    order = {p.pk: i for i, p in enumerate(programs)}
    rev, aud = matrices.value_matrices(programs=programs, starts=starts, channel=channel)
    return rev, aud, [order[pid] for pid in aired], np.arange(len(aired))


def _improvement_pct(best: float, current: float) -> float | None:
    """How much better the best schedule is than what aired, in % of the latter (None when that is 0)."""
    return round(100 * (best - current) / abs(current), 4) if current else None


def _timeline_current(spec: TimelineSpec, tl: Timeline, best: TimelineSolution) -> JSONObject:
    """The airings the channel actually had in the window, valued by the same models at their starts."""
    q = Q()
    for lo, hi in spec.segments:
        q |= Q(start__gte=lo, start__lt=hi)
    airings = list(
        Airing.objects.filter(q, channel=spec.channel)
        .select_related("program")
        .order_by("start")
        .only("start", "duration_minutes", "program__id", "program__title", "program__genre", "program__external_id")
    )
    window_minutes = len(spec.starts) * spec.grid
    best_totals: JSONObject = {
        "revenue": best.totals.revenue,
        "audience": best.totals.audience,
        "linear": best.totals.linear,
    }
    if not airings:
        return {
            "airings": 0,
            "minutes": 0,
            "window_minutes": window_minutes,
            "totals": None,
            "entries": [],
            "best": best_totals,
            "improvement_pct": None,
        }
    programs = list({a.program_id: a.program for a in airings}.values())
    rev, aud, rows, cols = _aired_values(
        spec.channel, programs, starts=[a.start for a in airings], aired=[a.program_id for a in airings]
    )
    cur_rev, cur_aud = float(rev[rows, cols].sum()), float(aud[rows, cols].sum())
    cur_lin = weighted_linear(tl, cur_rev, cur_aud)
    best_lin = weighted_linear(tl, best.totals.revenue, best.totals.audience)
    entries: list[JSONValue] = [
        {
            "start": a.start.astimezone(spec.starts[0].tzinfo).isoformat(),
            "end": (a.start + timedelta(minutes=a.duration_minutes)).astimezone(spec.starts[0].tzinfo).isoformat(),
            "length_minutes": a.duration_minutes,
            "external_id": a.program.external_id,
            "title": a.program.title,
            "genre": a.program.genre,
            "revenue": round(float(rev[r, c]), 4),
            "audience": round(float(aud[r, c]), 4),
        }
        for a, r, c in zip(airings, rows, cols.tolist(), strict=True)
    ]
    return {
        "airings": len(airings),
        "minutes": int(sum(a.duration_minutes for a in airings)),
        "window_minutes": window_minutes,
        "totals": {"revenue": cur_rev, "audience": cur_aud, "linear": cur_lin},
        "best": {**best_totals, "linear": best_lin},
        "improvement_pct": _improvement_pct(best_lin, cur_lin),
        "entries": entries,
    }


def _hard_report(checked: list[Solution] | list[TimelineSolution]) -> JSONObject:
    """What the independent checker found in every returned schedule (the first 50 violations)."""
    return {
        "violations": sum(len(s.hard_violations) for s in checked),
        "schedules_checked": len(checked),
        "details": list([v for s in checked for v in s.hard_violations][:50]),
    }


def _timeline_result_body(spec: TimelineSpec, tl: Timeline, result: TimelineResult) -> JSONObject:
    schedules = [result.best, *result.alternatives[1:]]
    checked = [*schedules, *result.pareto]
    best = result.best
    return {
        "mode": "timeline",
        "window": {
            "grid_minutes": spec.grid,
            "segments": [{"start": lo.isoformat(), "end": hi.isoformat()} for lo, hi in spec.segments],
        },
        "schedules": [
            {
                "rank": i,
                "totals": asdict(sol.totals),
                "hard_violations": list(sol.hard_violations),
                "entries": _timeline_entries(spec, tl, sol.schedule),
            }
            for i, sol in enumerate(schedules)
        ],
        "totals": asdict(best.totals),
        "pareto": [
            {
                "revenue": sol.totals.revenue,
                "audience": sol.totals.audience,
                "objective": sol.totals.objective,
                "programs": [spec.programs[p].pk for _, p in airings_of(sol.schedule)],
            }
            for sol in result.pareto
        ],
        "constraint_report": {
            "hard": _hard_report(checked),
            "soft": {
                "max_consecutive_genre": tl.max_consecutive_genre,
                "run_violations": best.totals.run_violations,
                "min_genres_per_daypart": tl.min_genres_per_daypart,
                "diversity_shortfall": best.totals.diversity_shortfall,
                "goals_met": dict(best.totals.goals_met),
                "gap_minutes": best.totals.gap_minutes,
            },
        },
        "bound": result.bound,
        "gap": result.gap,
        "baselines": {
            "greedy": {
                "totals": asdict(result.greedy.totals),
                "improvement_pct": round(100 * result.improvement_over_greedy, 4),
            },
            "current": _timeline_current(spec, tl, best),
        },
        "runtime_seconds": result.runtime,
        "generations": result.generations,
        "max_generations": result.max_generations,
        "stopped": result.stopped,
    }


def _entries(spec: ProblemSpec, problem: Problem, schedule: list[int]) -> list[JSONValue]:
    out: list[JSONValue] = []
    for s, p in enumerate(schedule):
        program = spec.programs[p]
        out.append(
            {
                "position": s,
                "start": spec.starts[s].isoformat(),
                "length_minutes": spec.lengths[s],
                **_program_fields(program),
                "revenue": round(float(problem.revenue[p, s]), 4),
                "audience": round(float(problem.audience[p, s]), 4),
            }
        )
    return out


def _totals(sol: Solution) -> JSONObject:
    return asdict(sol.totals)


def _current(spec: ProblemSpec, problem: Problem, best: Solution) -> JSONObject:
    """The channel's existing airings in these slots, valued by the same models."""
    airings = {
        a.start: a.program_id
        for a in Airing.objects.filter(channel=spec.channel, start__in=spec.starts).only("start", "program_id")
    }
    covered = [(s, airings[start]) for s, start in enumerate(spec.starts) if start in airings]
    if not covered:
        return {"covered_slots": 0, "slots": len(spec.starts), "totals": None, "improvement_pct": None}
    program_ids = list(dict.fromkeys(pid for _, pid in covered))
    programs = list(Program.objects.filter(pk__in=program_ids))
    slots = [s for s, _ in covered]
    rev, aud, rows, cols = _aired_values(
        spec.channel, programs, starts=[spec.starts[s] for s in slots], aired=[pid for _, pid in covered]
    )
    cur_rev, cur_aud = float(rev[rows, cols].sum()), float(aud[rows, cols].sum())
    best_x = np.array(best.schedule)[slots]
    best_rev = float(problem.revenue[best_x, slots].sum())
    best_aud = float(problem.audience[best_x, slots].sum())
    cur_lin, best_lin = weighted_linear(problem, cur_rev, cur_aud), weighted_linear(problem, best_rev, best_aud)
    return {
        "covered_slots": len(slots),
        "slots": len(spec.starts),
        "totals": {"revenue": cur_rev, "audience": cur_aud, "linear": cur_lin},
        "best_on_same_slots": {"revenue": best_rev, "audience": best_aud, "linear": best_lin},
        "improvement_pct": _improvement_pct(best_lin, cur_lin),
    }


def _result_body(spec: ProblemSpec, problem: Problem, result: OptimizeResult) -> JSONObject:
    schedules = [result.best, *result.alternatives[1:]]
    checked = [*schedules, *result.pareto]
    best = result.best
    return {
        "schedules": [
            {
                "rank": i,
                "totals": _totals(sol),
                "hard_violations": list(sol.hard_violations),
                "entries": _entries(spec, problem, sol.schedule),
            }
            for i, sol in enumerate(schedules)
        ],
        "totals": _totals(best),
        "pareto": [
            {
                "revenue": sol.totals.revenue,
                "audience": sol.totals.audience,
                "objective": sol.totals.objective,
                "programs": [spec.programs[p].pk for p in sol.schedule],
            }
            for sol in result.pareto
        ],
        "constraint_report": {
            "hard": _hard_report(checked),
            "soft": {
                "max_consecutive_genre": problem.max_consecutive_genre,
                "run_violations": best.totals.run_violations,
                "min_genres_per_daypart": problem.min_genres_per_daypart,
                "diversity_shortfall": best.totals.diversity_shortfall,
                "goals_met": dict(best.totals.goals_met),
            },
        },
        "bound": result.bound,
        "gap": result.gap,
        "baselines": {
            "greedy": {
                "totals": _totals(result.greedy),
                "improvement_pct": round(100 * result.improvement_over_greedy, 4),
            },
            "current": _current(spec, problem, best),
        },
        "runtime_seconds": result.runtime,
        "generations": result.generations,
        "max_generations": result.max_generations,
        "stopped": result.stopped,
    }


def _may_manage(user: RequestUser, job: OptimizationJob) -> bool:
    return job.created_by_id == getattr(user, "pk", None) or has_role(user, Role.ADMIN)


def optimization_job_cancel(*, job: OptimizationJob, user: RequestUser) -> OptimizationJob:
    """Cancel a queued or running job (a running GA stops at its next progress check)."""
    if not _may_manage(user, job):
        raise NotFoundError(f"No optimisation job {job.pk}.")
    updated = OptimizationJob.objects.filter(pk=job.pk, status__in=[Status.QUEUED, Status.RUNNING]).update(
        status=Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if not updated:
        raise InvalidStateError(
            f"Job {job.pk} is {job.status}; only queued or running jobs can be cancelled.",
            details={"status": job.status},
        )
    return job


@transaction.atomic
def schedule_save(*, job: OptimizationJob, user: RequestUser, name: str, index: int = 0) -> Schedule:
    """Save schedule ``index`` (0 = best) of a succeeded job as a named schedule with its entries."""
    if job.status != Status.SUCCEEDED or not job.result:
        raise InvalidStateError(
            f"Job {job.pk} is {job.status}; only a succeeded job can be saved.", details={"status": job.status}
        )
    schedules = job.result.get("schedules") or []
    if not 0 <= index < len(schedules):
        raise ApplicationError(
            f"Schedule index {index} is out of range (0..{len(schedules) - 1}).",
            code="invalid_index",
            details={"schedules": len(schedules)},
        )
    chosen = schedules[index]
    program_ids = {e["program_id"] for e in chosen["entries"]}
    existing = set(Program.objects.filter(pk__in=program_ids).values_list("pk", flat=True))
    if existing != program_ids:
        raise ApplicationError("Some programs of this schedule no longer exist.", code="stale_schedule")
    schedule = Schedule.objects.create(
        name=name,
        channel_id=job.channel_id,
        job=job,
        created_by=_user_or_none(user),
        totals=chosen["totals"],
    )
    from datetime import datetime

    ScheduleEntry.objects.bulk_create(
        ScheduleEntry(
            schedule=schedule,
            position=e["position"],
            program_id=e["program_id"],
            start=datetime.fromisoformat(e["start"]),
            length_minutes=e["length_minutes"],
            predicted_revenue=e["revenue"],
            predicted_audience=e["audience"],
        )
        for e in chosen["entries"]
    )
    return schedule
