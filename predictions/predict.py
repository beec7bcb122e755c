"""Predictions: single, batch and the programs x slots matrix (the serving path, read top-down).

``predict`` / ``predict_batch``: validate the items and load their programs and channels in two queries
(``_resolve``), assemble the raw feature rows (one query for the lead-ins, ``_raw_rows``), add each
target's history features and call each production model once, vectorised (``_run``; both arms while
an A/B test runs), append the log rows to the in-process buffer (``predictions.logbuffer``), and shape
the answers (``_group``). ``predict_matrix`` is the optimiser's unlogged variant.
"""

from __future__ import annotations

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
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from bms.errors import ApplicationError, NotFoundError, PayloadTooLargeError
from bms.metrics import PREDICTION_LATENCY, PREDICTIONS
from predictions.ab import CHALLENGER, CHAMPION, ab_arm
from predictions.fastpath import RawRows
from predictions.logbuffer import LogEntry, get_buffer
from predictions.lookups import get_lookups
from predictions.predictor import ServingModel, get_predictor
from programs.models import TARGETS, Channel, Program

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

    targets_of(target)
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


# --- validation: items -> rows ------------------------------------------------------------------


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
                targets_of(str(item.get("target", ""))),
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


def targets_of(target: str) -> tuple[str, ...]:
    if target == ALL_TARGETS:
        return TARGETS
    if target not in TARGETS:
        raise ApplicationError(
            f"Unknown target {target!r}.", code="unknown_target", details={"allowed": list(TARGET_CHOICES)}
        )
    return (target,)


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


# --- model calls: rows -> answers (one call per model) ---------------------------------------------


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


def _raw_if(outside: np.ndarray, raw: np.ndarray, k: int) -> float | None:
    return float(raw[k]) if outside[k] else None


# --- answers: the API's shape ----------------------------------------------------------------------


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
