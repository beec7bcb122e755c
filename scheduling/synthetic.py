"""Synthetic optimisation instances for the benchmark and the tests (pure numpy, no Django).

A broadcast day runs 06:00-02:00: half-hour slots, hour-long slots in prime time (37 slots a day).
Two candidates per slot by default; revenue favours sports/drama/movies, audience news/reality/game
shows, so the two objectives pull apart and the Pareto front is not a single point.
"""

from __future__ import annotations

import numpy as np

from programs.calendar import DAYPART_NAMES, daypart_for_hour
from scheduling.problem import AdvertiserGoal, IntArray, Problem, RatingWindow

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
