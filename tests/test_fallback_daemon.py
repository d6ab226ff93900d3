"""Fallback switching end to end: drift switches the route to a fallback, recovery restores it, state survives
a restart, and the mutating API refuses requests without the right token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import write_dataset
from receivers import Receiver

SECRET = "route-signing-secret"
TOKEN = "t0ken-for-tests"


def config(tmp_path: Path, port: int, receiver: str) -> Path:
    """A monitor feeding model churn with a route file and a signed route webhook."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}, api_token: "{TOKEN}"}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
  churn-inputs:
    model: churn
    reference: {{path: reference/train.parquet}}
    source: files
    schedule: {{every: 1s}}
    window: 1h
    min_rows: 100
    features: {{numeric: [age, income], categorical: [plan]}}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2, churn-rules]
    switch: {{on: critical, after_runs: 2, min_dwell: 5s}}
    restore: {{after_runs: 3}}
    actuators:
      - {{kind: file, path: var/routes/churn.json}}
      - {{kind: webhook, url: "{receiver}/admin/route", secret: "{SECRET}", retry: {{initial: 1s, max_interval: 2s}}}}
alerting:
  sinks:
    hook: {{kind: webhook, url: "{receiver}/alerts", secret: "{SECRET}", timeout: 2s}}
""")
    return path


def route_file(tmp_path: Path) -> dict | None:
    path = tmp_path / "var" / "routes" / "churn.json"
    return json.loads(path.read_text()) if path.exists() else None


def routes_received(receiver: Receiver) -> list[dict]:
    return [r.json() for r in receiver.accepted() if r.path == "/admin/route"]


def test_drift_switches_recovery_restores_and_state_survives_restart(tmp_path: Path) -> None:
    """The route file and a webhook get the fallback on drift and the primary after recovery, across a restart."""
    write_dataset(tmp_path, shift=1.0)
    with Receiver(secret=SECRET) as receiver:
        port = free_port()
        path = config(tmp_path, port, receiver.url)
        first = DaemonProcess(path, port)
        try:
            first.wait_for(lambda: (route_file(tmp_path) or {}).get("active") == "churn-v2", "switch to churn-v2")
            first.wait_for(
                lambda: any(r["active"] == "churn-v2" for r in routes_received(receiver)), "route webhook with churn-v2"
            )
            switched = first.json("/api/v1/models/churn")
            firing = model_switched(first.json("/api/v1/alerts")["alerts"])
            assert "model churn: switched churn-v3 -> churn-v2" in first.log()
            write_dataset(tmp_path, shift=0.0)  # production data recovers
        finally:
            assert first.stop() == 0
        assert switched["active"] == "churn-v2" and switched["primary"] == "churn-v3"
        assert switched["actuation"]["file:0"] == "confirmed"
        assert [(a["monitor"], a["phase"], a["severity"], a["details"]["to"]) for a in firing] == [
            ("churn-inputs", "firing", "critical", "churn-v2")
        ]
        assert oct(os.stat(tmp_path / "var" / "routes" / "churn.json").st_mode & 0o777) == oct(0o644)

        second = DaemonProcess(path, port)
        try:
            second.wait_ready()
            kept = second.json("/api/v1/models/churn")
            assert kept["active"] == "churn-v2"
            assert kept["state_version"] >= switched["state_version"]
            for headers in ({}, {"authorization": "Bearer wrong"}):
                status, body = second.post_json("/api/v1/models/churn/switch", {"to": "churn-rules"}, headers)
                assert status == 401, body
            assert second.json("/api/v1/models/churn")["active"] == "churn-v2"

            second.wait_for(lambda: (route_file(tmp_path) or {}).get("active") == "churn-v3", "restore", timeout=60)
            second.wait_for(lambda: routes_received(receiver)[-1]["active"] == "churn-v3", "route webhook restore")
            history = second.json("/api/v1/models/churn/history")["history"]
            metrics = second.metrics()
        finally:
            assert second.stop() == 0
    moves = [(h["direction"], h["from"], h["to"], h["actor"]) for h in reversed(history) if h["kind"] == "switch"]
    assert moves == [("fallback", "churn-v3", "churn-v2", "auto"), ("restore", "churn-v2", "churn-v3", "auto")]
    trigger = next(h for h in history if h.get("direction") == "fallback")
    assert trigger["details"]["monitor"] == "churn-inputs" and trigger["details"]["severity"] == "critical"
    assert trigger["config_hash"]
    assert all(r.verified for r in receiver.requests if r.path == "/admin/route")
    assert route_file(tmp_path) == {k: v for k, v in routes_received(receiver)[-1].items()}
    alerts = [r.json() for r in receiver.accepted() if r.path == "/alerts" and r.json()["alertname"] == "ModelSwitched"]
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert metrics[("driftwatch_model_active", (("model", "churn"), ("version", "churn-v3")))] == 1
    assert metrics[("driftwatch_model_active", (("model", "churn"), ("version", "churn-v2")))] == 0
    assert metrics[("driftwatch_model_fallback_active", (("model", "churn"),))] == 0
    assert metrics[("driftwatch_model_switches_total", (("direction", "fallback"), ("model", "churn")))] == 1
    assert metrics[("driftwatch_model_switches_total", (("direction", "restore"), ("model", "churn")))] == 1


def model_switched(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["alertname"] == "ModelSwitched" and a["subject"] == "churn"]


def test_manual_switch_pin_and_cli(tmp_path: Path) -> None:
    """An authenticated manual switch pins the model; `driftwatch models` switches back and unpins by the API.

    A silence of ModelSwitched mutes its notifications while the switches, the audit and the alerts API go on.
    """
    write_dataset(tmp_path, shift=0.0)
    with Receiver(secret=SECRET) as receiver:
        port = free_port()
        path = config(tmp_path, port, receiver.url)
        daemon = DaemonProcess(path, port)
        try:
            daemon.wait_ready()
            auth = {"authorization": f"Bearer {TOKEN}"}
            status, body = daemon.post_json(
                "/api/v1/silences", {"matchers": {"alertname": "ModelSwitched"}, "duration": "1h"}, auth
            )
            assert status == 201, body
            status, body = daemon.post_json(
                "/api/v1/models/churn/switch", {"to": "churn-rules", "reason": "incident 42", "pin": True}, auth
            )
            assert status == 200, body
            assert body["changed"] and body["model"]["active"] == "churn-rules" and body["model"]["pinned"]
            status, body = daemon.post_json("/api/v1/models/churn/switch", {"to": "churn-rules"}, auth)
            assert status == 200 and not body["changed"] and body["message"].startswith("already active")
            status, body = daemon.post_json("/api/v1/models/churn/switch", {"to": "churn-v9"}, auth)
            assert status == 400 and "churn-v9" in body
            daemon.wait_for(lambda: (route_file(tmp_path) or {}).get("active") == "churn-rules", "pinned route")
            firing = model_switched(daemon.json("/api/v1/alerts")["alerts"])
            done = subprocess.run(
                [sys.executable, "-m", "driftwatch", "models", "restore", "-c", str(path), "churn"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            restored = json.loads(done.stdout)["model"]
            assert restored["active"] == "churn-v3" and not restored["pinned"]
            history = daemon.json("/api/v1/models/churn/history")["history"]
            assert model_switched(daemon.json("/api/v1/alerts")["alerts"]) == []
            daemon.wait_for(
                lambda: any(r["active"] == "churn-v3" for r in routes_received(receiver)), "route webhook restore"
            )
            log = daemon.log()
        finally:
            assert daemon.stop() == 0
    assert [(a["monitor"], a["phase"], a["details"]["to"], a["details"]["actor"]) for a in firing] == [
        ("churn-inputs", "firing", "churn-rules", "api")
    ]
    assert "alert churn-inputs/churn/ModelSwitched firing (fired) silenced" in log
    assert "alert churn-inputs/churn/ModelSwitched resolved (resolved) silenced" in log
    assert [r for r in receiver.requests if r.path == "/alerts" and r.json()["alertname"] == "ModelSwitched"] == []
    actors = [(h["actor"], h["to"], h["reason"]) for h in reversed(history)]
    assert actors[0] == ("api", "churn-rules", "incident 42")
    assert actors[-1] == ("cli", "churn-v3", "manual restore from the CLI")
