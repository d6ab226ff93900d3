"""A `kind: sql` monitor against a real PostgreSQL gives the same report as the same rows read from parquet."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from datasets import write_dataset
from servers import postgres_server

from driftwatch.config import load_config
from driftwatch.errors import SourceUnavailable
from driftwatch.runtime.monitor import open_sources, prepare_monitor, result_dict, run_monitor
from driftwatch.sources import SqlSource

STATISTICS = [
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "chi2_pvalue",
    "js_distance",
    "wasserstein",
    "missing_share",
    "adjusted_pvalue",
]

CONFIG = """\
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
  pg: {{kind: sql, url: "{url}", table: {table}, timestamp_column: event_time}}
  pg-query:
    kind: sql
    url: "{url}"
    query: "SELECT * FROM {table} WHERE event_time >= :start AND event_time < :end"
    timestamp_column: event_time
monitors:
"""
MONITOR = """\
  {name}:
    reference: {{path: reference/train.parquet}}
    source: {source}
    schedule: {{every: 1h}}
    window: 1h
    min_rows: 100
    features: {{numeric: [age, income], categorical: [plan]}}
"""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL whose session zone is not UTC (to catch zone mistakes)."""
    with postgres_server(timezone="Asia/Tokyo") as url:
        yield url


@pytest.mark.integration
@pytest.mark.parametrize(
    "kind", [pytest.param("timestamp", id="timestamp"), pytest.param("timestamptz", id="timestamptz")]
)
def test_sql_monitor_on_postgres_equals_parquet(postgres_url: str, tmp_path: Path, kind: str) -> None:
    """Monitors over a PostgreSQL table and query report the same rows and statistics (1e-12) as over parquet."""
    end = datetime.now(UTC).replace(microsecond=0)
    write_dataset(tmp_path, rows=3000, shift=0.8, end=end)
    frame = pd.read_parquet(tmp_path / "prod")
    if kind == "timestamptz":
        frame["event_time"] = frame["event_time"].dt.tz_localize("UTC")
    table = f"features_{kind}"
    engine = sa.create_engine(postgres_url)
    try:
        frame.to_sql(table, engine, index=False, if_exists="replace")
        with engine.connect() as conn:
            column_type = conn.execute(
                sa.text(
                    "SELECT data_type FROM information_schema.columns"
                    " WHERE table_name = :t AND column_name = 'event_time'"
                ),
                {"t": table},
            ).scalar_one()
    finally:
        engine.dispose()
    assert column_type == ("timestamp with time zone" if kind == "timestamptz" else "timestamp without time zone")

    monitors = {"from-files": "files", "from-pg": "pg", "from-pg-query": "pg-query"}
    text = CONFIG.format(url=postgres_url, table=table) + "".join(
        MONITOR.format(name=name, source=source) for name, source in monitors.items()
    )
    (tmp_path / "driftwatch.yaml").write_text(text)
    config = load_config(tmp_path / "driftwatch.yaml")
    sources = open_sources(config)
    try:
        # A window that cuts the data (rows are spread over the 30 minutes before `end`) tests the WHERE clause.
        at = end - timedelta(minutes=10)
        results = {}
        for name in monitors:
            monitor = prepare_monitor(name, config, tmp_path / "profiles", sources)
            result = run_monitor(monitor, at)
            assert result.outcome == "ok", (name, result.error)
            results[name] = result_dict(name, result, monitor.profile.rows)
    finally:
        for source in sources.values():
            close = getattr(source, "close", None)
            if close:
                close()

    expected = results["from-files"]
    times = pd.to_datetime(frame["event_time"], utc=True)
    inside = int(((times >= at - timedelta(hours=1)) & (times < at)).sum())
    assert 0 < inside < len(frame)
    assert expected["rows"]["current"] == inside
    assert expected["severity"] == "critical"
    for name in ("from-pg", "from-pg-query"):
        got = results[name]
        assert got["window"] == expected["window"]
        assert got["rows"] == expected["rows"]
        assert got["severity"] == expected["severity"]
        assert got["drift_share"] == expected["drift_share"]
        assert got["features"].keys() == expected["features"].keys() == {"age", "income", "plan"}
        for feature, want in expected["features"].items():
            have = got["features"][feature]
            assert have["severity"] == want["severity"], (name, feature)
            assert have["new_categories"] == want["new_categories"], (name, feature)
            for stat in STATISTICS:
                if want[stat] is None:
                    assert have[stat] is None, (name, feature, stat)
                else:
                    assert math.isclose(have[stat], want[stat], rel_tol=1e-12, abs_tol=1e-300), (name, feature, stat)


@pytest.mark.integration
def test_slow_query_ends_at_the_source_timeout(postgres_url: str) -> None:
    """A query slower than the source's timeout is cancelled by PostgreSQL: one-line SourceUnavailable, quickly."""
    source = SqlSource(
        "slow",
        postgres_url,
        query="SELECT now() AS event_time, 1.0 AS x FROM pg_sleep(30)",
        timestamp_column="event_time",
        timeout=1.5,
    )
    began = time.monotonic()
    try:
        with pytest.raises(SourceUnavailable, match="statement timeout") as caught:
            source.read(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC), ["x"])
    finally:
        source.close()
    took = time.monotonic() - began
    assert took < 10, took
    assert "\n" not in str(caught.value)
