"""Reads that only the pages need: chart series aggregated once per data version and cached."""

from __future__ import annotations

from typing import Any

import pandas as pd
from django.core.cache import cache
from django.db.models import TextField
from django.db.models.functions import Cast
from django.utils import timezone

from programs.models import Airing, Channel, Genre
from programs.selectors import data_version_current

# Keyed by the data version, so a change of data is never served stale; the timeout only bounds memory.
CACHE_SECONDS = 24 * 3600


def _datasets(frame: pd.DataFrame, group: str, names: dict[str, str]) -> dict[str, Any]:
    """Monthly mean audience and total revenue per group, each as Chart.js-ready ``{labels, datasets}``."""
    labels = sorted(frame["month"].unique())
    grouped = frame.groupby([group, "month"]).agg(audience=("audience", "mean"), revenue=("revenue", "sum"))

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

    One query for the raw columns, grouped with pandas: the database's time-zone-aware month
    truncation is a per-row Python function on SQLite, far slower than one vectorised conversion.
    """
    version = data_version_current()
    key = f"web:dashboard-series:v{version}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    # The start as text (UTC): parsing 50k datetimes in Django's row converters costs more than the query.
    rows = (
        Airing.objects.filter(audience__isnull=False)
        .annotate(start_text=Cast("start", TextField()))
        .values_list("start_text", "channel_id", "program__genre", "audience", "revenue")
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["start", "channel", "genre", "audience", "revenue"])
    if frame.empty:
        empty: dict[str, list[Any]] = {"labels": [], "datasets": []}
        result: dict[str, Any] = {
            "channel": {"audience": empty, "revenue": empty},
            "genre": {"audience": empty, "revenue": empty},
        }
    else:
        local = pd.to_datetime(frame["start"], utc=True, format="ISO8601").dt.tz_convert(
            timezone.get_current_timezone_name()
        )
        frame["month"] = local.dt.strftime("%Y-%m")
        frame["channel"] = frame["channel"].astype(str)
        channel_names = {str(pk): name for pk, name in Channel.objects.values_list("pk", "name")}
        genre_names = {str(value): str(label) for value, label in Genre.choices}
        result = {
            "channel": _datasets(frame, "channel", channel_names),
            "genre": _datasets(frame, "genre", genre_names),
        }
    cache.set(key, result, CACHE_SECONDS)
    return result
