"""Maintained aggregates of airings, so no list, page or API scans airings per request.

Summary tables (``programs.models``): ``ProgramStats`` (a program's totals, minimum, maximum, first
and last airing), ``ProgramPeriodStats`` (per program, channel and local month),
``SegmentPeriodStats`` (per channel, genre and local week or month), and its month rows summed per
channel (``ChannelPeriodStats``) and per genre (``GenrePeriodStats``) for the dashboard.

Every writer of airings calls :func:`airings_aggregate` once, inside the transaction that wrote them,
with the rows it added and the old values of the rows it changed or deleted. Counts and sums move by
those deltas; the minimum, maximum, first and last airing of a program that lost a value are read
again from that program's airings (an index range on ``(program, start)``, not a scan). So the
summaries stay exact without ever recomputing all airings; :func:`aggregates_rebuild` (the
``rebuild_aggregates`` command) recomputes them from scratch when in doubt.

Periods are local to ``TIME_ZONE`` (weeks start on Monday), as in ``programs.selectors.trend_series``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min, Model, QuerySet

from bms.db import rows_accumulate
from programs.models import (
    TARGETS,
    Airing,
    ChannelPeriodStats,
    GenrePeriodStats,
    Period,
    Program,
    ProgramPeriodStats,
    ProgramStats,
    SegmentPeriodStats,
)

# What a writer passes for each added or removed airing (column names, any extra columns are ignored).
AGGREGATE_COLUMNS = ("program_id", "channel_id", "start", *TARGETS)
_SUMS = ("airing_count", *(f"{t}_{k}" for t in TARGETS for k in ("count", "sum")))
_LEAST = ("first_airing", *(f"{t}_min" for t in TARGETS))
_GREATEST = ("last_airing", *(f"{t}_max" for t in TARGETS))
REBUILD_CHUNK = 200_000
_IN_CHUNK = 900  # ids per IN (...) list: below SQLite's oldest bound-parameter limit


def airings_aggregate(*, added: pd.DataFrame | None = None, removed: pd.DataFrame | None = None) -> None:
    """Bring the summaries up to date with airings just written (call inside that transaction).

    ``added``: new airings and the new values of changed ones; ``removed``: deleted airings and the
    old values of changed ones. Both are frames with at least ``AGGREGATE_COLUMNS``.
    """
    frames = [f[list(AGGREGATE_COLUMNS)].assign(sign=s) for f, s in ((added, 1), (removed, -1)) if f is not None]
    frames = [f for f in frames if len(f)]
    if not frames:
        return
    _apply(pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0])
    if removed is not None and len(removed):
        _refresh_extremes(program_ids=sorted({int(p) for p in removed["program_id"]}))


def frame_of(rows: Sequence[tuple[object, ...]], columns: Sequence[str]) -> pd.DataFrame:
    """Tuples in ``columns`` order (the bulk writers' row format) as the frame ``airings_aggregate`` takes."""
    return pd.DataFrame.from_records(list(rows), columns=list(columns))


def airings_frame(airings: QuerySet[Airing]) -> pd.DataFrame:
    """These airings' current values, for a writer that changes or deletes rows one at a time (admin)."""
    return frame_of(list(airings.values_list(*AGGREGATE_COLUMNS)), AGGREGATE_COLUMNS)


@transaction.atomic
def aggregates_rebuild() -> int:
    """Recompute every summary from the airings (in chunks by id, bounded memory); returns airings read."""
    for model in (ProgramStats, ProgramPeriodStats, SegmentPeriodStats, ChannelPeriodStats, GenrePeriodStats):
        model.objects.all().delete()
    last, total = 0, 0
    while True:
        rows = list(
            Airing.objects.filter(pk__gt=last).order_by("pk").values_list("pk", *AGGREGATE_COLUMNS)[:REBUILD_CHUNK]
        )
        if not rows:
            return total
        last, total = rows[-1][0], total + len(rows)
        _apply(frame_of([r[1:] for r in rows], AGGREGATE_COLUMNS).assign(sign=1))


# --- the deltas ----------------------------------------------------------------------------------
def _apply(rows: pd.DataFrame) -> None:
    sign = rows["sign"].to_numpy()
    start = pd.to_datetime(rows["start"], utc=True)
    day = start.dt.tz_convert(settings.TIME_ZONE).dt.tz_localize(None).dt.normalize()
    frame = pd.DataFrame({"program_id": rows["program_id"].astype("int64"), "channel_id": rows["channel_id"]})
    frame["channel_id"] = frame["channel_id"].astype("int64")
    frame["airing_count"] = sign
    values: dict[str, pd.Series] = {}
    for t in TARGETS:
        values[t] = pd.to_numeric(rows[t], errors="coerce").astype(float)
        frame[f"{t}_count"] = sign * values[t].notna().to_numpy()
        frame[f"{t}_sum"] = sign * values[t].fillna(0.0).to_numpy()
    frame["month"] = (day - pd.to_timedelta(day.dt.day - 1, unit="D")).dt.date
    frame["week"] = (day - pd.to_timedelta(day.dt.day_of_week, unit="D")).dt.date
    frame["genre"] = frame["program_id"].map(_genres(frame["program_id"].unique().tolist()))

    # Program totals; extremes from the added rows only (a removal refreshes its program's afterwards).
    totals = frame.groupby("program_id")[list(_SUMS)].sum()
    plus = sign > 0
    extremes = pd.DataFrame({"first_airing": start[plus], "last_airing": start[plus]})
    for t in TARGETS:
        extremes[f"{t}_min"] = values[t][plus]
        extremes[f"{t}_max"] = values[t][plus]
    extremes["program_id"] = frame["program_id"][plus]
    grouped = extremes.groupby("program_id")
    totals = totals.join(grouped[list(_LEAST)].min()).join(grouped[list(_GREATEST)].max())
    rows_accumulate(
        ProgramStats,
        keys=("program_id",),
        add=_SUMS,
        least=_LEAST,
        greatest=_GREATEST,
        rows=_tuples(totals.reset_index(), ("program_id", *_SUMS, *_LEAST, *_GREATEST)),
    )

    monthly = frame.groupby(["program_id", "month", "channel_id"])[list(_SUMS)].sum().reset_index()
    monthly.insert(1, "period", Period.MONTH.value)
    rows_accumulate(
        ProgramPeriodStats,
        keys=("program_id", "period", "period_start", "channel_id"),
        add=_SUMS,
        rows=_tuples(
            monthly.rename(columns={"month": "period_start"}),
            ("program_id", "period", "period_start", "channel_id", *_SUMS),
        ),
    )
    for period, column in ((Period.WEEK, "week"), (Period.MONTH, "month")):
        segments = frame.groupby([column, "channel_id", "genre"])[list(_SUMS)].sum().reset_index()
        segments.insert(0, "period", period.value)
        rows_accumulate(
            SegmentPeriodStats,
            keys=("period", "period_start", "channel_id", "genre"),
            add=_SUMS,
            rows=_tuples(
                segments.rename(columns={column: "period_start"}),
                ("period", "period_start", "channel_id", "genre", *_SUMS),
            ),
        )
    for model, key in ((ChannelPeriodStats, "channel_id"), (GenrePeriodStats, "genre")):
        rollup = frame.groupby(["month", key])[list(_SUMS)].sum().reset_index()
        rollup.insert(0, "period", Period.MONTH.value)
        rows_accumulate(
            model,
            keys=("period", "period_start", key),
            add=_SUMS,
            rows=_tuples(rollup.rename(columns={"month": "period_start"}), ("period", "period_start", key, *_SUMS)),
        )


def _genres(program_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in _chunks(program_ids):
        out.update(Program.objects.filter(pk__in=chunk).values_list("pk", "genre"))
    return out


def _refresh_extremes(*, program_ids: list[int]) -> None:
    """Minimum, maximum, first and last airing of these programs read again from their airings, and the
    period rows a removal emptied dropped (a recomputation would not have them)."""
    extremes = {f"{t}_{k}": f(t) for t in TARGETS for k, f in (("min", Min), ("max", Max))}
    for chunk in _chunks(program_ids):
        found: dict[int, dict[str, object]] = {
            r["program_id"]: dict(r)
            for r in Airing.objects.filter(program_id__in=chunk)
            .values("program_id")
            .annotate(first_airing=Min("start"), last_airing=Max("start"), **extremes)
        }
        stats = list(ProgramStats.objects.filter(program_id__in=chunk))
        for s in stats:
            row: dict[str, object] = found.get(s.program_id, {})
            for name in (*_LEAST, *_GREATEST):
                setattr(s, name, row.get(name))
        ProgramStats.objects.bulk_update(stats, [*_LEAST, *_GREATEST])
        ProgramPeriodStats.objects.filter(program_id__in=chunk, airing_count=0).delete()
    for model in (SegmentPeriodStats, ChannelPeriodStats, GenrePeriodStats):
        model.objects.filter(airing_count=0).delete()


def _tuples(frame: pd.DataFrame, columns: Iterable[str]) -> list[tuple[object, ...]]:
    """Plain Python values (the drivers take neither numpy scalars nor NaN/NaT as NULL)."""
    out = []
    for c in columns:
        series = frame[c]
        if pd.api.types.is_datetime64_any_dtype(series):
            out.append([None if pd.isna(v) else v.to_pydatetime() for v in series])
        elif pd.api.types.is_float_dtype(series):
            out.append([None if v != v else v for v in series.tolist()])
        else:
            out.append(series.tolist())
    return list(zip(*out, strict=True))


def _chunks(items: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i : i + _IN_CHUNK]


def aggregates_refresh_extremes(*, program_ids: list[int]) -> None:
    """Minimum, maximum, first and last airing of these programs read again (after a writer replaced values)."""
    _refresh_extremes(program_ids=program_ids)


def airings_aggregate_staged(*, table: str) -> None:
    """PostgreSQL: move the summaries by the deltas in a temporary table, set-based (the bulk importer).

    ``table`` has ``program_id, channel_id, start, sign`` and the targets: ``sign`` +1 for an added
    airing (or the new values of a changed one), -1 for the old values of a changed one. Counts and
    sums move by the signed rows, minimums and maximums by the added ones; a writer that removed values
    calls :func:`aggregates_refresh_extremes` for those programs afterwards, as ``airings_aggregate`` does.
    """
    q = connection.ops.quote_name
    delta = q(table)
    sums = ["SUM(d.sign)"]
    for t in TARGETS:
        sums += [
            f"COALESCE(SUM(CASE WHEN d.{t} IS NULL THEN 0 ELSE d.sign END), 0)",
            f"COALESCE(SUM(d.sign * d.{t}), 0)",
        ]
    least = ["MIN(d.start) FILTER (WHERE d.sign > 0)", *(f"MIN(d.{t}) FILTER (WHERE d.sign > 0)" for t in TARGETS)]
    greatest = ["MAX(d.start) FILTER (WHERE d.sign > 0)", *(f"MAX(d.{t}) FILTER (WHERE d.sign > 0)" for t in TARGETS)]
    local = "(d.start AT TIME ZONE %s::text)"

    def upsert(model: type[Model], keys: list[tuple[str, str]], source: str, *, extremes: bool = False) -> str:
        table_name = q(model._meta.db_table)
        columns = [k for k, _ in keys] + list(_SUMS) + (list(_LEAST) + list(_GREATEST) if extremes else [])
        values = [v for _, v in keys] + sums + (least + greatest if extremes else [])
        sets = [f"{q(c)} = {table_name}.{q(c)} + excluded.{q(c)}" for c in _SUMS]
        if extremes:
            for func, cols in (("LEAST", _LEAST), ("GREATEST", _GREATEST)):
                sets += [
                    f"{q(c)} = {func}(COALESCE({table_name}.{q(c)}, excluded.{q(c)}), COALESCE(excluded.{q(c)}, {table_name}.{q(c)}))"
                    for c in cols
                ]
        group = ", ".join(str(i + 1) for i in range(len(keys)))
        return (
            f"INSERT INTO {table_name} ({', '.join(q(c) for c in columns)}) "  # noqa: S608  # nosec B608 - names from the models
            f"SELECT {', '.join(values)} FROM {source} GROUP BY {group} ORDER BY {group} "
            f"ON CONFLICT ({', '.join(q(k) for k, _ in keys)}) DO UPDATE SET {', '.join(sets)}"
        )

    tz = settings.TIME_ZONE
    with connection.cursor() as cursor:
        cursor.execute(upsert(ProgramStats, [("program_id", "d.program_id")], f"{delta} d", extremes=True))
        cursor.execute(
            upsert(
                ProgramPeriodStats,
                [
                    ("program_id", "d.program_id"),
                    ("period", "%s::varchar"),
                    ("period_start", f"date_trunc('month', {local})::date"),
                    ("channel_id", "d.channel_id"),
                ],
                f"{delta} d",
            ),
            [Period.MONTH.value, tz],
        )
        for period in (Period.WEEK, Period.MONTH):
            cursor.execute(
                upsert(
                    SegmentPeriodStats,
                    [
                        ("period", "%s::varchar"),
                        ("period_start", f"date_trunc(%s::text, {local})::date"),
                        ("channel_id", "d.channel_id"),
                        ("genre", "p.genre"),
                    ],
                    f"{delta} d JOIN {q(Program._meta.db_table)} p ON p.id = d.program_id",
                ),
                [period.value, period.value, tz],
            )
        # The month rows summed per channel and per genre (the dashboard's rollups).
        for model, key, source in (
            (ChannelPeriodStats, ("channel_id", "d.channel_id"), f"{delta} d"),
            (
                GenrePeriodStats,
                ("genre", "p.genre"),
                f"{delta} d JOIN {q(Program._meta.db_table)} p ON p.id = d.program_id",
            ),
        ):
            cursor.execute(
                upsert(
                    model,
                    [("period", "%s::varchar"), ("period_start", f"date_trunc('month', {local})::date"), key],
                    source,
                ),
                [Period.MONTH.value, tz],
            )
