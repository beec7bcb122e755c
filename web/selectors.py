"""Reads that only the pages need: chart series aggregated once per data version and cached."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import Sum

from programs.models import Channel, Genre, Period, SegmentPeriodStats
from programs.selectors import data_version_current

# Keyed by the data version, so a change of data is never served stale; the timeout only bounds memory.
CACHE_SECONDS = 24 * 3600


def _datasets(rows: list[tuple[Any, ...]], labels: list[str], names: dict[str, str]) -> dict[str, Any]:
    """Monthly mean audience and total revenue per group, each as Chart.js-ready ``{labels, datasets}``.

    ``rows``: ``(group, month, audience_sum, audience_count, revenue_sum)``, one per group and month.
    """
    column = {label: i for i, label in enumerate(labels)}
    groups = sorted({str(r[0]) for r in rows}, key=lambda k: names.get(k, k))
    index = {g: i for i, g in enumerate(groups)}
    audience = np.full((len(groups), len(labels)), np.nan)
    revenue = np.full((len(groups), len(labels)), np.nan)
    for group, month, audience_sum, audience_count, revenue_sum in rows:
        i, j = index[str(group)], column[month.strftime("%Y-%m")]
        audience[i, j] = audience_sum / audience_count
        revenue[i, j] = revenue_sum

    def series(table: np.ndarray) -> dict[str, Any]:
        table = np.round(table, 2)
        return {
            "labels": labels,
            "datasets": [
                {"label": names.get(g, g), "data": [None if np.isnan(v) else float(v) for v in table[index[g]]]}
                for g in groups
            ],
        }

    return {"audience": series(audience), "revenue": series(revenue)}


def dashboard_series() -> dict[str, Any]:
    """Audience and revenue over time (local months) by channel and by genre.

    Two grouped reads of the maintained month summaries (``SegmentPeriodStats``: one row per channel,
    genre and month, whatever the number of airings), summed by PostgreSQL/SQLite to one row per channel
    and month and one per genre and month; cached per data version.
    """
    version = data_version_current()
    key = f"web:dashboard-series:v{version}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    months = SegmentPeriodStats.objects.filter(period=Period.MONTH, audience_count__gt=0)
    sums = {"audience": Sum("audience_sum"), "count": Sum("audience_count"), "revenue": Sum("revenue_sum")}
    by = {
        group: list(
            months.values(group, "period_start")
            .annotate(**sums)
            .order_by()
            .values_list(group, "period_start", "audience", "count", "revenue")
        )
        for group in ("channel_id", "genre")
    }
    labels = sorted({r[1].strftime("%Y-%m") for r in by["genre"]})
    channel_names = {str(pk): name for pk, name in Channel.objects.values_list("pk", "name")} if labels else {}
    genre_names = {str(value): str(label) for value, label in Genre.choices}
    result = {
        "channel": _datasets(by["channel_id"], labels, channel_names),
        "genre": _datasets(by["genre"], labels, genre_names),
    }
    cache.set(key, result, CACHE_SECONDS)
    return result
