"""Synthetic broadcast data: channels, programs and ~50k airings with known noise-free targets.

Every formula and default below is documented in ``docs/data.md``. The module has two halves:

* :func:`simulate` is pure (no database) and deterministic for a seed. It returns pandas frames
  holding, next to every noisy target, its noise-free *expected value* (the best prediction any
  model can make from what the database stores).
* :func:`generate` writes one simulation to the database in bulk, atomically, and bumps
  ``DataVersion``. :func:`ceilings` is the R² of the expected values on the later-in-time holdout.

Every noise-free effect depends only on stored columns (program, channel, genre, content rating,
start time, duration, live / premiere / finale flags) or on the previous airing's program on the
same channel (lead-in), so a model can learn all of it.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from django.db import transaction
from django.db.models import ProtectedError
from scipy.stats import norm

from bms.errors import ApplicationError, ConflictError
from programs.aggregates import airings_aggregate
from programs.calendar import DAYPART_NAMES, holidays
from programs.importer import AIRING_INSERT_COLUMNS, airings_bulk_insert
from programs.models import TARGETS, Airing, Channel, DataVersion, Genre, Program
from programs.services import data_version_bump

# --- schedule grammar ---------------------------------------------------------------------------
# A day runs 06:00 -> 02:00 (1200 minutes). It is cut into blocks; each block has options, and an
# option is a list of (genre, minutes) filling the block exactly. Strip blocks pick one option per
# channel for Monday-Friday (the same show every weekday); weekly blocks pick per weekday.
Slot = tuple[str, int]
Block = tuple[int, int, bool, tuple[tuple[Slot, ...], ...]]  # (start offset, minutes, strip, options)

_PRIME_OPTIONS: tuple[tuple[Slot, ...], ...] = (
    (("comedy", 30), ("comedy", 30), ("drama", 60), ("drama", 60)),
    (("reality", 60), ("drama", 60), ("drama", 60)),
    (("movie", 120), ("drama", 60)),
    (("sports", 120), ("talk", 60)),
    (("reality", 120), ("drama", 60)),
    (("game", 60), ("reality", 60), ("drama", 60)),
    (("documentary", 90), ("drama", 90)),
)
_LATE_OPTIONS: tuple[tuple[Slot, ...], ...] = (
    (("talk", 60), ("movie", 90)),
    (("talk", 60), ("comedy", 30), ("drama", 60)),
    (("talk", 90), ("reality", 60)),
)
WEEKDAY_BLOCKS: tuple[Block, ...] = (
    (0, 180, True, ((("news", 120), ("kids", 60)), (("news", 90), ("kids", 30), ("kids", 60)))),
    (
        180,
        180,
        True,
        ((("talk", 60), ("game", 60), ("reality", 60)), (("talk", 90), ("documentary", 90))),
    ),
    (360, 60, True, ((("news", 60),), (("news", 30), ("comedy", 30)))),
    (420, 180, True, ((("drama", 60), ("movie", 120)), (("drama", 60), ("drama", 60), ("talk", 60)))),
    (600, 120, True, ((("talk", 60), ("game", 60)), (("kids", 60), ("animation", 30), ("game", 30)))),
    (720, 60, True, ((("news", 60),),)),
    (780, 60, True, ((("game", 60),), (("game", 30), ("comedy", 30)))),
    (840, 180, False, _PRIME_OPTIONS),
    (1020, 30, True, ((("news", 30),),)),
    (1050, 150, False, _LATE_OPTIONS),
)
WEEKEND_BLOCKS: tuple[Block, ...] = (
    (0, 180, False, ((("news", 60), ("kids", 60), ("kids", 60)), (("news", 60), ("kids", 30), ("animation", 90)))),
    (
        180,
        240,
        False,
        (
            (("sports", 120), ("movie", 120)),
            (("documentary", 60), ("reality", 60), ("movie", 120)),
            (("movie", 120), ("sports", 120)),
        ),
    ),
    (420, 180, False, ((("sports", 120), ("documentary", 60)), (("movie", 120), ("reality", 60)))),
    (600, 120, False, ((("sports", 120),), (("movie", 120),), (("reality", 60), ("game", 60)))),
    (720, 60, False, ((("news", 60),),)),
    (780, 60, False, ((("game", 60),), (("documentary", 60),), (("comedy", 30), ("comedy", 30)))),
    (840, 180, False, _PRIME_OPTIONS),
    (1020, 30, False, ((("news", 30),),)),
    (1050, 150, False, ((("comedy", 30), ("movie", 120)), (("movie", 90), ("talk", 60)))),
)

# Genres whose runs start with a premiere / end with a (season) finale. Movies premiere on their
# first showing on the channel; news has neither.
PREMIERE_GENRES = frozenset(
    {"drama", "comedy", "reality", "documentary", "animation", "kids", "game", "talk", "sports"}
)
FINALE_GENRES = frozenset({"drama", "comedy", "reality", "sports"})
LIVE_GENRES = frozenset({"news", "sports"})
RUN_WEEKS = 13  # a season: 13 weekly airings (65 for a Monday-Friday strip)

# --- audience model -----------------------------------------------------------------------------
# Share of the channel's potential viewers watching at each local start hour 06..25 (25 = 01:00).
HOUR_CURVE = np.array(
    [
        0.25,
        0.33,
        0.38,
        0.30,
        0.28,
        0.28,
        0.34,
        0.30,
        0.30,
        0.33,
        0.45,
        0.55,
        0.70,
        0.78,
        0.95,
        1.00,
        0.92,
        0.60,
        0.42,
        0.28,
    ]
)
# Genre x daypart fit (rows: genres, columns: calendar.DAYPART_NAMES order).
GENRE_FIT: dict[str, tuple[float, float, float, float, float, float]] = {
    "news": (1.35, 0.90, 1.10, 1.30, 0.80, 1.15),
    "drama": (0.60, 1.05, 0.90, 0.95, 1.25, 1.00),
    "comedy": (0.70, 0.90, 1.05, 1.15, 1.15, 1.20),
    "sports": (0.70, 1.20, 1.25, 1.10, 1.40, 1.00),
    "reality": (0.70, 0.95, 1.00, 1.10, 1.15, 0.95),
    "documentary": (0.80, 0.85, 0.80, 0.85, 0.80, 0.75),
    "kids": (1.45, 0.85, 1.20, 0.60, 0.40, 0.30),
    "movie": (0.70, 1.00, 1.00, 1.00, 1.20, 1.10),
    "talk": (1.00, 1.05, 1.00, 0.95, 0.85, 1.25),
    "game": (0.80, 1.05, 1.15, 1.25, 0.95, 0.80),
    "animation": (1.20, 0.90, 1.15, 0.90, 0.80, 1.05),
    "other": (1.00, 1.00, 1.00, 1.00, 1.00, 1.00),
}
WEEKDAY_EFFECT = np.array([1.00, 1.00, 1.02, 1.05, 0.88, 0.86, 1.08])  # Monday..Sunday
MONTH_EFFECT = np.array([1.10, 1.08, 1.03, 0.98, 0.95, 0.86, 0.82, 0.85, 0.98, 1.04, 1.08, 1.05])  # Jan..Dec
PERSONS_PER_HOUSEHOLD = 1.6  # rating = audience / (persons per household x universe)

# --- revenue model ------------------------------------------------------------------------------
CPM_BY_DAYPART = np.array([9.0, 7.0, 11.0, 16.0, 32.0, 14.0])  # USD per thousand impressions per 30 s spot
CPM_GENRE: dict[str, float] = {
    "news": 0.95,
    "drama": 1.10,
    "comedy": 1.15,
    "sports": 1.40,
    "reality": 1.05,
    "documentary": 0.85,
    "kids": 0.70,
    "movie": 1.00,
    "talk": 0.90,
    "game": 0.95,
    "animation": 0.80,
    "other": 1.00,
}
AD_MINUTES_PER_HOUR = np.array([14.0, 16.0, 15.0, 14.0, 13.0, 15.0])  # by daypart
SELL_THROUGH_DAYPART = np.array([0.72, 0.65, 0.75, 0.82, 0.92, 0.70])
SELL_THROUGH_MONTH = np.array([0.88, 0.90, 0.95, 0.97, 1.00, 0.92, 0.90, 0.93, 1.00, 1.03, 1.06, 1.05])

# --- engagement model ---------------------------------------------------------------------------
ENGAGEMENT_GENRE: dict[str, float] = {
    "news": -6.0,
    "drama": 8.0,
    "comedy": 4.0,
    "sports": 10.0,
    "reality": 6.0,
    "documentary": -2.0,
    "kids": 0.0,
    "movie": 3.0,
    "talk": -8.0,
    "game": -4.0,
    "animation": 2.0,
    "other": 0.0,
}

# --- names --------------------------------------------------------------------------------------
CHANNEL_NAMES = (
    "Northstar One",
    "Metro Seven",
    "Riverside TV",
    "Summit Network",
    "Harbor Channel",
    "Crescent TV",
    "Lakeshore Broadcasting",
    "Pioneer Television",
    "Blue Ridge TV",
    "Coastline Network",
    "Granite State TV",
    "Prairie Channel",
)
_ADJ = (
    "Silent", "Broken", "Golden", "Hidden", "Last", "Wild", "Crimson", "Northern", "Lucky", "Secret",
    "Midnight", "Burning", "Quiet", "Distant", "Bright", "Frozen", "Lonely", "Restless", "Hollow", "Sudden",
)  # fmt: skip
_NOUN = (
    "Harbor", "Line", "Shift", "Frontier", "Coast", "Bridge", "Valley", "Signal", "Hours", "River",
    "Garden", "District", "Station", "Crossing", "Ridge", "Letters", "Orchard", "Summer", "Empire", "Tide",
)  # fmt: skip
_PLACE = ("Chicago", "Boston", "Phoenix", "Denver", "Austin", "Portland", "Memphis", "Seattle", "Tampa", "Dallas")
_NAME = ("Maggie", "Frank", "Rosie", "Dave", "Lena", "Marcus", "Tina", "Eddie", "Carla", "Sam", "Nora", "Vince")
_TITLE_PATTERNS: dict[str, tuple[str, ...]] = {
    "news": ("{ch} Morning Report", "{ch} News at Noon", "{ch} Evening News", "{ch} Late Edition", "{place} Today"),
    "drama": ("{adj} {noun}", "The {adj} {noun}", "{place} {noun}", "{noun} of {place}"),
    "comedy": ("{name}'s Place", "Two Doors Down from {name}", "{adj} Roommates", "The {name} Show", "{place} Diner"),
    "sports": (
        "{ch} Game Night",
        "{place} Football Live",
        "Weekend Sports Central",
        "{place} Basketball",
        "Fight Night {place}",
    ),
    "reality": ("{place} Ink", "Love on the {noun}", "{adj} Kitchen", "Survive the {noun}", "House Flip {place}"),
    "documentary": ("Planet {noun}", "Inside the {noun}", "{adj} Earth", "The {noun} Files", "Secrets of {place}"),
    "kids": ("Captain {name}", "Little {noun} Club", "{name} and the {adj} Kite", "Sunny {noun}", "Puzzle Pals"),
    "movie": ("{adj} {noun}", "The {noun} Job", "Return to {place}", "{adj} Night in {place}", "The Last {noun}"),
    "talk": ("Tonight with {name}", "The {name} Hour", "{place} Live!", "Coffee with {name}", "Late with {name}"),
    "game": ("Spin the {noun}", "{adj} Fortune", "Match or Bust", "Family Clash {place}", "Beat the {noun}"),
    "animation": ("Robo {noun}", "Space {noun}s", "{adj} Dragons", "Ninja {name}", "Star {noun} Academy"),
    "other": ("{adj} {noun}",),
}


MAX_CHANNELS = 50  # a national group; channels past the twelve named ones are numbered sister channels
MAX_PROGRAMS = 5000
MAX_DAYS = 7320  # twenty years


@dataclass(frozen=True)
class GeneratorConfig:
    """Size, calendar and noise of the synthetic data. Defaults give ~52k airings and ceilings 0.80-0.95."""

    seed: int = 42
    channels: int = 4
    programs: int = 300
    days: int = 730
    start_date: date = date(2024, 1, 1)  # first broadcast day, local time
    time_zone: str = "America/New_York"
    # latent quality of a program: log-audience effect ~ N(0, quality_sd)
    quality_sd: float = 0.30
    lead_in_weight: float = 0.30  # log-audience gain per unit of the previous program's quality
    trend_per_year: float = -0.03  # slow audience erosion (log scale, per year)
    holiday_effect: float = 1.12
    premiere_effect: float = 1.30
    finale_effect: float = 1.20
    # noise (multiplicative lognormal sigmas; engagement: additive normal, in points)
    audience_noise: float = 0.21
    rating_noise: float = 0.06
    revenue_noise: float = 0.12
    engagement_noise: float = 5.0
    airings: int | None = None  # keep only the earliest N airings (see days_for_airings)

    def __post_init__(self) -> None:
        if not 1 <= self.channels <= MAX_CHANNELS:
            raise ApplicationError(f"channels must be between 1 and {MAX_CHANNELS}.")
        if self.days < 1 or self.days > MAX_DAYS:
            raise ApplicationError(f"days must be between 1 and {MAX_DAYS}.")
        if not 1 <= self.programs <= MAX_PROGRAMS:
            raise ApplicationError(f"programs must be between 1 and {MAX_PROGRAMS}.")
        if self.airings is not None and self.airings < 1:
            raise ApplicationError("airings must be positive.")
        for name in ("audience_noise", "rating_noise", "revenue_noise", "engagement_noise", "quality_sd"):
            if getattr(self, name) < 0:
                raise ApplicationError(f"{name} must not be negative.")


@dataclass
class Simulation:
    """Frames of one simulated data set. ``airings`` has ``<target>`` and ``<target>_expected`` columns."""

    config: GeneratorConfig
    channels: pd.DataFrame
    programs: pd.DataFrame
    airings: pd.DataFrame = field(repr=False)


@dataclass(frozen=True)
class GenerationStats:
    channels: int
    programs: int
    airings: int
    data_version: int
    seconds: float
    ceilings: dict[str, float]


# --- simulation ---------------------------------------------------------------------------------
def _band(offset: int) -> str:
    """Which pool of programs a slot draws from: content rating and appeal depend on it."""
    hour = 6 + offset // 60
    if hour < 9:
        return "morning"
    if hour < 18:
        return "day"
    if hour < 23:
        return "prime"
    return "late"


def _content_rating(genre: str, band: str, rng: np.random.Generator) -> str:
    if genre in ("kids", "animation") and band != "late":
        return "G"
    if genre in ("news", "sports", "documentary", "game"):
        return "PG"
    if band == "late":
        return str(rng.choice(["PG-13", "R"], p=[0.5, 0.5]))
    if band == "prime":
        return str(rng.choice(["PG", "PG-13"], p=[0.4, 0.6]))
    if band in ("early", "any"):  # pools shared across bands (small configs)
        return str(rng.choice(["PG", "PG-13"], p=[0.5, 0.5]))
    return str(rng.choice(["G", "PG"], p=[0.3, 0.7]))


def _allocate(budget: int, demand: np.ndarray) -> np.ndarray:
    """Split ``budget`` programs over kinds by sqrt(demand); >=1 each, never above demand (runs to fill)."""
    n = len(demand)
    if budget < n:
        raise ApplicationError(
            f"{budget} programs per channel is too few: this schedule needs at least {n} "
            "(one per genre and length it airs); raise programs or lower channels."
        )
    alloc = np.ones(n, dtype=int)
    while alloc.sum() < budget:
        spare = demand - alloc
        if spare.max() <= 0:
            break  # more programs than the schedule can air: the rest would never be shown
        weight = np.sqrt(demand)  # sqrt: movies (a new title per airing) must not swallow the budget
        want = weight / weight.sum() * budget - alloc
        want[spare <= 0] = -np.inf
        alloc[int(np.argmax(want))] += 1
    return alloc


def _titles(rng: np.random.Generator, genres: list[str], channel_names: list[str]) -> list[str]:
    used: set[str] = set()
    titles = []
    for genre, ch in zip(genres, channel_names, strict=True):
        patterns = _TITLE_PATTERNS.get(genre, _TITLE_PATTERNS["other"])
        for attempt in range(40):
            pattern = patterns[int(rng.integers(len(patterns)))]
            title = pattern.format(
                ch=ch.split()[0],
                adj=_ADJ[int(rng.integers(len(_ADJ)))],
                noun=_NOUN[int(rng.integers(len(_NOUN)))],
                place=_PLACE[int(rng.integers(len(_PLACE)))],
                name=_NAME[int(rng.integers(len(_NAME)))],
            )
            if attempt >= 30:
                title = f"{title} {attempt - 28}"
            if title not in used:
                break
        used.add(title)
        titles.append(title)
    return titles


def _external_ids(rng: np.random.Generator, n: int) -> list[str]:
    codes = rng.choice(26**3 * 1000, size=n, replace=False)
    out = []
    for code in codes.tolist():
        letters, digits = divmod(int(code), 1000)
        a, rest = divmod(letters, 26 * 26)
        b, c = divmod(rest, 26)
        out.append(f"{chr(65 + a)}{chr(65 + b)}{chr(65 + c)}{digits:03d}")
    return out


def _expected_clipped_normal(mu: np.ndarray, sd: float, lo: float = 0.0, hi: float = 100.0) -> np.ndarray:
    """E[clip(mu + sd * Z, lo, hi)] for Z ~ N(0, 1)."""
    if sd == 0:
        clipped: np.ndarray = np.clip(mu, lo, hi)
        return clipped
    a = (lo - mu) / sd
    b = (hi - mu) / sd
    return np.asarray(
        lo * norm.cdf(a) + hi * norm.sf(b) + mu * (norm.cdf(b) - norm.cdf(a)) + sd * (norm.pdf(a) - norm.pdf(b))
    )


def channel_names(n: int) -> list[str]:
    """The first ``n`` channel names: the twelve named ones, then numbered sister channels ("Metro Seven 2")."""
    return [
        CHANNEL_NAMES[i]
        if i < len(CHANNEL_NAMES)
        else f"{CHANNEL_NAMES[i % len(CHANNEL_NAMES)]} {i // len(CHANNEL_NAMES) + 1}"
        for i in range(n)
    ]


def _channels(config: GeneratorConfig, rng: np.random.Generator) -> pd.DataFrame:
    names = channel_names(config.channels)
    universes = (rng.integers(400, 1400, size=config.channels) * 10_000).astype(np.int64)
    shares = rng.uniform(0.02, 0.05, size=config.channels)
    return pd.DataFrame(
        {
            "code": [n.lower().replace(" ", "-") for n in names],
            "name": names,
            "universe_households": universes,
            "base_share": shares,
        }
    )


def _weekly_templates(
    config: GeneratorConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, dict[tuple[int, int], np.ndarray]]:
    """Per channel and weekday, the day's (offset, minutes, series id) rows, and the series (a slot's show)."""
    series_rows: list[dict[str, Any]] = []
    strip_sids: dict[tuple[int, int | str, int, str, int], int] = {}  # (channel, weekday or strip, offset, slot)
    template: dict[tuple[int, int], np.ndarray] = {}
    for c in range(config.channels):
        strip_choice: dict[int, int] = {}
        for wd in range(7):
            blocks = WEEKDAY_BLOCKS if wd < 5 else WEEKEND_BLOCKS
            items: list[tuple[int, int, int]] = []
            for b_index, (b_start, _, strip, options) in enumerate(blocks):
                if strip:
                    if b_index not in strip_choice:
                        strip_choice[b_index] = int(rng.integers(len(options)))
                    choice = strip_choice[b_index]
                else:
                    choice = int(rng.integers(len(options)))
                offset = b_start
                for genre, minutes in options[choice]:
                    key = (c, "strip" if strip else wd, offset, genre, minutes)
                    sid = strip_sids.get(key) if strip else None
                    if sid is None:
                        sid = len(series_rows)
                        if strip:
                            strip_sids[key] = sid
                        series_rows.append(
                            {
                                "sid": sid,
                                "channel": c,
                                "genre": genre,
                                "minutes": minutes,
                                "band": _band(offset),
                                "strip": strip,
                            }
                        )
                    items.append((offset, minutes, sid))
                    offset += minutes
            template[(c, wd)] = np.array(items, dtype=np.int64)
    return pd.DataFrame(series_rows), template


def _skeleton(
    config: GeneratorConfig, template: dict[tuple[int, int], np.ndarray], series: pd.DataFrame
) -> pd.DataFrame:
    """Every airing slot: the weekly templates tiled over the days (vectorised per channel and weekday)."""
    days = np.arange(config.days)
    weekdays = (config.start_date.weekday() + days) % 7
    parts: list[np.ndarray] = []
    for c in range(config.channels):
        for wd in range(7):
            arr = template[(c, wd)]
            on = days[weekdays == wd]
            parts.append(
                np.column_stack([np.repeat(on, len(arr)), np.full(len(on) * len(arr), c), np.tile(arr, (len(on), 1))])
            )
    df = pd.DataFrame(np.concatenate(parts), columns=["day", "channel", "offset", "minutes", "sid"])
    df = df.sort_values(["channel", "day", "offset"], kind="stable").reset_index(drop=True)
    df["genre"] = series["genre"].to_numpy()[df["sid"]]
    return df


@dataclass
class _Casting:
    """Which program airs in each slot: the skeleton with ``program`` / ``first_cycle`` / ``k``, and the pools."""

    airings: pd.DataFrame
    run_len: np.ndarray
    kinds: pd.DataFrame
    pool: np.ndarray


def _cast(config: GeneratorConfig, df: pd.DataFrame, series: pd.DataFrame) -> _Casting:
    """Runs (seasons) of each series and the program each run gets from its kind's pool."""
    per_week = np.where(series["strip"], 5, 1)
    run_len = np.where(
        series["genre"] == "news",
        10**9,
        np.where(series["genre"] == "movie", 1, RUN_WEEKS * per_week),
    )
    df["k"] = df.groupby("sid").cumcount()
    df["run"] = df["k"] // run_len[df["sid"]]
    budgets = np.full(config.channels, config.programs // config.channels)
    budgets[: config.programs % config.channels] += 1
    # Small configs may have fewer programs per channel than (genre, length, band) kinds: then pools
    # are shared across bands, first keeping late night apart (R-rated programs stay late), then fully.
    for pool_band in (
        series["band"],
        series["band"].where(series["band"] == "late", "early"),
        pd.Series("any", index=series.index),
    ):
        series["pool_band"] = pool_band
        kinds_per_channel = series.drop_duplicates(["channel", "genre", "minutes", "pool_band"])["channel"]
        if (kinds_per_channel.value_counts().reindex(range(config.channels), fill_value=0) <= budgets).all():
            break
    kind_of_series = series.groupby(["channel", "genre", "minutes", "pool_band"], sort=True).ngroup()
    df["kind"] = kind_of_series.to_numpy()[df["sid"]]
    kinds = series.assign(kind=kind_of_series).drop_duplicates("kind").sort_values("kind").reset_index(drop=True)

    # Each (series, run) gets a program; within a kind, runs take the kind's programs round-robin in
    # order of first airing, so programs come back for further seasons.
    run_first = df.groupby(["sid", "run"], sort=False).agg(first=("day", "min"), kind=("kind", "first")).reset_index()
    run_first = run_first.sort_values(["kind", "first", "sid"], kind="stable").reset_index(drop=True)
    run_first["j"] = run_first.groupby("kind").cumcount()
    demand = run_first.groupby("kind").size().reindex(kinds["kind"], fill_value=0).to_numpy()

    pool = np.zeros(len(kinds), dtype=int)
    for c in range(config.channels):
        mask = (kinds["channel"] == c).to_numpy()
        pool[mask] = _allocate(int(budgets[c]), demand[mask])
    pool_start = np.concatenate([[0], np.cumsum(pool)[:-1]])
    run_first["program"] = pool_start[run_first["kind"]] + run_first["j"] % pool[run_first["kind"]]
    run_first["first_cycle"] = run_first["j"] < pool[run_first["kind"]]
    df = df.merge(run_first[["sid", "run", "program", "first_cycle"]], on=["sid", "run"], how="left")
    return _Casting(airings=df, run_len=run_len, kinds=kinds, pool=pool)


def _programs(
    config: GeneratorConfig,
    casting: _Casting,
    channels: pd.DataFrame,
    rng: np.random.Generator,
    quality_seq: np.random.SeedSequence,
) -> pd.DataFrame:
    """The programs of every pool: ids, titles, ratings, and the latent quality that drives audiences."""
    kinds, pool = casting.kinds, casting.pool
    names = list(channels["name"])
    n_programs = int(pool.sum())
    prog_kind = np.repeat(np.arange(len(kinds)), pool)
    p_genre = kinds["genre"].to_numpy()[prog_kind]
    p_band = kinds["pool_band"].to_numpy()[prog_kind]
    p_channel = kinds["channel"].to_numpy()[prog_kind]
    programs = pd.DataFrame(
        {
            "external_id": _external_ids(rng, n_programs),
            "title": _titles(rng, list(p_genre), [names[c] for c in p_channel]),
            "channel_code": channels["code"].to_numpy()[p_channel],
            "genre": p_genre,
            "content_rating": [_content_rating(g, b, rng) for g, b in zip(p_genre, p_band, strict=True)],
            "duration_minutes": kinds["minutes"].to_numpy()[prog_kind].astype(np.int64),
            "is_live": np.isin(p_genre, list(LIVE_GENRES)),
        }
    )
    qrng = np.random.default_rng(quality_seq)
    quality = qrng.normal(0.0, config.quality_sd, size=n_programs)
    quality[p_genre == "news"] *= 0.5  # news brands differ less than entertainment
    programs["quality"] = quality
    programs["description"] = [
        f"{Genre(g).label} on {names[c]}, {m} minutes."
        for g, c, m in zip(p_genre, p_channel, programs["duration_minutes"], strict=True)
    ]
    return programs


def _flags(casting: _Casting) -> tuple[np.ndarray, np.ndarray]:
    """Premieres (first airing of a run; a movie's first showing) and finales (last airing of a full run)."""
    df, run_len = casting.airings, casting.run_len
    genre_arr = df["genre"].to_numpy()
    run_len_a = run_len[df["sid"]]
    pos_in_run = df["k"].to_numpy() % run_len_a
    is_movie = genre_arr == "movie"
    premiere = np.where(
        is_movie,
        df["first_cycle"].to_numpy(),
        np.isin(genre_arr, list(PREMIERE_GENRES)) & (pos_in_run == 0),
    )
    last_k = df.groupby("sid")["k"].transform("max").to_numpy()
    full_run = (df["k"].to_numpy() - pos_in_run + run_len_a - 1) <= last_k
    finale = np.isin(genre_arr, list(FINALE_GENRES)) & (pos_in_run == run_len_a - 1) & full_run & ~is_movie
    return premiere, finale


@dataclass
class _Calendar:
    """Each airing's start (aware, local) and the calendar facts the audience model uses."""

    start: pd.Series
    hour_idx: np.ndarray
    weekday: np.ndarray
    month: np.ndarray
    holiday: np.ndarray
    daypart: np.ndarray


def _calendar(config: GeneratorConfig, df: pd.DataFrame) -> _Calendar:
    base = pd.Timestamp(config.start_date) + pd.Timedelta(hours=6)
    local_naive = base + pd.to_timedelta(df["day"] * 1440 + df["offset"], unit="min")
    tz = ZoneInfo(config.time_zone)
    start = local_naive.dt.tz_localize(tz, ambiguous=np.ones(len(df), dtype=bool), nonexistent="shift_forward")
    hour = local_naive.dt.hour.to_numpy()
    local_date = local_naive.dt.normalize()
    years = range(config.start_date.year, (config.start_date + timedelta(days=config.days + 1)).year + 1)
    holiday_days = pd.to_datetime(sorted(d for y in years for d in holidays(y)))
    hour_idx = np.where(hour >= 6, hour, hour + 24) - 6
    return _Calendar(
        start=start,
        hour_idx=hour_idx,
        weekday=local_naive.dt.day_of_week.to_numpy(),
        month=local_naive.dt.month.to_numpy(),
        holiday=local_date.isin(holiday_days).to_numpy(),
        daypart=np.searchsorted(np.array([9, 16, 18, 20, 23]), hour_idx + 6, side="right"),
    )


@dataclass
class _Noise:
    """Each airing's log-scale noise per target (engagement's is additive), from the noise stream."""

    audience: np.ndarray
    rating: np.ndarray
    revenue: np.ndarray
    engagement: np.ndarray


def _noise(config: GeneratorConfig, n: int, noise_seq: np.random.SeedSequence) -> _Noise:
    # Drawn in this order (audience, rating, revenue, engagement): the data of a seed depends on it.
    nrng = np.random.default_rng(noise_seq)
    audience = nrng.normal(0.0, config.audience_noise, n)
    rating = nrng.normal(0.0, config.rating_noise, n)
    revenue = nrng.normal(0.0, config.revenue_noise, n)
    engagement = nrng.normal(0.0, config.engagement_noise, n)
    return _Noise(audience=audience, rating=rating, revenue=revenue, engagement=engagement)


def _log_audience(
    config: GeneratorConfig,
    df: pd.DataFrame,
    channels: pd.DataFrame,
    quality: np.ndarray,
    genre_code: np.ndarray,
    cal: _Calendar,
    premiere: np.ndarray,
    finale: np.ndarray,
) -> np.ndarray:
    """Expected log audience (thousands of viewers) of each airing, before noise."""
    ch = df["channel"].to_numpy()
    fit = np.array([GENRE_FIT[g] for g in Genre.values])
    # lead-in: previous airing on the same channel that ends exactly when this one starts
    contiguous = (df["offset"].to_numpy() > 0) & (np.roll(ch, 1) == ch)
    prev_q = np.where(contiguous, np.roll(quality, 1), 0.0)
    t_years = (df["day"].to_numpy() + df["offset"].to_numpy() / 1440.0) / 365.25
    universes = channels["universe_households"].to_numpy()
    potential = universes[ch] * PERSONS_PER_HOUSEHOLD / 1000.0 * channels["base_share"].to_numpy()[ch]
    log_mu: np.ndarray = (
        np.log(potential)
        + np.log(HOUR_CURVE[cal.hour_idx])
        + np.log(fit[genre_code, cal.daypart])
        + np.log(WEEKDAY_EFFECT[cal.weekday])
        + np.log(MONTH_EFFECT[cal.month - 1])
        + np.where(cal.holiday, math.log(config.holiday_effect), 0.0)
        + np.where(premiere, math.log(config.premiere_effect), 0.0)
        + np.where(finale, math.log(config.finale_effect), 0.0)
        + quality
        + config.lead_in_weight * prev_q
        + config.trend_per_year * t_years
    )
    return log_mu


def _revenue_factor(df: pd.DataFrame, genre_code: np.ndarray, cal: _Calendar) -> np.ndarray:
    """USD per thousand viewers: CPM x 30 s spots x sell-through."""
    daypart, month = cal.daypart, cal.month
    cpm = CPM_BY_DAYPART[daypart] * np.array([CPM_GENRE[g] for g in Genre.values])[genre_code]
    spots = df["minutes"].to_numpy() / 60.0 * AD_MINUTES_PER_HOUR[daypart] * 2.0
    sell = np.minimum(SELL_THROUGH_DAYPART[daypart] * SELL_THROUGH_MONTH[month - 1], 0.98)
    factor: np.ndarray = cpm * spots * sell
    return factor


def _engagement_mean(
    genre_arr: np.ndarray, genre_code: np.ndarray, quality: np.ndarray, premiere: np.ndarray, finale: np.ndarray
) -> np.ndarray:
    """Expected engagement (0-100 before clipping) of each airing."""
    live = np.isin(genre_arr, list(LIVE_GENRES))
    mu_e: np.ndarray = (
        45.0
        + np.array([ENGAGEMENT_GENRE[g] for g in Genre.values])[genre_code]
        + 40.0 * quality
        + 8.0 * live
        + 6.0 * premiere
        + 4.0 * finale
    )
    return mu_e


def _targets(
    config: GeneratorConfig,
    df: pd.DataFrame,
    channels: pd.DataFrame,
    programs: pd.DataFrame,
    cal: _Calendar,
    premiere: np.ndarray,
    finale: np.ndarray,
    noise_seq: np.random.SeedSequence,
) -> dict[str, np.ndarray]:
    """Noisy targets and their noise-free expected values (``<target>`` and ``<target>_expected``).

    Audience drives the others: rating is households watching over the channel's universe, revenue is
    impressions x CPM x spots x sell-through; engagement depends on genre, quality and the flags.
    """
    genre_arr = df["genre"].to_numpy()
    genre_code = pd.Categorical(genre_arr, categories=Genre.values).codes
    quality = programs["quality"].to_numpy()[df["program"].to_numpy()]
    log_mu = _log_audience(config, df, channels, quality, genre_code, cal, premiere, finale)
    noise = _noise(config, len(df), noise_seq)

    audience = np.exp(log_mu + noise.audience)
    audience_exp = np.exp(log_mu + config.audience_noise**2 / 2)
    # household rating points = 100 x households watching / universe
    universes = channels["universe_households"].to_numpy()[df["channel"].to_numpy()]
    to_rating = 100.0 * 1000.0 / (PERSONS_PER_HOUSEHOLD * universes)
    rating = audience * to_rating * np.exp(noise.rating)
    rating_exp = audience_exp * to_rating * math.exp(config.rating_noise**2 / 2)
    rev_factor = _revenue_factor(df, genre_code, cal)
    revenue = audience * rev_factor * np.exp(noise.revenue)
    revenue_exp = audience_exp * rev_factor * math.exp(config.revenue_noise**2 / 2)
    mu_e = _engagement_mean(genre_arr, genre_code, quality, premiere, finale)
    engagement = np.clip(mu_e + noise.engagement, 0.0, 100.0)
    return {
        "rating": np.round(rating, 4),
        "revenue": np.round(revenue, 2),
        "audience": np.round(audience, 3),
        "engagement": np.round(engagement, 2),
        "rating_expected": rating_exp,
        "revenue_expected": revenue_exp,
        "audience_expected": audience_exp,
        "engagement_expected": _expected_clipped_normal(mu_e, config.engagement_noise),
    }


def _airings_frame(
    config: GeneratorConfig,
    casting: _Casting,
    channels: pd.DataFrame,
    programs: pd.DataFrame,
    cal: _Calendar,
    flags: tuple[np.ndarray, np.ndarray],
    targets: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The airings as the importer's rows, in start order (the earliest ``config.airings`` when set)."""
    df = casting.airings
    premiere, finale = flags
    airings = pd.DataFrame(
        {
            "external_id": programs["external_id"].to_numpy()[df["program"].to_numpy()],
            "channel_code": channels["code"].to_numpy()[df["channel"].to_numpy()],
            "start": cal.start.array,  # tz-aware as is: to_numpy() would box every value
            "duration_minutes": df["minutes"].to_numpy(),
            "genre": df["genre"].to_numpy(),
            "daypart": np.array(DAYPART_NAMES)[cal.daypart],
            "is_premiere": premiere.astype(bool),
            "is_finale": finale.astype(bool),
            "is_holiday": cal.holiday,
            **targets,
        }
    )
    airings = airings.sort_values(["start", "channel_code"], kind="stable").reset_index(drop=True)
    if config.airings is not None:
        airings = airings.iloc[: config.airings].reset_index(drop=True)  # the earliest N
    return airings


def simulate(config: GeneratorConfig | None = None) -> Simulation:
    """Simulate channels, programs and airings (pure, deterministic for ``config.seed``).

    The steps, in the order they draw from the structure generator: channels, weekly templates,
    programs; then quality and noise from their own streams.
    """
    config = config or GeneratorConfig()
    structure_seq, quality_seq, noise_seq = np.random.SeedSequence(config.seed).spawn(3)
    rng = np.random.default_rng(structure_seq)
    channels = _channels(config, rng)
    series, template = _weekly_templates(config, rng)
    casting = _cast(config, _skeleton(config, template, series), series)
    programs = _programs(config, casting, channels, rng, quality_seq)
    flags = _flags(casting)
    cal = _calendar(config, casting.airings)
    targets = _targets(config, casting.airings, channels, programs, cal, *flags, noise_seq)
    airings = _airings_frame(config, casting, channels, programs, cal, flags, targets)
    return Simulation(config=config, channels=channels, programs=programs, airings=airings)


def days_for_airings(config: GeneratorConfig, airings: int) -> GeneratorConfig:
    """``config`` with enough days for ``airings`` airings on its channels, keeping exactly that many.

    The schedule's density is measured on one simulated week (a channel airs 18-22 programs a day).
    """
    per_week = len(simulate(replace(config, days=7, airings=None)).airings)
    days = math.ceil(airings / per_week * 7) + 7
    if days > MAX_DAYS:
        raise ApplicationError(
            f"{airings} airings on {config.channels} channel(s) need {days} days (more than {MAX_DAYS}); "
            "raise channels."
        )
    return replace(config, days=days, airings=airings)


def ceilings(sim: Simulation, holdout_fraction: float = 0.2) -> dict[str, float]:
    """R² of the noise-free expected values against the noisy targets on the latest airings."""
    frame = sim.airings.sort_values("start", kind="stable")
    cut = round(len(frame) * (1.0 - holdout_fraction))
    hold = frame.iloc[cut:]
    out: dict[str, float] = {}
    for target in TARGETS:
        y = hold[target].to_numpy(dtype=float)
        pred = hold[f"{target}_expected"].to_numpy(dtype=float)
        ss_tot = float(((y - y.mean()) ** 2).sum())
        out[target] = float("nan") if ss_tot == 0 else 1.0 - float(((y - pred) ** 2).sum()) / ss_tot
    return out


# --- database -----------------------------------------------------------------------------------
BATCH_SIZE = 5000
WRITE_CHUNK = 100_000


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    columns = [str(c) for c in frame.columns]
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*(frame[c].tolist() for c in columns), strict=True)
    ]


def _config_from(config: GeneratorConfig | None, overrides: dict[str, Any]) -> GeneratorConfig:
    base = config or GeneratorConfig()
    unknown = set(overrides) - set(asdict(base))
    if unknown:
        raise ApplicationError(f"Unknown generator option(s): {', '.join(sorted(unknown))}.")
    return replace(base, **overrides) if overrides else base


@transaction.atomic
def generate(
    config: GeneratorConfig | None = None, /, *, replace_existing: bool = False, **overrides: Any
) -> GenerationStats:
    """Write a simulation to the database in bulk and bump ``DataVersion`` (all in one transaction).

    Refuses (``ConflictError``) when broadcast data already exists unless ``replace_existing`` is true,
    which deletes every airing, program and channel first. Keyword overrides (``seed=7, days=30``)
    are applied on top of ``config``.
    """
    started = time.perf_counter()
    cfg = _config_from(config, overrides)
    if Airing.objects.exists() or Program.objects.exists() or Channel.objects.exists():
        if not replace_existing:
            raise ConflictError(
                "Broadcast data already exists "
                f"({Channel.objects.count()} channels, {Program.objects.count()} programs, "
                f"{Airing.objects.count()} airings); pass --replace to delete it and generate afresh.",
                code="data_exists",
            )
        try:
            Airing.objects.all().delete()
            Program.objects.all().delete()
            Channel.objects.all().delete()
        except ProtectedError as exc:
            raise ConflictError(f"Cannot replace the broadcast data: {exc.args[0]}", code="data_protected") from exc
    sim = simulate(cfg)

    Channel.objects.bulk_create(
        Channel(
            code=r["code"],
            name=r["name"],
            universe_households=int(r["universe_households"]),
            time_zone=cfg.time_zone,
        )
        for r in _records(sim.channels)
    )
    channel_ids = dict(Channel.objects.values_list("code", "id"))
    Program.objects.bulk_create(
        (
            Program(
                external_id=r["external_id"],
                title=r["title"],
                channel_id=channel_ids[r["channel_code"]],
                genre=r["genre"],
                content_rating=r["content_rating"],
                duration_minutes=int(r["duration_minutes"]),
                is_live=bool(r["is_live"]),
                description=r["description"],
            )
            for r in _records(sim.programs)
        ),
        batch_size=BATCH_SIZE,
    )
    program_ids = dict(Program.objects.values_list("external_id", "id"))
    a = sim.airings
    dv = data_version_bump(
        source=DataVersion.Source.GENERATE,
        description=f"generate_broadcasts seed={cfg.seed} channels={cfg.channels} programs={cfg.programs} days={cfg.days}",
        rows_affected=len(a),
    )
    written = pd.DataFrame(
        {
            "program_id": a["external_id"].map(program_ids).to_numpy(),
            "channel_id": a["channel_code"].map(channel_ids).to_numpy(),
            "start": a["start"].dt.tz_convert("UTC"),
            **{name: a[name].to_numpy() for name in ("duration_minutes", "is_premiere", "is_finale", *TARGETS)},
        }
    )
    _write_airings(written, data_version=dv.pk)
    airings_aggregate(added=written)
    return GenerationStats(
        channels=len(sim.channels),
        programs=len(sim.programs),
        airings=len(a),
        data_version=dv.pk,
        seconds=time.perf_counter() - started,
        ceilings=ceilings(sim),
    )


def _write_airings(frame: pd.DataFrame, *, data_version: int) -> None:
    """COPY the airings in chunks: the tuples of one chunk at a time, not of all 5M, are in memory.

    Columns in ``AIRING_INSERT_COLUMNS`` order; those the generator does not simulate (season, episode)
    are NULL.
    """
    convert = {"program_id": int, "channel_id": int, "duration_minutes": int, "is_premiere": bool, "is_finale": bool}
    convert |= dict.fromkeys(TARGETS, float)
    for lo in range(0, len(frame), WRITE_CHUNK):
        part = frame.iloc[lo : lo + WRITE_CHUNK]
        columns: list[list[Any]] = []
        for name in AIRING_INSERT_COLUMNS:
            if name == "start":
                columns.append(list(part["start"].dt.to_pydatetime()))
            elif name == "data_version":
                columns.append([data_version] * len(part))
            elif name in convert:
                columns.append(part[name].astype(convert[name]).tolist())
            else:
                columns.append([None] * len(part))
        airings_bulk_insert(list(zip(*columns, strict=True)))


class SimulationSummary(TypedDict):
    channels: int
    programs: int
    airings: int
    first_start: str | None
    last_start: str | None
    genres: int
    premieres: int
    finales: int
    ceilings: dict[str, float]


def simulation_summary(sim: Simulation) -> SimulationSummary:
    """Figures for ``--report`` and the docs: sizes, time range, ceilings."""
    a = sim.airings
    return {
        "channels": len(sim.channels),
        "programs": len(sim.programs),
        "airings": len(a),
        "first_start": a["start"].min().isoformat() if len(a) else None,
        "last_start": a["start"].max().isoformat() if len(a) else None,
        "genres": int(sim.programs["genre"].nunique()),
        "premieres": int(a["is_premiere"].sum()),
        "finales": int(a["is_finale"].sum()),
        "ceilings": ceilings(sim),
    }


__all__ = ["GenerationStats", "GeneratorConfig", "Simulation", "ceilings", "generate", "simulate", "simulation_summary"]
