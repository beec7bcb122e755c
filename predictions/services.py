"""Predictions: single, batch and programs x slots matrix; A/B tests; drift reports.

The hot path (``predict``/``predict_batch``) does: one query for the programs (plus one for channel
overrides), one for the lead-ins (inside ``registry.features.slot_frame``), one vectorised model call
per model, and appends log rows to an in-process buffer (``predictions.logbuffer``).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bms.errors import ApplicationError, ConflictError, NotFoundError, PayloadTooLargeError
from bms.metrics import PREDICTION_LATENCY, PREDICTIONS
from predictions import drift
from predictions.ab import CHALLENGER, CHAMPION, ab_arm, ab_score
from predictions.fastpath import RawRows
from predictions.logbuffer import LogEntry, get_buffer
from predictions.lookups import get_lookups
from predictions.models import ABTest, DriftReport, PredictionLog
from predictions.predictor import AB_GENERATION_KEY, ServingModel, get_predictor
from programs.models import TARGETS, Airing, Channel, DataVersion, Program

logger = logging.getLogger(__name__)

ALL_TARGETS = "all"
_ids = random.Random(uuid.uuid4().int)  # request ids: unique, not secret
TARGET_CHOICES = (*TARGETS, ALL_TARGETS)
# Features a caller may set for the hypothetical airing (everything else comes from the program).
FEATURE_FIELDS = ("start", "channel", "is_premiere", "is_finale", "is_live", "duration_minutes")
_BOOL_FIELDS = ("is_premiere", "is_finale", "is_live")
_MAX_DURATION_MINUTES = 24 * 60


@dataclass
class _Row:
    """One program-in-a-slot to predict (after validation)."""

    program: Program
    start: datetime
    channel_code: str
    channel_id: int
    overrides: dict[str, Any]
    targets: tuple[str, ...]
    requested: str  # a target or "all"
    key: str


@dataclass
class _Answer:
    row: int
    target: str
    model: ServingModel
    prediction: float
    ab: dict[str, Any] | None = field(default=None)
    history_through: datetime | None = None
    raw: float | None = None  # the model's own value when it left the sane range and was clipped


# --- validation ----------------------------------------------------------------------------------


def _targets_of(target: str) -> tuple[str, ...]:
    if target == ALL_TARGETS:
        return TARGETS
    if target not in TARGETS:
        raise ApplicationError(
            f"Unknown target {target!r}.", code="unknown_target", details={"allowed": list(TARGET_CHOICES)}
        )
    return (target,)


def _parse_start(value: Any) -> datetime:
    if isinstance(value, datetime):
        start = value
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise ApplicationError(
                f"Bad date {value!r}: use ISO 8601, e.g. 2025-03-01T20:00:00-05:00.", code="bad_date"
            )
        start = parsed
    else:
        raise ApplicationError("start must be an ISO 8601 date-time string.", code="bad_date")
    if timezone.is_naive(start):
        start = timezone.make_aware(start)  # the broadcast time zone (settings.TIME_ZONE)
    if not 1990 <= start.year <= 2100:
        raise ApplicationError(f"Date {value!s} is out of range (1990-2100).", code="bad_date")
    return start


def _default_start() -> datetime:
    """Next full hour, local time."""
    now = timezone.localtime()
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def parse_features(features: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a ``features`` mapping: known keys only, typed values. Returns a normalised copy."""
    features = dict(features or {})
    unknown = sorted(set(features) - set(FEATURE_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown feature(s): {', '.join(unknown)}.",
            code="unknown_feature",
            details={"unknown": unknown, "allowed": list(FEATURE_FIELDS)},
        )
    out: dict[str, Any] = {}
    if features.get("start") is not None:
        out["start"] = _parse_start(features["start"])
    if features.get("channel") is not None:
        if not isinstance(features["channel"], str) or not features["channel"]:
            raise ApplicationError("channel must be a channel code.", code="invalid_feature")
        out["channel"] = features["channel"]
    for name in _BOOL_FIELDS:
        if features.get(name) is not None:
            if not isinstance(features[name], bool):
                raise ApplicationError(f"{name} must be true or false.", code="invalid_feature")
            out[name] = features[name]
    if features.get("duration_minutes") is not None:
        value = features["duration_minutes"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DURATION_MINUTES:
            raise ApplicationError(
                f"duration_minutes must be a whole number from 1 to {_MAX_DURATION_MINUTES}.", code="invalid_feature"
            )
        out["duration_minutes"] = value
    return out


def _program_key(value: Program | int | str) -> tuple[str, Any]:
    if isinstance(value, Program):
        return "pk", value.pk
    if isinstance(value, bool):
        raise ApplicationError("program_id must be an id or an external id.", code="invalid_program")
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return "pk", int(value)
    if isinstance(value, str) and value.strip():
        return "external_id", value.strip()
    raise ApplicationError("program_id must be an id or an external id.", code="invalid_program")


def _resolve(items: Sequence[Mapping[str, Any]], *, user_key: str | None) -> list[_Row]:
    """Validate every item and load programs and channels in two queries."""
    parsed = []
    for item in items:
        program = item.get("program")
        if program is None:
            program = item.get("program_id")
        if program is None:
            raise ApplicationError("program_id is required.", code="invalid_program")
        parsed.append(
            (
                _program_key(program),
                _targets_of(str(item.get("target", ""))),
                str(item.get("target", "")),
                parse_features(item.get("features")),
                item.get("request_key") or user_key or "",
            )
        )
    programs = get_lookups().programs(k for (k, *_rest) in parsed)
    codes = {f["channel"] for *_x, f, _k in parsed if "channel" in f}
    channels = {c.code: c for c in Channel.objects.filter(code__in=codes)} if codes else {}
    rows = []
    for key, targets, requested, feats, request_key in parsed:
        program = programs.get(key)
        if program is None:
            raise NotFoundError(f"Unknown program {key[1]!r}.", code="unknown_program", details={"program_id": key[1]})
        if "channel" in feats:
            channel = channels.get(feats["channel"])
            if channel is None:
                raise ApplicationError(
                    f"Unknown channel {feats['channel']!r}.",
                    code="unknown_channel",
                    details={"channel": feats["channel"]},
                )
        else:
            channel = program.channel
        overrides = {k: v for k, v in feats.items() if k not in ("start", "channel")}
        rows.append(
            _Row(
                program=program,
                start=feats.get("start") or _default_start(),
                channel_code=channel.code,
                channel_id=channel.pk,
                overrides=overrides,
                targets=targets,
                requested=requested,
                key=str(request_key),
            )
        )
    return rows


# --- frames and model calls ----------------------------------------------------------------------


def _raw_rows(rows: Sequence[_Row]) -> RawRows:
    """The raw feature rows (registry.features.RAW_COLUMNS) of the requests.

    Equal to ``registry.features.slot_frame`` for the same programs, slots and overrides (a test checks
    it); assembled from the already loaded programs so a single prediction needs one extra query.
    """

    from registry.features import channel_zone_names

    def column(name: str, default: Callable[[Program], Any]) -> list[Any]:
        return [r.overrides[name] if name in r.overrides else default(r.program) for r in rows]

    return RawRows(
        program_id=np.array([r.program.pk for r in rows], dtype="int64"),
        lead_in_program_id=get_lookups().lead_ins(
            channel_ids=[r.channel_id for r in rows],
            zones=channel_zone_names([r.channel_code for r in rows]),
            starts=[r.start for r in rows],
        ),
        channel=np.array([r.channel_code for r in rows], dtype=object),
        genre=np.array([str(r.program.genre) for r in rows], dtype=object),
        content_rating=np.array([str(r.program.content_rating or "") for r in rows], dtype=object),
        duration_minutes=np.array(column("duration_minutes", lambda p: p.duration_minutes), dtype="float64"),
        is_live=np.array(column("is_live", lambda p: p.is_live), dtype=bool),
        is_premiere=np.array(column("is_premiere", lambda p: False), dtype=bool),
        is_finale=np.array(column("is_finale", lambda p: False), dtype=bool),
        start=[r.start for r in rows],
    )


def _call(model: ServingModel, rows: RawRows | pd.DataFrame) -> tuple[np.ndarray, float]:
    """One vectorised model call; returns predictions and the call's seconds (also to Prometheus)."""
    started = time.perf_counter()
    try:
        out = model.predict_rows(rows) if isinstance(rows, RawRows) else model.predict(rows)
    except Exception:
        PREDICTIONS.labels(model.target, model.algorithm, "error").inc(len(rows))
        raise
    seconds = time.perf_counter() - started
    PREDICTION_LATENCY.labels(model.target, model.algorithm).observe(seconds)
    PREDICTIONS.labels(model.target, model.algorithm, "ok").inc(len(rows))
    return out, seconds


def _run(rows: list[_Row]) -> list[_Answer]:
    """Predict every (row, target) with one call per model; log every call in bulk."""
    predictor = get_predictor()
    needed = [t for t in TARGETS if any(t in r.targets for r in rows)]
    serving = {t: predictor.model_for(t) for t in needed}  # 409 before any work when a model is missing
    raw = _raw_rows(rows)
    digests = raw.digests()
    request_id = uuid.UUID(int=_ids.getrandbits(128), version=4)  # os.urandom per request is slow under load
    created = timezone.now()
    answers: list[_Answer] = []
    logs: list[LogEntry] = []

    def log(
        i: int, model: ServingModel, value: float, ms: float, ab: Any = None, arm: str = "", served: bool = True
    ) -> None:
        r = rows[i]
        logs.append(
            LogEntry(
                created_at=created,
                request_id=request_id,
                request_key=r.key[:128],  # PredictionLog.request_key's length
                target=model.target,
                model_version_id=model.version_id,
                algorithm=model.algorithm,
                program_id=r.program.pk,
                channel_id=r.channel_id,
                slot_start=r.start,
                inputs_digest=digests[i],
                output=value,
                latency_ms=ms,
                ab_test_id=None if ab is None else ab.id,
                arm=arm,
                served=served,
            )
        )

    lookups = get_lookups()
    for target in needed:
        idx = [i for i, r in enumerate(rows) if target in r.targets]
        sub = raw.take(idx) if len(idx) != len(rows) else raw
        sub.history, through = lookups.history_features(target=target, rows=sub)
        test = predictor.ab_test_for(target)
        if test is None:
            model = serving[target]
            raw_values, seconds = _call(model, sub)
            values, outside = model.clip(raw_values)
            ms = seconds * 1000.0 / len(idx)
            for k, (i, v, t) in enumerate(zip(idx, values, through, strict=True)):
                answers.append(
                    _Answer(i, target, model, float(v), history_through=t, raw=_raw_if(outside, raw_values, k))
                )
                log(i, model, float(v), ms)
            continue
        champion = predictor.version(test.champion_id)
        challenger = predictor.version(test.challenger_id)
        champ_raw, champ_s = _call(champion, sub)
        chall_raw, chall_s = _call(challenger, sub)
        champ_values, champ_out = champion.clip(champ_raw)
        chall_values, chall_out = challenger.clip(chall_raw)
        for k, (i, cv, xv, t) in enumerate(zip(idx, champ_values, chall_values, through, strict=True)):
            arm = CHAMPION if test.shadow else ab_arm(key=rows[i].key, test_id=test.id, share=test.share)
            if arm == CHALLENGER:
                served_model, served_value, before = challenger, float(xv), _raw_if(chall_out, chall_raw, k)
            else:
                served_model, served_value, before = champion, float(cv), _raw_if(champ_out, champ_raw, k)
            ab = {"test_id": test.id, "arm": arm}
            answers.append(_Answer(i, target, served_model, served_value, ab, t, before))
            log(i, champion, float(cv), champ_s * 1000.0 / len(idx), test, CHAMPION, arm == CHAMPION)
            log(i, challenger, float(xv), chall_s * 1000.0 / len(idx), test, CHALLENGER, arm == CHALLENGER)
    get_buffer().add(logs)
    return answers


def _raw_if(outside: np.ndarray, raw: np.ndarray, k: int) -> float | None:
    return float(raw[k]) if outside[k] else None


def _answer_body(row: _Row, answer: _Answer) -> dict[str, Any]:
    m = answer.model
    # Intervals stay inside the sane range too (the low end is clipped at 0 by the predictor).
    intervals = [
        {**i, "low": min(i["low"], m.range_high), "high": min(i["high"], m.range_high)}
        for i in m.intervals(answer.prediction)
    ]
    body: dict[str, Any] = {
        "prediction": answer.prediction,
        "target": answer.target,
        "program_id": row.program.pk,
        "model": m.describe(),
        "interval": intervals[0],
        "intervals": intervals[1:],
        "history_through": None if answer.history_through is None else answer.history_through.isoformat(),
        "clipped": answer.raw is not None,
    }
    if answer.raw is not None:
        # The model's value left the sane range (0 ... 3 x the largest training value): say so.
        if np.isfinite(answer.raw):
            body["raw_prediction"] = answer.raw
        body["sane_range"] = {"low": m.range_low, "high": m.range_high}
    if answer.ab is not None:
        body["ab_test"] = answer.ab
    return body


def _group(rows: list[_Row], answers: list[_Answer]) -> list[dict[str, Any]]:
    per_row: dict[int, dict[str, dict[str, Any]]] = {}
    for a in answers:
        per_row.setdefault(a.row, {})[a.target] = _answer_body(rows[a.row], a)
    out = []
    for i, r in enumerate(rows):
        bodies = per_row[i]
        if r.requested == ALL_TARGETS:
            known = [b["history_through"] for b in bodies.values() if b["history_through"] is not None]
            out.append(
                {
                    "target": ALL_TARGETS,
                    "program_id": r.program.pk,
                    "history_through": max(known, default=None),
                    "predictions": [bodies[t] for t in TARGETS],
                }
            )
        else:
            out.append(bodies[r.requested])
    return out


# --- public services -----------------------------------------------------------------------------


def predict(
    *,
    program: Program | int | str,
    target: str,
    features: Mapping[str, Any] | None = None,
    user_key: str | None = None,
) -> dict[str, Any]:
    """The API's answer for one program in one slot.

    ``{"prediction", "target", "program_id", "model": {id, algorithm, version}, "interval": {low, high,
    level}, "latency_ms"}``; for ``target="all"``: ``{"target": "all", "program_id", "predictions":
    [one answer per target], "latency_ms"}``. Raises NotFoundError (unknown program), ApplicationError
    (bad target/feature/date), ConflictError (no production model).
    """
    started = time.perf_counter()
    rows = _resolve([{"program": program, "target": target, "features": features}], user_key=user_key)
    body = _group(rows, _run(rows))[0]
    body["latency_ms"] = (time.perf_counter() - started) * 1000.0
    return body


def predict_batch(*, items: Sequence[Mapping[str, Any]], user_key: str | None = None) -> dict[str, Any]:
    """Many predictions in one vectorised call per model: ``{"results": [...], "latency_ms"}``.

    Each item is ``{"program_id", "target", "features"?, "request_key"?}``; results are in item order
    and equal the single answers (without their ``latency_ms``).
    """
    started = time.perf_counter()
    if len(items) > settings.PREDICT_BATCH_MAX_ITEMS:
        raise PayloadTooLargeError(
            f"At most {settings.PREDICT_BATCH_MAX_ITEMS} items per batch (got {len(items)}).",
            code="too_many_items",
            details={"max_items": settings.PREDICT_BATCH_MAX_ITEMS, "items": len(items)},
        )
    if not items:
        return {"results": [], "latency_ms": 0.0}
    rows = _resolve(items, user_key=user_key)
    results = _group(rows, _run(rows))
    return {"results": results, "latency_ms": (time.perf_counter() - started) * 1000.0}


def predict_matrix(
    *,
    target: str,
    programs: Sequence[Program | int],
    starts: Sequence[datetime],
    channel: Channel | str | None = None,
) -> np.ndarray:
    """Production-model predictions for every program x every start: shape (len(programs), len(starts)).

    One ``slot_frame`` and one model call; not logged (the optimiser asks for thousands of cells).
    """
    from registry.features import slot_frame

    _targets_of(target)
    if target == ALL_TARGETS:
        raise ApplicationError("predict_matrix needs one target.", code="unknown_target")
    model = get_predictor().model_for(target)
    if not programs or not starts:
        return np.zeros((len(programs), len(starts)))
    rows = RawRows.from_frame(slot_frame(programs=programs, starts=starts, channel=channel))
    rows.history, _ = get_lookups().history_features(target=target, rows=rows)
    values, _ = _call(model, rows)
    return model.clip(values)[0].reshape(len(programs), len(starts))


def prediction_log_flush() -> int:
    """Write the buffered prediction logs now (tests, shutdown, before scoring)."""
    return get_buffer().flush()


# --- A/B tests -----------------------------------------------------------------------------------


def _ab_changed() -> None:
    try:
        cache.incr(AB_GENERATION_KEY)
    except ValueError:
        cache.set(AB_GENERATION_KEY, 1, timeout=None)


def ab_test_check(
    *,
    challenger: Any,
    traffic_share: float,
    mode: str,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime | None = None,
) -> Any:
    """Validate a new A/B test; returns the champion (the target's production version).

    ``ends_at`` must be in the future (and after ``starts_at``). A test of the target whose ``ends_at``
    passed is ended first (``ab_tests_expire``), so an expired test never blocks the next one.
    """
    from registry.selectors import production_models

    now = now or timezone.now()
    target = challenger.target
    champion = production_models().get(target)
    if champion is None:
        raise ConflictError(f"There is no production model for {target!r} to test against.", code="no_production_model")
    if champion.pk == challenger.pk:
        raise ApplicationError("The challenger is the production model already.", code="same_model")
    if not 0.0 <= float(traffic_share) <= 1.0:
        raise ApplicationError("traffic_share must be between 0 and 1.", code="invalid_share")
    if mode not in ABTest.Mode.values:
        raise ApplicationError(f"Unknown mode {mode!r}.", code="invalid_mode")
    if ends_at is not None and ends_at <= now:
        raise ApplicationError(
            f"ends_at ({ends_at.isoformat()}) must be in the future.", code="bad_date", details={"ends_at": "past"}
        )
    if ends_at is not None and ends_at <= starts_at:
        raise ApplicationError("ends_at must be after starts_at.", code="bad_date")
    ab_tests_expire(now=now)
    if ABTest.objects.filter(target=target, status=ABTest.Status.ACTIVE).exists():
        raise ConflictError(f"An A/B test for {target!r} is active already; stop it first.", code="ab_test_active")
    return champion


@transaction.atomic
def ab_test_create(
    *,
    name: str,
    challenger: Any,
    traffic_share: float,
    mode: str = ABTest.Mode.SPLIT,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    actor: Any = None,
) -> ABTest:
    """Start an A/B test of ``challenger`` (a ModelVersion) against its target's production model.

    At most one active test per target (also a DB constraint, which settles a race).
    """
    starts_at = starts_at or timezone.now()
    champion = ab_test_check(
        challenger=challenger, traffic_share=traffic_share, mode=mode, starts_at=starts_at, ends_at=ends_at
    )
    test = ABTest.objects.create(
        name=name,
        target=challenger.target,
        champion=champion,
        challenger=challenger,
        traffic_share=float(traffic_share),
        mode=mode,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor if actor is not None and getattr(actor, "pk", None) else None,
    )
    transaction.on_commit(_ab_changed)
    return test


def _ab_score_later(test_id: int) -> None:
    """After commit: score an ended test a last time (a Celery task); a broker outage only logs."""
    from predictions.tasks import ab_test_score_task

    try:
        ab_test_score_task.delay(test_id)
    except Exception:  # the test has ended either way; the nightly scoring is not needed for that
        logger.exception("could not enqueue the last scoring of A/B test %s", test_id)


def _ab_tests_end(tests: Sequence[ABTest], *, reason: str, now: datetime) -> list[ABTest]:
    """ACTIVE -> STOPPED with the reason; each is scored a last time after commit."""
    ended = []
    for test in tests:
        updated = ABTest.objects.filter(pk=test.pk, status=ABTest.Status.ACTIVE).update(
            status=ABTest.Status.STOPPED, ended_at=now, end_reason=reason[:2000]
        )
        if not updated:
            continue
        test.status, test.ended_at, test.end_reason = ABTest.Status.STOPPED, now, reason[:2000]
        ended.append(test)
        test_id = test.pk
        transaction.on_commit(lambda test_id=test_id: _ab_score_later(test_id))  # type: ignore[misc]
    if ended:
        # Now (this process stops splitting at once) and after commit (other processes re-read then).
        _ab_changed()
        transaction.on_commit(_ab_changed)
    return ended


def ab_test_stop(*, test: ABTest, reason: str = "stopped by hand") -> ABTest:
    """End an active test now (admin action, ``manage.py ab_test stop``); scored a last time."""
    with transaction.atomic():
        ended = _ab_tests_end([test], reason=reason, now=timezone.now())
    if not ended:
        raise ConflictError("The A/B test is not active.", code="invalid_state")
    return ended[0]


def ab_tests_end_for_target(*, target: str, reason: str) -> list[ABTest]:
    """The target's production model changed (promotion, rollback): end its active test.

    The rule (docs/predictions.md): a test compares a challenger with the production model it started
    with; once production changes that comparison no longer describes what callers get, so the test
    ends with ``reason`` (the registry puts the same note in its ledger) and is scored a last time.
    Called inside the promotion's transaction by ``registry.services``.
    """
    active = list(ABTest.objects.select_for_update().filter(target=target, status=ABTest.Status.ACTIVE))
    return _ab_tests_end(active, reason=reason, now=timezone.now())


def ab_tests_expire(*, now: datetime | None = None) -> list[ABTest]:
    """End every active test whose ``ends_at`` passed (periodic task, and before a new test)."""
    now = now or timezone.now()
    with transaction.atomic():
        overdue = list(
            ABTest.objects.select_for_update().filter(status=ABTest.Status.ACTIVE, ends_at__lte=now).order_by("id")
        )
        ended = []
        for test in overdue:
            assert test.ends_at is not None
            ended += _ab_tests_end([test], reason=f"ended at its ends_at ({test.ends_at.isoformat()})", now=now)
    return ended


def ab_tests_score_on_import(version: DataVersion) -> None:
    """Data-change hook: after an import commits, score every active A/B test (a Celery task).

    Only imports bring actual values; a test with nothing to match yet just records ``no_actuals``.
    """
    if version.source != DataVersion.Source.IMPORT or not ABTest.objects.filter(status=ABTest.Status.ACTIVE).exists():
        return
    from predictions.tasks import ab_tests_score_task

    transaction.on_commit(ab_tests_score_task.delay)


def ab_test_score(*, test: ABTest, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Score both arms on the logged requests whose airing has an actual value now.

    Logs are matched to airings on (program, channel, start). Both arms are logged for every request
    in a test, so the comparison is paired; ``served`` figures use only the answers really returned.
    Stores the result on the test and returns it.
    """
    prediction_log_flush()
    logs = pd.DataFrame.from_records(
        list(
            PredictionLog.objects.filter(ab_test=test)
            .exclude(arm="")
            .values_list("request_id", "arm", "served", "output", "program_id", "channel_id", "slot_start")
        ),
        columns=["request_id", "arm", "served", "output", "program_id", "channel_id", "slot_start"],
    )
    # A batch request logs many predictions under one request id: count both, and say which is which.
    served_rows = logs[logs["served"]] if len(logs) else logs
    result: dict[str, Any] = {
        "target": test.target,
        "n_requests": int(logs["request_id"].nunique()) if len(logs) else 0,
        "n_predictions": len(served_rows),
    }
    actuals = pd.DataFrame(columns=["program_id", "channel_id", "slot_start", "actual"])
    if len(logs):
        rows = (
            Airing.objects.filter(
                program_id__in=set(logs["program_id"].dropna().astype(int)),
                start__in=set(logs["slot_start"]),
            )
            .exclude(**{f"{test.target}__isnull": True})
            .values_list("program_id", "channel_id", "start", test.target)
        )
        actuals = pd.DataFrame.from_records(list(rows), columns=["program_id", "channel_id", "slot_start", "actual"])
    if len(actuals):
        merged = logs.merge(actuals, on=["program_id", "channel_id", "slot_start"], how="inner")
    else:
        merged = logs.iloc[0:0].assign(actual=pd.Series(dtype=float))
    key = ["request_id", "program_id", "channel_id", "slot_start"]
    wide = merged.pivot_table(index=key, columns="arm", values="output", aggfunc="first")
    actual_of = merged.groupby(key)["actual"].first()
    if CHAMPION in wide and CHALLENGER in wide:
        wide = wide.dropna(subset=[CHAMPION, CHALLENGER])
    result["n_matched"] = len(wide) if CHAMPION in wide and CHALLENGER in wide else 0
    if result["n_matched"] == 0:
        result["status"] = "no_actuals"
    else:
        y = actual_of.loc[wide.index].to_numpy(dtype=float)
        score = ab_score(
            actual=y,
            champion=wide[CHAMPION].to_numpy(dtype=float),
            challenger=wide[CHALLENGER].to_numpy(dtype=float),
            n_boot=n_boot,
            seed=seed,
        )
        result.update(score.as_dict())
        result["status"] = "scored"
        served = merged[merged["served"]]
        result["served"] = {arm: _rmse_mae(served[served["arm"] == arm]) for arm in (CHAMPION, CHALLENGER)}
    ABTest.objects.filter(pk=test.pk).update(result=result, scored_at=timezone.now())
    test.result = result
    return result


def _rmse_mae(part: pd.DataFrame) -> dict[str, float | int | None]:
    if not len(part):
        return {"n": 0, "rmse": None, "mae": None}
    err = part["output"].to_numpy(dtype=float) - part["actual"].to_numpy(dtype=float)
    return {"n": len(part), "rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


# --- drift ---------------------------------------------------------------------------------------

# Premieres are seasonal by design (a scheduling decision, not population drift): not compared.
DRIFT_CATEGORICAL = ("channel", "genre", "content_rating", "daypart", "is_live")
DRIFT_NUMERIC = ("duration_minutes", "hour", "weekday")


def _drift_columns(frame: pd.DataFrame) -> pd.DataFrame:
    from programs.calendar import daypart_for_hour

    out = frame.copy()
    start = pd.to_datetime(out["start"], utc=True).dt.tz_convert(settings.TIME_ZONE)
    hours = start.dt.hour.to_numpy()
    out["hour"] = hours + start.dt.minute.to_numpy() / 60.0
    out["weekday"] = start.dt.day_of_week.to_numpy(dtype=float)
    table = np.array([daypart_for_hour(h) for h in range(24)], dtype=object)
    out["daypart"] = table[hours] if len(out) else pd.Series(dtype=object)
    return out


def drift_report_create(*, target: str, now: datetime | None = None) -> DriftReport:
    """Compare the last DRIFT_WINDOW_DAYS of airings with the DRIFT_REFERENCE_DAYS before them.

    The window ends at the latest airing with an actual value (not after ``now``), so the check also
    works on historic data. Feature drift (PSI / KS) on the raw columns; accuracy drift = RMSE of the
    production model on the window's actuals over its holdout RMSE. Sets the Prometheus gauges.
    """
    from registry.features import airings_frame, with_history
    from registry.selectors import production_models

    _targets_of(target)
    now = now or timezone.now()
    has_actual = Airing.objects.exclude(**{f"{target}__isnull": True}).filter(start__lte=now)
    latest = has_actual.order_by("-start").values_list("start", flat=True).first()
    window_end = latest or now
    window_start = window_end - timedelta(days=settings.DRIFT_WINDOW_DAYS)
    reference_start = window_start - timedelta(days=settings.DRIFT_REFERENCE_DAYS)
    recent_raw = airings_frame(has_actual.filter(start__gt=window_start, start__lte=window_end))
    reference_raw = airings_frame(has_actual.filter(start__gte=reference_start, start__lte=window_start))
    # The recent airings' history features, from the reference period and the window itself.
    featured = with_history(pd.concat([reference_raw, recent_raw]), target)
    recent = _drift_columns(featured.loc[recent_raw.index])
    reference = _drift_columns(reference_raw)
    features = drift.feature_drift(
        reference,
        recent,
        categorical=DRIFT_CATEGORICAL,
        numeric=DRIFT_NUMERIC,
        psi_threshold=settings.DRIFT_PSI_THRESHOLD,
        ks_threshold=settings.DRIFT_KS_THRESHOLD,
    )
    version = production_models().get(target)
    recent_rmse = holdout_rmse = ratio = threshold = None
    if version is not None and len(recent):
        model = get_predictor().version(int(version.pk))
        pred = model.predict(recent)
        recent_rmse = float(np.sqrt(np.mean((pred - recent[target].to_numpy(dtype=float)) ** 2)))
        metrics = version.metrics or {}
        holdout = metrics.get("rmse")
        if holdout is None and metrics.get("mse") is not None:
            holdout = float(np.sqrt(float(metrics["mse"])))
        if holdout is not None:
            holdout_rmse = float(holdout)
            ratio = drift.accuracy_drift_ratio(recent_rmse=recent_rmse, holdout_rmse=holdout_rmse)
            threshold = _accuracy_threshold(version=version, model=model, target=target, before=window_start)
    accuracy_flagged = ratio is not None and threshold is not None and ratio > threshold
    flagged = any(f.flagged for f in features) or accuracy_flagged
    report = DriftReport.objects.create(
        target=target,
        model_version=version,
        window_start=window_start,
        window_end=window_end,
        reference_start=reference_start,
        reference_end=window_start,
        n_reference=len(reference),
        n_recent=len(recent),
        features={f.feature: f.as_dict() for f in features},
        recent_rmse=recent_rmse,
        holdout_rmse=holdout_rmse,
        accuracy_drift=ratio,
        accuracy_threshold=threshold,
        accuracy_flagged=accuracy_flagged,
        flagged=flagged,
    )
    return report


def _accuracy_threshold(*, version: Any, model: ServingModel, target: str, before: datetime) -> float:
    """DRIFT_ACCURACY_THRESHOLD raised to what the model's own evaluation days show by chance.

    The per-day errors of the version's validation and test parts, stored at training time
    (``metrics["daily_errors"]``), are bootstrapped into windows of DRIFT_WINDOW_DAYS
    (``drift.accuracy_threshold_from_days``). They were fixed when the model was trained, so a shift in
    a later window cannot widen its own threshold; on an untouched install the checked week lies in the
    test part, and its days count as the spread the model was evaluated with.

    Versions trained before that was stored: the same from the holdout airings since
    ``metrics["holdout_start"]`` and before the window being checked (``before``), re-predicted now, the
    latest ``_THRESHOLD_ROWS``. Without two such days the setting alone applies.
    """
    from registry.features import airings_frame, with_history

    floor = float(settings.DRIFT_ACCURACY_THRESHOLD)
    metrics = version.metrics or {}
    stored = metrics.get("daily_errors")
    if isinstance(stored, dict) and stored.get("sse"):
        return drift.accuracy_threshold_from_days(
            squares=stored["sse"],
            counts=stored["n"],
            window_days=settings.DRIFT_WINDOW_DAYS,
            floor=floor,
            quantile=settings.DRIFT_ACCURACY_QUANTILE,
        )
    start = metrics.get("holdout_start")
    since = parse_datetime(str(start)) if start else None
    if since is None:
        return floor
    has_actual = Airing.objects.filter(start__lte=before, **{f"{target}__isnull": False})
    ids = list(has_actual.filter(start__gte=since).order_by("-start").values_list("id", flat=True)[:_THRESHOLD_ROWS])
    if not ids:
        return floor
    # History features of the holdout airings come from the airings before them too.
    lookback = since - timedelta(days=settings.DRIFT_REFERENCE_DAYS)
    featured = with_history(airings_frame(has_actual.filter(start__gte=lookback)), target)
    frame = featured.loc[featured.index.isin(ids)]
    residuals = frame[target].to_numpy(dtype=float) - model.predict(frame)
    days = pd.to_datetime(frame["start"], utc=True).dt.tz_convert(settings.TIME_ZONE).dt.date.to_numpy()
    return drift.accuracy_threshold(
        residuals=residuals,
        days=days,
        window_days=settings.DRIFT_WINDOW_DAYS,
        floor=floor,
        quantile=settings.DRIFT_ACCURACY_QUANTILE,
    )


_THRESHOLD_ROWS = 50_000


def drift_check(*, now: datetime | None = None) -> list[DriftReport]:
    """One report per target; flagged targets start one retraining run when DRIFT_RETRAIN_ENABLED."""
    reports = [drift_report_create(target=t, now=now) for t in TARGETS]
    flagged = [r for r in reports if r.flagged]
    if flagged and settings.DRIFT_RETRAIN_ENABLED:
        from registry.services import training_run_start

        run = training_run_start(trigger="drift", targets=[r.target for r in flagged])
        DriftReport.objects.filter(pk__in=[r.pk for r in flagged]).update(retrain_run_id=run.pk)
        for r in flagged:
            r.retrain_run_id = run.pk
    return reports
