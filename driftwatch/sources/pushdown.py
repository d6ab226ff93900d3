"""SQL pushdown: the database counts a window's partials (`driftwatch.core.partials`); only counts cross the wire.

Each pass of a `Job` becomes a few GROUP BY queries over the window (the source's table or query, filtered to
[start, end) as when streaming), all in one transaction (PostgreSQL REPEATABLE READ READ ONLY, SQLite one read
transaction), so every pass sees the same rows:

- pass 1: one COUNT(*) for the rows; per numeric feature, each finite value's bucket b among sorted edges E (the
  reference grid's points: b = how many edges are <= x), whether it equals the edge below it, its PSI bin and
  its distance to its piece's end (the next edge; past the last edge, from it), grouped by (b, on edge, bin):
  at most 2 (G + 1) + bins rows per feature. Per categorical feature, GROUP BY the column.
- pass 2: the same bucket query over the bounds of the fine cells, only for values inside them.
- pass 3: the distinct values, with their counts, inside the few crossing cells (a small set of values).

Buckets are found by `width_bucket(x, float8[])` on PostgreSQL (a binary search in C) and, on SQLite, by a
lookup in a temporary edge table keyed by the edge (`max(e) WHERE e <= x`, one B-tree search per value; a
generated CASE tree is exact too but compiles in time quadratic in the edges). Edges travel as bound float8
values, never as decimal text, so bucket counts are exact and equal numpy's. Numeric columns are cast to
float8 like the streamed path converts them (PostgreSQL `real` through its text form, as the driver returns it);
NULL, NaN and +-Infinity are missing. Distance sums are float sums in the database's order: equal to the
streamed ones up to rounding (the Wasserstein distance agrees to about 1e-13 relative); every count is exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from driftwatch.core.partials import (
    CrossingValues,
    FineCells,
    FineCounts,
    GridCounts,
    Partial,
    Request,
)
from driftwatch.core.profile import NumericProfile
from driftwatch.core.values import CategoryCounts, category_label
from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable
from driftwatch.sources.base import check_columns
from driftwatch.sources.sql import SqlSource, SqlWindow

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Databases whose SQL the counter generates (config mirrors it; a test keeps them equal).
DIALECTS = ("postgresql", "sqlite")
#: Result rows converted to numpy at a time (bucket queries of pass 2 can return a row per cell).
FETCH_ROWS = 65_536

#: PostgreSQL type oids of numeric columns (int2, int4, int8, oid, float4, float8, numeric) and of `real`.
_PG_NUMERIC = {20, 21, 23, 26, 700, 701, 1700}
_PG_REAL = 700


@dataclass(frozen=True)
class _Buckets:
    """Per bucket b (0..L) of sorted edges E: the finite values strictly inside (E[b-1], E[b]) (`inside`), those
    equal to E[b-1] (`on`), the sum of the inside values' distances to E[b] (bucket L: from E[L-1]); per PSI bin
    the values in it."""

    inside: IntArray
    on: IntArray
    sums: FloatArray
    bins: IntArray


class PushdownCounter:
    """Counts the passes of one window in the database, over one connection and transaction (`close` ends it)."""

    def __init__(self, source: SqlSource, start: datetime, end: datetime, columns: Sequence[str]) -> None:
        self._source = source
        self._start, self._end = start, end
        self._columns = tuple(columns)
        self._dialect = source.engine.dialect.name
        if self._dialect not in DIALECTS:
            raise SourceError(f"pushdown supports {' and '.join(DIALECTS)}, not {self._dialect}", source=source.name)
        self._conn: Connection | None = None
        self._from = ""
        self._params: dict[str, Any] = {}
        self._real: set[str] = set()
        self._pg_types: dict[str, Any] = {}
        self._tables = 0

    # -- connection and the window's FROM clause ---------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = self._source.engine.connect()
            try:
                if self._dialect == "postgresql":
                    conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
                    conn.begin()
                elif self._dialect == "sqlite":
                    conn.exec_driver_sql("BEGIN")  # one read transaction (pysqlite would not begin before a SELECT)
                self._conn = conn
                self._from, self._params = self._window_from(conn)
            except BaseException:
                self._conn = None
                conn.close()
                raise
        return self._conn

    def close(self) -> None:
        """End the transaction and return the connection (never raises)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()
                conn.close()
            except SQLAlchemyError:
                conn.invalidate()

    def _window_from(self, conn: Connection) -> tuple[str, dict[str, Any]]:
        """`(SELECT ... in the window) AS dw_w` and its bound parameters; checks the columns exist."""
        source, quote = self._source, conn.dialect.identifier_preparer.quote
        ts = quote(source.timestamp_column)
        if source.table is not None:
            _, params = source._table_statement(conn, source.table, self._start, self._end, self._columns)
            schema, _, bare = source.table.rpartition(".")
            table = f"{quote(schema)}.{quote(bare)}" if schema else quote(bare)
            columns = ", ".join(quote(c) for c in dict.fromkeys(self._columns))
            inner = f"SELECT {columns} FROM {table} WHERE {ts} >= :start AND {ts} < :end"
        else:
            params = source._bounds(self._start, self._end, naive=False)
            query = f"SELECT * FROM ({source.query}) AS dw_q"
            inner = f"{query} WHERE dw_q.{ts} >= :start AND dw_q.{ts} < :end"
            keys = list(self._execute(conn, f"{query} WHERE 1 = 0", params).keys())
            check_columns(source.name, keys, [*self._columns, source.timestamp_column])
        described = self._execute(conn, f"SELECT * FROM ({inner}) AS dw_w WHERE 1 = 0", params)
        if self._dialect == "postgresql":
            types = {str(d[0]): d[1] for d in described.cursor.description or ()}
            self._real = {name for name, oid in types.items() if oid == _PG_REAL}
            self._pg_types = types
        described.close()
        return f"({inner}) AS dw_w", params

    def _execute(self, conn: Connection, sql: str, params: dict[str, Any]) -> sa.CursorResult[Any]:
        """Run `sql` with named `:parameters` (SQLite: straight to the driver, which binds names natively)."""
        if self._dialect == "sqlite":
            return conn.exec_driver_sql(sql, params)
        return conn.execute(sa.text(sql), params)

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[Any]:
        conn = self._connection()
        return list(self._execute(conn, sql, {**self._params, **(params or {})}).all())

    def _fetch_columns(self, sql: str, params: dict[str, Any], dtypes: Sequence[type]) -> list[npt.NDArray[Any]]:
        """The result's columns as numpy arrays, fetched `FETCH_ROWS` rows at a time through a server-side cursor
        (a pass-2 query may return a row per cell: hundreds of thousands, far smaller as arrays than as rows)."""
        conn = self._connection()
        statement = sa.text(sql).execution_options(stream_results=True, max_row_buffer=FETCH_ROWS)
        result = conn.execute(statement, {**self._params, **params})
        parts: list[list[npt.NDArray[Any]]] = [[] for _ in dtypes]
        for chunk in result.partitions(FETCH_ROWS):
            for i, dtype in enumerate(dtypes):
                parts[i].append(np.fromiter((row[i] for row in chunk), dtype=dtype, count=len(chunk)))
        return [np.concatenate(p) if p else np.empty(0, dtype) for p, dtype in zip(parts, dtypes, strict=True)]

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database errors as one-line SourceUnavailable; the transaction is ended on any error."""
        try:
            yield
        except SQLAlchemyError as err:
            self.close()
            source = self._source
            raise SourceUnavailable(
                f"cannot count in {source.redacted_url}: {source._scrub(err)}", source=source.name
            ) from err
        except BaseException:
            self.close()
            raise

    # -- the passes ----------------------------------------------------------------------------------------------

    def count(self, request: Request) -> tuple[Partial | None, int]:
        """The partial of `request` over the window, and the window's rows (pass 1; later passes: 0)."""
        with self._errors():
            self._connection()
            if request.stage == 1:
                return self._pass_one(request)
            features: dict[str, Any] = {}
            for name, job in request.jobs.items():
                feature = request.profile.features[name]
                assert isinstance(feature, NumericProfile)
                if request.stage == 2:
                    features[name] = self._fine(name, job)
                else:
                    cells, crossing = job
                    features[name] = self._crossings(name, cells.left[crossing], cells.right[crossing])
            return Partial(request.stage, features), 0

    def _pass_one(self, request: Request) -> tuple[Partial | None, int]:
        profile = request.profile
        numeric = [n for n in request.jobs if isinstance(profile.features[n], NumericProfile)]
        self._check_numeric(numeric)
        (rows,) = self._rows(f"SELECT COUNT(*) FROM {self._from}")[0]
        rows = int(rows)
        if rows == 0:
            return None, 0
        features: dict[str, Any] = {}
        for name in request.jobs:
            feature = profile.features[name]
            if isinstance(feature, NumericProfile):
                features[name] = self._grid(name, feature, rows)
            else:
                features[name] = self._categories(name, rows)
        return Partial(1, features), rows

    def _check_numeric(self, names: Sequence[str]) -> None:
        """SchemaMismatch for a numeric feature whose column does not hold numbers."""
        if not names:
            return
        if self._dialect == "postgresql":
            self._connection()
            for name in names:
                if self._pg_types.get(name) not in _PG_NUMERIC:
                    raise SchemaMismatch(
                        f"column {name!r} is not numeric (type oid {self._pg_types.get(name)})",
                        source=self._source.name,
                    )
            return
        if self._dialect == "sqlite":
            texts = ", ".join(f"SUM(typeof({self._col(n)}) IN ('text', 'blob'))" for n in names)
            found = self._rows(f"SELECT {texts} FROM {self._from}")[0]
            for name, count in zip(names, found, strict=True):
                if count:
                    raise SchemaMismatch(
                        f"column {name!r} is not numeric ({count} text values)", source=self._source.name
                    )

    def _col(self, name: str) -> str:
        return f"dw_w.{self._source.engine.dialect.identifier_preparer.quote(name)}"

    def _number(self, name: str) -> str:
        """The column as float8, as the streamed path converts it."""
        column = self._col(name)
        if self._dialect == "sqlite":
            return f"CAST({column} AS REAL)"
        if name in self._real:  # the driver returns real as its shortest text, which Python parses as float8
            return f"CAST(CAST({column} AS TEXT) AS DOUBLE PRECISION)"
        return f"CAST({column} AS DOUBLE PRECISION)"

    def _finite(self, x: str) -> str:
        if self._dialect == "sqlite":
            return f"{x} > -9e999 AND {x} < 9e999"  # NaN is stored as NULL
        return f"{x} > CAST('-Infinity' AS DOUBLE PRECISION) AND {x} < CAST('Infinity' AS DOUBLE PRECISION)"

    def _categories(self, name: str, rows: int) -> CategoryCounts:
        column = self._col(name)
        counts: dict[str, int] = {}
        missing = 0
        for value, count in self._rows(f"SELECT {column}, COUNT(*) FROM {self._from} GROUP BY {column}"):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                missing += int(count)
                continue
            label = category_label(value)
            counts[label] = counts.get(label, 0) + int(count)
        return CategoryCounts(dict(sorted(counts.items())), rows, missing)

    def _grid(self, name: str, feature: NumericProfile, rows: int) -> GridCounts:
        points = feature.grid.points if feature.sorted_values.size else np.empty(0)
        counted = self._buckets(name, points, feature.edges)
        below = np.cumsum(counted.inside + counted.on)[:-1].astype(np.int64)
        upto = below + counted.on[1:]
        # bucket b's inside values are piece b's ((points[b-1], points[b]]: distances to points[b]; the last piece:
        # from points[-1]); a value on points[b-1] belongs to piece b - 1 but adds an exact 0
        sums = counted.sums
        finite = int(np.sum(counted.bins))
        return GridCounts(rows, finite, counted.bins, upto, below, sums)

    def _fine(self, name: str, cells: FineCells) -> FineCounts:
        edges = np.unique(np.concatenate((cells.left, cells.right)))
        counted = self._buckets(name, edges, None, inner=True)
        right = np.searchsorted(edges, cells.right)
        cell_counts, cell_sums = counted.inside[right], counted.sums[right]
        held = counted.on[np.searchsorted(edges, cells.points) + 1]
        # within each interval, in order: cell 0, point 1, cell 1, ..., cell L; a point's `below` is what precedes it
        slots = np.arange(cells.intervals.size)
        first_cell = np.searchsorted(cells.cell_slot, slots)
        first_point = np.searchsorted(cells.point_slot, slots)
        rank = np.arange(cells.points.size) - first_point[cells.point_slot]
        cell_total = np.concatenate(([0], np.cumsum(cell_counts)))
        held_total = np.concatenate(([0], np.cumsum(held)))
        start = first_cell[cells.point_slot]
        below = (
            cell_total[start + rank + 1]
            - cell_total[start]
            + held_total[np.arange(cells.points.size)]
            - held_total[first_point[cells.point_slot]]
        ).astype(np.int64)
        return FineCounts(below + held, below, cell_counts.astype(np.int64), cell_sums)

    def _crossings(self, name: str, left: FloatArray, right: FloatArray) -> CrossingValues:
        edges = np.unique(np.concatenate((left, right)))
        cell_of = np.full(edges.size, -1, dtype=np.int64)  # cell whose lower bound is the edge
        cell_of[np.searchsorted(edges, left)] = np.arange(left.size)
        cells, values, counts = self._bucket_columns(name, edges, "crossings", cell_of)
        order = np.lexsort((values, cells))
        return CrossingValues(cells[order], values[order], counts[order])

    # -- the bucket queries ---------------------------------------------------------------------------------------

    def _buckets(self, name: str, edges: FloatArray, bins: FloatArray | None, *, inner: bool = False) -> _Buckets:
        """`_Buckets` of a numeric column over `edges` (inner: only values within [edges[0], edges[-1]])."""
        size = edges.size
        inside = np.zeros(size + 1, dtype=np.int64)
        on = np.zeros(size + 1, dtype=np.int64)
        sums = np.zeros(size + 1)
        width = 0 if bins is None else bins.size + 1
        binned = np.zeros(max(width, 1), dtype=np.int64)
        b, o, k, n, total = self._bucket_columns(name, edges, "inner" if inner else "all", None, bins)
        if b.size:
            np.add.at(inside, b[o == 0], n[o == 0])
            np.add.at(on, b[o == 1], n[o == 1])
            np.add.at(sums, b, total)
            np.add.at(binned, k, n)
        return _Buckets(inside, on, sums, binned[:width] if width else binned)

    def _bucket_columns(
        self,
        name: str,
        edges: FloatArray,
        kind: str,
        cell_of: IntArray | None = None,
        bins: FloatArray | None = None,
    ) -> list[npt.NDArray[Any]]:
        """Run one bucket query: columns (b, on, bin, count, distance sum), or for `crossings` (cell, value,
        count)."""
        dtypes: list[type] = [np.int64, np.float64, np.int64] if kind == "crossings" else [np.int64] * 4 + [np.float64]
        x = self._number(name)
        where = self._finite("x")
        params: dict[str, Any] = {}
        if kind != "all":
            if edges.size == 0:
                return [np.empty(0, dtype) for dtype in dtypes]
            where += " AND x >= :dw_lo AND x <= :dw_hi"
            params.update(dw_lo=float(edges[0]), dw_hi=float(edges[-1]))
        binned = "0"
        if bins is not None and bins.size:
            cases = " ".join(f"WHEN x < :dw_k{i} THEN {i}" for i in range(bins.size))
            binned = f"CASE {cases} ELSE {bins.size} END"
            params.update({f"dw_k{i}": float(v) for i, v in enumerate(bins)})
        source = f"(SELECT {x} AS x FROM {self._from}) AS dw_x WHERE {where}"
        if edges.size == 0:
            nothing = "CAST(NULL AS DOUBLE PRECISION)"  # a bare NULL would be text to PostgreSQL
            bucketed = (
                f"SELECT x, 0 AS b, {nothing} AS lo, {nothing} AS hi, CAST(NULL AS INTEGER) AS cell FROM {source}"
            )
        elif self._dialect == "postgresql":
            bucketed = self._pg_bucketed(source, edges, cell_of, params)
        else:
            bucketed = self._sqlite_bucketed(source, edges, cell_of, params)
        if kind == "crossings":
            sql = f"SELECT cell, x, COUNT(*) FROM ({bucketed}) AS dw_b WHERE cell >= 0 AND x > lo GROUP BY cell, x"
            return self._fetch_columns(sql, params, dtypes)
        on = "CASE WHEN x = lo THEN 1 ELSE 0 END"
        distance = "CASE WHEN x = lo THEN 0.0 WHEN hi IS NULL THEN x - lo ELSE hi - x END"
        if edges.size == 0:
            distance = "0.0"
        sql = (
            f"SELECT b, on_edge, bin, COUNT(*), SUM(d) FROM (SELECT b, {on} AS on_edge, {binned} AS bin,"
            f" {distance} AS d FROM ({bucketed}) AS dw_b) AS dw_d GROUP BY b, on_edge, bin"
        )
        return self._fetch_columns(sql, params, dtypes)

    def _pg_bucketed(self, source: str, edges: FloatArray, cell_of: IntArray | None, params: dict[str, Any]) -> str:
        """Rows (x, b, lo, hi, cell) by `width_bucket` over the edges as one float8[] parameter."""
        params["dw_e"] = edges.tolist()
        array = "(CAST(:dw_e AS DOUBLE PRECISION[]))"
        cell = "NULL"
        if cell_of is not None:
            params["dw_c"] = cell_of.tolist()
            cell = "(CAST(:dw_c AS BIGINT[]))[b]"
        # OFFSET 0 keeps the subquery from being flattened: width_bucket runs once per value
        return (
            f"SELECT x, b, {array}[b] AS lo, {array}[b + 1] AS hi, {cell} AS cell"
            f" FROM (SELECT x, width_bucket(x, {array}) AS b FROM {source} OFFSET 0) AS dw_wb"
        )

    def _sqlite_bucketed(self, source: str, edges: FloatArray, cell_of: IntArray | None, params: dict[str, Any]) -> str:
        """Rows (x, b, lo, hi, cell) by a lookup in a fresh temporary edge table (rolled back with the transaction)."""
        conn = self._connection()
        self._tables += 1
        table = f"temp.dw_edges_{self._tables}"
        conn.exec_driver_sql(
            f"CREATE TABLE {table} (e REAL PRIMARY KEY, b INTEGER, hi REAL, cell INTEGER) WITHOUT ROWID"
        )
        following: list[float | None] = [*edges[1:].tolist(), None]
        cells = cell_of.tolist() if cell_of is not None else [None] * edges.size
        conn.exec_driver_sql(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?)",
            list(zip(edges.tolist(), range(1, edges.size + 1), following, cells, strict=True)),
        )
        params["dw_first"] = float(edges[0])
        return (
            f"SELECT x, COALESCE(g.b, 0) AS b, g.e AS lo, CASE WHEN g.b IS NULL THEN :dw_first ELSE g.hi END AS hi,"
            f" g.cell AS cell FROM (SELECT x FROM {source}) AS dw_v"
            f" LEFT JOIN {table} AS g ON g.e = (SELECT MAX(e) FROM {table} WHERE e <= dw_v.x)"
        )


class PushdownWindow(SqlWindow):
    """A SQL source's window that counts in the database (`CountingWindow`); `batches()` still streams its rows.

    All passes share one connection and transaction, opened by the first `count` and ended by `close` (or by an
    error).
    """

    def __init__(
        self, source: SqlSource, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int
    ) -> None:
        super().__init__(source, start, end, columns, batch_rows=batch_rows)
        self._counter = PushdownCounter(source, start, end, columns)

    def count(self, request: Request) -> Partial | None:
        """The partial of this pass over every row of the window (None: no rows)."""
        partial, rows = self._counter.count(request)
        if request.stage == 1:
            self.rows_read = rows
        return partial

    def close(self) -> None:
        """End the counting transaction."""
        self._counter.close()
