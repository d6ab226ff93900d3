"""Data sources: where batches (and the reference) come from.

`open_source` builds a source from config-like arguments; every source honours the `DataSource` contract:
`read` gives a window whole, `window` gives it as a re-iterable `Window` of bounded batches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftwatch.errors import SourceError
from driftwatch.sources.base import (
    DEFAULT_BATCH_ROWS,
    MAX_BATCH_ROWS,
    DataSource,
    Window,
    read_reference,
    reference_columns,
)
from driftwatch.sources.files import CsvSource, FileWindow, ParquetSource
from driftwatch.sources.memory import FrameWindow, InMemorySource

if TYPE_CHECKING:
    from driftwatch.sources.sql import SqlSource, SqlWindow

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "MAX_BATCH_ROWS",
    "CsvSource",
    "DataSource",
    "FileWindow",
    "FrameWindow",
    "InMemorySource",
    "ParquetSource",
    "SqlSource",
    "SqlWindow",
    "Window",
    "open_source",
    "read_reference",
    "reference_columns",
]

KINDS = ("parquet", "csv", "sql")


def __getattr__(name: str) -> Any:
    """`SqlSource` and `SqlWindow` on first use: sqlalchemy (~0.1 s to import) only for configs that use SQL."""
    if name in ("SqlSource", "SqlWindow"):
        from driftwatch.sources import sql

        return getattr(sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_source(
    name: str,
    kind: str,
    *,
    timestamp_column: str,
    path: str | None = None,
    url: str | None = None,
    table: str | None = None,
    query: str | None = None,
    timeout: float | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    pushdown: bool = False,
) -> DataSource:
    """A source of `kind` (parquet, csv: `path` is a glob; sql: `url` with `table` or `query`).

    `timeout` bounds each wait on a database (connect, pool, statement) in seconds; `batch_rows` is the default
    size of the batches its windows yield; `pushdown` (sql) counts windows in the database.
    """
    if kind in ("parquet", "csv"):
        if not path:
            raise SourceError(f"a {kind} source needs a path", source=name)
        cls = ParquetSource if kind == "parquet" else CsvSource
        return cls(name, path, timestamp_column, batch_rows=batch_rows)
    if kind == "sql":
        from driftwatch.sources.sql import SqlSource

        if not url:
            raise SourceError("a sql source needs a url", source=name)
        return SqlSource(
            name,
            url,
            table=table,
            query=query,
            timestamp_column=timestamp_column,
            timeout=timeout,
            batch_rows=batch_rows,
            pushdown=pushdown,
        )
    raise SourceError(f"unknown source kind {kind!r} (expected one of {', '.join(KINDS)})", source=name)
