"""Alerts end to end: the real daemon fires signed webhooks that survive receiver failures and restarts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import write_dataset
from receivers import Received, Receiver

SECRET = "whsec_" + base64.b64encode(b"driftwatch-test-signing-key").decode()


def config(tmp_path: Path, port: int, receiver_url: str, *, every: str = "1s") -> Path:
    """One drifting parquet monitor alerting a signed webhook with fast retries."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
  churn:
    reference: {{path: reference/train.parquet}}
    source: files
    schedule: {{every: {every}}}
    window: 1h
    min_rows: 100
    features: {{numeric: [age, income], categorical: [plan]}}
    alerts: {{sinks: [oncall]}}
alerting:
  sinks:
    oncall: {{kind: webhook, url: "{receiver_url}/hook", secret: "{SECRET}", timeout: 2s,
             retry: {{initial: 1s, max_interval: 2s, max_age: 1h}}}}
  defaults: {{for_runs: 2, resolve_after_runs: 2, repeat_interval: 4h}}
""")
    return path


def signed_correctly(request: Received) -> bool:
    """Standard Webhooks signature check written out independently of driftwatch's own code."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in request.headers["webhook-signature"].split())


def fired_alerts(receiver: Receiver) -> Counter[str]:
    """How many distinct "fired" notifications each alert identity produced at the receiver."""
    seen = {}
    for request in receiver.accepted():
        body = request.json()
        if body["reason"] == "fired":
            seen[body["notification_id"]] = f"{body['monitor']}/{body['subject']}/{body['alertname']}"
    return Counter(seen.values())


EXPECTED = {"churn/age/FeatureDrift", "churn/plan/FeatureDrift", "churn/dataset/DatasetDrift"}


def test_signed_webhooks_arrive_once_despite_failures(tmp_path: Path) -> None:
    """A receiver failing its first 3 requests still gets every firing alert exactly once, correctly signed."""
    write_dataset(tmp_path)
    with Receiver(secret=SECRET) as receiver:
        receiver.fail(3, 503)
        port = free_port()
        daemon = DaemonProcess(config(tmp_path, port, receiver.url), port)
        try:
            daemon.wait_for(lambda: set(fired_alerts(receiver)) >= EXPECTED, "three firing alerts", timeout=60)
            daemon.wait_for(lambda: daemon.metrics().get(("driftwatch_outbox_pending", ())) == 0, "empty outbox")
            metrics = daemon.metrics()
        finally:
            assert daemon.stop() == 0
    failed = [r for r in receiver.requests if r.status == 503]
    assert len(failed) == 3
    accepted = receiver.accepted_ids()
    assert all(count == 1 for count in accepted.values()), accepted
    assert {r.headers["webhook-id"] for r in failed} <= set(accepted), "retries must reuse the webhook-id"
    assert all(signed_correctly(r) for r in receiver.requests)
    assert all(r.json()["status"] == "firing" for r in receiver.accepted())
    assert fired_alerts(receiver) == Counter(dict.fromkeys(EXPECTED, 1))
    age = next(r.json() for r in receiver.accepted() if r.json()["subject"] == "age")
    assert age["details"]["statistics"]["psi"] > 0.25 and age["severity"] == "critical"
    assert age["details"]["thresholds"]["psi"] == {"warning": 0.1, "critical": 0.25}
    assert age["links"]["report"].endswith("/api/v1/monitors/churn/report")
    firing = {labels: value for (name, labels), value in metrics.items() if name == "driftwatch_alerts_firing"}
    assert firing[(("alertname", "FeatureDrift"), ("monitor", "churn"), ("severity", "critical"))] == 2
    assert metrics[("driftwatch_notifications_total", (("outcome", "retry"), ("sink", "oncall")))] == 3
    assert SECRET not in daemon.log()


def test_receiver_down_across_a_daemon_restart_loses_nothing(tmp_path: Path) -> None:
    """Alerts that fire while the receiver is down are delivered once after a daemon restart; none fire twice."""
    write_dataset(tmp_path)
    receiver = Receiver(secret=SECRET, port=free_port())
    port = free_port()
    path = config(tmp_path, port, receiver.url)
    first = DaemonProcess(path, port)
    try:
        first.wait_for(lambda: first.metrics().get(("driftwatch_outbox_pending", ()), 0) >= 3, "queued alerts")
        assert first.json("/api/v1/alerts")["alerts"]
    finally:
        assert first.stop() == 0
    with receiver:
        second = DaemonProcess(path, port)
        try:
            second.wait_for(lambda: set(fired_alerts(receiver)) >= EXPECTED, "delivery after restart", timeout=60)
            second.wait_for(lambda: second.metrics().get(("driftwatch_outbox_pending", ())) == 0, "empty outbox")
            for _ in range(3):  # a few more runs: the restarted daemon must not fire the same alerts again
                runs = second.metrics()[("driftwatch_monitor_runs_total", (("monitor", "churn"),))]
                second.wait_for(
                    lambda r=runs: second.metrics()[("driftwatch_monitor_runs_total", (("monitor", "churn"),))] > r,
                    "another run",
                )
        finally:
            assert second.stop() == 0
    accepted = receiver.accepted_ids()
    assert all(count == 1 for count in accepted.values()), accepted
    assert fired_alerts(receiver) == Counter(dict.fromkeys(EXPECTED, 1))
    assert all(signed_correctly(r) for r in receiver.requests)


@pytest.mark.parametrize("status", [pytest.param(400, id="rejected-400")])
def test_rejected_notification_becomes_dead_letter_and_replays(tmp_path: Path, status: int) -> None:
    """A 4xx is not retried: it lands in dead letters (metric), and `driftwatch alerts retry` replays it."""
    import subprocess
    import sys

    write_dataset(tmp_path)
    with Receiver(secret=SECRET) as receiver:
        receiver.fail(100, status)
        port = free_port()
        path = config(tmp_path, port, receiver.url)
        daemon = DaemonProcess(path, port)
        try:
            daemon.wait_for(
                lambda: daemon.metrics().get(("driftwatch_outbox_dead_letters", ()), 0) >= 3, "dead letters"
            )
            receiver.recover()
            done = subprocess.run(
                [sys.executable, "-m", "driftwatch", "alerts", "retry", "-c", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert "queued for delivery again" in done.stdout
            daemon.wait_for(lambda: set(fired_alerts(receiver)) >= EXPECTED, "replayed delivery")
            daemon.wait_for(lambda: daemon.metrics().get(("driftwatch_outbox_dead_letters", ())) == 0, "no dead")
        finally:
            assert daemon.stop() == 0
    assert all(count == 1 for count in receiver.accepted_ids().values())
    body = json.loads(receiver.accepted()[0].body)
    assert body["event"] == "alert.firing"
