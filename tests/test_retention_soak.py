"""Soak (CI-sized): 5 monitors every second with `retention: 10s` keep the state database bounded.

A second daemon with the default retention runs the same monitors alongside, to measure how many bytes of state
one run adds when nothing is deleted. Both print their figures (`pytest -s` shows them).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest
from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import write_dataset

MONITORS = 5
RETENTION_SECONDS = 10
SOAK_SECONDS = 45
TABLES = ("runs", "outbox", "silences", "model_history")
TOKEN = "soak-token"


def soak_config(port: int, retention: str | None) -> str:
    """5 drifting monitors every second over parquet; alerts repeat on every run into a log sink."""
    state = f"{{path: var/state.db, retention: {retention}}}" if retention else "{path: var/state.db}"
    monitor = """
    reference: {path: reference/train.parquet}
    source: files
    schedule: {every: 1s}
    window: 1h
    min_rows: 100
    features: {numeric: [age, income], categorical: [plan]}"""
    return (
        f"server: {{host: 127.0.0.1, port: {port}, api_token: {TOKEN}}}\n"
        f"state: {state}\n"
        "sources:\n"
        '  files: {kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}\n'
        "alerting:\n"
        "  sinks: {log: {kind: log}}\n"
        "  defaults: {for_runs: 1, repeat_interval: 1s}\n"
        "monitors:\n" + "".join(f"  m{i}:{monitor}\n" for i in range(MONITORS))
    )


def start_daemon(root: Path, retention: str | None) -> DaemonProcess:
    root.mkdir()
    write_dataset(root)
    port = free_port()
    (root / "driftwatch.yaml").write_text(soak_config(port, retention))
    return DaemonProcess(root / "driftwatch.yaml", port)


def sample(db: Path) -> dict[str, int]:
    """Row counts, rows ever made (the largest id: the newest run and outbox row are never pruned) and bytes."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        found = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}
        found["runs_made"] = conn.execute("SELECT COALESCE(MAX(id), 0) FROM runs").fetchone()[0]
        found["outbox_made"] = conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]
        found["pending"] = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        found["bytes"] = conn.execute("PRAGMA page_count").fetchone()[0] * page_size
        found["free_bytes"] = conn.execute("PRAGMA freelist_count").fetchone()[0] * page_size
    return found


def at(samples: list[tuple[float, dict[str, int]]], seconds: float) -> dict[str, int]:
    """The sample taken closest to `seconds` into the soak."""
    return min(samples, key=lambda s: abs(s[0] - seconds))[1]


@pytest.fixture
def daemons(tmp_path: Path):
    """A daemon with `retention: 10s` and one with the default retention, over the same kind of data."""
    pruned = start_daemon(tmp_path / "pruned", f"{RETENTION_SECONDS}s")
    kept = start_daemon(tmp_path / "kept", None)
    yield pruned, kept
    pruned.kill()
    kept.kill()


def test_state_stays_bounded_under_a_soak(daemons: tuple[DaemonProcess, DaemonProcess], tmp_path: Path) -> None:
    """With `retention: 10s` row counts and file size level off while runs keep coming; without, they grow."""
    pruned, kept = daemons
    pruned.wait_ready()
    kept.wait_ready()
    pruned_db, kept_db = tmp_path / "pruned" / "var" / "state.db", tmp_path / "kept" / "var" / "state.db"
    pruned.wait_for(lambda: sample(pruned_db)["runs_made"] >= MONITORS, "first runs")
    kept.wait_for(lambda: sample(kept_db)["runs_made"] >= MONITORS, "first runs")
    start = time.monotonic()
    samples: list[tuple[float, dict[str, int]]] = []
    kept_samples: list[tuple[float, dict[str, int]]] = []
    silences = 0
    while (elapsed := time.monotonic() - start) < SOAK_SECONDS:
        status, body = pruned.post_json(
            "/api/v1/silences",
            {"matchers": {"monitor": "nobody"}, "duration": "1s"},
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        assert status == 201, body
        silences += 1
        samples.append((elapsed, sample(pruned_db)))
        kept_samples.append((elapsed, sample(kept_db)))
        time.sleep(2.5)
    assert pruned.stop() == 0 and kept.stop() == 0
    first, middle, last = samples[0][1], at(samples, 25), samples[-1][1]

    print(f"\nretention {RETENTION_SECONDS}s, {MONITORS} monitors every 1 s, {SOAK_SECONDS} s:")
    for seconds, found in samples[::2]:
        print(
            f"  t={seconds:4.1f}s made {found['runs_made']:4d} runs, {found['outbox_made']:5d} notifications;"
            f" rows: "
            + ", ".join(f"{table} {found[table]}" for table in TABLES)
            + f"; file {found['bytes'] / 1024:.0f} KB ({found['free_bytes'] / 1024:.0f} KB free pages)"
        )
    kept_first, kept_last = kept_samples[0][1], kept_samples[-1][1]
    runs = kept_last["runs_made"] - kept_first["runs_made"]
    per_run = (kept_last["bytes"] - kept_first["bytes"]) / runs
    notifications = (kept_last["outbox_made"] - kept_first["outbox_made"]) / runs
    with closing(sqlite3.connect(f"file:{kept_db}?mode=ro", uri=True)) as conn:
        (run_row,) = conn.execute("SELECT AVG(LENGTH(report_json) + LENGTH(monitor) + 80) FROM runs").fetchone()
        (outbox_row,) = conn.execute("SELECT AVG(LENGTH(event_json) + LENGTH(sink) + 140) FROM outbox").fetchone()
    print(
        f"without retention: {runs} runs grew the file by {(kept_last['bytes'] - kept_first['bytes']) / 1024:.0f} KB"
        f" = {per_run / 1024:.2f} KB per run; a run row holds ~{run_row / 1024:.1f} KB, each of its"
        f" {notifications:.1f} notifications ~{outbox_row / 1024:.1f} KB (payload + fixed columns, before indexes)"
    )

    made = last["runs_made"] - first["runs_made"]
    assert made >= 120, f"only {made} runs in {SOAK_SECONDS}s: the soak did not exercise retention"
    bound = MONITORS * (RETENTION_SECONDS + 1 + 5)  # retention + prune interval + slack, one run per second each
    assert all(found["runs"] <= bound for seconds, found in samples if seconds >= 20), [s["runs"] for _, s in samples]
    assert last["runs"] <= middle["runs"] * 1.25 + 10
    assert last["outbox"] <= middle["outbox"] * 1.25 + 50
    assert last["outbox_made"] - middle["outbox_made"] > last["outbox"], "notifications were not being made"
    assert last["silences"] <= 12 < silences
    assert last["bytes"] <= middle["bytes"] * 1.25 + 64 * 1024
    assert kept_last["runs"] == kept_last["runs_made"] >= 120  # nothing pruned by the default 30 days
    assert kept_last["bytes"] > 2 * last["bytes"]
    log = pruned.log()
    assert "state retention: deleted" in log
    assert "prune failed" not in log and "Traceback" not in log
