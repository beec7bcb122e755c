"""Raw frames of airings and the scikit-learn preprocessing that derives every feature from them.

Training and serving share one code path: ``airings_frame`` (stored airings) and ``slot_frame``
(hypothetical airings) produce the same RAW columns, and the fitted pipeline derives hour, daypart,
weekday, month, holiday, trend, the genre x daypart cell and the encodings of program identity and
lead-in program itself. Encoders and scalers are fitted on the training split only (they are steps of
the pipeline that is fitted on it), so the holdout never leaks into them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import QuerySet
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from programs.calendar import daypart_for_hour, holidays
from programs.models import TARGETS, Airing, Channel, Program

# The raw columns every frame has, in this order (targets follow in airings_frame).
RAW_COLUMNS: tuple[str, ...] = (
    "program_id",
    "external_id",
    "channel",
    "genre",
    "content_rating",
    "duration_minutes",
    "is_live",
    "is_premiere",
    "is_finale",
    "start",
    "lead_in_program_id",
)
# Raw columns the pipelines read (external_id is a label, equivalent to program_id).
MODEL_INPUT_COLUMNS: tuple[str, ...] = tuple(c for c in RAW_COLUMNS if c != "external_id")
NO_LEAD_IN = -1
# The broadcast day runs 06:00-02:00 local; an airing at 01:00 belongs to the previous day.
BROADCAST_DAY_START_HOUR = 6
TREND_EPOCH = pd.Timestamp("2020-01-01")

_AIRING_FIELDS = (
    "id",
    "program_id",
    "program__external_id",
    "channel__code",
    "program__genre",
    "program__content_rating",
    "duration_minutes",
    "program__is_live",
    "is_premiere",
    "is_finale",
    "start",
    *TARGETS,
)


def _local(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True).dt.tz_convert(settings.TIME_ZONE)


def local_wall_clock(start: pd.Series | Sequence[datetime], channel: Sequence[str] | np.ndarray) -> np.ndarray:
    """Each start as naive wall-clock time (``datetime64[m]``) in its channel's time zone.

    The one place features read local time (hour, weekday, daypart, month, holiday, broadcast day):
    ``Channel.time_zone`` per row (``programs.selectors.channel_time_zones``), ``TIME_ZONE`` for a
    channel code that is not stored. A Series (training) is converted per zone, vectorised; a list of
    aware datetimes (serving a few rows) row by row, which is faster below ~50 rows and gives the same
    wall clock (both read the IANA database).
    """
    zone_of = channel_zone_names(channel)
    if not isinstance(start, pd.Series):
        return np.array(
            [s.astimezone(_zone(z)).replace(tzinfo=None) for s, z in zip(start, zone_of, strict=True)],
            dtype="datetime64[m]",
        )
    utc = pd.to_datetime(start, utc=True)
    out = np.empty(len(zone_of), dtype="datetime64[m]")
    zone_array = np.array(zone_of, dtype=object)
    for zone in set(zone_of):
        rows = np.flatnonzero(zone_array == zone)
        out[rows] = utc.iloc[rows].dt.tz_convert(zone).dt.tz_localize(None).to_numpy(dtype="datetime64[m]")
    return out


def channel_zone_names(channel: Sequence[str] | np.ndarray) -> list[str]:
    """The time zone of each channel code (``TIME_ZONE`` for a code that is not stored)."""
    from programs.selectors import channel_time_zones

    codes = [str(c) for c in channel]
    zones = channel_time_zones(codes=set(codes))
    return [zones.get(c, settings.TIME_ZONE) for c in codes]


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _broadcast_day(local: np.ndarray) -> np.ndarray:
    """The broadcast day (06:00-06:00 local) of naive local starts from ``local_wall_clock``."""
    return (local - np.timedelta64(BROADCAST_DAY_START_HOUR, "h")).astype("datetime64[D]")


def _empty_frame(with_targets: bool) -> pd.DataFrame:
    columns = list(RAW_COLUMNS) + (list(TARGETS) if with_targets else [])
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    frame["start"] = pd.Series(dtype=f"datetime64[ns, {settings.TIME_ZONE}]")
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["program_id"] = frame["program_id"].astype("int64")
    frame["lead_in_program_id"] = frame["lead_in_program_id"].astype("int64")
    frame["duration_minutes"] = frame["duration_minutes"].astype("float64")
    for col in ("is_live", "is_premiere", "is_finale"):
        frame[col] = frame[col].astype(bool)
    for col in ("external_id", "channel", "genre", "content_rating"):
        frame[col] = frame[col].astype(object)
    return frame


def airings_frame(queryset: QuerySet[Airing] | None = None) -> pd.DataFrame:
    """One row per airing of ``queryset`` (default: all), sorted by start, with the raw columns and targets.

    One query (``values()``); the lead-in (previous airing's program on the same channel and
    broadcast day) is computed over the rows of the queryset, vectorised.
    """
    qs = Airing.objects.all() if queryset is None else queryset
    rows = list(qs.order_by().values_list(*_AIRING_FIELDS))
    if not rows:
        return _empty_frame(with_targets=True)
    names = [
        "airing_id",
        "program_id",
        "external_id",
        "channel",
        "genre",
        "content_rating",
        "duration_minutes",
        "is_live",
        "is_premiere",
        "is_finale",
        "start",
        *TARGETS,
    ]
    frame = pd.DataFrame.from_records(rows, columns=names)
    frame["start"] = _local(frame["start"])
    frame = frame.sort_values(["start", "airing_id"], kind="stable").reset_index(drop=True)
    day = _broadcast_day(local_wall_clock(frame["start"], frame["channel"].to_numpy()))
    previous = frame.groupby([frame["channel"], day], sort=False)["program_id"].shift(1)
    frame["lead_in_program_id"] = previous.fillna(NO_LEAD_IN).astype("int64")
    for target in TARGETS:
        frame[target] = pd.to_numeric(frame[target], errors="coerce").astype("float64")
    frame.index = pd.Index(frame.pop("airing_id").to_numpy(), name="airing_id")
    return _typed(frame[[*RAW_COLUMNS, *TARGETS]])


def _program_rows(programs: Iterable[Program | int]) -> pd.DataFrame:
    items = list(programs)
    ids = [p.pk if isinstance(p, Program) else int(p) for p in items]
    found = {
        row[0]: row
        for row in Program.objects.filter(pk__in=set(ids)).values_list(
            "id", "external_id", "channel__code", "genre", "content_rating", "duration_minutes", "is_live"
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        from bms.errors import NotFoundError

        raise NotFoundError("Unknown program.", details={"program_ids": missing[:20]})
    return pd.DataFrame.from_records(
        [found[i] for i in ids],
        columns=["program_id", "external_id", "channel", "genre", "content_rating", "duration_minutes", "is_live"],
    )


def slot_frame(
    *,
    programs: Sequence[Program | int],
    starts: Sequence[datetime],
    channel: Channel | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    paired: bool = False,
) -> pd.DataFrame:
    """Raw columns (no targets) for hypothetical airings of ``programs`` at ``starts``.

    By default every program x every start, program-major (row ``i * len(starts) + j`` is program i at
    start j), so predictions reshape to ``(len(programs), len(starts))``. With ``paired=True`` the two
    lists are zipped. ``channel`` (a Channel or its code) replaces each program's own channel. The lead-in
    is the program of the stored airing scheduled just before ``start`` on that channel in the same
    broadcast day, if any. ``overrides`` sets columns: a scalar for every row or a sequence per row.
    """
    starts_list = list(starts)
    if paired and len(programs) != len(starts_list):
        from bms.errors import ApplicationError

        raise ApplicationError("programs and starts must have the same length when paired.")
    base = _program_rows(programs)
    if paired:
        frame = base.copy()
        start_values = starts_list
    else:
        frame = base.loc[base.index.repeat(len(starts_list))].reset_index(drop=True)
        start_values = starts_list * len(base)
    frame["start"] = _local(pd.Series(start_values, dtype=object))
    if channel is not None:
        frame["channel"] = channel.code if isinstance(channel, Channel) else str(channel)
    frame["is_premiere"] = False
    frame["is_finale"] = False
    n = len(frame)
    for column, value in (overrides or {}).items():
        if column not in RAW_COLUMNS:
            from bms.errors import ApplicationError

            raise ApplicationError(f"Unknown feature {column!r}.", details={"allowed": list(RAW_COLUMNS)})
        per_row = isinstance(value, (list, tuple, np.ndarray, pd.Series))
        if per_row and len(value) != n:
            from bms.errors import ApplicationError

            raise ApplicationError(f"Override {column!r} needs {n} values.")
        if column == "start":
            frame["start"] = _local(pd.Series(list(value) if per_row else [value] * n, dtype=object))
        else:
            frame[column] = list(value) if per_row else value
    if "lead_in_program_id" not in (overrides or {}):
        frame["lead_in_program_id"] = _lead_ins(frame)
    if not len(frame):
        return _empty_frame(with_targets=False)
    return _typed(frame[list(RAW_COLUMNS)].reset_index(drop=True))


def _lead_ins(frame: pd.DataFrame) -> np.ndarray:
    """Program id of the stored airing just before each row's start on its channel (same broadcast day)."""
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype="int64")
    lo = frame["start"].min() - pd.Timedelta(days=1)
    hi = frame["start"].max()
    stored = pd.DataFrame.from_records(
        list(
            Airing.objects.filter(channel__code__in=set(frame["channel"]), start__gte=lo, start__lt=hi)
            .order_by()
            .values_list("channel__code", "start", "program_id")
        ),
        columns=["channel", "prev_start", "prev_program"],
    )
    if stored.empty:
        return np.full(n, NO_LEAD_IN, dtype="int64")
    stored["prev_start"] = _local(stored["prev_start"])
    stored = stored.sort_values("prev_start")
    left = pd.DataFrame(
        {"channel": frame["channel"].to_numpy(), "start": frame["start"].to_numpy(), "row": np.arange(n)}
    )
    left["start"] = _local(left["start"])
    left = left.sort_values("start")
    merged = pd.merge_asof(
        left,
        stored,
        left_on="start",
        right_on="prev_start",
        by="channel",
        allow_exact_matches=False,
        direction="backward",
    ).sort_values("row")
    channels = merged["channel"].to_numpy()
    same_day = _broadcast_day(local_wall_clock(merged["start"], channels)) == _broadcast_day(
        local_wall_clock(merged["prev_start"].fillna(merged["start"] - pd.Timedelta(days=2)), channels)
    )
    prev = merged["prev_program"].fillna(NO_LEAD_IN).to_numpy(dtype="int64")
    return np.where(same_day, prev, NO_LEAD_IN)


# --- The fitted feature encoder (one step, numpy only, so serving one row costs well under a ms) --------

# Identity-like columns: target-encoded with smoothing, cross-fitted on the training split only.
TARGET_ENCODED = ("program_id", "lead_in_program_id", "genre_daypart", "channel_hour")
CATEGORICAL = ("channel", "genre", "content_rating", "daypart")
ONE_HOT_EXTRA = ("genre_daypart",)  # linear models also get the genre x daypart cell as indicators
NUMERIC = (
    "hour",
    "hour_sin",
    "hour_cos",
    "weekday",
    "is_weekend",
    "month",
    "day_of_year",
    "is_holiday",
    "trend_days",
    "duration_minutes",
    "is_live",
    "is_premiere",
    "is_finale",
    "has_lead_in",
)
DERIVED_COLUMNS: tuple[str, ...] = (*TARGET_ENCODED, *CATEGORICAL, *NUMERIC)
_DAYPART_OF_HOUR = np.array([daypart_for_hour(h) for h in range(24)], dtype=str)
_EPOCH_DAYS_OF_TREND = int(np.datetime64("2020-01-01", "D").astype("int64"))
_HOLIDAY_YEARS = range(2000, 2051)


def _holiday_days() -> np.ndarray:
    return np.array(sorted(d for y in _HOLIDAY_YEARS for d in holidays(y)), dtype="datetime64[D]")


_HOLIDAYS = _holiday_days()  # sorted


def _is_holiday(days: np.ndarray) -> np.ndarray:
    """``np.isin(days, _HOLIDAYS)`` by binary search: same answer, ~10x faster for the one-row case."""
    at = np.minimum(np.searchsorted(_HOLIDAYS, days), len(_HOLIDAYS) - 1)
    return _HOLIDAYS[at] == days


def derive(raw: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every derived column of the raw frame as numpy arrays (calendar from ``start`` in local time)."""
    return derive_arrays(
        local=local_wall_clock(raw["start"], raw["channel"].to_numpy()),
        program_id=raw["program_id"].to_numpy(),
        lead_in_program_id=raw["lead_in_program_id"].to_numpy(),
        channel=raw["channel"].to_numpy(),
        genre=raw["genre"].to_numpy(),
        content_rating=raw["content_rating"].fillna("").to_numpy(),
        duration_minutes=pd.to_numeric(raw["duration_minutes"], errors="coerce").to_numpy(dtype="float64"),
        is_live=raw["is_live"].to_numpy(),
        is_premiere=raw["is_premiere"].to_numpy(),
        is_finale=raw["is_finale"].to_numpy(),
    )


def derive_arrays(
    *,
    local: np.ndarray,
    program_id: np.ndarray,
    lead_in_program_id: np.ndarray,
    channel: np.ndarray,
    genre: np.ndarray,
    content_rating: np.ndarray,
    duration_minutes: np.ndarray,
    is_live: np.ndarray,
    is_premiere: np.ndarray,
    is_finale: np.ndarray,
) -> dict[str, np.ndarray]:
    """The derived columns from raw column arrays; ``local`` is the start as naive local datetime64[m].

    The one implementation behind ``derive`` (pandas frames, training) and the serving fast path
    (plain rows), so the two can never compute a feature differently.
    """
    days = local.astype("datetime64[D]")
    minutes = (local - days).astype("int64")
    hour_int = minutes // 60
    hour = minutes / 60.0
    day_number = days.astype("int64")
    weekday = ((day_number + 3) % 7).astype("float64")  # 1970-01-01 was a Thursday (Monday = 0)
    month = (days.astype("datetime64[M]").astype("int64") % 12 + 1).astype("float64")
    day_of_year = (days - days.astype("datetime64[Y]")).astype("int64") + 1.0
    genre = genre.astype(str)
    channel = channel.astype(str)
    daypart = _DAYPART_OF_HOUR[hour_int]
    lead_in = lead_in_program_id.astype("int64")
    return {
        "program_id": program_id.astype("int64").astype(str),
        "lead_in_program_id": lead_in.astype(str),
        "genre_daypart": np.char.add(np.char.add(genre, "|"), daypart),
        "channel_hour": np.char.add(np.char.add(channel, "|"), hour_int.astype(str)),
        "channel": channel,
        "genre": genre,
        "content_rating": content_rating.astype(str),
        "daypart": daypart,
        "hour": hour,
        "hour_sin": np.sin(2 * np.pi * hour / 24.0),
        "hour_cos": np.cos(2 * np.pi * hour / 24.0),
        "weekday": weekday,
        "is_weekend": (weekday >= 5).astype("float64"),
        "month": month,
        "day_of_year": day_of_year,
        "is_holiday": _is_holiday(days).astype("float64"),
        "trend_days": (day_number - _EPOCH_DAYS_OF_TREND) + minutes / 1440.0,
        "duration_minutes": duration_minutes.astype("float64"),
        "is_live": is_live.astype("float64"),
        "is_premiere": is_premiere.astype("float64"),
        "is_finale": is_finale.astype("float64"),
        "has_lead_in": (lead_in != NO_LEAD_IN).astype("float64"),
    }


def _lookup(categories: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted ``categories``; -1 when unknown."""
    if len(categories) == 0:
        return np.full(len(values), -1, dtype="int64")
    pos = np.searchsorted(categories, values)
    pos = np.minimum(pos, len(categories) - 1)
    return np.where(categories[pos] == values, pos, -1)


def _smoothed_means(keys: np.ndarray, y: np.ndarray, smoothing: float, prior: float) -> tuple[np.ndarray, np.ndarray]:
    categories, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=y, minlength=len(categories))
    counts = np.bincount(inverse, minlength=len(categories))
    return categories, (sums + smoothing * prior) / (counts + smoothing)


class RawEncoder(TransformerMixin, BaseEstimator):
    """Raw frame -> float matrix. ``kind="tree"``: target encodings, ordinal codes, numbers.
    ``kind="linear"``: target encodings, one-hot indicators (incl. genre x daypart), numbers.

    Target encodings are smoothed means (``smoothing`` pseudo-rows of the prior). ``fit_transform`` returns
    out-of-fold encodings (``cv`` folds) so a model never sees a row's own target through its encoding;
    ``transform`` uses the encodings fitted on all rows given to ``fit``, i.e. the training split.
    """

    def __init__(self, kind: str = "tree", smoothing: float = 10.0, cv: int = 5, seed: int = 0) -> None:
        self.kind = kind
        self.smoothing = smoothing
        self.cv = cv
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any = None) -> RawEncoder:  # noqa: N803 - scikit-learn's signature
        self._fit(derive(X), np.asarray(y, dtype="float64"))
        return self

    def _fit(self, cols: dict[str, np.ndarray], y: np.ndarray) -> None:
        if self.kind not in ("tree", "linear"):
            raise ValueError(f"unknown encoder kind {self.kind!r}")
        self.prior_ = float(np.mean(y)) if len(y) else 0.0
        self.te_categories_: dict[str, np.ndarray] = {}
        self.te_values_: dict[str, np.ndarray] = {}
        for name in TARGET_ENCODED:
            cats, values = _smoothed_means(cols[name], y, self.smoothing, self.prior_)
            self.te_categories_[name], self.te_values_[name] = cats, values
        indicator_columns = CATEGORICAL if self.kind == "tree" else (*CATEGORICAL, *ONE_HOT_EXTRA)
        self.categories_: dict[str, np.ndarray] = {name: np.unique(cols[name]) for name in indicator_columns}
        numeric = np.column_stack([cols[name] for name in NUMERIC])
        medians = np.nanmedian(numeric, axis=0) if len(numeric) else np.zeros(len(NUMERIC))
        self.medians_ = np.where(np.isnan(medians), 0.0, medians)
        names = [f"te:{n}" for n in TARGET_ENCODED]
        if self.kind == "tree":
            names += [f"code:{n}" for n in CATEGORICAL]
        else:
            names += [f"onehot:{n}={c}" for n in indicator_columns for c in self.categories_[n]]
        names += [f"num:{n}" for n in NUMERIC]
        self.feature_names_out_ = np.array(names, dtype=str)

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **fit_params: Any) -> np.ndarray:  # noqa: N803
        cols = derive(X)
        target = np.asarray(y, dtype="float64")
        self._fit(cols, target)
        out = self._transform(cols)
        n = len(target)
        if self.cv >= 2 and n >= 2 * self.cv:
            folds = np.random.default_rng(self.seed).permutation(n) % self.cv
            for i, name in enumerate(TARGET_ENCODED):
                for fold in range(self.cv):
                    held = folds == fold
                    cats, values = _smoothed_means(cols[name][~held], target[~held], self.smoothing, self.prior_)
                    pos = _lookup(cats, cols[name][held])
                    out[held, i] = np.where(pos >= 0, values[np.maximum(pos, 0)], self.prior_)
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        return self._transform(derive(X))

    def _transform(self, cols: dict[str, np.ndarray]) -> np.ndarray:
        n = len(cols["hour"])
        blocks: list[np.ndarray] = []
        te = np.empty((n, len(TARGET_ENCODED)))
        for i, name in enumerate(TARGET_ENCODED):
            pos = _lookup(self.te_categories_[name], cols[name])
            te[:, i] = np.where(pos >= 0, self.te_values_[name][np.maximum(pos, 0)], self.prior_)
        blocks.append(te)
        if self.kind == "tree":
            codes = np.column_stack([_lookup(self.categories_[name], cols[name]) for name in CATEGORICAL])
            blocks.append(codes.astype("float64"))
        else:
            for name, cats in self.categories_.items():
                pos = _lookup(cats, cols[name])
                onehot = np.zeros((n, len(cats)))
                known = pos >= 0
                onehot[np.flatnonzero(known), pos[known]] = 1.0
                blocks.append(onehot)
        numeric = np.column_stack([cols[name] for name in NUMERIC])
        blocks.append(np.where(np.isnan(numeric), self.medians_, numeric))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self.feature_names_out_


def build_preprocessor(*, kind: str, seed: int) -> Pipeline:
    """The feature pipeline: ``kind="tree"`` (codes, raw scale) or ``"linear"`` (one-hot, standardised)."""
    encoder = RawEncoder(kind=kind, seed=seed)
    if kind == "tree":
        return Pipeline([("encode", encoder)])
    if kind == "linear":
        return Pipeline([("encode", encoder), ("scale", StandardScaler())])
    raise ValueError(f"unknown preprocessor kind {kind!r}")


def source_feature(name: str) -> str:
    """Map an encoder output column (``onehot:genre=drama``, ``te:program_id``) to its derived feature."""
    _, _, rest = name.partition(":")
    return rest.split("=", 1)[0] if rest else name
