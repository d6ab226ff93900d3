"""SQL pushdown (`pushdown: true`): the database counts the partials and the report equals the streamed one.

Every case runs on SQLite and on a real PostgreSQL: the same rows are counted in the database (`PushdownWindow`)
and streamed through the daemon (`SqlWindow` batches); counts and every statistic but the Wasserstein distance
(a float sum in the database's order: 1e-12 relative) must be bit-equal.
"""

from __future__ import annotations

import io
import math
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from servers import postgres_server

from driftwatch.config import load_config
from driftwatch.core.partials import Job, count_window
from driftwatch.core.profile import Profile, build_profile
from driftwatch.core.report import Report
from driftwatch.errors import SchemaMismatch, SourceUnavailable
from driftwatch.runtime.monitor import batch_arrays, count_passes, open_sources, prepare_monitor, run_monitor
from driftwatch.sources import SqlSource
from driftwatch.sources.base import CountingWindow
from driftwatch.sources.pushdown import PushdownWindow

NUMERIC = ("a", "r", "n")
CATEGORICAL = ("plan",)
COLUMNS = [*NUMERIC, *CATEGORICAL]
START = datetime(2026, 1, 1, tzinfo=UTC)
END = START + timedelta(hours=1)


def reference_frame() -> pd.DataFrame:
    """Reference rows: `a` rounded to 0.1 (ties on grid points), `r` float4, `n` small integers."""
    rng = np.random.default_rng(1)
    rows = 20_000
    return pd.DataFrame(
        {
            "a": rng.normal(0, 1, rows).round(1),
            "r": rng.normal(5, 2, rows).astype(np.float32),
            "n": rng.integers(0, 20, rows),
            "plan": rng.choice(["basic", "plus", "premium"], rows, p=[0.6, 0.3, 0.1]),
        }
    )


@pytest.fixture(scope="module")
def profile() -> Profile:
    """The reference profile of `reference_frame`."""
    frame = reference_frame()
    return build_profile({c: frame[c] for c in frame}, numeric=NUMERIC, categorical=CATEGORICAL)


def window_frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    """Window rows with ties, NaN, +-inf, NULLs and new categories, some outside the window's hour."""
    rng = np.random.default_rng(seed)
    a = rng.normal(shift, 1, rows).round(1)
    a[rng.random(rows) < 0.02] = np.nan
    a[rng.random(rows) < 0.01] = np.inf
    a[rng.random(rows) < 0.01] = -np.inf
    r = rng.normal(5 + shift, 2, rows).astype(np.float32)
    r[rng.random(rows) < 0.02] = np.nan
    n = pd.array(rng.integers(0, 22, rows), dtype="Int64")
    n[rng.random(rows) < 0.03] = pd.NA
    plans = ["basic", "plus", "premium", "enterprise"] if shift else ["basic", "plus", "premium"]
    plan = pd.Series(rng.choice(plans, rows), dtype=object)
    plan[rng.random(rows) < 0.02] = None
    seconds = rng.uniform(-600, 4200, rows)  # about a fifth outside [START, END)
    stamps = pd.Timestamp(START.replace(tzinfo=None)) + pd.to_timedelta(seconds, unit="s")
    return pd.DataFrame({"event_time": stamps, "a": a, "r": r, "n": n, "plan": plan})


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty SQLite file or (integration) of the module's PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "prod.db"
        sa.create_engine(f"sqlite:///{path}").dispose()
        return f"sqlite:///{path}"
    request.applymarker(pytest.mark.integration)
    url: str = request.getfixturevalue("postgres_url")
    return url


def write_table(url: str, table: str, frame: pd.DataFrame) -> None:
    """`frame` as `table` (replaced)."""
    engine = sa.create_engine(url)
    try:
        frame.to_sql(table, engine, index=False, if_exists="replace", chunksize=20_000)
    finally:
        engine.dispose()


class Streamed:
    """The window's batches as core chunks, read again on every pass (what the daemon does without pushdown)."""

    def __init__(self, source: SqlSource) -> None:
        self.window = source.window(START, END, COLUMNS)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for frame in self.window.batches():
            yield batch_arrays(frame, NUMERIC, CATEGORICAL, "streamed")


def streamed_report(url: str, profile: Profile, **where: str) -> Report:
    """The report of the window read row by row."""
    source = SqlSource("streamed", url, timestamp_column="event_time", batch_rows=50_000, **where)
    try:
        return count_window(profile, Streamed(source)).finish()
    finally:
        source.close()


def pushdown_report(url: str, profile: Profile, stages: list[int] | None = None, **where: str) -> Report:
    """The report of the window counted in the database; `stages` collects the passes run."""
    source = SqlSource("pushed", url, timestamp_column="event_time", pushdown=True, **where)
    window = source.window(START, END, COLUMNS)
    assert isinstance(window, CountingWindow)
    try:
        job = Job.start(profile)
        while job.request is not None:
            if stages is not None:
                stages.append(job.request.stage)
            job = job.absorb(window.count(job.request))
        return job.finish()
    finally:
        window.close()
        source.close()


def assert_same_report(got: Report, want: Report) -> None:
    """Every statistic bit-equal, the Wasserstein distance within 1e-12 relative."""
    have, expected = got.to_dict(), want.to_dict()
    assert have["rows"] == expected["rows"]
    assert have["severity"] == expected["severity"]
    assert have["features"].keys() == expected["features"].keys()
    for name, stats in expected["features"].items():
        for key, value in stats.items():
            mine = have["features"][name][key]
            if key == "wasserstein" and value is not None:
                assert math.isclose(mine, value, rel_tol=1e-12), (name, key, mine, value)
            else:
                assert mine == value, (name, key, mine, value)


@pytest.mark.parametrize(
    ("shift", "rows", "where"),
    [
        pytest.param(0.0, 12_000, "table", id="no-drift-table"),
        pytest.param(0.3, 12_000, "table", id="drift-table"),
        pytest.param(0.3, 12_000, "query", id="drift-query"),
        pytest.param(0.0, 0, "table", id="empty-window-table"),
        pytest.param(0.0, 0, "query", id="empty-window-query"),
    ],
)
def test_pushdown_report_equals_streamed(database: str, profile: Profile, shift: float, rows: int, where: str) -> None:
    """Counted in the database or streamed, the window's report is the same, statistic for statistic."""
    frame = window_frame(rows, shift, seed=7)
    write_table(database, "prod", frame)
    select = {"table": "prod"} if where == "table" else {"query": "SELECT * FROM prod WHERE event_time < :end"}
    stages: list[int] = []
    got = pushdown_report(database, profile, stages, **select)
    want = streamed_report(database, profile, **select)
    assert_same_report(got, want)
    times = frame["event_time"]
    inside = int(((times >= START.replace(tzinfo=None)) & (times < END.replace(tzinfo=None))).sum())
    assert got.current_rows == inside
    if rows:
        assert stages == [1, 2, 3]  # the fine cells and the crossing values are counted too
        new = {f.name: f.stats.new_categories for f in got.features}["plan"]
        assert list(new) == (["enterprise"] if shift else [])
    else:
        assert stages == [1]


@pytest.mark.integration
def test_pushdown_crosses_only_counts_for_a_million_rows(postgres_url: str, profile: Profile) -> None:
    """A 1M-row window: under 100k result rows come back from PostgreSQL; the report is that of the rows copied out."""
    engine = sa.create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS big")
            conn.exec_driver_sql("SELECT setseed(0.25)")
            # numeric (decimal), real and bigint with NULLs: each cast to float8 as the driver's values convert
            conn.exec_driver_sql(
                "CREATE TABLE big AS SELECT TIMESTAMP '2026-01-01' + mod(i, 3600) * INTERVAL '1 second' AS event_time,"
                " round((sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) + 0.1)::numeric, 1) AS a,"
                " (5 + 2 * (random() + random() + random() - 1.5))::real AS r,"
                " CASE WHEN random() < 0.02 THEN NULL ELSE floor(random() * 21)::bigint END AS n,"
                " (ARRAY['basic', 'plus', 'premium', 'basic'])[1 + floor(random() * 4)::int] AS plan"
                " FROM generate_series(1, 1000000) AS i"
            )
            conn.exec_driver_sql("ANALYZE big")
    finally:
        engine.dispose()
    fetched: list[int] = []
    statements: list[str] = []

    def count_rows(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            fetched.append(max(cursor.rowcount, 0))
            statements.append(statement)

    source = SqlSource("pushed", postgres_url, table="big", timestamp_column="event_time", pushdown=True)
    sa.event.listen(source.engine, "after_cursor_execute", count_rows)
    window = source.window(START, END, COLUMNS)
    try:
        job = Job.start(profile)
        while job.request is not None:
            job = job.absorb(window.count(job.request))
        got = job.finish()
    finally:
        window.close()
        source.close()
    assert got.current_rows == 1_000_000
    assert 0 < sum(fetched) < 100_000, (sum(fetched), fetched)
    reads = [s for s in statements if '"big"' in s or " big " in s]
    assert reads and all("COUNT(*)" in s or "WHERE 1 = 0" in s for s in reads)  # aggregates, or no rows
    assert_same_report(got, copied_report(postgres_url, profile, "big"))


def copied_report(url: str, profile: Profile, table: str) -> Report:
    """The report of a PostgreSQL table's rows in the window, copied out as CSV (faster than streaming 1M rows)."""
    engine = sa.create_engine(url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
            window = "event_time >= '2026-01-01 00:00' AND event_time < '2026-01-01 01:00'"
            with cursor.copy(
                f"COPY (SELECT a, r, n, plan FROM {table} WHERE {window}) TO STDOUT WITH CSV HEADER"
            ) as copy:
                data = b"".join(bytes(block) for block in copy)
        finally:
            raw.close()
    finally:
        engine.dispose()
    frame = pd.read_csv(io.BytesIO(data), dtype={"plan": object})  # pandas 3 parses floats exactly
    return count_window(profile, [batch_arrays(frame, NUMERIC, CATEGORICAL, "copied")]).finish()


def test_pushdown_monitor_from_config(database: str, tmp_path: Path) -> None:
    """`pushdown: true` in the config: run_monitor counts in the database and reports like the streamed source."""
    write_table(database, "prod", window_frame(5000, 0.3, seed=3))
    reference_frame().to_parquet(tmp_path / "train.parquet", index=False)
    monitor = """\
  {name}:
    reference: {{path: train.parquet}}
    source: {source}
    schedule: {{every: 1h}}
    window: 1h
    min_rows: 10
    features: {{numeric: [a, r, n], categorical: [plan]}}
"""
    (tmp_path / "driftwatch.yaml").write_text(
        "state: {path: state.db}\nsources:\n"
        f'  pushed: {{kind: sql, url: "{database}", table: prod, timestamp_column: event_time, pushdown: true}}\n'
        f'  streamed: {{kind: sql, url: "{database}", table: prod, timestamp_column: event_time}}\n'
        "monitors:\n"
        + monitor.format(name="m-pushed", source="pushed")
        + monitor.format(name="m-streamed", source="streamed")
    )
    config = load_config(tmp_path / "driftwatch.yaml")
    sources = open_sources(config)
    try:
        assert "pushdown" in sources["pushed"].describe()
        results = {}
        for name in ("m-pushed", "m-streamed"):
            monitor_ = prepare_monitor(name, config, tmp_path / "profiles", sources)
            if name == "m-pushed":
                window = monitor_.source.window(START, END, monitor_.columns)
                assert isinstance(window, PushdownWindow)
                count_passes(monitor_, window)
                pool = sources["pushed"].engine.pool  # type: ignore[attr-defined]
                assert pool.checkedout() == 0  # the passes ended their transaction (the window is still alive)
            results[name] = run_monitor(monitor_, END)
    finally:
        for source in sources.values():
            source.close()
    assert results["m-pushed"].outcome == results["m-streamed"].outcome == "ok", results["m-pushed"].error
    pushed, streamed = results["m-pushed"].report, results["m-streamed"].report
    assert pushed is not None and streamed is not None
    assert_same_report(pushed, streamed)


def test_all_passes_see_one_snapshot(database: str, profile: Profile, tmp_path: Path) -> None:
    """Rows committed between passes are not seen: the report is that of the rows at pass 1."""
    frame = window_frame(20_000, 0.3, seed=11)
    write_table(database, "prod", frame)
    if database.startswith("sqlite"):
        with sa.create_engine(database).connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    want = streamed_report(database, profile, table="prod")
    source = SqlSource("pushed", database, table="prod", timestamp_column="event_time", pushdown=True)
    window = source.window(START, END, COLUMNS)
    writer = sa.create_engine(database)
    added = 0
    try:
        job = Job.start(profile)
        while job.request is not None:
            job = job.absorb(window.count(job.request))
            if job.request is not None:  # another writer adds rows inside the window between passes
                more = window_frame(3000, -1.0, seed=job.request.stage)
                more["event_time"] = pd.Timestamp(START.replace(tzinfo=None)) + timedelta(minutes=5)
                with writer.begin() as conn:
                    more.to_sql("prod", conn, index=False, if_exists="append")
                added += len(more)
        got = job.finish()
    finally:
        window.close()
        source.close()
        writer.dispose()
    assert_same_report(got, want)
    assert added == 6000  # two passes after the first
    assert streamed_report(database, profile, table="prod").current_rows == want.current_rows + added


def test_dead_database_is_a_one_line_source_error(profile: Profile) -> None:
    """Nothing listening: the first pass fails with one line naming the source, quickly."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://dw:s3cret@127.0.0.1:{port}/postgres"
    source = SqlSource("gone", url, table="prod", timestamp_column="event_time", timeout=2, pushdown=True)
    window = source.window(START, END, COLUMNS)
    assert isinstance(window, CountingWindow)
    with pytest.raises(SourceUnavailable) as caught:
        window.count(Job.start(profile).request)  # type: ignore[arg-type]
    source.close()
    assert "source gone" in str(caught.value) and "\n" not in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_hung_database_ends_at_the_timeout(profile: Profile) -> None:
    """A server that accepts and never answers: SourceUnavailable after about the source's timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    url = f"postgresql+psycopg://dw@127.0.0.1:{listener.getsockname()[1]}/postgres"
    source = SqlSource("hung", url, table="prod", timestamp_column="event_time", timeout=1.5, pushdown=True)
    window = source.window(START, END, COLUMNS)
    began = datetime.now(UTC)
    try:
        with pytest.raises(SourceUnavailable, match="source hung"):
            window.count(Job.start(profile).request)  # type: ignore[arg-type]
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
        source.close()
    assert (datetime.now(UTC) - began).total_seconds() < 10


@pytest.mark.integration
def test_slow_statement_is_cancelled_by_the_timeout(postgres_url: str, profile: Profile) -> None:
    """A pushdown query slower than the source's timeout ends with PostgreSQL's statement timeout, one line."""
    write_table(postgres_url, "prod_slow", window_frame(100, 0.0, seed=5))
    query = "SELECT p.* FROM prod_slow AS p, pg_sleep(20) WHERE p.event_time >= :start AND p.event_time < :end"
    source = SqlSource("slow", postgres_url, query=query, timestamp_column="event_time", timeout=1.5, pushdown=True)
    window = source.window(START, END, COLUMNS)
    try:
        with pytest.raises(SourceUnavailable, match="statement timeout") as caught:
            window.count(Job.start(profile).request)  # type: ignore[arg-type]
    finally:
        window.close()
        source.close()
    assert "\n" not in str(caught.value)


def test_text_in_a_numeric_column_is_a_schema_mismatch(tmp_path: Path, profile: Profile) -> None:
    """A numeric feature whose column holds text: SchemaMismatch naming it, as when streaming."""
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    frame = window_frame(50, 0.0, seed=1)
    frame["a"] = frame["a"].astype(object)
    frame.loc[3, "a"] = "n/a"
    write_table(url, "prod", frame)
    with pytest.raises(SchemaMismatch, match="'a'"):
        pushdown_report(url, profile, table="prod")
    with pytest.raises(SchemaMismatch, match="'a'"):
        streamed_report(url, profile, table="prod")


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param(
            'url: "mysql+pymysql://u@h/db", table: t', "pushdown supports postgresql and sqlite, not mysql", id="mysql"
        ),
        pytest.param("url: sqlite:///prod.db, table: t, pushdown: maybe", "pushdown", id="not-a-bool"),
    ],
)
def test_pushdown_config_errors(tmp_path: Path, extra: str, error: str) -> None:
    """A pushdown source on an unsupported database, or a non-boolean pushdown: one line naming the key."""
    from driftwatch.errors import ConfigError

    (tmp_path / "prod.db").touch()
    reference_frame().to_parquet(tmp_path / "train.parquet", index=False)
    (tmp_path / "driftwatch.yaml").write_text(
        f"sources:\n  db: {{kind: sql, timestamp_column: ts, pushdown: true, {extra}}}\n"
        if "pushdown:" not in extra
        else f"sources:\n  db: {{kind: sql, timestamp_column: ts, {extra}}}\n"
    )
    with pytest.raises(ConfigError, match=error) as caught:
        load_config(tmp_path / "driftwatch.yaml")
    assert "sources.db" in str(caught.value) and "\n" not in str(caught.value)


def test_pushdown_dialects_match_config() -> None:
    """Config validates against the same dialects the counter generates SQL for."""
    from driftwatch.config.sources import PUSHDOWN_DIALECTS
    from driftwatch.sources.pushdown import DIALECTS

    assert PUSHDOWN_DIALECTS == DIALECTS


def test_feature_whose_reference_has_no_values(database: str) -> None:
    """A numeric feature missing from every reference row: insufficient data for it, the same as streaming."""
    frame = reference_frame()
    frame["a"] = np.nan
    empty = build_profile({c: frame[c] for c in frame}, numeric=NUMERIC, categorical=CATEGORICAL)
    write_table(database, "prod", window_frame(2000, 0.3, seed=13))
    got = pushdown_report(database, empty, table="prod")
    assert_same_report(got, streamed_report(database, empty, table="prod"))
    assert {f.name: f.stats.status for f in got.features}["a"] == "insufficient_data"
