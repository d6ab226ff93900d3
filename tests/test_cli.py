"""The `driftwatch` command: one-line errors with exit 2, `check` exit codes and output formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import config_text, write_dataset


def driftwatch(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m driftwatch ARGS` and capture its output."""
    return subprocess.run([sys.executable, "-m", "driftwatch", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120, env={**os.environ, **(env or {})})


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with the test dataset and a valid config (driftwatch.yaml)."""
    write_dataset(tmp_path)
    (tmp_path / "driftwatch.yaml").write_text(config_text(9999))
    return tmp_path


BAD_CONFIGS = [
    pytest.param(None, "missing.yaml: file not found", id="missing-file"),
    pytest.param(("window: 1h", "windwo: 1h"), "monitors.from-files: unknown key 'windwo'", id="unknown-key"),
    pytest.param(("min_rows: 100", "min_rows: lots"), "monitors.from-files.min_rows:", id="wrong-type"),
    pytest.param(("window: 1h", "window: 5 minutes"), "monitors.from-files.window: invalid duration '5 minutes'",
                 id="bad-duration"),
    pytest.param(("schedule: {every: 1h}", "schedule: {cron: \"61 * * * *\"}"),
                 "monitors.from-files.schedule.cron: invalid cron expression '61 * * * *'", id="bad-cron"),
    pytest.param(("table: features", 'table: "${DW_TEST_UNSET_TABLE}"'),
                 "sources.db.table: environment variable DW_TEST_UNSET_TABLE is not set", id="unset-env"),
    pytest.param(("numeric: [age, income]", "numeric: [age, salary]"),
                 "column 'salary' not found", id="reference-missing-column"),
    pytest.param(("reference/train.parquet", "reference/nope.parquet"), "file not found", id="missing-reference"),
]


@pytest.mark.parametrize("command", ["validate", "check", "run"])
@pytest.mark.parametrize(("edit", "expected"), BAD_CONFIGS)
def test_bad_config_is_one_line_exit_2(workdir: Path, command: str, edit: tuple[str, str] | None,
                                       expected: str) -> None:
    """Each bad config gives exit 2 and one line on stderr naming the problem, never a traceback."""
    config = workdir / "driftwatch.yaml"
    if edit is None:
        config = workdir / "missing.yaml"
    else:
        config.write_text(config.read_text().replace(*edit, 1))
    done = driftwatch(command, "-c", str(config), cwd=workdir)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("driftwatch: error:")]
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stderr


def test_validate_ok(workdir: Path) -> None:
    """A valid config validates with exit 0 and a summary."""
    done = driftwatch("validate", "-c", "driftwatch.yaml", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "ok (3 monitors, 3 sources)" in done.stdout


@pytest.mark.parametrize(("fail_on", "code"), [pytest.param("critical", 1, id="critical"),
                                               pytest.param("warning", 1, id="warning")])
def test_check_exits_1_on_drift(workdir: Path, fail_on: str, code: int) -> None:
    """A drifting batch makes `check` exit 1 at the --fail-on level and print the table."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--fail-on", fail_on, cwd=workdir)
    assert done.returncode == code, done.stderr
    assert "severity CRITICAL" in done.stdout
    assert "age" in done.stdout and "plan" in done.stdout


def test_check_exits_0_without_drift(tmp_path: Path) -> None:
    """A batch from the reference distribution passes the gate (exit 0) with severity ok in JSON."""
    write_dataset(tmp_path, shift=0.0)
    (tmp_path / "driftwatch.yaml").write_text(config_text(9999))
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--monitor", "from-files", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)["monitors"][0]
    assert report["status"] == "ok"
    assert report["severity"] == "ok"
    assert set(report["features"]) == {"age", "income", "plan"}
    assert report["rows"] == {"reference": 5000, "current": 2000}


def test_check_with_too_few_rows_says_so(workdir: Path) -> None:
    """A window with fewer rows than min_rows reports insufficient_data, not a fake zero."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--at", "2001-01-01T00:00:00",
                      cwd=workdir)
    assert done.returncode == 0, done.stderr
    for report in json.loads(done.stdout)["monitors"]:
        assert report["status"] == "insufficient_data"
        assert report["severity"] is None and report["features"] == {}
        assert "fewer than min_rows 100" in report["reason"]


def test_check_source_error_exits_2(workdir: Path) -> None:
    """A corrupt production file fails `check` with exit 2 and a message naming the file."""
    (workdir / "prod" / "c.parquet").write_bytes(b"not a parquet file")
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", "--format", "json", cwd=workdir)
    assert done.returncode == 2
    report = json.loads(done.stdout)["monitors"][0]
    assert report["status"] == "error"
    assert "c.parquet" in report["reason"]


def test_unknown_monitor_is_an_error(workdir: Path) -> None:
    """`check --monitor` with an unknown name exits 2 naming the defined monitors."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "nope", cwd=workdir)
    assert done.returncode == 2
    assert "unknown monitor 'nope'" in done.stderr
