"""Fault isolation in the real daemon: a hung database stalls only its own monitor, and shutdown stays bounded."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import monitor_yaml, write_dataset
from receivers import BlackHole, Receiver

SHUTDOWN_TIMEOUT = 2.0


def isolation_config(tmp_path: Path, port: int, hung_port: int, server: str = "", stuck_timeout: str = "8s") -> Path:
    """A healthy parquet monitor and a monitor on a database that accepts connections and never answers."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}, shutdown_timeout: {SHUTDOWN_TIMEOUT:g}s{server}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
  hung: {{kind: sql, url: "postgresql+psycopg://driftwatch@127.0.0.1:{hung_port}/features", table: features,
          timestamp_column: event_time}}
monitors:
{monitor_yaml("healthy", "files")}
{monitor_yaml("stuck", "hung", extra=f"timeout: {stuck_timeout}")}
""")
    return path


def sample(metrics: dict, name: str, monitor: str) -> float | None:
    return metrics.get((name, (("monitor", monitor),)))


def test_hung_database_stalls_only_its_own_monitor_and_sigterm_is_bounded(tmp_path: Path) -> None:
    """Next to a black-hole SQL source, a healthy 1 s monitor keeps running and up for 30 s; SIGTERM exits 0 fast."""
    write_dataset(tmp_path)
    port = free_port()
    with BlackHole() as hole:
        daemon = DaemonProcess(isolation_config(tmp_path, port, hole.port), port)
        try:
            daemon.wait_ready()
            daemon.wait_for(lambda: hole.connections >= 1, "the stuck monitor to connect")
            daemon.wait_for(
                lambda: sample(daemon.metrics(), "driftwatch_monitor_up", "healthy") == 1, "the healthy monitor's run"
            )
            start = sample(daemon.metrics(), "driftwatch_monitor_runs_total", "healthy") or 0
            ups = []
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ups.append(sample(daemon.metrics(), "driftwatch_monitor_up", "healthy"))
                time.sleep(1)
            metrics = daemon.metrics()
            ran = sample(metrics, "driftwatch_monitor_runs_total", "healthy") - start
            print(
                f"healthy monitor: {ran:.0f} runs in 30 s; up samples {set(ups)}; "
                f"stuck monitor: {sample(metrics, 'driftwatch_monitor_runs_total', 'stuck'):.0f} runs, "
                f"{sample(metrics, 'driftwatch_monitor_runs_skipped_total', 'stuck'):.0f} skipped; "
                f"{hole.connections} connections to the black hole"
            )
            assert ups and all(up == 1 for up in ups), ups
            assert ran >= 25
            assert sample(metrics, "driftwatch_monitor_up", "stuck") == 0
            assert sample(metrics, "driftwatch_monitor_runs_skipped_total", "stuck") >= 1  # one run at a time
            assert sample(metrics, "driftwatch_monitor_runs_skipped_total", "healthy") == 0
            error = daemon.json("/api/v1/monitors/stuck")["error"]
            assert "\n" not in error and ("timed out" in error or "timeout" in error), error
            assert hole.connections <= 30 / 8 + 2  # runs do not pile up on the hung database
            began = time.monotonic()
            code = daemon.stop(timeout=SHUTDOWN_TIMEOUT + 5)
            took = time.monotonic() - began
            print(f"SIGTERM -> exit {code} in {took:.2f}s (shutdown_timeout {SHUTDOWN_TIMEOUT:g}s)")
            assert code == 0 and took <= SHUTDOWN_TIMEOUT + 5
            assert "Traceback" not in daemon.log()
        finally:
            daemon.kill()


def test_a_hung_run_holds_the_only_run_slot_no_longer_than_its_timeout(tmp_path: Path) -> None:
    """With `max_concurrent_runs: 1`, a run stuck on a black-hole database gives its slot back at its 3 s
    deadline: the healthy monitor waits, but keeps running and never fails."""
    write_dataset(tmp_path)
    port = free_port()
    with BlackHole() as hole:
        config = isolation_config(tmp_path, port, hole.port, server=", max_concurrent_runs: 1", stuck_timeout="3s")
        daemon = DaemonProcess(config, port)
        try:
            daemon.wait_ready()
            daemon.wait_for(lambda: hole.connections >= 1, "the stuck monitor to connect")
            daemon.wait_for(
                lambda: sample(daemon.metrics(), "driftwatch_monitor_up", "healthy") == 1, "the healthy monitor's run"
            )
            start = sample(daemon.metrics(), "driftwatch_monitor_runs_total", "healthy") or 0
            time.sleep(20)
            metrics = daemon.metrics()
            ran = sample(metrics, "driftwatch_monitor_runs_total", "healthy") - start
            failed = sample(metrics, "driftwatch_monitor_run_failures_total", "healthy") or 0
            print(
                f"one run slot: healthy monitor {ran:.0f} runs in 20 s, {failed:.0f} failed; stuck error: "
                f"{daemon.json('/api/v1/monitors/stuck')['error']}"
            )
            assert ran >= 4 and failed == 0
            assert sample(metrics, "driftwatch_monitor_up", "healthy") == 1
            assert "timed out" in daemon.json("/api/v1/monitors/stuck")["error"]
            assert daemon.stop(timeout=SHUTDOWN_TIMEOUT + 5) == 0
        finally:
            daemon.kill()


def random_stop_config(tmp_path: Path, port: int) -> Path:
    """One drifting monitor every second that feeds alerting and a model that never switches."""
    path = tmp_path / "driftwatch.yaml"
    path.write_text(f"""
server: {{host: 127.0.0.1, port: {port}}}
state: {{path: var/state.db}}
sources:
  files: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
{monitor_yaml("churn", "files", extra="model: churn")}
models:
  churn:
    primary: v2
    fallbacks: [v1]
    switch: {{on: critical, after_runs: 100000, min_dwell: 1h}}
alerting:
  sinks:
    log: {{kind: log}}
""")
    return path


def recorded_steps(db: Path) -> tuple[int, int, int]:
    """(ok runs, DatasetDrift breaching runs, model breaching runs) in the state database."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (runs,) = conn.execute("SELECT count(*) FROM runs WHERE outcome = 'ok'").fetchone()
        alert = conn.execute("SELECT state_json FROM alert_states WHERE key = 'churn/dataset/DatasetDrift'").fetchone()
        model = conn.execute("SELECT state_json FROM model_states WHERE model = 'churn'").fetchone()
    conn.close()
    return (
        runs,
        json.loads(alert[0])["breaching_runs"] if alert else 0,
        json.loads(model[0])["breaching_runs"] if model else 0,
    )


def test_sigterm_at_random_moments_loses_no_alert_or_model_step(tmp_path: Path) -> None:
    """20 SIGTERMs at random moments: every recorded run also has its alert and model step; no closed database."""
    write_dataset(tmp_path, rows=100_000, shift=1.0)  # runs long enough that many SIGTERMs land inside one
    path = random_stop_config(tmp_path, port := free_port())
    chance = random.Random(12)
    logs = []
    for attempt in range(20):
        daemon = DaemonProcess(path, port)
        try:
            daemon.wait_ready()
            time.sleep(chance.uniform(0.0, 2.5))
            assert daemon.stop(timeout=40) == 0, daemon.log()
            logs.append(daemon.log())
        finally:
            daemon.kill()
        runs, alert_runs, model_runs = recorded_steps(tmp_path / "var" / "state.db")
        assert runs == alert_runs == model_runs, (attempt, runs, alert_runs, model_runs, daemon.log())
    print(f"20 SIGTERMs: {runs} runs recorded, each with its alert and model step")
    assert runs >= 10
    for text in logs:
        assert "closed database" not in text and "Traceback" not in text, text


def test_locked_state_database_costs_records_not_the_daemon(tmp_path: Path) -> None:
    """Another process holding the state database's write lock for 12 s: one-line errors, runs go on, then recover."""
    write_dataset(tmp_path)
    path = random_stop_config(tmp_path, port := free_port())
    daemon = DaemonProcess(path, port)
    db = tmp_path / "var" / "state.db"
    try:
        daemon.wait_ready()
        daemon.wait_for(lambda: recorded_steps(db)[0] >= 2, "two recorded runs")
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        began = sample(daemon.metrics(), "driftwatch_monitor_runs_total", "churn")
        time.sleep(12)
        during = sample(daemon.metrics(), "driftwatch_monitor_runs_total", "churn") - began
        holder.execute("ROLLBACK")
        holder.close()
        locked_at = recorded_steps(db)[0]
        daemon.wait_for(lambda: recorded_steps(db)[0] >= locked_at + 3, "runs recorded again after the lock")
        runs, alert_runs, model_runs = recorded_steps(db)
        errors = [line for line in daemon.log().splitlines() if "could not record" in line]
        print(
            f"12 s of a locked state database: {during:.0f} runs made, {len(errors)} one-line record errors; "
            f"afterwards {runs} runs recorded, alert step {alert_runs}, model step {model_runs}"
        )
        assert during >= 1  # a run's three record steps each wait out the store's 5 s busy timeout
        assert errors and all("database is locked" in line for line in errors)
        assert daemon.get("/healthz")[0] == 200
        assert "Traceback" not in daemon.log()
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def test_kill_9_at_random_moments_loses_no_notification(tmp_path: Path) -> None:
    """12 SIGKILLs while alerts repeat every run: after a final restart every queued notification was delivered."""
    write_dataset(tmp_path, shift=1.0)
    chance = random.Random(9)
    with Receiver(delay=0.05) as receiver:
        path = tmp_path / "driftwatch.yaml"
        path.write_text(
            random_stop_config(tmp_path, port := free_port())
            .read_text()
            .replace(
                "    log: {kind: log}\n",
                f'    hook: {{kind: webhook, url: "{receiver.url}/hook", timeout: 2s,'
                " retry: {initial: 1s, max_interval: 1s}}\n"
                "  defaults: {for_runs: 1, resolve_after_runs: 1, repeat_interval: 1s}\n",
            )
        )
        for _ in range(12):
            daemon = DaemonProcess(path, port)
            try:
                daemon.wait_ready()
                time.sleep(chance.uniform(0.5, 3.0))
            finally:
                daemon.kill()  # SIGKILL
        path.write_text(path.read_text().replace("every: 1s", "every: 1h"))  # one last run: the outbox can drain
        daemon = DaemonProcess(path, port)
        try:
            daemon.wait_ready()
            daemon.wait_for(lambda: daemon.json("/api/v1/monitors/churn")["outcome"] != "never", "the last run")
            daemon.wait_for(lambda: daemon.metrics().get(("driftwatch_outbox_pending", ())) == 0, "an empty outbox")
            assert daemon.stop() == 0
        finally:
            daemon.kill()
        with sqlite3.connect(f"file:{tmp_path / 'var' / 'state.db'}?mode=ro", uri=True) as conn:
            queued = dict(conn.execute("SELECT delivery_id, status FROM outbox").fetchall())
        conn.close()
        arrived = receiver.accepted_ids()
    lost = sorted(set(queued) - set(arrived))
    again = sum(count - 1 for count in arrived.values())
    print(
        f"12 SIGKILLs: {len(queued)} notifications queued, {len(lost)} lost, {again} delivered twice "
        f"(the same webhook-id, for the receiver to deduplicate)"
    )
    assert len(queued) >= 20
    assert lost == [] and set(queued.values()) == {"delivered"}
