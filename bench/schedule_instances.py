"""Synthetic optimisation instances for the scheduling benches and tests (pure numpy, no Django; bench-only, not served).

A broadcast day runs 06:00-02:00: half-hour slots, hour-long slots in prime time (37 slots a day).
Two candidates per slot by default; revenue favours sports/drama/movies, audience news/reality/game
shows, so the two objectives pull apart and the Pareto front is not a single point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from programs.calendar import DAYPART_NAMES, daypart_for_hour
from scheduling.problem import RATINGS, AdvertiserGoal, IntArray, Problem, RatingWindow
from scheduling.timeline import Timeline

GENRES = (
    "news",
    "drama",
    "comedy",
    "sports",
    "reality",
    "documentary",
    "kids",
    "movie",
    "talk",
    "game",
    "animation",
    "other",
)
NEWS, SPORTS = 0, 3


def day_pattern() -> list[tuple[int, int]]:
    """(clock minute, length) of one broadcast day's slots."""
    slots = [(m, 30) for m in range(6 * 60, 20 * 60, 30)]
    slots += [(m, 60) for m in range(20 * 60, 23 * 60, 60)]
    slots += [(m, 30) for m in range(23 * 60, 26 * 60, 30)]
    return slots


def instance(
    n_slots: int,
    *,
    seed: int = 0,
    candidates_per_slot: float = 2.0,
    constraints: bool = True,
    fixed_news: bool = True,
    rating_windows: tuple[RatingWindow, ...] | None = None,
) -> Problem:
    rng = np.random.default_rng(seed)
    pattern = day_pattern()
    starts: list[int] = []
    lengths: list[int] = []
    days: list[int] = []
    dayparts: list[int] = []
    d = 0
    while len(starts) < n_slots:
        for minute, length in pattern:
            if len(starts) == n_slots:
                break
            starts.append(d * 1440 + minute)
            lengths.append(length)
            days.append(d)
            dayparts.append(DAYPART_NAMES.index(daypart_for_hour((minute // 60) % 24)))
        d += 1
    S = n_slots
    P = max(4, round(candidates_per_slot * S))
    slot_start = np.array(starts, dtype=np.int64)
    slot_length = np.array(lengths, dtype=np.int64)
    slot_day = np.array(days, dtype=np.int64)
    slot_dp = np.array(dayparts, dtype=np.int64)
    long_share = float((slot_length == 60).mean())

    genre = rng.integers(0, len(GENRES), P)
    rating = rng.choice(4, size=P, p=[0.25, 0.35, 0.3, 0.1])
    is_long = rng.random(P) < max(long_share, 0.1)
    duration = np.where(is_long, rng.integers(44, 61, P), rng.integers(22, 31, P))
    max_per_day = np.where(rng.random(P) < 0.15, 2, 1)
    # the news program fixed at 18:00 every day
    genre[0], rating[0], duration[0], max_per_day[0] = NEWS, 0, 30, 1
    fixed = np.full(S, -1, dtype=np.int64)
    if fixed_news:
        fixed[(slot_start % 1440) == 18 * 60] = 0

    n_dp = len(DAYPART_NAMES)
    dp_factor = np.array([0.6, 0.5, 0.8, 1.1, 1.6, 0.9])[:n_dp]
    aff_rev = rng.lognormal(0.0, 0.35, (len(GENRES), n_dp))
    aff_aud = rng.lognormal(0.0, 0.35, (len(GENRES), n_dp))
    aff_rev[[1, 3, 7]] *= 1.3
    aff_aud[[0, 4, 9]] *= 1.3
    base_rev = rng.lognormal(10.0, 0.4, P)
    base_aud = rng.lognormal(5.0, 0.4, P) * (0.6 + 0.8 * rng.random(P))
    noise = rng.lognormal(0.0, 0.15, (P, S))
    revenue = base_rev[:, None] * dp_factor[slot_dp][None, :] * aff_rev[genre][:, slot_dp] * noise
    audience = (
        base_aud[:, None] * dp_factor[slot_dp][None, :] * aff_aud[genre][:, slot_dp] * rng.lognormal(0, 0.15, (P, S))
    )
    revenue *= np.where(slot_length == 60, 2.0, 1.0)[None, :]
    audience *= np.where(slot_length == 60, 1.2, 1.0)[None, :]

    availability = rng.random((P, S)) > 0.05 if constraints else None
    if availability is not None:
        availability[0] = True  # the fixed news is always available
    goals: tuple[AdvertiserGoal, ...] = ()
    if constraints:
        saturday_prime = (slot_day % 7 == 5) & (slot_dp == DAYPART_NAMES.index("prime_time"))
        goals = (AdvertiserGoal("sports in prime time on Saturday", SPORTS, tuple(saturday_prime.tolist()), 0.3),)
    kwargs: dict[str, object] = {}
    if rating_windows is not None:
        kwargs["rating_windows"] = rating_windows
    elif not constraints:
        kwargs["rating_windows"] = ()
    return Problem(
        slot_start=slot_start,
        slot_length=slot_length,
        slot_day=slot_day,
        slot_daypart=slot_dp,
        slot_min_len=np.where(slot_length == 60, 40, 20),
        slot_max_len=slot_length,
        slot_fixed=fixed,
        genre=genre,
        rating=rating,
        duration=duration,
        max_per_day=max_per_day,
        revenue=revenue,
        audience=audience,
        availability=availability,
        n_genres=len(GENRES),
        max_consecutive_genre=2 if constraints else 0,
        min_genres_per_daypart=3 if constraints else 0,
        goals=goals,
        weight_revenue=1.0,
        weight_audience=0.5 if constraints else 0.0,
        **kwargs,  # type: ignore[arg-type]
    )


def current_schedule(problem: Problem, *, seed: int = 0) -> IntArray:
    """A plausible 'current' schedule: the exact assignment of a noisy, out-of-date value estimate."""
    from scheduling.exact import assignment

    rng = np.random.default_rng(seed + 10_000)
    stale = problem.value * rng.lognormal(0.0, 0.5, problem.value.shape)
    return assignment(problem, stale)


# ---- timeline instances from the simulated demo data ---------------------------------------------
@dataclass
class DemoTimeline:
    """A channel's whole catalogue on a window of the simulated demo data, with what it really aired."""

    timeline: Timeline
    current: list[tuple[int, int]]  # (cell, program) of the airings the channel had in the window
    titles: list[str]


def demo_timeline(
    sim: Any, *, channel: str, first_day: date, days: int = 1, grid: int = 30, seed: int = 0, noise: float = 0.1
) -> DemoTimeline:
    """The broadcast day(s) 06:00-02:00 from ``first_day`` on a ``grid``-minute grid for one channel of
    :func:`programs.generator.simulate`'s output, every program of the channel a candidate.

    Values stand in for the production models: a program's mean expected revenue/audience per airing
    in the history before ``first_day``, times the channel's hour-of-day factor relative to the hours
    the program usually airs at, times lognormal noise (``seed``) for the model's error.
    """
    progs = sim.programs[sim.programs["channel_code"] == channel].reset_index(drop=True)
    air = sim.airings[sim.airings["channel_code"] == channel]
    local = air["start"].dt.tz_convert(sim.config.time_zone)
    history = air[local.dt.date < first_day]
    hours = local[local.dt.date < first_day].dt.hour
    index = {ext: i for i, ext in enumerate(progs["external_id"])}
    P = len(progs)
    cells_per_day = 20 * 60 // grid
    T = cells_per_day * days
    cell_start = np.array([d * 1440 + 360 + k * grid for d in range(days) for k in range(cells_per_day)])
    cell_day = np.repeat(np.arange(days), cells_per_day)
    cell_hour = (cell_start % 1440) // 60
    cell_dp = np.array([DAYPART_NAMES.index(daypart_for_hour(int(h))) for h in cell_hour])
    rng = np.random.default_rng(seed)
    mats = []
    for target in ("revenue", "audience"):
        col = history[f"{target}_expected"].to_numpy()
        by_hour = np.ones(24)
        for h in range(24):
            sel = hours.to_numpy() == h
            if sel.any():
                by_hour[h] = col[sel].mean() / col.mean()
        pidx = history["external_id"].map(index).to_numpy()
        mean = np.bincount(pidx, weights=col, minlength=P) / np.maximum(np.bincount(pidx, minlength=P), 1)
        usual = np.bincount(pidx, weights=by_hour[hours.to_numpy()], minlength=P) / np.maximum(
            np.bincount(pidx, minlength=P), 1
        )
        fallback = float(np.median(mean[mean > 0])) if (mean > 0).any() else 1.0
        mean = np.where(mean > 0, mean, fallback)
        usual = np.where(usual > 0, usual, 1.0)
        m = mean[:, None] * by_hour[cell_hour][None, :] / usual[:, None]
        mats.append(m * rng.lognormal(0.0, noise, (P, T)))
    genre = np.array([GENRES.index(g) if g in GENRES else len(GENRES) - 1 for g in progs["genre"]])
    rating = np.array([RATINGS.index(r) for r in progs["content_rating"]])
    tl = Timeline(
        grid=grid,
        cell_start=cell_start,
        cell_segment=cell_day,
        cell_day=cell_day,
        cell_daypart=cell_dp,
        genre=genre,
        rating=rating,
        duration=progs["duration_minutes"].to_numpy(),
        max_per_day=np.full(P, 2),
        max_per_week=np.full(P, 7) if days > 1 else None,
        revenue=mats[0],
        audience=mats[1],
        n_genres=len(GENRES),
        max_consecutive_genre=2,
    )
    window = air[(local.dt.date >= first_day) & (local.dt.date < first_day + timedelta(days=days))]
    wlocal = window["start"].dt.tz_convert(sim.config.time_zone)
    day0 = datetime.combine(first_day, datetime.min.time())
    current = []
    for ext, moment in zip(window["external_id"], wlocal, strict=True):
        minute = int((moment.replace(tzinfo=None) - day0).total_seconds() // 60)
        hits = np.flatnonzero(cell_start == minute)
        if hits.size and ext in index:
            current.append((int(hits[0]), index[ext]))
    return DemoTimeline(tl, current, list(progs["title"]))
