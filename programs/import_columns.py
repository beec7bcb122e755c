"""Import validation, column by column: the fast path of ``programs.importer`` for well-formed rows.

A chunk's canonical frame is checked with vectorised string and number operations. A row every check
accepts becomes a row of the chunk's frame directly (``VALID_COLUMNS``); any other row (a value to
report, a naive wall-clock start, a spelling only the row parser knows) is left to the per-row
validation in ``programs.importer``, so the line errors and their wording come from one place. The
column checks accept a row only where the row parser gives the same values, and they are
deliberately narrower (e.g. a start must carry its UTC offset, a duration must be digits).

The field rules both paths share are here too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
from django.conf import settings
from django.utils.text import slugify

from programs.models import TARGETS, ContentRating, Genre

MIN_YEAR, MAX_YEAR = 1900, 2200  # starts outside are typos (and beyond what the summaries' dates hold)
TRUE_TEXT = frozenset({"1", "true", "t", "yes", "y"})
FALSE_TEXT = frozenset({"0", "false", "f", "no", "n"})
RATING_ALIASES = {"PG13": "PG-13", "TV-G": "G", "TV-Y": "G", "TV-PG": "PG", "TV-14": "PG-13", "TV-MA": "R"}
FLAGS = ("is_premiere", "is_finale", "is_live")

# Validated rows travel in columnar frames of one chunk: these columns, plus the ids the resolution
# adds (``program_id``, ``channel_id``). ``index`` is the row's position in the file, ``start`` is UTC.
VALID_COLUMNS = (
    "index",
    "line",
    "external_id",
    "title",
    "channel",
    "genre",
    "content_rating",
    "start",
    "duration_minutes",
    *FLAGS,
    "season",
    "episode",
    *TARGETS,
    "description",
    "universe",
    "time_zone",
)

# A start the column check parses: ISO 8601 with seconds optional, microseconds at most, and an offset
# (a naive start needs its zone's DST rules: the row parser places it).
_AWARE_START = (
    r"\s*(?P<year>\d{4})-\d{2}-\d{2}[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?"
    r"(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\s*"
)
_SMALL_WHOLE = r"\s*\d{1,5}\s*"  # durations, seasons, episodes: bounds checked after
_WHOLE = r"\s*\d{1,15}\s*"  # households: exact as a float too, as the row parser reads it


def genre_lookup() -> dict[str, str]:
    lookup = {value: value for value in Genre.values}
    lookup.update({str(label).lower(): value for value, label in Genre.choices})
    lookup.update(
        {"talk show": "talk", "game show": "game", "films": "movie", "film": "movie", "reality tv": "reality"}
    )
    return lookup


def parse_bool(value: object) -> bool | None:
    if value is None:
        return False
    return parse_bool_text(str(value))


@lru_cache(maxsize=256)  # a flag column has a handful of distinct spellings
def parse_bool_text(value: str) -> bool | None:
    text = value.strip().lower()
    if text in TRUE_TEXT:
        return True
    if text in FALSE_TEXT or text == "":
        return False
    return None


@lru_cache(maxsize=4096)
def derived_id(channel: str, title: str) -> str:
    return slugify(f"{channel}-{title}")[:64]


# --- the column checks -------------------------------------------------------------------------
def _text(frame: pd.DataFrame, name: str, default: str = "", *, stripped: bool = False) -> pd.Series:
    """A column as stripped text, missing values (and a missing column) as ``default``, as in
    ``(rec.get(name) or default).strip()``. ``stripped``: no value has anything to strip."""
    if name not in frame.columns:
        return pd.Series([default.strip()] * len(frame), index=frame.index, dtype="object")
    column = frame[name].astype("object")
    filled = column.where(column.notna() & (column != ""), default)
    return (filled if stripped else filled.str.strip()).astype("object")


def _mapped(values: pd.Series, lookup: Callable[[str], object]) -> pd.Series:
    """``lookup`` applied once per distinct value (columns of codes have few)."""
    return values.map({v: lookup(v) for v in values.unique().tolist()})


def _whole(
    frame: pd.DataFrame, name: str, pattern: str, lo: int, hi: int, *, stripped: bool = False
) -> tuple[pd.Series, np.ndarray]:
    """A whole-number column: values (None where missing) and where the column check accepts it."""
    if name not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype="object"), np.ones(len(frame), bool)
    raw = frame[name].astype("object")
    present = raw.notna().to_numpy()
    digits = raw.where(raw.str.fullmatch(pattern).fillna(False).astype(bool))
    numbers = pd.to_numeric(digits if stripped else digits.str.strip(), errors="coerce")
    ok = (~present) | (numbers.between(lo, hi).to_numpy() & numbers.notna().to_numpy())
    values = pd.Series([None if v != v else int(v) for v in numbers.tolist()], index=frame.index, dtype="object").where(
        present, None
    )
    return values, ok


def _starts(frame: pd.DataFrame, *, stripped: bool = False) -> tuple[pd.Series, np.ndarray]:
    raw = frame["start"].astype("object")
    found = raw.str.extract(f"^{_AWARE_START}$", expand=False)
    year = pd.to_numeric(found if isinstance(found, pd.Series) else found.iloc[:, 0], errors="coerce")
    ok = year.between(MIN_YEAR, MAX_YEAR).to_numpy()
    taken = raw.where(ok)
    starts = pd.to_datetime(taken if stripped else taken.str.strip(), format="ISO8601", utc=True, errors="coerce")
    return starts, ok & starts.notna().to_numpy()


def _zones_ok(frame: pd.DataFrame, *, stripped: bool = False) -> np.ndarray:
    """A row's own time_zone must name a zone (it does not move an aware start)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    def known(name: str) -> bool:
        if not name:
            return True
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return False
        return True

    return _mapped(_text(frame, "time_zone", stripped=stripped), known).to_numpy(dtype=bool)


def _programs(
    frame: pd.DataFrame, channel: pd.Series, *, stripped: bool = False
) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """external_id (derived from the series, else channel and title, when missing), title, accepted."""
    external_id = _text(frame, "external_id", stripped=stripped)
    series = _text(frame, "series", stripped=stripped)
    title = _text(frame, "title", stripped=stripped)
    title = title.where(title != "", series)
    ok = ((external_id != "") | (title != "")).to_numpy(copy=True)
    missing = (external_id == "").to_numpy() & ok
    if missing.any():
        derived = [
            slugify(s)[:64] if s else derived_id(c, t)
            for s, c, t in zip(
                series[missing].tolist(), channel[missing].tolist(), title[missing].tolist(), strict=True
            )
        ]
        external_id = external_id.copy()
        external_id[missing] = derived
    ok &= (external_id.str.len() <= 64).to_numpy()
    return external_id, title.where(title != "", external_id), ok


def _targets(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
    ranges: dict[str, tuple[float, float]] = settings.TARGET_RANGES
    values: dict[str, np.ndarray] = {}
    ok = np.ones(len(frame), bool)
    for target in TARGETS:
        if target not in frame.columns:
            values[target] = np.full(len(frame), np.nan)
            continue
        raw = frame[target].astype("object")
        present = raw.notna().to_numpy()
        numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        lo, hi = ranges[target]
        with np.errstate(invalid="ignore"):
            ok &= ~present | (np.isfinite(numbers) & (numbers >= 0) & (numbers >= lo) & (numbers <= hi))
        values[target] = np.where(present, numbers, np.nan)
    return values, ok


def valid_by_column(
    frame: pd.DataFrame, lines: list[int], offset: int, *, stripped: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows every column check accepts, as a frame of ``VALID_COLUMNS`` (``index`` = ``offset`` +
    position in the chunk), and a mask of the rows left to the row parser.

    ``frame`` is a chunk's canonical frame with a ``start`` column (other layouts: every row is left).
    ``stripped``: no value begins or ends with whitespace (the block reader checked), so nothing is stripped."""
    n = len(frame)
    if "start" not in frame.columns or n == 0:
        return pd.DataFrame(columns=list(VALID_COLUMNS)), np.ones(n, bool)
    starts, ok = _starts(frame, stripped=stripped)
    ok &= _zones_ok(frame, stripped=stripped)
    channel = _text(frame, "channel", stripped=stripped)
    ok &= (channel != "").to_numpy() & _mapped(channel, lambda c: bool(slugify(c))).to_numpy(dtype=bool)
    external_id, title, programs_ok = _programs(frame, channel, stripped=stripped)
    ok &= programs_ok
    genres = genre_lookup()
    genre = _mapped(_text(frame, "genre", "other", stripped=stripped), lambda g: genres.get(g.lower()))
    ok &= genre.notna().to_numpy()
    rating = _mapped(
        _text(frame, "content_rating", "PG", stripped=stripped), lambda r: RATING_ALIASES.get(r.upper(), r.upper())
    )
    ok &= rating.isin(ContentRating.values).to_numpy()
    duration, duration_ok = _whole(frame, "duration_minutes", _SMALL_WHOLE, 1, 1440, stripped=stripped)
    ok &= duration_ok & duration.notna().to_numpy()
    flags: dict[str, pd.Series] = {}
    for flag in FLAGS:
        column = frame[flag].astype("object") if flag in frame.columns else pd.Series([None] * n, dtype="object")
        parsed = _mapped(column.fillna(""), parse_bool)
        ok &= parsed.notna().to_numpy()
        flags[flag] = parsed
    season, season_ok = _whole(frame, "season", _SMALL_WHOLE, 0, 32767, stripped=stripped)
    episode, episode_ok = _whole(frame, "episode", _SMALL_WHOLE, 0, 32767, stripped=stripped)
    universe, universe_ok = _whole(frame, "channel_universe", _WHOLE, 1, 10**15, stripped=stripped)
    targets, targets_ok = _targets(frame)
    ok &= season_ok & episode_ok & universe_ok & targets_ok

    keep = np.flatnonzero(ok)
    zone = _text(frame, "time_zone", stripped=stripped)
    valid = pd.DataFrame(
        {
            "index": keep + offset,
            "line": np.asarray(lines, dtype="int64")[keep],
            "external_id": external_id.to_numpy()[keep],
            "title": title.to_numpy()[keep],
            "channel": channel.to_numpy()[keep],
            "genre": genre.to_numpy()[keep],
            "content_rating": rating.to_numpy()[keep],
            "start": starts.iloc[keep].reset_index(drop=True),
            "duration_minutes": duration.to_numpy()[keep].astype("int64"),
            **{flag: flags[flag].to_numpy()[keep].astype(bool) for flag in FLAGS},
            "season": pd.Series(season.to_numpy()[keep], dtype="object"),
            "episode": pd.Series(episode.to_numpy()[keep], dtype="object"),
            **{t: targets[t][keep] for t in TARGETS},
            "description": _text(frame, "description", stripped=stripped).to_numpy()[keep],
            "universe": pd.Series(universe.to_numpy()[keep], dtype="object"),
            "time_zone": pd.Series(zone.where(zone != "", None).to_numpy()[keep], dtype="object"),
        },
        columns=list(VALID_COLUMNS),
    )
    return valid, ~ok
