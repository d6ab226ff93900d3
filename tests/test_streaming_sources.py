"""Streamed windows: batches bounded by batch_rows, equal to `read`, re-iterable over frozen files, bounded memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from servers import postgres_server

from driftwatch.config import sources as config_sources
from driftwatch.core.values import category_counts, merge_category_counts
from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable
from driftwatch.sources import (
    DEFAULT_BATCH_ROWS,
    MAX_BATCH_ROWS,
    CsvSource,
    DataSource,
    InMemorySource,
    ParquetSource,
    SqlSource,
    Window,
    open_source,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ROWS = 6_000
FILES = 6
# The window cuts the data on both sides: rows are one second apart from T0.
START, END = T0 + timedelta(seconds=700), T0 + timedelta(seconds=5_300)
COLUMNS = ["score", "plan", "count"]
BATCH = 256


def rows() -> pd.DataFrame:
    """ROWS rows, one second apart: a float with NaN and inf, a string with nulls and late categories, an int."""
    rng = np.random.default_rng(7)
    score = rng.normal(size=ROWS)
    score[::97] = np.nan
    score[5] = np.inf
    plans = np.array([f"p{i}" for i in rng.integers(0, 5, size=ROWS)], dtype=object)
    plans[::31] = None
    plans[ROWS - 900 :: 50] = "late"  # a category that appears only in later batches
    return pd.DataFrame(
        {
            "score": score,
            "plan": plans,
            "count": rng.integers(0, 1_000, size=ROWS),
            "event_time": pd.date_range(T0.replace(tzinfo=None), periods=ROWS, freq="s"),  # naive = UTC
        }
    )


def write_parquet(directory: Path, frame: pd.DataFrame, files: int = FILES, row_group: int = 300) -> str:
    """`frame` split in `files` consecutive parquet files of `row_group`-row groups; returns their glob."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, chunk in enumerate(np.array_split(np.arange(len(frame)), files)):
        table = pa.Table.from_pandas(frame.iloc[chunk], preserve_index=False)
        pq.write_table(table, directory / f"part-{part:02d}.parquet", row_group_size=row_group)
    return str(directory / "*.parquet")


def write_csv(directory: Path, frame: pd.DataFrame, files: int = 3) -> str:
    """`frame` split in `files` csv files with ISO timestamps; returns their glob."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, chunk in enumerate(np.array_split(np.arange(len(frame)), files)):
        out = frame.iloc[chunk].assign(event_time=lambda f: f["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.to_csv(directory / f"part-{part:02d}.csv", index=False)
    return str(directory / "*.csv")


@pytest.fixture
def sources(tmp_path: Path) -> Iterator[Callable[[str], DataSource]]:
    """A factory of the same rows behind each kind of source, named `prod`."""
    opened: list[SqlSource] = []

    def make(kind: str) -> DataSource:
        frame = rows()
        if kind == "parquet":
            return ParquetSource("prod", write_parquet(tmp_path / "pq", frame), "event_time")
        if kind == "csv":
            return CsvSource("prod", write_csv(tmp_path / "csv", frame), "event_time")
        if kind == "memory":
            return InMemorySource(
                "prod", frame.assign(event_time=frame["event_time"].dt.tz_localize("UTC")), "event_time"
            )
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        engine = sa.create_engine(url)
        frame.replace([np.inf], np.nan).to_sql("events", engine, index=False)  # SQLite stores inf as NULL anyway
        engine.dispose()
        query = "SELECT * FROM events WHERE event_time >= :start AND event_time < :end"
        table = kind == "sql-table"
        source = SqlSource("prod", url, table="events" if table else None, query=None if table else query,
                           timestamp_column="event_time")  # fmt: skip
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()


KINDS = [pytest.param(kind, id=kind) for kind in ("parquet", "csv", "memory", "sql-table", "sql-query")]


def by_value(frame: pd.DataFrame) -> dict[str, list[object]]:
    """Each column as plain Python values (categorical and string columns alike), missing values as None."""
    out: dict[str, list[object]] = {}
    for name in frame.columns:
        values = frame[name].astype(object)
        out[str(name)] = [None if pd.isna(value) else value for value in values]
    return out


def concatenated(window: Window) -> pd.DataFrame:
    """One pass of `window` as one frame (categoricals of different batches become values)."""
    frames = [frame.astype({name: object for name in frame.columns if frame[name].dtype == "category"})
              for frame in window.batches()]  # fmt: skip
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(window.columns))


@pytest.mark.parametrize("kind", KINDS)
def test_batches_concatenate_to_read(sources: Callable[[str], DataSource], kind: str) -> None:
    """The batches of a window, in order, hold exactly the rows and values `read` returns; each <= batch_rows."""
    source = sources(kind)
    expected = source.read(START, END, COLUMNS)
    window = source.window(START, END, COLUMNS, batch_rows=BATCH)
    sizes = [len(frame) for frame in window.batches()]
    assert len(expected) == 4_600 and sum(sizes) == len(expected) == window.rows_read
    assert max(sizes) <= BATCH and min(sizes) >= 1 and len(sizes) >= len(expected) // BATCH
    got = concatenated(window)
    assert list(got.columns) == COLUMNS
    assert by_value(got) == by_value(expected)


@pytest.mark.parametrize("kind", KINDS)
def test_two_passes_give_identical_batches(sources: Callable[[str], DataSource], kind: str) -> None:
    """A second pass re-reads the same batches in the same order, even if new files land in between."""
    source = sources(kind)
    window = source.window(START, END, ["plan", "score", "event_time"], batch_rows=1_000)
    first = [by_value(frame) for frame in window.batches()]
    if isinstance(source, ParquetSource):
        write_parquet(Path(source.path_glob).parent / "late", rows(), files=1)  # not matched: other directory
        pq.write_table(
            pa.Table.from_pandas(rows(), preserve_index=False), Path(source.path_glob).parent / "new.parquet"
        )
    second = [by_value(frame) for frame in window.batches()]
    assert first == second and len(first) >= 5


@pytest.mark.parametrize("kind", [pytest.param("parquet", id="parquet"), pytest.param("csv", id="csv")])
def test_strings_stream_as_categoricals_counted_alike(sources: Callable[[str], DataSource], kind: str) -> None:
    """File batches carry strings as pandas categoricals; merged category counts equal those of `read`."""
    source = sources(kind)
    frames = list(source.window(START, END, ["plan"], batch_rows=BATCH).batches())
    assert all(isinstance(frame["plan"].dtype, pd.CategoricalDtype) for frame in frames)
    merged = merge_category_counts([category_counts(frame["plan"]) for frame in frames])
    assert merged == category_counts(source.read(START, END, ["plan"])["plan"])
    assert "late" in merged.counts and merged.missing == (kind == "parquet") * 148  # csv reads empty strings
    assert "late" not in category_counts(frames[0]["plan"]).counts


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("start", "end"),
    [pytest.param(T0 - timedelta(days=2), T0 - timedelta(days=1), id="before"), pytest.param(END, END, id="empty")],
)
def test_empty_window_yields_no_batches(
    sources: Callable[[str], DataSource], kind: str, start: datetime, end: datetime
) -> None:
    """A window without rows yields no batch at all; `read` gives an empty frame with the columns."""
    source = sources(kind)
    window = source.window(start, end, COLUMNS, batch_rows=BATCH)
    assert list(window.batches()) == [] and window.rows_read == 0
    frame = source.read(start, end, COLUMNS)
    assert frame.empty and list(frame.columns) == COLUMNS


def test_no_files_yield_no_batches(tmp_path: Path) -> None:
    """A glob matching nothing is an empty window; files landing later are not in it (the list is frozen)."""
    source = ParquetSource("prod", str(tmp_path / "*.parquet"), "event_time")
    window = source.window(START, END, COLUMNS)
    write_parquet(tmp_path, rows())
    assert list(window.batches()) == []
    assert sum(len(frame) for frame in source.window(START, END, COLUMNS).batches()) == 4_600


@pytest.mark.parametrize("kind", KINDS)
def test_missing_column_is_schema_mismatch(sources: Callable[[str], DataSource], kind: str) -> None:
    """A missing column raises the SchemaMismatch `read` raises, from window() or the first pass."""
    source = sources(kind)
    with pytest.raises(SchemaMismatch) as expected:
        source.read(START, END, ["score", "salary"])
    with pytest.raises(SchemaMismatch) as streamed:
        list(source.window(START, END, ["score", "salary"]).batches())
    assert str(streamed.value) == str(expected.value)
    assert "column 'salary' not found" in str(streamed.value)


@pytest.mark.parametrize("kind", [pytest.param("parquet", id="parquet"), pytest.param("csv", id="csv")])
@pytest.mark.parametrize("change", [pytest.param("rewritten", id="rewritten"), pytest.param("removed", id="removed")])
def test_file_changed_between_passes_is_source_error(
    sources: Callable[[str], DataSource], kind: str, change: str
) -> None:
    """A file rewritten (other size) or removed after the window was made raises SourceError naming it."""
    source = sources(kind)
    assert isinstance(source, ParquetSource | CsvSource)
    window = source.window(START, END, COLUMNS, batch_rows=BATCH)
    assert sum(len(frame) for frame in window.batches()) == 4_600
    victim = source.files()[2]
    if change == "removed":
        os.remove(victim)
    elif kind == "parquet":
        pq.write_table(pa.Table.from_pandas(rows().iloc[:10], preserve_index=False), victim)
    else:
        rows().iloc[:10].to_csv(victim, index=False)
    with pytest.raises(SourceError, match="changed between passes") as info:
        list(window.batches())
    assert victim in str(info.value) and "\n" not in str(info.value) and info.value.source == "prod"


def test_file_touched_with_same_size_is_detected(tmp_path: Path) -> None:
    """A new mtime alone (same size) also counts as a change."""
    source = ParquetSource("prod", write_parquet(tmp_path, rows()), "event_time")
    window = source.window(START, END, COLUMNS)
    victim = source.files()[0]
    stat = os.stat(victim)
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(SourceError, match=r"changed between passes \(modified\)"):
        list(window.batches())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        pytest.param("part-03.parquet", b"this is not parquet", id="not-parquet"),
        pytest.param("part-04.parquet", None, id="truncated"),
        pytest.param("part-00.parquet", b"PAR1 first file broken", id="first-file"),
    ],
)
def test_corrupt_parquet_is_the_same_error_as_read(tmp_path: Path, name: str, content: bytes | None) -> None:
    """A corrupt file gives the one-line SourceUnavailable of `read`, naming the file."""
    pattern = write_parquet(tmp_path, rows())
    good = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(content if content is not None else good[: len(good) // 2])
    source = ParquetSource("prod", pattern, "event_time")
    with pytest.raises(SourceUnavailable) as expected:
        source.read(START, END, COLUMNS)
    with pytest.raises(SourceUnavailable) as streamed:
        list(source.window(START, END, COLUMNS, batch_rows=BATCH).batches())
    assert str(streamed.value) == str(expected.value)
    assert name in str(streamed.value) and "\n" not in str(streamed.value)


def test_corrupt_csv_is_the_same_error_as_read(tmp_path: Path) -> None:
    """A csv file with a bad row gives the one-line SourceUnavailable of `read`, naming the file."""
    pattern = write_csv(tmp_path, rows())
    (tmp_path / "zz-bad.csv").write_text("score,plan,count,event_time\n1.0,p1\n")
    source = CsvSource("prod", pattern, "event_time")
    with pytest.raises(SourceUnavailable) as expected:
        source.read(START, END, COLUMNS)
    with pytest.raises(SourceUnavailable) as streamed:
        list(source.window(START, END, COLUMNS).batches())
    assert str(streamed.value) == str(expected.value)
    assert "zz-bad.csv" in str(streamed.value) and "\n" not in str(streamed.value)


def test_parquet_files_with_other_types_are_cast_like_read(tmp_path: Path) -> None:
    """A file whose column has another type (int32 vs int64) is read as the first file's type, as `read` does."""
    frame = rows()
    tables = [
        pa.Table.from_pandas(frame.iloc[:3000], preserve_index=False),
        pa.Table.from_pandas(frame.iloc[3000:].astype({"count": "int32"}), preserve_index=False),
    ]
    for part, table in enumerate(tables):
        pq.write_table(table, tmp_path / f"part-{part}.parquet", row_group_size=500)
    source = ParquetSource("prod", str(tmp_path / "*.parquet"), "event_time")
    expected = source.read(START, END, [*COLUMNS, "event_time"])
    got = concatenated(source.window(START, END, [*COLUMNS, "event_time"], batch_rows=BATCH))
    assert len(got) == 4_600 and by_value(got) == by_value(expected)
    assert got["count"].dtype == np.int64


def test_duplicate_and_reordered_columns(sources: Callable[[str], DataSource]) -> None:
    """Batches hold exactly the requested columns, duplicates and order included, as `read` does."""
    source = sources("parquet")
    columns = ["count", "score", "count"]
    frame = next(iter(source.window(START, END, columns, batch_rows=BATCH).batches()))
    assert list(frame.columns) == columns == list(source.read(START, END, columns).columns)


def test_rows_read_counts_the_current_pass(sources: Callable[[str], DataSource]) -> None:
    """rows_read grows batch by batch and starts again with each pass."""
    window = sources("parquet").window(START, END, ["score"], batch_rows=1_000)
    seen = []
    for frame in window.batches():
        seen.append(len(frame))
        assert window.rows_read == sum(seen)
    passes = window.batches()
    next(passes)
    assert window.rows_read == seen[0]


def test_batch_rows_default_from_source_and_config(tmp_path: Path) -> None:
    """A window's batch_rows defaults to the source's (from open_source); config and sources agree on bounds."""
    assert (DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS) == (524_288, 16 * 1024 * 1024)
    assert (config_sources.DEFAULT_BATCH_ROWS, config_sources.MAX_BATCH_ROWS) == (DEFAULT_BATCH_ROWS, MAX_BATCH_ROWS)
    pattern = write_parquet(tmp_path, rows())
    source = open_source("prod", "parquet", timestamp_column="event_time", path=pattern, batch_rows=700)
    assert source.window(START, END, COLUMNS).batch_rows == 700
    assert max(len(frame) for frame in source.window(START, END, COLUMNS).batches()) == 700
    assert source.window(START, END, COLUMNS, batch_rows=5).batch_rows == 5
    assert ParquetSource("prod", pattern, "event_time").window(START, END, COLUMNS).batch_rows == DEFAULT_BATCH_ROWS


@pytest.mark.parametrize(
    "value", [pytest.param(0, id="zero"), pytest.param(MAX_BATCH_ROWS + 1, id="too-big"), pytest.param(1.5, id="float")]
)
def test_invalid_batch_rows_is_source_error(tmp_path: Path, value: object) -> None:
    """batch_rows outside 1..MAX_BATCH_ROWS is refused with one line."""
    source = ParquetSource("prod", str(tmp_path / "*.parquet"), "event_time")
    with pytest.raises(SourceError, match=r"^source prod: batch_rows must be an integer from 1 to 16777216"):
        source.window(START, END, COLUMNS, batch_rows=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("0", "must be >= 1, got 0", id="zero"),
        pytest.param("16777217", "must be <= 16777216", id="too-big"),
        pytest.param("65536", None, id="ok"),
    ],
)
def test_batch_rows_in_config(tmp_path: Path, value: str, problem: str | None) -> None:
    """`sources.<name>.batch_rows` is validated and defaults to 524288."""
    from driftwatch.config import load_config
    from driftwatch.errors import ConfigError

    (tmp_path / "d").mkdir()
    text = "sources:\n  s: {kind: parquet, path: 'd/*.parquet', timestamp_column: t, batch_rows: %s}\n"
    text += "  q: {kind: sql, url: 'sqlite://', table: t, timestamp_column: t}\nmonitors: {}\n"
    (tmp_path / "c.yaml").write_text(text % value)
    if problem is None:
        config = load_config(tmp_path / "c.yaml")
        assert config.sources["s"].batch_rows == int(value)
        assert config.sources["q"].batch_rows == DEFAULT_BATCH_ROWS
        return
    with pytest.raises(ConfigError, match=rf"sources\.s\.batch_rows: {problem}"):
        load_config(tmp_path / "c.yaml")


MEMORY_PROBE = """
import json, resource, sys
from datetime import datetime, UTC
import pyarrow as pa
from driftwatch.sources import ParquetSource

source = ParquetSource("m", sys.argv[1], "event_time")
start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if sys.argv[2] == "batches":
    rows = sum(len(frame) for frame in source.window(start, end, ["x"], batch_rows=65_536).batches())
else:
    rows = len(source.read(start, end, ["x"]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "arrow_peak": pa.default_memory_pool().max_memory(), "rss_growth": after - before}))
"""


def test_streamed_parquet_memory_is_bounded_by_the_batch(tmp_path: Path) -> None:
    """3M rows (pyarrow's default 1Mi-row groups) read in 65,536-row batches: arrow's peak stays a few batches."""
    rows_total = 3_000_000
    stamps = pa.array(np.arange(rows_total, dtype=np.int64) * 1_000 + 1_704_067_200_000_000, pa.timestamp("us"))
    table = pa.table({"x": np.random.default_rng(1).normal(size=rows_total), "event_time": stamps})
    pq.write_table(table, tmp_path / "big.parquet")
    column_bytes = rows_total * 8

    def probe(mode: str) -> dict[str, int]:
        args = [sys.executable, "-c", MEMORY_PROBE, str(tmp_path / "big.parquet"), mode]
        done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
        return dict(json.loads(done.stdout))

    began = time.monotonic()
    streamed, whole = probe("batches"), probe("read")
    assert streamed["rows"] == whole["rows"] == rows_total, time.monotonic() - began
    # measured: streamed ~11 MB of arrow memory (24 MB column + 24 MB timestamps), read ~48 MB
    assert streamed["arrow_peak"] < 0.7 * column_bytes, streamed
    assert streamed["arrow_peak"] < whole["arrow_peak"] / 3, (streamed, whole)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server (session zone Asia/Tokyo, to catch zone mistakes) on a free port."""
    with postgres_server(timezone="Asia/Tokyo") as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize("tz", [pytest.param(None, id="timestamp"), pytest.param("UTC", id="timestamptz")])
@pytest.mark.parametrize("mode", [pytest.param("table", id="table"), pytest.param("query", id="query")])
def test_postgres_streams_through_a_server_side_cursor(postgres_url: str, tz: str | None, mode: str) -> None:
    """PostgreSQL windows stream in batches (a named cursor) that concatenate to `read`, twice alike."""
    frame = rows().replace([np.inf], np.nan)
    if tz:
        frame["event_time"] = frame["event_time"].dt.tz_localize(tz)
    table = f"stream_{mode}_{tz or 'naive'}".lower()
    engine = sa.create_engine(postgres_url)
    try:
        frame.to_sql(table, engine, index=False)
    finally:
        engine.dispose()
    query = f"SELECT * FROM {table} WHERE event_time >= :start AND event_time < :end"
    source = SqlSource(
        "prod",
        postgres_url,
        table=table if mode == "table" else None,
        query=query if mode == "query" else None,
        timestamp_column="event_time",
        timeout=30,
    )
    try:
        expected = source.read(START, END, [*COLUMNS, "event_time"])
        window = source.window(START, END, [*COLUMNS, "event_time"], batch_rows=BATCH)
        first = [by_value(batch) for batch in window.batches()]
        assert max(len(batch["score"]) for batch in first) <= BATCH and len(first) == -(-4_600 // BATCH)
        assert by_value(concatenated(window)) == by_value(expected) and len(expected) == 4_600
        assert [by_value(batch) for batch in window.batches()] == first
    finally:
        source.close()
