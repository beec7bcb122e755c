"""Version marks: numbers that change on every write a cache depends on, read in one statement.

A cache key that holds the versions of the data behind it is never found again once that data changes,
so nothing has to scan or delete keys. The versions are cheap marks of tables the writers already
append to: the newest row's id (``newest``: an index-only MAX over the primary key) or the row count
(``count``: a small table's rows, for deletions the newest id does not see). The apps declare what a
version of their data is (``programs.selectors.DATA_VERSION``, ``registry.selectors.REGISTRY_GENERATION``);
the caches (``chat.cache``, ``bms.response_cache``) read the marks they need with ``versions_read``.

Every chat question and every cached list request pays this read, hits too, so it is one statement of
scalar subqueries whose SQL is built once per set of marks: building two ORM queries costs more than
running them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from django.db import connection, models


@dataclass(frozen=True)
class Mark:
    """One number of a version: ``MAX(pk)`` or ``COUNT(*)`` of a model's table (0 for an empty table)."""

    model: type[models.Model]
    function: Literal["MAX", "COUNT"] = "MAX"


def newest(model: type[models.Model]) -> Mark:
    """The newest row's primary key: changes on every insert into an append-only table."""
    return Mark(model, "MAX")


def count(model: type[models.Model]) -> Mark:
    """The number of rows: changes when a row is deleted as well."""
    return Mark(model, "COUNT")


@lru_cache(maxsize=64)
def _sql(marks: tuple[Mark, ...], vendor: str) -> str:
    quote = connection.ops.quote_name
    parts = []
    for mark in marks:
        meta = mark.model._meta
        column = meta.pk.column
        if column is None:  # only a model without a table (abstract, unmanaged view) has none
            raise TypeError(f"{mark.model.__name__} has no primary key column to mark")
        what = f"MAX({quote(column)})" if mark.function == "MAX" else "COUNT(*)"
        # Table and column names come from the models, never from input.
        parts.append(f"(SELECT {what} FROM {quote(meta.db_table)})")  # noqa: S608  # nosec B608 - the models' quoted names
    return f"SELECT {', '.join(parts)}"


def versions_read(*marks: Mark) -> tuple[int, ...]:
    """The current value of each mark, in order, read in one statement."""
    if not marks:
        return ()
    with connection.cursor() as cursor:
        cursor.execute(_sql(marks, connection.vendor))
        row = cursor.fetchone()
    return tuple(int(value or 0) for value in row)
