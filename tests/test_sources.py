"""Data sources: window filtering, projection, timezones and errors over real files and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from conftest import free_port
from servers import postgres_server
from sqlalchemy.engine import make_url

from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable
from driftwatch.sources import (
    CsvSource,
    DataSource,
    InMemorySource,
    ParquetSource,
    SqlSource,
    open_source,
    read_reference,
    reference_columns,
)
from driftwatch.sources.files import timestamp_bound
from driftwatch.sources.sql import connect_arguments, session_statements, sqlite_text

T0 = datetime(2024, 1, 1, tzinfo=UTC)
START, END = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
SECOND = timedelta(seconds=1)
# (offset from T0, age): the window [01:00, 03:00) holds ages 2..5, including both edges' inside neighbours
OFFSETS = [
    timedelta(0),
    timedelta(hours=1) - SECOND,
    timedelta(hours=1),
    timedelta(hours=1, minutes=30),
    timedelta(hours=2),
    timedelta(hours=3) - SECOND,
    timedelta(hours=3),
    timedelta(hours=4),
]
INSIDE = [2, 3, 4, 5]
ALL_COLUMNS = ["age", "plan", "income", "event_time"]


def stamps() -> list[datetime]:
    """The aware UTC timestamps of the rows, by age."""
    return [T0 + offset for offset in OFFSETS]


def events(tz: str | None = "UTC") -> pd.DataFrame:
    """The test rows; `tz=None` gives a naive (UTC wall clock) timestamp column."""
    times = pd.DatetimeIndex(stamps())
    times = times.tz_localize(None) if tz is None else times.tz_convert(tz)
    ages = list(range(len(OFFSETS)))
    return pd.DataFrame(
        {
            "age": ages,
            "plan": [f"p{age % 2}" for age in ages],
            "income": [age * 1.5 for age in ages],
            "event_time": times,
        }
    )


def arrow_events(unit: str, tz: str | None) -> pa.Table:
    """The test rows as an arrow table with a timestamp column of `unit` and `tz`."""
    frame = events()
    times = [t if tz else t.replace(tzinfo=None) for t in stamps()]
    return pa.table(
        {
            "age": pa.array(frame["age"], pa.int64()),
            "plan": pa.array(frame["plan"], pa.string()),
            "income": pa.array(frame["income"], pa.float64()),
            "event_time": pa.array(times, pa.timestamp(unit, tz=tz)),
        }
    )


def write_parquet_parts(directory: Path, table: pa.Table, parts: int = 3) -> str:
    """Write `table` round-robin into `parts` files; return their glob."""
    directory.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        pq.write_table(table.take(list(range(part, table.num_rows, parts))), directory / f"part-{part}.parquet")
    return str(directory / "*.parquet")


def write_csv_parts(directory: Path, render: Callable[[datetime], str], parts: int = 2) -> str:
    """Write the test rows round-robin into `parts` csv files, timestamps rendered by `render`."""
    directory.mkdir(parents=True, exist_ok=True)
    frame = events()
    for part in range(parts):
        lines = ["age,plan,income,event_time"]
        for age in range(part, len(frame), parts):
            row = frame.iloc[age]
            lines.append(f"{row['age']},{row['plan']},{row['income']},{render(stamps()[age])}")
        (directory / f"part-{part}.csv").write_text("\n".join(lines) + "\n")
    return str(directory / "*.csv")


def write_sqlite(path: Path, frame: pd.DataFrame, table: str = "events") -> str:
    """Write `frame` into SQLite with pandas `to_sql`; return the URL."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    try:
        frame.to_sql(table, engine, index=False)
    finally:
        engine.dispose()
    return url


def ages(frame: pd.DataFrame) -> list[int]:
    """The sorted ages of a result."""
    return sorted(int(age) for age in frame["age"])


def utc_times(frame: pd.DataFrame) -> list[pd.Timestamp]:
    """The sorted timestamps of a result as aware UTC."""
    values = frame["event_time"]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return sorted(values.dt.tz_convert("UTC"))
    return sorted(values.dt.tz_localize("UTC"))


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Callable[[str], DataSource]]:
    """A factory of the test rows behind each kind of source, named `prod`."""
    opened: list[SqlSource] = []

    def make(kind: str) -> DataSource:
        if kind == "parquet":
            return ParquetSource("prod", write_parquet_parts(tmp_path / "pq", arrow_events("us", "UTC")), "event_time")
        if kind == "csv":
            return CsvSource("prod", write_csv_parts(tmp_path / "csv", datetime.isoformat), "event_time")
        if kind == "memory":
            return InMemorySource("prod", events(), "event_time")
        url = write_sqlite(tmp_path / "db.sqlite", events(None))
        query = "SELECT * FROM events WHERE event_time >= :start AND event_time < :end"
        source = SqlSource(
            "prod",
            url,
            table="events" if kind == "sql-table" else None,
            query=query if kind == "sql-query" else None,
            timestamp_column="event_time",
        )
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()


KINDS = [pytest.param(kind, id=kind) for kind in ("parquet", "csv", "memory", "sql-table", "sql-query")]


@pytest.mark.parametrize("kind", KINDS)
def test_window_includes_start_and_excludes_end(sources: Callable[[str], DataSource], kind: str) -> None:
    """Every source returns the rows in [start, end) with the right instants."""
    frame = sources(kind).read(START, END, ["age", "event_time"])
    assert ages(frame) == INSIDE
    assert utc_times(frame) == [pd.Timestamp(stamps()[age]) for age in INSIDE]


@pytest.mark.parametrize("kind", KINDS)
def test_projection_returns_exactly_requested_columns(sources: Callable[[str], DataSource], kind: str) -> None:
    """Only the requested columns come back, in the requested order, without the timestamp."""
    frame = sources(kind).read(START, END, ["plan", "age"])
    assert list(frame.columns) == ["plan", "age"]
    assert sorted(zip(frame["age"].astype(int), frame["plan"], strict=True)) == [(a, f"p{a % 2}") for a in INSIDE]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("columns", "missing"),
    [
        pytest.param(["age", "salary"], "column 'salary'", id="one"),
        pytest.param(["salary", "tenure"], "columns 'salary', 'tenure'", id="two"),
    ],
)
def test_missing_column_is_schema_mismatch(
    sources: Callable[[str], DataSource], kind: str, columns: list[str], missing: str
) -> None:
    """A missing requested column names itself and lists the available ones."""
    with pytest.raises(SchemaMismatch) as info:
        sources(kind).read(START, END, columns)
    assert info.value.source == "prod"
    assert str(info.value) == f"source prod: {missing} not found (available: {', '.join(ALL_COLUMNS)})"


@pytest.mark.parametrize("kind", KINDS)
def test_missing_timestamp_column_is_schema_mismatch(tmp_path: Path, kind: str) -> None:
    """A source whose timestamp column does not exist says so."""
    frame = events().rename(columns={"event_time": "ts"})
    if kind == "parquet":
        path = tmp_path / "a.parquet"
        frame.to_parquet(path)
        source: DataSource = ParquetSource("prod", str(path), "event_time")
    elif kind == "csv":
        path = tmp_path / "a.csv"
        frame.to_csv(path, index=False)
        source = CsvSource("prod", str(path), "event_time")
    elif kind == "memory":
        source = InMemorySource("prod", frame, "event_time")
    else:
        url = write_sqlite(tmp_path / "db.sqlite", frame)
        source = SqlSource(
            "prod",
            url,
            table="events" if kind == "sql-table" else None,
            query="SELECT * FROM events" if kind == "sql-query" else None,
            timestamp_column="event_time",
        )
    with pytest.raises(SchemaMismatch, match=r"^source prod: column 'event_time' not found \(available: .*ts\)$"):
        source.read(START, END, ["age"])
    if isinstance(source, SqlSource):
        source.close()


@pytest.mark.parametrize(
    ("unit", "tz"),
    [
        pytest.param("us", "UTC", id="us-utc"),
        pytest.param("ns", None, id="ns-naive"),
        pytest.param("ms", "Europe/Berlin", id="ms-berlin"),
        pytest.param("s", "America/New_York", id="s-new-york"),
        pytest.param("s", None, id="s-naive"),
    ],
)
def test_parquet_timestamp_units_and_zones(tmp_path: Path, unit: str, tz: str | None) -> None:
    """Naive columns are UTC and zoned columns are compared as instants, whatever the unit."""
    source = ParquetSource("prod", write_parquet_parts(tmp_path, arrow_events(unit, tz)), "event_time")
    frame = source.read(START, END, ["age", "event_time"])
    assert ages(frame) == INSIDE
    assert utc_times(frame) == [pd.Timestamp(stamps()[age]) for age in INSIDE]


def test_parquet_window_in_another_zone(tmp_path: Path) -> None:
    """A window given in another zone (or naive) selects the same instants."""
    source = ParquetSource("prod", write_parquet_parts(tmp_path, arrow_events("us", None)), "event_time")
    berlin = pd.Timestamp(START).tz_convert("Europe/Berlin").to_pydatetime()
    assert ages(source.read(berlin, END, ["age"])) == INSIDE


@pytest.mark.parametrize(
    ("moment", "unit", "expected"),
    [
        pytest.param(T0 + timedelta(microseconds=500_000), "s", 1, id="seconds-round-up"),
        pytest.param(T0 + timedelta(seconds=2), "s", 2, id="seconds-exact"),
        pytest.param(T0 + timedelta(microseconds=1), "ms", 1, id="millis-round-up"),
        pytest.param(T0 + timedelta(microseconds=3), "ns", 3_000, id="nanos"),
    ],
)
def test_timestamp_bound_rounds_up_for_coarse_units(moment: datetime, unit: str, expected: int) -> None:
    """Bounds round up to the column's unit, which keeps >= and < exact."""
    epoch_ticks = {"s": 1, "ms": 1_000, "ns": 1_000_000_000}[unit] * int(T0.timestamp())
    bound = timestamp_bound(moment, pa.timestamp(unit, tz="UTC"))
    assert bound.cast(pa.int64()).as_py() - epoch_ticks == expected


def test_parquet_glob_is_evaluated_at_read_time(tmp_path: Path) -> None:
    """Files that land after the source was made are read; no files gives an empty frame."""
    source = ParquetSource("prod", str(tmp_path / "landing" / "*.parquet"), "event_time")
    empty = source.read(START, END, ["plan", "age"])
    assert list(empty.columns) == ["plan", "age"] and empty.empty
    write_parquet_parts(tmp_path / "landing", arrow_events("us", "UTC"))
    assert ages(source.read(START, END, ["age"])) == INSIDE


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(lambda t: t.isoformat(), id="offset-utc"),
        pytest.param(
            lambda t: t.astimezone(pd.Timestamp(t).tz_convert("Asia/Kolkata").tzinfo).isoformat(), id="offset-kolkata"
        ),
        pytest.param(lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"), id="zulu"),
        pytest.param(lambda t: t.strftime("%Y-%m-%d %H:%M:%S"), id="naive-space"),
        pytest.param(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%f"), id="naive-micros"),
    ],
)
def test_csv_timestamps_with_and_without_offset(tmp_path: Path, render: Callable[[datetime], str]) -> None:
    """ISO timestamps in csv are parsed with their offset, or as UTC without one."""
    source = CsvSource("prod", write_csv_parts(tmp_path, render), "event_time")
    frame = source.read(START, END, ["age", "event_time"])
    assert ages(frame) == INSIDE
    assert utc_times(frame) == [pd.Timestamp(stamps()[age]) for age in INSIDE]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        pytest.param("zz-bad.parquet", b"this is not parquet", id="not-parquet"),
        pytest.param("zz-truncated.parquet", None, id="truncated"),
    ],
)
def test_corrupt_parquet_names_the_file(tmp_path: Path, filename: str, content: bytes | None) -> None:
    """A corrupt file among good ones is SourceUnavailable naming that file."""
    pattern = write_parquet_parts(tmp_path, arrow_events("us", "UTC"))
    good = (tmp_path / "part-0.parquet").read_bytes()
    (tmp_path / filename).write_bytes(content if content is not None else good[: len(good) // 2])
    with pytest.raises(SourceUnavailable) as info:
        ParquetSource("prod", pattern, "event_time").read(START, END, ["age"])
    assert info.value.source == "prod"
    assert filename in str(info.value) and "\n" not in str(info.value)


def test_corrupt_csv_names_the_file(tmp_path: Path) -> None:
    """A csv file with a bad row is SourceUnavailable naming that file."""
    pattern = write_csv_parts(tmp_path, datetime.isoformat)
    (tmp_path / "zz-bad.csv").write_text("age,plan,income,event_time\n1,p1\n")
    with pytest.raises(SourceUnavailable, match="zz-bad.csv"):
        CsvSource("prod", pattern, "event_time").read(START, END, ["age"])


def test_non_timestamp_column_is_schema_mismatch(tmp_path: Path) -> None:
    """A timestamp column holding numbers is a SchemaMismatch."""
    pattern = write_parquet_parts(tmp_path, arrow_events("us", "UTC"))
    with pytest.raises(SchemaMismatch, match="timestamp column 'age' has type int64"):
        ParquetSource("prod", pattern, "age").read(START, END, ["plan"])


@pytest.mark.parametrize(
    "tz",
    [pytest.param(None, id="naive"), pytest.param("UTC", id="utc")],
)
@pytest.mark.parametrize("mode", [pytest.param("table", id="table"), pytest.param("query", id="query")])
def test_sqlite_window_from_pandas_to_sql(tmp_path: Path, tz: str | None, mode: str) -> None:
    """Timestamps written by pandas to_sql (naive or UTC) are filtered on the window, edges exact."""
    url = write_sqlite(tmp_path / "db.sqlite", events(tz))
    query = "SELECT age, event_time FROM events WHERE event_time >= :start AND event_time < :end"
    source = SqlSource(
        "prod",
        url,
        table="events" if mode == "table" else None,
        query=query if mode == "query" else None,
        timestamp_column="event_time",
    )
    try:
        frame = source.read(START, END, ["event_time", "age"])
        assert list(frame.columns) == ["event_time", "age"]
        assert ages(frame) == INSIDE
        assert utc_times(frame) == [pd.Timestamp(stamps()[age]) for age in INSIDE]
        assert source.read(START + timedelta(microseconds=1), END, ["age"])["age"].tolist() == [3, 4, 5]
    finally:
        source.close()


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(T0, "2024-01-01 00:00:00", id="whole-second"),
        pytest.param(T0 + timedelta(microseconds=5), "2024-01-01 00:00:00.000005", id="micros"),
        pytest.param(
            datetime(2024, 1, 1, 2, tzinfo=pd.Timestamp(0, tz="Europe/Berlin").tzinfo),
            "2024-01-01 01:00:00",
            id="converted-to-utc",
        ),
    ],
)
def test_sqlite_bounds_as_text(moment: datetime, text: str) -> None:
    """SQLite bounds are naive UTC text comparable with pandas-written values."""
    assert sqlite_text(moment) == text


def test_sql_query_result_is_filtered_to_window(tmp_path: Path) -> None:
    """A query that ignores :start/:end still yields only the window's rows."""
    url = write_sqlite(tmp_path / "db.sqlite", events(None))
    source = SqlSource("prod", url, query="SELECT * FROM events", timestamp_column="event_time")
    try:
        assert ages(source.read(START, END, ["age"])) == INSIDE
    finally:
        source.close()


def test_sql_table_names_are_quoted(tmp_path: Path) -> None:
    """Table and column names needing quotes are quoted, not formatted into SQL."""
    frame = events(None).rename(columns={"age": "select", "event_time": "event time"})
    url = write_sqlite(tmp_path / "db.sqlite", frame, table="my events")
    source = SqlSource("prod", url, table="my events", timestamp_column="event time")
    try:
        assert sorted(source.read(START, END, ["select"])["select"]) == INSIDE
    finally:
        source.close()


@pytest.mark.parametrize(
    ("mode", "pattern"),
    [
        pytest.param("table", r"table 'missing' not found in sqlite:///", id="table"),
        pytest.param("query", r"no such table: missing", id="query"),
    ],
)
def test_sqlite_missing_table_is_unavailable(tmp_path: Path, mode: str, pattern: str) -> None:
    """A missing table is SourceUnavailable in both modes."""
    url = write_sqlite(tmp_path / "db.sqlite", events(None))
    source = SqlSource(
        "prod",
        url,
        table="missing" if mode == "table" else None,
        query="SELECT * FROM missing" if mode == "query" else None,
        timestamp_column="event_time",
    )
    try:
        with pytest.raises(SourceUnavailable, match=pattern) as info:
            source.read(START, END, ["age"])
        assert info.value.source == "prod" and "\n" not in str(info.value)
    finally:
        source.close()


def test_sql_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    """An unreachable database is SourceUnavailable with the URL redacted."""
    url = f"sqlite:///{tmp_path}/no/such/dir/db.sqlite"
    source = SqlSource("prod", url, table="events", timestamp_column="event_time")
    try:
        with pytest.raises(SourceUnavailable, match="unable to open database file"):
            source.read(START, END, ["age"])
    finally:
        source.close()
    secret = SqlSource("prod", "postgresql+psycopg://user:s3cret@127.0.0.1:1/db", table="t", timestamp_column="ts")
    assert "s3cret" not in secret.describe() and "***" in secret.describe()
    secret.close()


def test_open_source_builds_each_kind(tmp_path: Path) -> None:
    """open_source maps kinds to classes and rejects unknown kinds or missing arguments."""
    assert isinstance(open_source("a", "parquet", timestamp_column="t", path="x/*.parquet"), ParquetSource)
    assert isinstance(open_source("a", "csv", timestamp_column="t", path="x/*.csv"), CsvSource)
    sql = open_source("a", "sql", timestamp_column="t", url=f"sqlite:///{tmp_path}/d.db", table="t")
    assert isinstance(sql, SqlSource) and isinstance(sql, DataSource)
    sql.close()
    with pytest.raises(SourceError, match="unknown source kind 'dask'"):
        open_source("a", "dask", timestamp_column="t")
    with pytest.raises(SourceError, match="needs a path"):
        open_source("a", "csv", timestamp_column="t")
    with pytest.raises(SourceError, match="exactly one of table or query"):
        open_source("a", "sql", timestamp_column="t", url="sqlite://")


def test_describe_is_one_line(tmp_path: Path) -> None:
    """describe() is one line naming the location."""
    for source in (ParquetSource("a", "/data/*.parquet", "t"), InMemorySource("m", events(), "event_time")):
        assert "\n" not in source.describe()
    assert "/data/*.parquet" in ParquetSource("a", "/data/*.parquet", "t").describe()


@pytest.fixture
def reference_frame() -> pd.DataFrame:
    """A reference with one column of each kind."""
    return pd.DataFrame(
        {
            "count": pd.Series([1, 2], dtype="int32"),
            "score": [0.5, 1.5],
            "flag": [True, False],
            "plan": ["a", "b"],
            "plan_cat": pd.Categorical(["x", "y"]),
            "when": pd.to_datetime(["2024-01-01"] * 2),
            "blob": [b"\x00", b"\x01"],
        }
    )


def test_reference_columns_kinds(tmp_path: Path, reference_frame: pd.DataFrame) -> None:
    """Schema kinds: ints and floats numeric, bool/strings/dictionaries categorical."""
    path = tmp_path / "train.parquet"
    reference_frame.to_parquet(path, index=False)
    assert reference_columns(path) == {
        "count": "numeric",
        "score": "numeric",
        "flag": "categorical",
        "plan": "categorical",
        "plan_cat": "categorical",
        "when": "timestamp",
        "blob": "other",
    }


def test_reference_columns_csv(tmp_path: Path) -> None:
    """A csv reference's kinds come from arrow's type inference."""
    path = tmp_path / "train.csv"
    path.write_text("n,x,flag,plan\n1,0.5,true,a\n2,1.5,false,b\n")
    assert reference_columns(path) == {"n": "numeric", "x": "numeric", "flag": "categorical", "plan": "categorical"}


@pytest.mark.parametrize(
    "suffix", [pytest.param(".parquet", id="parquet"), pytest.param(".pq", id="pq"), pytest.param(".csv", id="csv")]
)
def test_read_reference(tmp_path: Path, reference_frame: pd.DataFrame, suffix: str) -> None:
    """read_reference reads all columns, or just the configured ones in order."""
    path = tmp_path / f"train{suffix}"
    frame = reference_frame[["count", "score", "plan"]]
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    assert list(read_reference(path).columns) == ["count", "score", "plan"]
    subset = read_reference(path, ["plan", "score"])
    assert list(subset.columns) == ["plan", "score"]
    assert subset["score"].tolist() == [0.5, 1.5] and subset["plan"].tolist() == ["a", "b"]


def test_read_reference_missing_column(tmp_path: Path) -> None:
    """A configured column missing from the reference is SchemaMismatch naming the file."""
    path = tmp_path / "train.parquet"
    pd.DataFrame({"age": [1], "plan": ["a"]}).to_parquet(path, index=False)
    with pytest.raises(SchemaMismatch) as info:
        read_reference(path, ["age", "x"])
    assert str(info.value) == f"reference {path}: column 'x' not found (available: age, plan)"


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        pytest.param("train.json", b"{}", SourceError, id="unsupported-suffix"),
        pytest.param("train.parquet", b"garbage", SourceUnavailable, id="corrupt"),
        pytest.param("absent.csv", None, SourceUnavailable, id="missing-file"),
    ],
)
def test_read_reference_errors(tmp_path: Path, name: str, content: bytes | None, error: type[Exception]) -> None:
    """Unsupported, corrupt or missing reference files raise source errors naming the path."""
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=name):
        read_reference(path)
    with pytest.raises(error, match=name):
        reference_columns(path)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (session zone Asia/Tokyo, to catch zone mistakes) on a free port."""
    with postgres_server(timezone="Asia/Tokyo") as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("tz", [pytest.param(None, id="timestamp"), pytest.param("UTC", id="timestamptz")])
@pytest.mark.parametrize("mode", [pytest.param("table", id="table"), pytest.param("query", id="query")])
def test_postgres_window(postgres_url: str, tz: str | None, mode: str) -> None:
    """PostgreSQL naive and zoned columns are filtered as UTC regardless of the server's zone."""
    table = f"events_{mode}_{tz or 'naive'}".lower()
    engine = sa.create_engine(postgres_url)
    try:
        events(tz).to_sql(table, engine, index=False)
    finally:
        engine.dispose()
    query = f"SELECT * FROM {table} WHERE event_time >= :start AND event_time < :end"
    source = SqlSource(
        "prod",
        postgres_url,
        table=table if mode == "table" else None,
        query=query if mode == "query" else None,
        timestamp_column="event_time",
    )
    try:
        frame = source.read(START, END, ["age", "event_time"])
        assert ages(frame) == INSIDE
        assert utc_times(frame) == [pd.Timestamp(stamps()[age]) for age in INSIDE]
        assert "s3cret" not in source.describe()
    finally:
        source.close()


@pytest.mark.integration
def test_postgres_missing_table_and_unreachable_server(postgres_url: str) -> None:
    """A missing table and a closed port are SourceUnavailable without the password."""
    closed = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
    for url, table in ((postgres_url, "missing"), (closed, "events")):
        source = SqlSource("prod", url, table=table, timestamp_column="event_time")
        try:
            with pytest.raises(SourceUnavailable) as info:
                source.read(START, END, ["age"])
            assert "s3cret" not in str(info.value) and "***" in str(info.value)
        finally:
            source.close()


@pytest.mark.parametrize(
    ("dialect", "timeout", "statements", "arguments"),
    [
        pytest.param(
            "postgresql",
            2.5,
            ["SET TIME ZONE 'UTC'", "SET statement_timeout = 2500"],
            {"connect_timeout": 3},
            id="postgresql",
        ),
        pytest.param(
            "postgresql",
            3650 * 86400.0,
            ["SET TIME ZONE 'UTC'", f"SET statement_timeout = {2**31 - 1}"],
            {"connect_timeout": 3650 * 86400},
            id="postgresql-10y-clamped",
        ),
        pytest.param("postgresql", None, ["SET TIME ZONE 'UTC'"], {}, id="postgresql-no-timeout"),
        pytest.param("sqlite", 0.5, [], {"timeout": 0.5}, id="sqlite"),
        pytest.param(
            "mysql",
            0.2,
            ["SET time_zone = '+00:00'"],
            {"connect_timeout": 1, "read_timeout": 1},
            id="mysql-at-least-1s",
        ),
        pytest.param("oracle", 5.0, [], {}, id="other-dialect"),
    ],
)
def test_sql_waits_are_bounded_by_the_timeout(dialect, timeout, statements, arguments):
    """Each dialect gets the connect and statement timeouts its driver understands, clamped to what it accepts."""
    assert session_statements(dialect, timeout) == statements
    assert connect_arguments(dialect, timeout) == arguments
