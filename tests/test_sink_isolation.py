"""Sinks isolated from each other: a real daemon with a black-hole webhook sink still notifies a healthy one at once."""

from __future__ import annotations

import base64
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path

from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import monitor_yaml, write_dataset
from receivers import BlackHole, Receiver

SECRET = "whsec_" + base64.b64encode(b"driftwatch-isolation-signing-key").decode()
MIN_NOTIFICATIONS = 24
MAX_DELAY = 2.0


class TimedReceiver(Receiver):
    """A receiver that also notes when each webhook-id first arrived (epoch seconds)."""

    def __init__(self, *, secret: str | None = None) -> None:
        super().__init__(secret=secret)
        self.arrived: dict[str, float] = {}

    def _respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        self.arrived.setdefault(headers.get("webhook-id", ""), time.time())
        return super()._respond(method, path, headers, body)


def config(tmp_path: Path, port: int, healthy_url: str, hole_port: int) -> Path:
    """One drifting monitor every second re-notifying its three alerts every second, to a black hole and a receiver."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
{monitor_yaml("churn", "files", extra="alerts: {sinks: [hole, healthy]}")}
alerting:
  sinks:
    hole: {{kind: webhook, url: "http://127.0.0.1:{hole_port}/hook", timeout: 3s,
           retry: {{initial: 1s, max_interval: 2s, max_age: 1h}}}}
    healthy: {{kind: webhook, url: "{healthy_url}/hook", secret: "{SECRET}", timeout: 3s,
              retry: {{initial: 1s, max_interval: 2s, max_age: 1h}}}}
  defaults: {{for_runs: 1, resolve_after_runs: 2, repeat_interval: 1s}}
""")
    return path


def queued_at(db: Path, sink: str) -> dict[str, float]:
    """When each outbox row of `sink` was queued (its created_at, epoch seconds), by delivery id."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT delivery_id, created_at FROM outbox WHERE sink = ?", (sink,)).fetchall()
    return {delivery_id: datetime.fromisoformat(created).timestamp() for delivery_id, created in rows}


def test_black_hole_sink_does_not_delay_a_healthy_one(tmp_path: Path) -> None:
    """Every notification reaches the healthy receiver within 2 s of being queued while the other sink hangs."""
    write_dataset(tmp_path)
    with BlackHole() as hole, TimedReceiver(secret=SECRET) as receiver:
        port = free_port()
        daemon = DaemonProcess(config(tmp_path, port, receiver.url, hole.port), port)
        try:
            daemon.wait_for(
                lambda: len(receiver.arrived) >= MIN_NOTIFICATIONS, "notifications at the healthy sink", timeout=90
            )
            stopping = time.time()
        finally:
            assert daemon.stop() == 0, daemon.log()
    queued = queued_at(tmp_path / "var" / "state.db", "healthy")
    delays = sorted(receiver.arrived[i] - at for i, at in queued.items() if i in receiver.arrived)
    missing = [i for i, at in queued.items() if i not in receiver.arrived and at < stopping - MAX_DELAY]
    print(
        f"\nhealthy sink: {len(delays)} notifications, delay p50 {statistics.median(delays):.3f}s,"
        f" p100 {delays[-1]:.3f}s; black hole held {hole.connections} connection(s)"
    )
    assert len(delays) >= MIN_NOTIFICATIONS
    assert not missing, f"{len(missing)} notification(s) queued long before the stop never arrived"
    assert delays[-1] <= MAX_DELAY, delays
    assert hole.connections, "the black-hole sink was never tried"
    assert all(request.verified for request in receiver.requests)
