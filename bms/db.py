"""Fast bulk inserts of plain rows, for the hot writers (CSV import, generator, prediction logs).

``bulk_create`` builds a model instance per row and prepares each value through the ORM; on SQLite it
is also limited to ~80 rows per statement. ``rows_insert`` takes tuples in a given column order and
writes them with COPY on PostgreSQL (psycopg adapts every value itself) or ``executemany`` elsewhere,
adapting only the column types the driver cannot take as they are (datetimes, UUIDs), the way the
backend's own ORM path would, so the stored rows are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models

BATCH_SIZE = 2000


def _adapter(field: object) -> Callable[[Any], Any] | None:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return connection.ops.adapt_datefield_value
    if isinstance(field, models.UUIDField) and not connection.features.has_native_uuid_field:
        return lambda value: None if value is None else value.hex
    return None


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[object, ...]]) -> None:
    """Insert ``rows`` (tuples of ``columns``, by column name: ``program_id`` for a foreign key)."""
    if not rows:
        return
    ops = connection.ops
    table = ops.quote_name(model._meta.db_table)
    names = ", ".join(ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        adapters = [(i, a) for i, c in enumerate(columns) if (a := _adapter(model._meta.get_field(c))) is not None]
        # One multi-row INSERT per batch, not executemany: every statement step releases and retakes the
        # interpreter lock, and a flusher thread doing that per row slowed the requests beside it.
        per_statement = max(1, min(BATCH_SIZE, _max_params() // len(columns)))
        row_sql = f"({', '.join(['%s'] * len(columns))})"
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            params: list[Any] = []
            for row in batch:
                if adapters:
                    values = list(row)
                    for i, adapt in adapters:
                        values[i] = adapt(values[i])
                    params.extend(values)
                else:
                    params.extend(row)
            # Table and column names come from the model, never from input; values are bound parameters.
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([row_sql] * len(batch))}"  # noqa: S608  # nosec B608 - model column names quoted by the backend; values are bound
            cursor.execute(sql, params)


def _max_params() -> int:
    """Bound parameters one statement may take (SQLite's compile-time limit, 999 before 3.32)."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        raw = connection.connection
        if raw is not None and hasattr(raw, "getlimit"):
            import sqlite3

            return int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return int(connection.features.max_query_params or 65535)


def rows_accumulate(
    model: type[models.Model],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
    least: Sequence[str] = (),
    greatest: Sequence[str] = (),
    rows: Sequence[tuple[object, ...]],
) -> None:
    """Upsert ``rows`` (tuples of ``keys + add + least + greatest`` columns) into a summary table.

    A new key is inserted as given; an existing one gets ``add`` columns incremented by the row's
    values and ``least`` / ``greatest`` columns lowered / raised (a NULL on either side keeps the
    other), with ``INSERT ... ON CONFLICT DO UPDATE``: concurrent writers serialise on the key instead of
    racing a read-modify-write. PostgreSQL: COPY into a scratch table, one upsert from it; elsewhere one
    multi-row upsert per batch.
    """
    if not rows:
        return
    ops = connection.ops
    table = ops.quote_name(model._meta.db_table)
    columns = [*keys, *add, *least, *greatest]
    q = {c: ops.quote_name(c) for c in columns}
    low, high = ("LEAST", "GREATEST") if connection.vendor == "postgresql" else ("MIN", "MAX")
    sets = [f"{q[c]} = {table}.{q[c]} + excluded.{q[c]}" for c in add]
    for func, cols in ((low, least), (high, greatest)):
        sets += [
            f"{q[c]} = {func}(COALESCE({table}.{q[c]}, excluded.{q[c]}), COALESCE(excluded.{q[c]}, {table}.{q[c]}))"
            for c in cols
        ]
    names = ", ".join(q[c] for c in columns)
    conflict = f"ON CONFLICT ({', '.join(q[c] for c in keys)}) DO UPDATE SET {', '.join(sets)}"  # nosec B608 - model column names quoted by the backend; values are bound or COPYed
    if connection.vendor == "postgresql":
        # COPY into a scratch table and upsert from it in one statement: a 300k-row delta (a 5M-airing
        # generation) is one round trip instead of 150 multi-row INSERTs built in Python.
        scratch = ops.quote_name(f"_accumulate_{model._meta.db_table}")
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE {scratch} AS SELECT {names} FROM {table} WITH NO DATA")  # noqa: S608  # nosec B608 - model column names quoted by the backend; values are bound or COPYed
            with cursor.cursor.copy(f"COPY {scratch} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            order = ", ".join(q[c] for c in keys)  # rows locked in key order: concurrent writers cannot deadlock
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {scratch} ORDER BY {order} {conflict}")  # noqa: S608  # nosec B608 - model column names quoted by the backend; values are bound or COPYed
            cursor.execute(f"DROP TABLE {scratch}")
        return
    per_statement = max(1, min(BATCH_SIZE, _max_params() // len(columns)))
    row_sql = f"({', '.join(['%s'] * len(columns))})"
    adapters = [(i, a) for i, c in enumerate(columns) if (a := _adapter(model._meta.get_field(c))) is not None]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            batch = rows[start : start + per_statement]
            params: list[Any] = []
            for row in batch:
                values = list(row)
                for i, adapt in adapters:
                    values[i] = adapt(values[i])
                params.extend(values)
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([row_sql] * len(batch))} {conflict}"  # noqa: S608  # nosec B608 - model column names quoted by the backend; values are bound or COPYed
            cursor.execute(sql, params)
