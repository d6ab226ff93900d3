"""The fallback on data loss end to end: a real daemon whose source files disappear switches the model after the
configured data-loss runs, restores it when the data returns, audits both, and alerts NoData meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import monitor_yaml, write_dataset

MONITOR_EXTRA = "model: churn\nalerts: {for_runs: 2}"


def config(tmp_path: Path, port: int) -> Path:
    """A monitor of parquet files feeding model churn, which switches on 3 data-loss runs and restores after 2."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
{monitor_yaml("churn-inputs", "files", extra=MONITOR_EXTRA)}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2]
    switch: {{on: critical, after_runs: 2, min_dwell: 1s, data_loss: {{after_runs: 3}}}}
    restore: {{after_runs: 2}}
    actuators:
      - {{kind: file, path: var/routes/churn.json}}
alerting:
  sinks:
    console: {{kind: log}}
""")
    return path


def active(tmp_path: Path) -> str | None:
    path = tmp_path / "var" / "routes" / "churn.json"
    return json.loads(path.read_text())["active"] if path.exists() else None


def test_files_disappearing_switch_the_model_and_returning_data_restores_it(tmp_path: Path) -> None:
    """No data for 3 runs switches churn to its fallback (audited, NoData firing); data back restores it."""
    write_dataset(tmp_path, shift=0.0)
    port = free_port()
    daemon = DaemonProcess(config(tmp_path, port), port)
    try:
        daemon.wait_for(lambda: daemon.json("/api/v1/monitors/churn-inputs")["runs_total"] >= 2, "two healthy runs")
        healthy = daemon.json("/api/v1/monitors/churn-inputs")
        assert (healthy["outcome"], healthy["health"], active(tmp_path)) == ("ok", "ok", "churn-v3")
        for file in (tmp_path / "prod").glob("*.parquet"):
            file.unlink()  # the upstream job stops delivering

        daemon.wait_for(lambda: active(tmp_path) == "churn-v2", "switch to churn-v2 on data loss", timeout=60)
        lost = daemon.json("/api/v1/monitors/churn-inputs")
        alerts = daemon.json("/api/v1/alerts")["alerts"]
        metrics = daemon.metrics()

        write_dataset(tmp_path, shift=0.0)  # the data returns
        daemon.wait_for(lambda: active(tmp_path) == "churn-v3", "restore to churn-v3", timeout=60)
        history = daemon.json("/api/v1/models/churn/history")["history"]
        log = daemon.log()
    finally:
        assert daemon.stop() == 0
    assert lost["outcome"] == "no_data" and lost["health"] == "critical"
    assert "no file matches" in lost["error"]
    no_data = [a for a in alerts if a["alertname"] == "NoData"]
    assert [(a["subject"], a["phase"], a["severity"]) for a in no_data] == [("monitor", "firing", "critical")]
    key = (("feature", ""), ("monitor", "churn-inputs"), ("signal", "no_data"))
    assert metrics[("driftwatch_health_severity", key)] == 2
    assert metrics[("driftwatch_monitor_up", (("monitor", "churn-inputs"),))] == 1  # no data is not a failure

    moves = [(h["direction"], h["from"], h["to"], h["actor"]) for h in reversed(history) if h["kind"] == "switch"]
    assert moves == [("fallback", "churn-v3", "churn-v2", "auto"), ("restore", "churn-v2", "churn-v3", "auto")]
    fallback = next(h for h in history if h.get("direction") == "fallback")
    assert fallback["reason"] == "churn-inputs data loss: 3 consecutive data-loss runs (data_loss after_runs 3)"
    assert fallback["details"]["data_loss_runs"] == {"churn-inputs": 3}
    assert fallback["details"]["statistics"]["data_loss"]["outcome"] in ("no_data", "error")
    assert fallback["config_hash"]
    restore = next(h for h in history if h.get("direction") == "restore")
    assert restore["reason"] == "2 consecutive clean runs (restore after_runs 2)"
    assert "model churn: switched churn-v3 -> churn-v2 (churn-inputs data loss" in log
    assert "alert churn-inputs/monitor/NoData firing (critical, fired)" in log
