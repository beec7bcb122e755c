"""Reads that only the pages need: chart series aggregated once per data version and cached."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.core.cache import cache

from programs.models import Channel, Genre, Period, SegmentPeriodStats
from programs.selectors import data_version_current

# Keyed by the data version, so a change of data is never served stale; the timeout only bounds memory.
CACHE_SECONDS = 24 * 3600


def _datasets(frame: pd.DataFrame, group: str, names: dict[str, str]) -> dict[str, Any]:
    """Monthly mean audience and total revenue per group (from summed month rows), each as Chart.js-ready ``{labels, datasets}``."""
    labels = sorted(frame["month"].unique())
    grouped = frame.groupby([group, "month"]).agg(
        audience_sum=("audience_sum", "sum"), audience_count=("audience_count", "sum"), revenue=("revenue", "sum")
    )
    grouped["audience"] = grouped["audience_sum"] / grouped["audience_count"]

    def series(column: str) -> dict[str, Any]:
        table = grouped[column].unstack("month").reindex(columns=labels).round(2)
        return {
            "labels": labels,
            "datasets": [
                {
                    "label": names.get(str(key), str(key)),
                    "data": [None if pd.isna(v) else float(v) for v in table.loc[key].tolist()],
                }
                for key in sorted(table.index, key=lambda k: names.get(str(k), str(k)))
            ],
        }

    return {"audience": series("audience"), "revenue": series("revenue")}


def dashboard_series() -> dict[str, Any]:
    """Audience and revenue over time (local months) by channel and by genre.

    Read from the maintained month summaries (one row per channel, genre and month: tens of thousands
    at most, whatever the number of airings) and cached per data version.
    """
    version = data_version_current()
    key = f"web:dashboard-series:v{version}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    rows = SegmentPeriodStats.objects.filter(period=Period.MONTH, audience_count__gt=0).values_list(
        "period_start", "channel_id", "genre", "audience_sum", "audience_count", "revenue_sum"
    )
    frame = pd.DataFrame.from_records(
        list(rows), columns=["month", "channel", "genre", "audience_sum", "audience_count", "revenue"]
    )
    if frame.empty:
        empty: dict[str, list[Any]] = {"labels": [], "datasets": []}
        result: dict[str, Any] = {
            "channel": {"audience": empty, "revenue": empty},
            "genre": {"audience": empty, "revenue": empty},
        }
    else:
        frame["month"] = [d.strftime("%Y-%m") for d in frame["month"]]
        frame["channel"] = frame["channel"].astype(str)
        channel_names = {str(pk): name for pk, name in Channel.objects.values_list("pk", "name")}
        genre_names = {str(value): str(label) for value, label in Genre.choices}
        result = {
            "channel": _datasets(frame, "channel", channel_names),
            "genre": _datasets(frame, "genre", genre_names),
        }
    cache.set(key, result, CACHE_SECONDS)
    return result
