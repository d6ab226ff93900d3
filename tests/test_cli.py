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
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


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
    pytest.param(
        ("window: 1h", "window: 5 minutes"),
        "monitors.from-files.window: invalid duration '5 minutes'",
        id="bad-duration",
    ),
    pytest.param(
        ("schedule: {every: 1h}", 'schedule: {cron: "61 * * * *"}'),
        "monitors.from-files.schedule.cron: invalid cron expression '61 * * * *'",
        id="bad-cron",
    ),
    pytest.param(
        ("table: features", 'table: "${DW_TEST_UNSET_TABLE}"'),
        "sources.db.table: environment variable DW_TEST_UNSET_TABLE is not set",
        id="unset-env",
    ),
    pytest.param(
        ("numeric: [age, income]", "numeric: [age, salary]"), "column 'salary' not found", id="reference-missing-column"
    ),
    pytest.param(("reference/train.parquet", "reference/nope.parquet"), "file not found", id="missing-reference"),
]


@pytest.mark.parametrize("command", ["validate", "check", "run"])
@pytest.mark.parametrize(("edit", "expected"), BAD_CONFIGS)
def test_bad_config_is_one_line_exit_2(
    workdir: Path, command: str, edit: tuple[str, str] | None, expected: str
) -> None:
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


@pytest.mark.parametrize(
    ("fail_on", "code"), [pytest.param("critical", 1, id="critical"), pytest.param("warning", 1, id="warning")]
)
def test_check_exits_1_on_drift(workdir: Path, fail_on: str, code: int) -> None:
    """A drifting batch makes `check` exit 1 at the --fail-on level and print the table."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--fail-on", fail_on, cwd=workdir)
    assert done.returncode == code, done.stderr
    assert "from-files: CRITICAL" in done.stdout
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


def test_check_with_an_empty_window_says_no_data(workdir: Path) -> None:
    """An empty window is status no_data (not a fake zero) and fails the gate with exit 1."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--at", "2001-01-01T00:00:00", cwd=workdir)
    assert done.returncode == 1, done.stderr
    for report in json.loads(done.stdout)["monitors"]:
        assert report["status"] == "no_data"
        assert report["severity"] is None and report["features"] == {}
        assert "no rows in the window" in report["reason"]
        assert report["health"]["severity"] == "critical"


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


def _laughs(levels: int = 9, width: int = 10) -> str:
    """A "billion laughs" document: each level lists the previous one `width` times through aliases."""
    rows = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    rows += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\n"


HOSTILE_CONFIGS = [
    pytest.param(
        ("sources:\n", "x: &a [*a]\nsources:\n"),
        "recursive YAML alias *a at line 3, column 8",
        id="alias-recursive-list",
    ),
    pytest.param(None, "recursive YAML alias *a at line 1, column 17", id="alias-recursive-sources"),
    pytest.param(
        ("sources:\n", "x: " + "[" * 2000 + "]" * 2000 + "\nsources:\n"),
        "YAML nested deeper than 64 levels at line 3",
        id="nested-2000",
    ),
    pytest.param(
        ("sources:\n", _laughs() + "sources:\n"),
        "YAML too large: more than 100000 values with aliases expanded",
        id="billion-laughs",
    ),
    pytest.param(
        ("monitors:\n", "alerting: {defaults: {repeat_interval: 99999999999d}}\nmonitors:\n"),
        "alerting.defaults.repeat_interval: duration must be at most 3650d, got '99999999999d'",
        id="repeat-interval-overflow",
    ),
    pytest.param(
        ("window: 1h", "window: 999999999d"),
        "monitors.from-files.window: duration must be at most 365d, got '999999999d'",
        id="window-huge",
    ),
    pytest.param(
        ("schedule: {every: 1h}", "schedule: {every: 999999999d}"),
        "monitors.from-files.schedule.every: duration must be at most 3650d, got '999999999d'",
        id="every-huge",
    ),
    pytest.param(
        ("min_rows: 100", "min_rows: 100\n    timeout: 999999999d"),
        "monitors.from-files.timeout: duration must be at most 3650d, got '999999999d'",
        id="timeout-huge",
    ),
]


@pytest.mark.parametrize(("edit", "expected"), HOSTILE_CONFIGS)
def test_hostile_config_is_one_line_exit_2(workdir: Path, edit: tuple[str, str] | None, expected: str) -> None:
    """Recursive aliases, deep nesting, alias bombs and huge durations: `validate` exits 2 with one line."""
    config = workdir / "driftwatch.yaml"
    config.write_text("sources: &a {x: *a}\n" if edit is None else config.read_text().replace(*edit, 1))
    done = driftwatch("validate", "-c", str(config), cwd=workdir)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"driftwatch: error: {config}: ") and expected in line


CHECK_BREAKERS = ("repeat-interval-overflow", "window-huge", "every-huge", "timeout-huge", "nested-2000")


@pytest.mark.parametrize(("edit", "expected"), [p for p in HOSTILE_CONFIGS if p.id in CHECK_BREAKERS])
def test_hostile_config_check_is_one_line_exit_2(workdir: Path, edit: tuple[str, str], expected: str) -> None:
    """The inputs that broke `check` and the daemon (huge durations, deep nesting): exit 2 with one line."""
    config = workdir / "driftwatch.yaml"
    config.write_text(config.read_text().replace(*edit, 1))
    done = driftwatch("check", "-c", str(config), cwd=workdir)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"driftwatch: error: {config}: ") and expected in line


def test_largest_durations_check(workdir: Path) -> None:
    """A window of 365d and other durations of 3650d validate and `check` runs (exit 1 on this drifting data)."""
    config = workdir / "driftwatch.yaml"
    text = config.read_text().replace("window: 1h", "window: 365d").replace("every: 1h", "every: 3650d")
    config.write_text(
        text.replace("min_rows: 100", "min_rows: 100\n    timeout: 3650d")
        + "alerting: {defaults: {repeat_interval: 3650d}}\n"
    )
    assert driftwatch("validate", "-c", str(config), cwd=workdir).returncode == 0
    done = driftwatch("check", "-c", str(config), "--monitor", "from-files", cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        pytest.param("header.json", 0, id="empty-header"),
        pytest.param("f0_values.npy", 0, id="empty-values"),
        pytest.param("f0_values.npy", 100, id="truncated-values"),
    ],
)
def test_check_rebuilds_damaged_profile_cache(workdir: Path, name: str, damage: int) -> None:
    """A 0-byte or truncated file of the profile cache is rebuilt with a log line; rebuilt files are mode 644."""
    first = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", cwd=workdir)
    assert first.returncode == 1, first.stderr
    cache = workdir / "var" / "profiles" / "from-files"
    [damaged] = [p for p in cache.iterdir() if p.name.endswith(name)]
    damaged.write_bytes(damaged.read_bytes()[:damage])
    done = driftwatch("check", "-c", "driftwatch.yaml", "--monitor", "from-files", cwd=workdir)
    assert done.returncode == 1, done.stderr
    assert "rebuilding reference profile" in done.stderr and "unusable" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (workdir / "var" / "profiles" / "from-files.npz").exists()
    files = sorted(str(p) for p in cache.iterdir())
    assert len(files) > 1 and all(os.path.getsize(f) > damage for f in files if f.endswith(name))
    modes = subprocess.run(["stat", "-c", "%a", *files], capture_output=True, text=True, check=True).stdout
    assert set(modes.split()) == {"644"}
