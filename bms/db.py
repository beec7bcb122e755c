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


def _adapter(field: Any) -> Callable[[Any], Any] | None:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.UUIDField) and not connection.features.has_native_uuid_field:
        return lambda value: None if value is None else value.hex
    return None


def rows_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
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
            sql = f"INSERT INTO {table} ({names}) VALUES {', '.join([row_sql] * len(batch))}"  # noqa: S608  # nosec B608
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
