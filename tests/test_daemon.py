"""The daemon as a real subprocess: metrics equal `check`, SIGHUP reload, SIGTERM, a failing source."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import config_text, write_dataset

MONITORS = ["from-files", "from-table", "from-db"]
FEATURE_METRICS = ["psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "js_distance", "wasserstein", "missing_share"]

BROKEN_PRODUCTION = """  broken-batch:
    reference: {path: reference/train.parquet}
    source: nocolumn
    schedule: {every: 1h}
    window: 1h
    min_rows: 10
    features: {numeric: [age, income], categorical: [plan]}
"""


@pytest.fixture
def daemon(tmp_path: Path):
    """A daemon over parquet, csv and sqlite copies of one drifting batch, plus a source lacking a column."""
    write_dataset(tmp_path)
    (tmp_path / "nocol").mkdir()
    import pandas as pd

    pd.read_parquet(tmp_path / "prod" / "a.parquet").drop(columns=["income"]).to_parquet(
        tmp_path / "nocol" / "x.parquet", index=False
    )
    text = config_text(free_port(), extra_monitors=BROKEN_PRODUCTION).replace(
        "monitors:\n", '  nocolumn: {kind: parquet, path: "nocol/*.parquet", timestamp_column: event_time}\nmonitors:\n'
    )
    config = tmp_path / "driftwatch.yaml"
    config.write_text(text)
    port = int(text.split("port: ")[1].split("}")[0])
    process = DaemonProcess(config, port)
    yield process
    process.kill()


def ran_all(daemon: DaemonProcess) -> bool:
    monitors = daemon.json("/api/v1/monitors")["monitors"]
    return len(monitors) == 4 and all(m["outcome"] != "never" for m in monitors)


def check_json(config: Path, monitor: str, at: str) -> dict:
    """`driftwatch check --format json` for one monitor and window end."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftwatch",
            "check",
            "-c",
            str(config),
            "--monitor",
            monitor,
            "--at",
            at,
            "--format",
            "json",
            "--fail-on",
            "critical",
        ],
        capture_output=True,
        text=True,
        cwd=config.parent,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)["monitors"][0]


def test_metrics_equal_check_for_the_same_window(daemon: DaemonProcess, tmp_path: Path) -> None:
    """Every exported feature and monitor statistic equals what `check` reports for the daemon's window."""
    daemon.wait_ready()
    daemon.wait_for(lambda: ran_all(daemon), "a run of every monitor")
    metrics = daemon.metrics()
    for monitor in MONITORS:
        report = daemon.json(f"/api/v1/monitors/{monitor}/report")
        checked = check_json(tmp_path / "driftwatch.yaml", monitor, report["window"]["end"])
        assert checked["window"] == report["window"]
        assert checked["severity"] == "critical"
        labels = (("monitor", monitor),)
        assert metrics[("driftwatch_monitor_rows", labels)] == checked["rows"]["current"] == 2000
        assert metrics[("driftwatch_monitor_reference_rows", labels)] == checked["rows"]["reference"]
        assert metrics[("driftwatch_monitor_drift_share", labels)] == checked["drift_share"]
        assert metrics[("driftwatch_monitor_severity", labels)] == 2
        assert metrics[("driftwatch_monitor_up", labels)] == 1
        for feature, values in checked["features"].items():
            key = tuple(sorted({"monitor": monitor, "feature": feature}.items()))
            for stat in FEATURE_METRICS:
                exported = metrics.get((f"driftwatch_feature_{stat}", key))
                if values[stat] is None:
                    assert exported is None, (monitor, feature, stat)
                else:
                    assert math.isclose(exported, values[stat], rel_tol=1e-12, abs_tol=1e-300), (monitor, feature, stat)
            severity = {"ok": 0, "warning": 1, "critical": 2}[values["severity"]]
            assert metrics[("driftwatch_feature_severity", key)] == severity


def test_failing_source_fails_only_its_monitor(daemon: DaemonProcess) -> None:
    """A batch missing a column fails that monitor's run with a clear log line; the others and the daemon live."""
    daemon.wait_ready()
    daemon.wait_for(lambda: ran_all(daemon), "a run of every monitor")
    metrics = daemon.metrics()
    assert metrics[("driftwatch_monitor_up", (("monitor", "broken-batch"),))] == 0
    assert metrics[("driftwatch_monitor_run_failures_total", (("monitor", "broken-batch"),))] == 1
    assert all(metrics[("driftwatch_monitor_up", (("monitor", m),))] == 1 for m in MONITORS)
    status = daemon.json("/api/v1/monitors/broken-batch")
    assert "income" in status["error"] and "not found" in status["error"]
    assert "monitor broken-batch: error: source nocolumn: column 'income' not found" in daemon.log()
    assert "Traceback" not in daemon.log()
    assert not any(
        name == "driftwatch_feature_psi" and ("monitor", "broken-batch") in labels for name, labels in metrics
    )


def test_sighup_with_broken_config_keeps_running(daemon: DaemonProcess, tmp_path: Path) -> None:
    """SIGHUP with a broken config keeps the old config, reports the failure in metrics, then recovers."""
    daemon.wait_ready()
    daemon.wait_for(lambda: ran_all(daemon), "a run of every monitor")
    config = tmp_path / "driftwatch.yaml"
    good = config.read_text()
    config.write_text(good.replace("window: 1h", "window: 1 hour", 1))
    daemon.signal(signal.SIGHUP)
    reload_metric = ("driftwatch_config_last_reload_successful", ())
    daemon.wait_for(lambda: daemon.metrics()[reload_metric] == 0, "failed reload reported")
    assert daemon.proc.poll() is None
    assert daemon.get("/healthz")[0] == 200
    assert "invalid duration '1 hour'" in daemon.log()
    assert len(daemon.json("/api/v1/monitors")["monitors"]) == 4
    config.write_text(good)
    status, body = daemon.post("/-/reload")
    assert status == 200, body
    assert daemon.metrics()[reload_metric] == 1


def test_sigterm_exits_zero(daemon: DaemonProcess) -> None:
    """SIGTERM after a run stops the daemon with exit code 0 and a shutdown log line."""
    daemon.wait_ready()
    daemon.wait_for(lambda: ran_all(daemon), "a run of every monitor")
    assert daemon.stop() == 0
    assert "driftwatch stopped" in daemon.log()


def test_readyz_and_unknown_monitor(daemon: DaemonProcess) -> None:
    """/readyz is 200 once running; an unknown monitor's report is a JSON 404."""
    daemon.wait_ready()
    daemon.wait_for(lambda: daemon.get("/readyz")[0] == 200, "/readyz")
    status, body = daemon.get("/api/v1/monitors/nope/report")
    assert status == 404
    assert json.loads(body)["error"] == "unknown monitor 'nope'"


@pytest.mark.integration
def test_real_exposition_passes_promtool(daemon: DaemonProcess) -> None:
    """The daemon's own /metrics, with every kind of monitor outcome in it, passes `promtool check metrics`."""
    from conftest import require_binary

    promtool = require_binary("promtool")
    daemon.wait_ready()
    daemon.wait_for(lambda: ran_all(daemon), "a run of every monitor")
    status, body = daemon.get("/metrics")
    assert status == 200 and "driftwatch_feature_psi" in body
    done = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == ""
