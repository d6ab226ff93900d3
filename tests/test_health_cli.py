"""Each data-health signal through `driftwatch check` as a subprocess: JSON, table and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasets import monitor_yaml, production, write_dataset

from driftwatch.runtime.store import Store

AT = datetime(2026, 6, 1, 12, tzinfo=UTC)
AT_TEXT = AT.isoformat()


def driftwatch(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m driftwatch ARGS` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "driftwatch", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy source and one source per unhealthy condition, a monitor on each, a state store with history."""
    root = tmp_path_factory.mktemp("health")
    write_dataset(root, shift=0.0, end=AT)
    for folder in ("holes", "stale", "renamed", "typo", "few"):
        (root / folder).mkdir()
    holes = production(2000, 0.0, AT, seed=7)
    holes.loc[np.random.default_rng(3).random(len(holes)) < 0.3, "income"] = np.nan
    holes.to_parquet(root / "holes" / "a.parquet", index=False)
    production(2000, 0.0, AT - timedelta(minutes=45), seed=8).to_parquet(root / "stale" / "a.parquet", index=False)
    production(2000, 0.0, AT, seed=9).rename(columns={"income": "revenue"}).to_parquet(root / "renamed" / "a.parquet")
    production(150, 0.0, AT, seed=10).to_parquet(root / "few" / "a.parquet", index=False)
    sources = {name: f"{name}/*.parquet" for name in ("holes", "stale", "renamed", "few")}
    sources["good"] = "prod/*.parquet"
    sources["typo"] = "typo/*.parquets"
    (root / "driftwatch.yaml").write_text(
        "state: {path: var/state.db}\nsources:\n"
        + "".join(
            f'  {name}: {{kind: parquet, path: "{glob}", timestamp_column: event_time}}\n'
            for name, glob in sources.items()
        )
        + "monitors:\n"
        + "".join(monitor_yaml(name, name) + "\n" for name in sources)
    )
    with Store(root / "var" / "state.db") as store:
        for i in range(3):
            at = AT - timedelta(hours=3 - i)
            report = {"rows": {"reference": 5000, "current": 2000 + 10 * i}}
            store.record_run("few", started=at, finished=at, outcome="ok", severity="ok", error=None, report=report)
    return root


def signals(report: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    return {(s["signal"], s["feature"]): s["severity"] for s in report["health"]["signals"]}


def test_every_signal_in_one_check(workdir: Path) -> None:
    """One check of every monitor: each unhealthy condition is its signal at its level, the healthy one is ok."""
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--at", AT_TEXT, cwd=workdir)
    assert done.returncode == 2, done.stderr  # the schema mismatch is still a run error (exit 2 beats 1)
    reports = {r["monitor"]: r for r in json.loads(done.stdout)["monitors"]}

    good = reports["good"]
    assert good["status"] == "ok" and good["health"]["severity"] == "ok", good["health"]
    assert set(signals(good)) == {
        ("no_data", None),
        ("schema", None),
        ("freshness", None),
        ("missing_share", "age"),
        ("missing_share", "income"),
        ("missing_share", "plan"),
    }  # no volume signal without history

    holes = reports["holes"]
    assert holes["status"] == "ok" and holes["severity"] == "ok"  # the drift verdict alone would pass
    assert signals(holes)[("missing_share", "income")] == "critical"
    assert signals(holes)[("missing_share", "age")] == "ok"
    income = next(s for s in holes["health"]["signals"] if s["feature"] == "income")
    assert 0.27 < income["value"] < 0.33 and income["baseline"] == 0.0 and income["pvalue"] < 1e-12

    stale = reports["stale"]
    fresh = next(s for s in stale["health"]["signals"] if s["signal"] == "freshness")
    assert fresh["severity"] == "warning" and 45 * 60 < fresh["value"] < 47 * 60
    assert fresh["thresholds"] == {"warning": 1800.0, "critical": 3240.0}

    renamed = reports["renamed"]
    assert renamed["status"] == "error" and "'income'" in renamed["reason"]
    assert signals(renamed) == {("schema", None): "critical"}

    typo = reports["typo"]
    assert typo["status"] == "no_data" and "no file matches" in typo["reason"]
    assert signals(typo) == {("no_data", None): "critical"}

    few = reports["few"]
    volume = next(s for s in few["health"]["signals"] if s["signal"] == "volume")
    assert few["status"] == "ok" and volume["severity"] == "critical"
    assert volume["baseline"] == 2010.0 and volume["value"] == pytest.approx(1 - 150 / 2010)


@pytest.mark.parametrize(
    ("monitor", "fail_on", "code"),
    [
        pytest.param("typo", "critical", 1, id="no-data-fails-critical"),
        pytest.param("stale", "critical", 0, id="stale-warning-passes-critical"),
        pytest.param("stale", "warning", 1, id="stale-warning-fails-warning"),
        pytest.param("holes", "critical", 1, id="missing-values-fail"),
        pytest.param("few", "critical", 1, id="volume-drop-fails"),
    ],
)
def test_check_exit_codes(workdir: Path, monitor: str, fail_on: str, code: int) -> None:
    """Data health counts toward `--fail-on` like drift; no data fails any level (`warning` is the lowest)."""
    done = driftwatch(
        "check", "-c", "driftwatch.yaml", "--monitor", monitor, "--fail-on", fail_on, "--at", AT_TEXT, cwd=workdir
    )
    assert done.returncode == code, done.stdout + done.stderr
    if monitor == "holes":
        assert "data health CRITICAL" in done.stdout
        assert "missing_share income: critical: missing 3" in done.stdout
    if monitor == "typo":
        assert "typo: NO_DATA" in done.stdout and "no file matches" in done.stdout
