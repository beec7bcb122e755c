"""Predictions: single, batch and the programs x slots matrix (the serving path, read top-down).

``predict`` / ``predict_batch``: validate the items and load their programs and channels in two queries
(``_resolve``), assemble the raw feature rows (one query for the lead-ins, ``_raw_rows``), add each
target's history features and call each production model once, vectorised (``_run``; both arms while
an A/B test runs), append the log rows to the in-process buffer (``predictions.logbuffer``), and shape
the typed answers (``_group``: ``Answer`` of ``TargetPrediction``; the API, the page and the chat tool
map them onto their own shapes). ``predict_matrix`` is the optimiser's unlogged variant.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from prometheus_client import Counter, Histogram

from bms.errors import ApplicationError, NotFoundError, PayloadTooLargeError
from bms.metrics import PREDICTION_LATENCY, PREDICTIONS
from predictions.ab import CHALLENGER, CHAMPION, ab_arm
from predictions.fastpath import RawRows
from predictions.logbuffer import LogEntry, get_buffer
from predictions.lookups import ProgramKey, get_lookups
from predictions.predictor import ActiveABTest, Interval, ServingModel, get_predictor
from programs.models import TARGETS, Channel, Program

ALL_TARGETS = "all"
_ids = random.Random(uuid.uuid4().int)  # request ids: unique, not secret
TARGET_CHOICES = (*TARGETS, ALL_TARGETS)
# Features a caller may set for the hypothetical airing (everything else comes from the program).
FEATURE_FIELDS = ("start", "channel", "is_premiere", "is_finale", "is_live", "duration_minutes")
_BOOL_FIELDS = ("is_premiere", "is_finale", "is_live")
_MAX_DURATION_MINUTES = 24 * 60


# The answer's parts are plain slotted dataclasses, not frozen ones: a frozen dataclass's __init__ sets
# each field through object.__setattr__ (about 3x the cost), and a batch of 100 builds ~700 of them.


@dataclass(slots=True)
class PredictItem:
    """One item of a batch: ``features`` as the caller sent them (checked by the service)."""

    program: Program | int | str  # a Program, its id, or its external id
    target: str  # a target or "all"
    features: Mapping[str, object] | None = None
    request_key: str = ""  # the A/B assignment key; default: the batch's user_key


@dataclass(slots=True)
class SlotFeatures:
    """A checked ``features`` mapping: what the caller set for the hypothetical airing (None: not set)."""

    start: datetime | None = None
    channel: str | None = None
    is_premiere: bool | None = None
    is_finale: bool | None = None
    is_live: bool | None = None
    duration_minutes: int | None = None


@dataclass
class _Row:
    """One program-in-a-slot to predict (after validation)."""

    program: Program
    start: datetime
    channel_code: str
    channel_id: int
    features: SlotFeatures
    targets: tuple[str, ...]
    requested: str  # a target or "all"
    key: str


@dataclass(slots=True)
class ModelRef:
    """The registry version that answered."""

    id: int
    algorithm: str
    version: int


@dataclass(slots=True)
class SaneRange:
    """0 ... 3 x the largest training value of the target (registry.guards.sane_range)."""

    low: float
    high: float


@dataclass(slots=True)
class ABAssignment:
    """The A/B test the answer was served under and the arm that served it."""

    test_id: int
    arm: str


@dataclass(slots=True)
class TargetPrediction:
    """One target's prediction for one program in one slot.

    Field names are the API's keys (``predictions.apis.PredictionOutput``): the page and the chat tool
    read the same names.
    """

    prediction: float
    target: str
    program_id: int
    model: ModelRef
    interval: Interval  # at settings.PREDICT_INTERVAL_LEVEL
    intervals: tuple[Interval, ...]  # one per calibrated level (a single one for uncalibrated versions)
    history_through: datetime | None  # start of the latest airing with an actual the history features used
    clipped: bool  # the model's value left the sane range and was clipped to it
    raw_prediction: float | None = None  # the value before clipping, when clipped and finite
    sane_range: SaneRange | None = None  # set when clipped
    ab_test: ABAssignment | None = None  # set while an A/B test of the target runs


@dataclass(slots=True)
class Answer:
    """The answer to one request item: one target's prediction, or all four for ``target="all"``."""

    target: str  # as requested: a target or "all"
    program_id: int
    predictions: tuple[TargetPrediction, ...]  # in TARGETS order for "all"

    @property
    def history_through(self) -> datetime | None:
        """The latest history point any of the predictions used."""
        return max((p.history_through for p in self.predictions if p.history_through is not None), default=None)


@dataclass
class _Served:
    """One (row, target) as the model served it, before it is shaped into a TargetPrediction."""

    row: int
    target: str
    model: ServingModel
    prediction: float
    ab: ABAssignment | None = field(default=None)
    history_through: datetime | None = None
    raw: float | None = None  # the model's own value when it left the sane range and was clipped


# --- public services -----------------------------------------------------------------------------


def predict(
    *,
    program: Program | int | str,
    target: str,
    features: Mapping[str, object] | None = None,
    user_key: str | None = None,
) -> Answer:
    """One program in one slot: the target's prediction, or every target's for ``target="all"``.

    Raises NotFoundError (unknown program), ApplicationError (bad target/feature/date), ConflictError
    (no production model), ModelUnavailableError (its artifact cannot be served).
    """
    rows = _resolve([PredictItem(program=program, target=target, features=features)], user_key=user_key)
    return _group(rows, _run(rows))[0]


def predict_batch(*, items: Sequence[PredictItem], user_key: str | None = None) -> list[Answer]:
    """Many predictions with one vectorised call per model; the answers are in item order and equal the
    single answers. Raises PayloadTooLargeError over ``PREDICT_BATCH_MAX_ITEMS`` items."""
    if len(items) > settings.PREDICT_BATCH_MAX_ITEMS:
        raise PayloadTooLargeError(
            f"At most {settings.PREDICT_BATCH_MAX_ITEMS} items per batch (got {len(items)}).",
            code="too_many_items",
            details={"max_items": settings.PREDICT_BATCH_MAX_ITEMS, "items": len(items)},
        )
    if not items:
        return []
    rows = _resolve(items, user_key=user_key)
    return _group(rows, _run(rows))


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


def _resolve(items: Sequence[PredictItem], *, user_key: str | None) -> list[_Row]:
    """Validate every item and load programs and channels in two queries."""
    parsed = [
        (
            _program_key(item.program),
            targets_of(item.target),
            item.target,
            parse_features(item.features),
            item.request_key or user_key or "",
        )
        for item in items
    ]
    programs = get_lookups().programs(k for (k, *_rest) in parsed)
    codes = {f.channel for *_x, f, _k in parsed if f.channel is not None}
    channels = {c.code: c for c in Channel.objects.filter(code__in=codes)} if codes else {}
    rows = []
    for key, targets, requested, feats, request_key in parsed:
        program = programs.get(key)
        if program is None:
            raise NotFoundError(f"Unknown program {key[1]!r}.", code="unknown_program", details={"program_id": key[1]})
        if feats.channel is not None:
            channel = channels.get(feats.channel)
            if channel is None:
                raise ApplicationError(
                    f"Unknown channel {feats.channel!r}.", code="unknown_channel", details={"channel": feats.channel}
                )
        else:
            channel = program.channel
        rows.append(
            _Row(
                program=program,
                start=feats.start or _default_start(),
                channel_code=channel.code,
                channel_id=channel.pk,
                features=feats,
                targets=targets,
                requested=requested,
                key=request_key,
            )
        )
    return rows


def _program_key(value: Program | int | str) -> ProgramKey:
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


def parse_features(features: Mapping[str, object] | None) -> SlotFeatures:
    """Check a ``features`` mapping: known keys only, typed values."""
    features = dict(features or {})
    unknown = sorted(set(features) - set(FEATURE_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown feature(s): {', '.join(unknown)}.",
            code="unknown_feature",
            details={"unknown": unknown, "allowed": list(FEATURE_FIELDS)},
        )
    raw_start = features.get("start")
    start = None if raw_start is None else _parse_start(raw_start)
    channel = features.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel):
        raise ApplicationError("channel must be a channel code.", code="invalid_feature")
    flags: dict[str, bool | None] = {}
    for name in _BOOL_FIELDS:
        value = features.get(name)
        if value is not None and not isinstance(value, bool):
            raise ApplicationError(f"{name} must be true or false.", code="invalid_feature")
        flags[name] = value
    duration = features.get("duration_minutes")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= _MAX_DURATION_MINUTES
    ):
        raise ApplicationError(
            f"duration_minutes must be a whole number from 1 to {_MAX_DURATION_MINUTES}.", code="invalid_feature"
        )
    return SlotFeatures(
        start=start,
        channel=channel,
        is_premiere=flags["is_premiere"],
        is_finale=flags["is_finale"],
        is_live=flags["is_live"],
        duration_minutes=duration,
    )


def _parse_start(value: object) -> datetime:
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


def _run(rows: list[_Row]) -> list[_Served]:
    """Predict every (row, target) with one call per model (both arms while an A/B test runs); log every
    call in bulk."""
    predictor = get_predictor()
    needed = [t for t in TARGETS if any(t in r.targets for r in rows)]
    serving = {t: predictor.model_for(t) for t in needed}  # 409 before any work when a model is missing
    raw = _raw_rows(rows)
    # uuid4 from a seeded generator: os.urandom per request is slow under load
    log = _Log(rows, raw.digests(), uuid.UUID(int=_ids.getrandbits(128), version=4), timezone.now())
    lookups = get_lookups()
    served: list[_Served] = []
    for target in needed:
        idx = [i for i, r in enumerate(rows) if target in r.targets]
        sub = raw.take(idx) if len(idx) != len(rows) else raw
        sub.history, through = lookups.history_features(target=target, rows=sub)
        test = predictor.ab_test_for(target)
        if test is None:
            served += _serve(serving[target], sub, idx, through, log)
        else:
            arms = (predictor.version(test.champion_id), predictor.version(test.challenger_id))
            served += _serve_ab(test, arms, sub, idx, through, log)
    get_buffer().add(log.entries)
    return served


@dataclass
class _Log:
    """The prediction log rows of one request: one per model call and row."""

    rows: list[_Row]
    digests: list[str]
    request_id: uuid.UUID
    created: datetime
    entries: list[LogEntry] = field(default_factory=list)

    def add(
        self,
        i: int,
        model: ServingModel,
        value: float,
        ms: float,
        ab: ActiveABTest | None = None,
        arm: str = "",
        served: bool = True,
    ) -> None:
        r = self.rows[i]
        self.entries.append(
            LogEntry(
                created_at=self.created,
                request_id=self.request_id,
                request_key=r.key[:128],  # PredictionLog.request_key's length
                target=model.target,
                model_version_id=model.version_id,
                algorithm=model.algorithm,
                program_id=r.program.pk,
                channel_id=r.channel_id,
                slot_start=r.start,
                inputs_digest=self.digests[i],
                output=value,
                latency_ms=ms,
                ab_test_id=None if ab is None else ab.id,
                arm=arm,
                served=served,
            )
        )


def _serve(
    model: ServingModel, sub: RawRows, idx: list[int], through: list[datetime | None], log: _Log
) -> list[_Served]:
    """The production model's answers for the rows ``idx`` (``sub``)."""
    raw_values, seconds = _call(model, sub)
    values, outside = model.clip(raw_values)
    ms = seconds * 1000.0 / len(idx)
    out = []
    for k, (i, v, t) in enumerate(zip(idx, values, through, strict=True)):
        out.append(_Served(i, model.target, model, float(v), history_through=t, raw=_raw_if(outside, raw_values, k)))
        log.add(i, model, float(v), ms)
    return out


def _serve_ab(
    test: ActiveABTest,
    arms: tuple[ServingModel, ServingModel],
    sub: RawRows,
    idx: list[int],
    through: list[datetime | None],
    log: _Log,
) -> list[_Served]:
    """Both arms predict every row (both logged); each row is served its key's arm (the champion in shadow
    mode)."""
    champion, challenger = arms
    champ_raw, champ_s = _call(champion, sub)
    chall_raw, chall_s = _call(challenger, sub)
    champ_values, champ_out = champion.clip(champ_raw)
    chall_values, chall_out = challenger.clip(chall_raw)
    out = []
    for k, (i, cv, xv, t) in enumerate(zip(idx, champ_values, chall_values, through, strict=True)):
        arm = CHAMPION if test.shadow else ab_arm(key=log.rows[i].key, test_id=test.id, share=test.share)
        if arm == CHALLENGER:
            model, value, before = challenger, float(xv), _raw_if(chall_out, chall_raw, k)
        else:
            model, value, before = champion, float(cv), _raw_if(champ_out, champ_raw, k)
        out.append(_Served(i, test.target, model, value, ABAssignment(test_id=test.id, arm=arm), t, before))
        log.add(i, champion, float(cv), champ_s * 1000.0 / len(idx), test, CHAMPION, arm == CHAMPION)
        log.add(i, challenger, float(xv), chall_s * 1000.0 / len(idx), test, CHALLENGER, arm == CHALLENGER)
    return out


def _raw_rows(rows: Sequence[_Row]) -> RawRows:
    """The raw feature rows (registry.features.RAW_COLUMNS) of the requests.

    Equal to ``registry.features.slot_frame`` for the same programs, slots and overrides (a test checks
    it); assembled from the already loaded programs so a single prediction needs one extra query.
    """

    from registry.features import channel_zone_names, wall_clock_in

    zones = channel_zone_names([r.channel_code for r in rows])
    starts = [r.start for r in rows]

    def flag(name: str, default: Callable[[Program], bool]) -> np.ndarray:
        values = [getattr(r.features, name) for r in rows]
        return np.array([default(r.program) if v is None else v for r, v in zip(rows, values, strict=True)], dtype=bool)

    return RawRows(
        program_id=np.array([r.program.pk for r in rows], dtype="int64"),
        lead_in_program_id=get_lookups().lead_ins(
            channel_ids=[r.channel_id for r in rows],
            zones=zones,
            starts=starts,
        ),
        channel=np.array([r.channel_code for r in rows], dtype=object),
        genre=np.array([str(r.program.genre) for r in rows], dtype=object),
        content_rating=np.array([str(r.program.content_rating or "") for r in rows], dtype=object),
        duration_minutes=np.array(
            [
                r.program.duration_minutes if r.features.duration_minutes is None else r.features.duration_minutes
                for r in rows
            ],
            dtype="float64",
        ),
        is_live=flag("is_live", lambda p: p.is_live),
        is_premiere=flag("is_premiere", lambda p: False),
        is_finale=flag("is_finale", lambda p: False),
        start=starts,
        _local=wall_clock_in(starts, zones),
    )


# The labelled children of the per-call metrics, per (target, algorithm): ``labels()`` takes a lock and
# builds its key on every call; a handful of children live as long as the process.
_call_metrics: dict[tuple[str, str], tuple[Histogram, Counter]] = {}


def _metrics_of(model: ServingModel) -> tuple[Histogram, Counter]:
    key = (model.target, model.algorithm)
    children = _call_metrics.get(key)
    if children is None:
        children = _call_metrics[key] = (
            PREDICTION_LATENCY.labels(model.target, model.algorithm),
            PREDICTIONS.labels(model.target, model.algorithm, "ok"),
        )
    return children


def _call(model: ServingModel, rows: RawRows | pd.DataFrame) -> tuple[np.ndarray, float]:
    """One vectorised model call; returns predictions and the call's seconds (also to Prometheus)."""
    started = time.perf_counter()
    try:
        out = model.predict_rows(rows) if isinstance(rows, RawRows) else model.predict(rows)
    except Exception:
        PREDICTIONS.labels(model.target, model.algorithm, "error").inc(len(rows))
        raise
    seconds = time.perf_counter() - started
    latency, ok = _metrics_of(model)
    latency.observe(seconds)
    ok.inc(len(rows))
    return out, seconds


def _raw_if(outside: np.ndarray, raw: np.ndarray, k: int) -> float | None:
    return float(raw[k]) if outside[k] else None


# --- answers: typed results ----------------------------------------------------------------------------


def _group(rows: list[_Row], served: list[_Served]) -> list[Answer]:
    """One Answer per row, its predictions in TARGETS order."""
    per_row: dict[int, dict[str, TargetPrediction]] = {}
    for s in served:
        per_row.setdefault(s.row, {})[s.target] = _target_prediction(rows[s.row], s)
    return [
        Answer(
            target=r.requested,
            program_id=r.program.pk,
            predictions=tuple(per_row[i][t] for t in r.targets),
        )
        for i, r in enumerate(rows)
    ]


def _target_prediction(row: _Row, served: _Served) -> TargetPrediction:
    m = served.model
    intervals = m.intervals(served.prediction)
    clipped = served.raw is not None
    return TargetPrediction(
        prediction=served.prediction,
        target=served.target,
        program_id=row.program.pk,
        model=ModelRef(id=m.version_id, algorithm=m.algorithm, version=m.version),
        interval=intervals[0],
        intervals=tuple(intervals[1:]),
        history_through=served.history_through,
        clipped=clipped,
        # The model's value left the sane range (0 ... 3 x the largest training value): say so.
        raw_prediction=served.raw if served.raw is not None and np.isfinite(served.raw) else None,
        sane_range=SaneRange(low=m.range_low, high=m.range_high) if clipped else None,
        ab_test=served.ab,
    )


__all__ = [
    "ALL_TARGETS",
    "TARGET_CHOICES",
    "ABAssignment",
    "Answer",
    "Interval",  # predictions.predictor's, here with the other parts of an answer
    "ModelRef",
    "PredictItem",
    "SaneRange",
    "SlotFeatures",
    "TargetPrediction",
    "parse_features",
    "predict",
    "predict_batch",
    "predict_matrix",
    "prediction_log_flush",
    "targets_of",
]
