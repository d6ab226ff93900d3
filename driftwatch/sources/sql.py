"""A source over a SQL table or query through SQLAlchemy 2, with the window as bound parameters."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError

from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable
from driftwatch.sources.base import (
    DEFAULT_BATCH_ROWS,
    Window,
    as_utc,
    check_columns,
    checked_batch_rows,
    empty_frame,
    one_line,
    select_window,
)

# Sessions run in UTC so naive columns compare as UTC and zoned values come back in UTC.
_UTC_SESSION = {"postgresql": "SET TIME ZONE 'UTC'", "mysql": "SET time_zone = '+00:00'"}


#: The largest timeout (milliseconds or seconds) the drivers and PostgreSQL accept: longer ones are clamped to it.
_INT32_MAX = 2**31 - 1


def session_statements(dialect: str, timeout: float | None) -> list[str]:
    """What every new connection runs first: UTC, and the statement timeout where the server enforces one."""
    statements = [_UTC_SESSION[dialect]] if dialect in _UTC_SESSION else []
    if timeout is not None and dialect == "postgresql":
        statements.append(f"SET statement_timeout = {min(_INT32_MAX, max(1, math.ceil(timeout * 1000)))}")
    return statements


def connect_arguments(dialect: str, timeout: float | None) -> dict[str, Any]:
    """Driver arguments that bound connecting (and, for SQLite, waiting on a lock) by `timeout` seconds."""
    if timeout is None:
        return {}
    whole = min(_INT32_MAX, max(1, math.ceil(timeout)))
    if dialect == "postgresql":
        return {"connect_timeout": whole}  # libpq: the whole handshake, so a server that never answers ends too
    if dialect == "sqlite":
        return {"timeout": timeout}
    if dialect == "mysql":
        return {"connect_timeout": whole, "read_timeout": whole}
    return {}


def _run_on_connect(statements: Sequence[str]) -> Callable[[Any, Any], None]:
    """A `connect` event handler that runs `statements` and commits them (a rolled-back SET would be undone)."""

    def handler(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        dbapi_connection.commit()

    return handler


def sqlite_text(moment: datetime) -> str:
    """`moment` as the naive UTC text SQLite columns written by pandas hold (micros only when non-zero).

    Both `...:SS` and `...:SS.ffffff` stored values then compare correctly as text against it.
    """
    naive = as_utc(moment).replace(tzinfo=None)
    text = naive.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{naive.microsecond:06d}" if naive.microsecond else text


class SqlSource:
    """Rows of a table (`table`, may be `schema.table`) or of a query using `:start` and `:end`.

    `timeout` (seconds) bounds connecting, waiting for a pooled connection and, on PostgreSQL, each statement,
    so that a database that hangs ends the read with SourceUnavailable instead of holding its thread. With
    `pushdown`, windows count in the database (`driftwatch.sources.pushdown`): only partials cross the wire.
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        table: str | None = None,
        query: str | None = None,
        timestamp_column: str,
        timeout: float | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        pushdown: bool = False,
    ) -> None:
        if (table is None) == (query is None):
            raise SourceError("give exactly one of table or query", source=name)
        self.name = name
        self.batch_rows = checked_batch_rows(name, batch_rows)
        self.table = table
        self.query = query
        self.timestamp_column = timestamp_column
        self.pushdown = pushdown
        try:
            parsed = make_url(url)
        except ArgumentError:
            # not chained: the unparsable URL may hold a password
            raise SourceUnavailable("invalid database URL", source=name) from None
        self._password = parsed.password
        self.redacted_url = parsed.render_as_string(hide_password=True)
        dialect = parsed.get_backend_name()
        pool = {"pool_timeout": timeout} if timeout is not None and dialect != "sqlite" else {}
        try:
            self.engine = sa.create_engine(
                parsed, pool_pre_ping=True, connect_args=connect_arguments(dialect, timeout), **pool
            )
        except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as err:
            raise SourceUnavailable(f"cannot use {self.redacted_url}: {self._scrub(err)}", source=name) from err
        statements = session_statements(self.engine.dialect.name, timeout)
        if statements:
            sa.event.listen(self.engine, "connect", _run_on_connect(statements))

    def describe(self) -> str:
        """One line with the redacted URL and the table or query."""
        what = f"table {self.table}" if self.table else "query"
        counted = ", pushdown" if self.pushdown else ""
        return f"sql {self.redacted_url} {what} (timestamp column {self.timestamp_column}{counted})"

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Exactly `columns` for rows with start <= timestamp < end."""
        return SqlWindow(self, start, end, columns, batch_rows=self.batch_rows).to_frame()

    def window(
        self, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int | None = None
    ) -> SqlWindow:
        """The window's rows streamed through a server-side cursor; each pass runs the query again. With pushdown,
        a `PushdownWindow` whose passes the database counts."""
        rows = self.batch_rows if batch_rows is None else batch_rows
        if self.pushdown:
            from driftwatch.sources.pushdown import PushdownWindow  # imports this module

            return PushdownWindow(self, start, end, columns, batch_rows=rows)
        return SqlWindow(self, start, end, columns, batch_rows=rows)

    def _bounds(self, start: datetime, end: datetime, *, naive: bool) -> dict[str, Any]:
        if self.engine.dialect.name == "sqlite":
            return {"start": sqlite_text(start), "end": sqlite_text(end)}
        if naive:
            return {"start": as_utc(start).replace(tzinfo=None), "end": as_utc(end).replace(tzinfo=None)}
        return {"start": as_utc(start), "end": as_utc(end)}

    def _table_statement(
        self, conn: Connection, table: str, start: datetime, end: datetime, columns: Sequence[str]
    ) -> tuple[sa.Select[Any], dict[str, Any]]:
        """The SELECT of `columns` from `table` within the window, after checking the columns exist."""
        schema, _, bare = table.rpartition(".")
        try:
            info = sa.inspect(conn).get_columns(bare, schema=schema or None)
        except NoSuchTableError as err:
            raise SourceUnavailable(f"table {table!r} not found in {self.redacted_url}", source=self.name) from err
        types = {str(col["name"]): col["type"] for col in info}
        ts = self.timestamp_column
        check_columns(self.name, list(types), [*columns, ts])
        ts_type = types[ts]
        naive = not (isinstance(ts_type, sa.DateTime) and ts_type.timezone)
        stamp: sa.ColumnClause[Any] = sa.column(ts)
        selected: list[sa.ColumnClause[Any]] = [sa.column(name) for name in dict.fromkeys(columns)]
        query = (
            sa.select(*selected)
            .select_from(sa.table(bare, schema=schema or None))
            .where(stamp >= sa.bindparam("start"), stamp < sa.bindparam("end"))
        )
        return query, self._bounds(start, end, naive=naive)

    def scan(self, start: datetime, end: datetime, columns: Sequence[str], batch_rows: int) -> Iterator[pd.DataFrame]:
        """One pass: frames of at most `batch_rows` rows fetched through a server-side cursor."""
        try:
            with self.engine.connect() as conn:
                statement: sa.Executable
                if self.table is not None:
                    statement, params = self._table_statement(conn, self.table, start, end, columns)
                else:
                    statement, params = sa.text(self.query or ""), self._bounds(start, end, naive=False)
                stream = {"stream_results": True, "yield_per": batch_rows}
                result = conn.execute(statement, params, execution_options=stream)
                keys = list(result.keys())
                if self.table is None:  # checked here too, so that an empty result still names a missing column
                    check_columns(self.name, keys, [*columns, self.timestamp_column])
                for rows in result.partitions(batch_rows):
                    yield self._batch(pd.DataFrame(rows, columns=keys), start, end, columns)
        except SQLAlchemyError as err:
            raise SourceUnavailable(f"cannot read {self.redacted_url}: {self._scrub(err)}", source=self.name) from err

    def _batch(self, frame: pd.DataFrame, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Fetched rows as the window's frame: a query's rows filtered to the window, timestamps parsed."""
        if self.table is None:
            frame = select_window(self.name, frame, self.timestamp_column, start, end, columns)
        elif list(frame.columns) != list(columns):
            frame = frame[list(columns)]
        return self._parse_timestamps(frame)

    def _parse_timestamps(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The timestamp column (when returned as text, as SQLite does) parsed to UTC timestamps."""
        ts = self.timestamp_column
        if ts not in frame.columns or pd.api.types.is_datetime64_any_dtype(frame[ts].dtype):
            return frame
        try:
            parsed = pd.to_datetime(frame[ts], utc=True, format="ISO8601")
        except (ValueError, TypeError) as err:
            message = f"timestamp column '{ts}' cannot be parsed ({one_line(err)})"
            raise SchemaMismatch(message, source=self.name) from err
        return frame.assign(**{ts: parsed})

    def _scrub(self, err: BaseException) -> str:
        """The error's first line, from the driver's error when there is one, without the password."""
        cause = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err
        message = one_line(cause)
        return message.replace(self._password, "***") if self._password else message


class SqlWindow(Window):
    """A window over a SQL source: each pass re-runs the query and streams its rows."""

    def __init__(
        self, source: SqlSource, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int
    ) -> None:
        super().__init__(source.name, start, end, columns, batch_rows=batch_rows)
        self._source = source

    def _scan(self) -> Iterator[pd.DataFrame]:
        ts = self._source.timestamp_column
        wanted = list(dict.fromkeys([*self.columns, ts]))  # the stamps too, for `newest`
        for frame in self._source.scan(self.start, self.end, wanted, self.batch_rows):
            if len(frame):
                self._saw(frame[ts])
                yield frame if ts in self.columns else frame[list(self.columns)]

    def _empty(self) -> pd.DataFrame:
        return self._source._parse_timestamps(empty_frame(self.columns))
