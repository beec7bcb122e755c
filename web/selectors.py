"""Reads that only the pages need: chart series aggregated once per data version and cached."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TypedDict

import numpy as np
from django.core.cache import cache

from programs.models import Channel, ChannelPeriodStats, Genre, GenrePeriodStats, Period
from programs.selectors import data_version_current

# Keyed by the data version, so a change of data is never served stale; the timeout only bounds memory.
CACHE_SECONDS = 24 * 3600


class ChartDataset(TypedDict):
    label: str
    data: list[float | None]


class ChartSeries(TypedDict):
    """Chart.js-ready data: the x axis labels and one dataset per line."""

    labels: list[str]
    datasets: list[ChartDataset]


MonthRow = tuple[object, date, float, int, float | None]


def _datasets(rows: Sequence[MonthRow], labels: list[str], names: dict[str, str]) -> dict[str, ChartSeries]:
    """Monthly mean audience and total revenue per group, each as Chart.js-ready ``{labels, datasets}``.

    ``rows``: ``(group, month, audience_sum, audience_count, revenue_sum)``, one per group and month;
    ``labels``: the months (``YYYY-MM``) on the x axis. Arrays, not a loop per cell (thousands of cells
    at 50 channels and a decade of months).
    """
    groups = sorted({str(r[0]) for r in rows}, key=lambda k: names.get(k, k))
    audience = np.full((len(groups), len(labels)), np.nan)
    revenue = np.full((len(groups), len(labels)), np.nan)
    if rows:
        keys, months, audience_sum, audience_count, revenue_sum = zip(*rows, strict=True)
        row_of = {g: i for i, g in enumerate(groups)}
        label_of = {label: j for j, label in enumerate(labels)}
        column_of = {m: label_of[m.strftime("%Y-%m")] for m in set(months)}
        i = np.fromiter((row_of[str(k)] for k in keys), dtype=np.intp, count=len(keys))
        j = np.fromiter((column_of[m] for m in months), dtype=np.intp, count=len(months))
        audience[i, j] = np.asarray(audience_sum, dtype=float) / np.asarray(audience_count, dtype=float)
        revenue[i, j] = np.asarray(revenue_sum, dtype=float)

    def series(table: np.ndarray) -> ChartSeries:
        values = np.round(table, 2).tolist()
        return {
            "labels": labels,
            "datasets": [
                {"label": names.get(g, g), "data": [None if v != v else v for v in values[i]]}  # NaN -> null
                for i, g in enumerate(groups)
            ],
        }

    return {"audience": series(audience), "revenue": series(revenue)}


def dashboard_series() -> dict[str, dict[str, ChartSeries]]:
    """Audience and revenue over time (local months) by channel and by genre.

    Read from the maintained month rollups (``ChannelPeriodStats``, ``GenrePeriodStats``: one row per
    channel or genre and month, whatever the number of airings) and cached per data version.
    """
    version = data_version_current()
    key = f"web:dashboard-series:v{version}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    columns = ("period_start", "audience_sum", "audience_count", "revenue_sum")
    by = {
        "channel": list(
            ChannelPeriodStats.objects.filter(period=Period.MONTH, audience_count__gt=0).values_list(
                "channel_id", *columns
            )
        ),
        "genre": list(
            GenrePeriodStats.objects.filter(period=Period.MONTH, audience_count__gt=0).values_list("genre", *columns)
        ),
    }
    labels = sorted({m.strftime("%Y-%m") for m in {r[1] for r in by["genre"]}})
    channel_names = {str(pk): name for pk, name in Channel.objects.values_list("pk", "name")} if labels else {}
    genre_names = {str(value): str(label) for value, label in Genre.choices}
    result = {
        "channel": _datasets(by["channel"], labels, channel_names),
        "genre": _datasets(by["genre"], labels, genre_names),
    }
    cache.set(key, result, CACHE_SECONDS)
    return result
