"""Usability of `check` (issue 15, point 5), each through the real command: text timestamps in parquet, `features:
auto` and its exclusions, the table's layout, UTC windows, unknown row counts, monitors without a schedule."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import config_text, monitor_yaml, write_dataset
from test_cli import driftwatch

from driftwatch.sources import cardinality

END = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """`write_dataset`'s files with production ending at END, and its config (driftwatch.yaml)."""
    write_dataset(tmp_path, end=END)
    (tmp_path / "driftwatch.yaml").write_text(config_text(9999))
    return tmp_path


def check_json(workdir: Path, *args: str, config: str = "driftwatch.yaml") -> dict:
    """`check --format json` with `args`; the parsed output (exit 0 or 1)."""
    done = driftwatch("check", "-c", config, "--format", "json", *args, cwd=workdir)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def add_monitor(workdir: Path, text: str, *, source: str = "") -> None:
    """Append a monitor (and optionally a source line) to driftwatch.yaml."""
    config = workdir / "driftwatch.yaml"
    body = config.read_text()
    if source:
        body = body.replace("monitors:\n", f"{source}\nmonitors:\n")
    config.write_text(body + text + "\n")


TEXT_STAMPS = {
    "zulu": lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    "offset": lambda t: (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00"),
    "naive": lambda t: t.strftime("%Y-%m-%d %H:%M:%S.%f"),
}


def test_parquet_text_timestamps_read_like_csv(workdir: Path) -> None:
    """Parquet sources whose timestamp column is ISO-8601 text (with `Z`, with `+02:00`, naive = UTC) give the
    report of the typed parquet source."""
    for kind, render in TEXT_STAMPS.items():
        (workdir / kind).mkdir()
        for name in ("a", "b"):
            frame = pd.read_parquet(workdir / "prod" / f"{name}.parquet")
            stamps = [render(t.to_pydatetime()) for t in frame["event_time"]]
            pq.write_table(
                pa.Table.from_pandas(frame.assign(event_time=stamps), preserve_index=False),
                workdir / kind / f"{name}.parquet",
                row_group_size=300,
            )
        add_monitor(
            workdir,
            monitor_yaml(f"from-{kind}", kind),
            source=f'  {kind}: {{kind: parquet, path: "{kind}/*.parquet", timestamp_column: event_time}}',
        )
    at = (END - timedelta(minutes=10)).isoformat()  # cuts the batch: the filter must apply to parsed times
    reports = {r["monitor"]: r for r in check_json(workdir, "--at", at)["monitors"]}
    typed = reports["from-files"]
    assert typed["status"] == "ok" and 0 < typed["rows"]["current"] < 2000
    for kind in TEXT_STAMPS:
        assert reports[f"from-{kind}"]["rows"] == typed["rows"], kind
        assert reports[f"from-{kind}"]["features"] == typed["features"], kind


def test_parquet_text_timestamp_that_is_not_iso_is_one_line_error(workdir: Path) -> None:
    """A text timestamp that is not ISO 8601 makes the run an error naming the column, not a traceback."""
    (workdir / "bad").mkdir()
    frame = pd.read_parquet(workdir / "prod" / "a.parquet")
    frame.assign(event_time="yesterday").to_parquet(workdir / "bad" / "a.parquet", index=False)
    add_monitor(
        workdir,
        monitor_yaml("from-bad", "bad"),
        source='  bad: {kind: parquet, path: "bad/*.parquet", timestamp_column: event_time}',
    )
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-bad", "--format", "json", cwd=workdir)
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)["monitors"][0]
    assert report["status"] == "error"
    assert "timestamp column 'event_time'" in report["reason"] and "yesterday" in report["reason"]
    assert report["rows"]["current"] is None  # not known: never a fake 0


def write_reference_with_ids(workdir: Path, name: str) -> None:
    """reference/NAME: the reference plus a near-unique text id, a unique integer id and a repeating
    integer code (not id-like)."""
    frame = pd.read_parquet(workdir / "reference" / "train.parquet")
    rng = np.random.default_rng(7)
    frame["order_id"] = pd.Categorical([f"O{i:07d}" for i in rng.permutation(len(frame))])  # parquet dictionary
    frame["customer_id"] = rng.permutation(len(frame)) + 10_000
    frame["store"] = rng.integers(1, 40, len(frame))
    frame.to_parquet(workdir / "reference" / name, index=False)


FEATURE_SHAPES = {
    "auto-string": ("auto", {"age", "income", "plan", "store"}),
    "auto-both": ("{numeric: auto, categorical: auto}", {"age", "income", "plan", "store"}),
    "exclude": ("{auto: true, exclude: [order_id, customer_id, store]}", {"age", "income", "plan"}),
    "explicit": ("{numeric: [age, customer_id], categorical: [order_id]}", {"age", "customer_id", "order_id"}),
}


def test_features_auto_shapes_and_id_like_columns(workdir: Path) -> None:
    """`features: auto`, `{auto: true, exclude}` work; auto leaves out id-like columns with a warning naming them;
    listing an id column keeps it."""
    rng = np.random.default_rng(8)
    prod = pd.read_parquet(workdir / "prod" / "a.parquet")
    prod["order_id"] = [f"P{i:07d}" for i in range(len(prod))]
    prod["customer_id"] = rng.permutation(len(prod)) + 10_000
    prod["store"] = rng.integers(1, 40, len(prod))
    (workdir / "ids").mkdir()
    prod.to_parquet(workdir / "ids" / "a.parquet", index=False)
    source = '  ids: {kind: parquet, path: "ids/*.parquet", timestamp_column: event_time}'
    for name, (features, _) in FEATURE_SHAPES.items():
        write_reference_with_ids(workdir, f"{name}.parquet")
        text = monitor_yaml(name, "ids").replace("train.parquet", f"{name}.parquet")
        text = text.replace("features: {numeric: [age, income], categorical: [plan]}", f"features: {features}")
        add_monitor(workdir, text, source=source)
        source = ""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--at", END.isoformat(), cwd=workdir)
    assert done.returncode in (0, 1), done.stderr
    reports = {r["monitor"]: r for r in json.loads(done.stdout)["monitors"]}
    for name, (_, expected) in FEATURE_SHAPES.items():
        assert set(reports[name]["features"]) == expected, name
        warnings = [line for line in done.stderr.splitlines() if "id-like" in line and f"/{name}.parquet" in line]
        if name.startswith("auto"):
            assert len(warnings) == 2, done.stderr  # one per kind: numeric customer_id, categorical order_id
            assert "'customer_id' (5,000 distinct of 5,000 values)" in " ".join(warnings)
            assert "'order_id' (5,000 distinct of 5,000 values)" in " ".join(warnings)
            assert "store" not in " ".join(warnings)
        else:
            assert warnings == [], name


@pytest.mark.parametrize(
    ("features", "message"),
    [
        pytest.param("{auto: true, numeric: [age]}", "features.numeric: 'auto: true' takes every column", id="mixed"),
        pytest.param("{auto: false}", "features.auto: expected true", id="auto-false"),
        pytest.param("automatic", "features: expected 'auto' or a mapping", id="typo"),
        pytest.param(
            "{auto: true, exclude: [nope]}", "features.exclude: column 'nope' not found", id="exclude-unknown"
        ),
    ],
)
def test_bad_features_shapes_are_one_line_errors(workdir: Path, features: str, message: str) -> None:
    """A wrong `features` shape or an unknown excluded column is one line naming the path, exit 2."""
    config = workdir / "driftwatch.yaml"
    config.write_text(
        config.read_text().replace(
            "features: {numeric: [age, income], categorical: [plan]}", f"features: {features}", 1
        )
    )
    done = driftwatch("validate", "-c", "driftwatch.yaml", cwd=workdir)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1], done.stderr
    assert "Traceback" not in done.stderr


def test_table_output_is_severity_first_with_gate_and_utc_window(workdir: Path) -> None:
    """The table leads with the severity, shows adjusted p and the gate per feature, and a multi-day window with a
    non-UTC --at as its UTC start and end, both dated."""
    config = workdir / "driftwatch.yaml"
    config.write_text(config.read_text().replace("window: 1h", "window: 3d", 1))
    at = "2024-03-10T17:30:00+05:30"  # = 12:00 UTC, END
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", "--at", at, cwd=workdir)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("from-files: CRITICAL  drift share 0.67")
    assert lines[1] == "  window 2024-03-07 12:00:00 .. 2024-03-10 12:00:00 UTC (3d)  rows 2,000 (reference 5,000)"
    header = lines[2].split()
    assert header[:2] == ["severity", "feature"] and "adj." in header and "significant" in header
    rows = {line.split()[1]: line.split() for line in lines[3:6]}
    assert [line.split()[0] for line in lines[3:6]] == ["critical", "critical", "ok"]  # worst first
    assert rows["age"][-3:] == ["yes", "psi>=critical", "ks_statistic>=critical"]
    assert rows["income"][-2:] == ["no", "-"]
    assert float(rows["age"][header.index("adj.")]) >= float(rows["age"][header.index("p-value")])


def test_json_window_is_utc_whatever_the_at_offset(workdir: Path) -> None:
    """`--at` with an offset gives UTC window times in JSON (reports and insufficient-data results alike)."""
    for at, status in (("2024-03-10T17:30:00+05:30", "ok"), ("2001-01-01T01:00:00-03:00", "no_data")):
        report = check_json(workdir, "--monitor", "from-files", "--at", at)["monitors"][0]
        assert report["status"] == status
        end = datetime.fromisoformat(at).astimezone(UTC)
        assert report["window"] == {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat()}


def test_unknown_row_count_is_null(workdir: Path) -> None:
    """A run that fails before counting reports `rows.current: null`, not 0."""
    (workdir / "prod" / "c.parquet").write_bytes(b"not a parquet file")
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", "--format", "json", cwd=workdir)
    assert done.returncode == 2
    report = json.loads(done.stdout)["monitors"][0]
    assert report["status"] == "error" and report["rows"] == {"reference": 5000, "current": None}
    table = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", cwd=workdir)
    assert "rows unknown" in table.stdout.splitlines()[1]


def test_schedule_is_optional_for_check(workdir: Path) -> None:
    """A monitor without `schedule` validates and checks; one feeding a model needs a schedule (one line)."""
    config = workdir / "driftwatch.yaml"
    config.write_text(config.read_text().replace("    schedule: {every: 1h}\n", ""))
    assert "schedule" not in config.read_text()
    assert driftwatch("validate", "-c", "driftwatch.yaml", cwd=workdir).returncode == 0
    report = check_json(workdir, "--monitor", "from-table", "--at", END.isoformat())["monitors"][0]
    assert report["status"] == "ok" and report["severity"] == "critical"
    fed = config.read_text().replace("  from-files:\n", "  from-files:\n    model: churn\n", 1)
    fed += "models:\n  churn: {primary: v2, fallbacks: [v1], actuators: [{kind: file, path: var/route.json}]}\n"
    config.write_text(fed)
    done = driftwatch("validate", "-c", "driftwatch.yaml", cwd=workdir)
    assert done.returncode == 2
    assert "monitors.from-files: a monitor feeding model 'churn' needs a schedule" in done.stderr


def test_id_like_columns_of_a_csv_reference(tmp_path: Path) -> None:
    """Id-like detection reads csv references too, and judges the first SAMPLE_ROWS rows only."""
    rows = cardinality.SAMPLE_ROWS + 5_000
    frame = pd.DataFrame(
        {
            "user": [f"u{i}" for i in range(rows)],
            "code": np.arange(rows) % 1000,  # distinct in 1% of the rows
            "late": np.r_[np.zeros(cardinality.SAMPLE_ROWS), np.arange(5_000)],  # unique only after the sample
            "plan": np.where(np.arange(rows) % 2, "a", "b"),
            "x": np.linspace(0, 1, rows),
        }
    )
    frame["late"] = frame["late"].astype("int64")
    frame.to_csv(tmp_path / "ref.csv", index=False)
    found = cardinality.find_id_like(tmp_path / "ref.csv", ["user", "code", "late", "plan", "x"])
    assert found == [cardinality.IdLike("user", cardinality.SAMPLE_ROWS, cardinality.SAMPLE_ROWS)]
