"""Many windows in one process: `check --from/--to/--step` (a timeline) and `backfill` (stored runs, read by a
running daemon at GET /api/v1/monitors/{name}/runs, paged)."""

from __future__ import annotations

import json
import os
import pty
import sqlite3
import subprocess
import sys
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import free_port
from daemon_harness import DaemonProcess
from datasets import customers, write_dataset
from test_cli import driftwatch

from driftwatch.runtime.store import RunRow, Store

DAY0 = datetime(2024, 5, 1, tzinfo=UTC)
DAYS = 10
DRIFT_FROM = 5  # days 5.. drift


def write_days(root: Path) -> None:
    """`write_dataset`'s reference, and days/days.parquet: 400 rows a day for DAYS days, drifting from DRIFT_FROM."""
    write_dataset(root, end=DAY0 - timedelta(days=30))
    rng = np.random.default_rng(11)
    frames = []
    for day in range(DAYS):
        frame = customers(rng, 400, 0.8 if day >= DRIFT_FROM else 0.0)
        seconds = np.sort(rng.uniform(0, 86_400, len(frame)))
        frame.insert(0, "event_time", pd.to_datetime([DAY0 + timedelta(days=day, seconds=float(s)) for s in seconds]))
        frames.append(frame)
    (root / "days").mkdir()
    pd.concat(frames, ignore_index=True).to_parquet(root / "days" / "days.parquet", index=False, row_group_size=1000)


def days_config(port: int, *, every: str = "1h") -> str:
    """`daily` (scheduled) and `daily-check` (no schedule): one-day windows over days/*.parquet."""
    monitor = (
        "    reference: {path: reference/train.parquet}\n"
        "    source: days\n"
        "    window: 1d\n"
        "    min_rows: 100\n"
        "    features: {numeric: [age, income], categorical: [plan]}\n"
    )
    return (
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        "state: {path: var/state.db}\n"
        "sources:\n"
        '  days: {kind: parquet, path: "days/*.parquet", timestamp_column: event_time}\n'
        "monitors:\n"
        f"  daily:\n    schedule: {{every: {every}}}\n{monitor}"
        f"  daily-check:\n{monitor}"
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Ten days of data and the config (driftwatch.yaml)."""
    write_days(tmp_path)
    (tmp_path / "driftwatch.yaml").write_text(days_config(9999))
    return tmp_path


def day(n: int) -> str:
    return (DAY0 + timedelta(days=n)).isoformat()


def test_timeline_json_lines_equal_single_checks(workdir: Path) -> None:
    """`check --from --to --format json` prints one line per window, each the report `check --at END` gives."""
    done = driftwatch(
        "check", "-c", "driftwatch.yaml", "--monitor", "daily-check", "--from", day(0), "--to", day(DAYS),
        "--format", "json", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # the drifting days are critical
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["window"]["end"] for line in lines] == [day(n) for n in range(1, DAYS + 1)]
    assert [line["severity"] for line in lines] == ["ok"] * DRIFT_FROM + ["critical"] * (DAYS - DRIFT_FROM)
    for n in (8,):
        single = driftwatch(
            "check", "-c", "driftwatch.yaml", "--monitor", "daily-check", "--at", day(n), "--format", "json",
            cwd=workdir,
        )  # fmt: skip
        assert json.loads(single.stdout)["monitors"][0] == lines[n - 1]


def test_timeline_table_steps_and_bad_ranges(workdir: Path) -> None:
    """The table has a line per window and a summary; --step overlaps windows; bad ranges are one-line errors."""
    done = driftwatch(
        "check", "-c", "driftwatch.yaml", "--monitor", "daily", "--from", day(0), "--to", day(DAYS), "--step", "12h",
        cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "daily: 19 windows of 1d every 12h, reference 5,000 rows"
    assert lines[2].split()[:3] == ["2024-05-02", "00:00:00", "ok"]
    assert lines[-2].split()[:3] == ["2024-05-11", "00:00:00", "critical"]
    assert "age (critical)" in lines[-2]
    assert lines[-1].strip() == "10 critical, 9 ok"
    for args, message in (
        (("--from", day(0), "--to", day(0)), "no window fits"),
        (("--from", day(0), "--to", day(DAYS), "--step", "0s"), "--step must be positive"),
    ):
        bad = driftwatch("check", "-c", "driftwatch.yaml", *args, cwd=workdir)
        assert bad.returncode == 2, bad.stderr
        assert message in bad.stderr and "Traceback" not in bad.stderr


def test_store_backfilled_runs_are_not_latest_nor_pruned(tmp_path: Path) -> None:
    """Backfilled runs replace those of the same windows, never seed the latest run, and outlive retention."""
    with Store(tmp_path / "state.db") as store:
        now = datetime(2025, 1, 1, tzinfo=UTC)
        store.record_run("m", started=now, finished=now, outcome="ok", severity="ok", error=None, report=None)
        rows = [RunRow(DAY0 + timedelta(days=n), now, "ok", "ok", None, {"n": n}) for n in range(3)]
        assert store.record_backfill("m", rows) == 0
        assert store.record_backfill("m", rows[1:]) == 2
        assert store.last_runs()["m"].origin == "schedule"
        store.prune(now + timedelta(days=1), timedelta(hours=1))
        assert [r.report for r in store.runs("m", origin="backfill")] == [{"n": 2}, {"n": 1}, {"n": 0}]
        assert store.delete_backfill("m", DAY0, DAY0 + timedelta(days=1)) == 2
        assert len(store.runs("m")) == 2


def test_store_migrates_runs_to_origin(tmp_path: Path) -> None:
    """A version-3 database gains `runs.origin`; its runs are the daemon's."""
    path = tmp_path / "state.db"
    with Store(path) as store:
        store.record_run("m", started=DAY0, finished=DAY0, outcome="ok", severity="ok", error=None, report=None)
    raw = sqlite3.connect(path)
    raw.executescript("ALTER TABLE runs DROP COLUMN origin; PRAGMA user_version = 3;")
    raw.close()
    with Store(path) as store:
        assert store.runs("m")[0].origin == "schedule"


progress: list[str] = []


def on_terminal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`driftwatch ARGS` with stderr on a pseudo-terminal (its text appended to `progress`), stdout captured."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "driftwatch", *args], stdout=subprocess.PIPE, stderr=follower, text=True, cwd=cwd,
            timeout=120,
        )  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    progress.append(b"".join(chunks).decode(errors="replace"))
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, progress[-1])


def pages(daemon: DaemonProcess, name: str, query: str) -> list[list[dict]]:
    """Every page of GET /api/v1/monitors/NAME/runs?QUERY, following `next`."""
    found, cursor = [], None
    while True:
        extra = f"&before={urllib.parse.quote(cursor)}" if cursor else ""
        page = daemon.json(f"/api/v1/monitors/{name}/runs?{query}{extra}")
        found.append(page["runs"])
        cursor = page["next"]
        if cursor is None:
            return found


def test_backfill_fills_the_daemons_run_history(tmp_path: Path) -> None:
    """`backfill` (beside a running daemon, same state database) stores one run per window, shown newest first in
    pages by the daemon's API; the daemon's own latest status stays; a rerun replaces; --delete removes them."""
    write_days(tmp_path)
    port = free_port()
    config = tmp_path / "driftwatch.yaml"
    config.write_text(days_config(port, every="1s"))
    daemon = DaemonProcess(config, port)
    try:
        daemon.wait_ready()
        daemon.wait_for(lambda: daemon.json("/api/v1/monitors/daily")["outcome"] != "never", "a run of daily")
        assert [m["monitor"] for m in daemon.json("/api/v1/monitors")["monitors"]] == ["daily"]
        assert "monitor daily-check: no schedule, so the daemon does not run it" in daemon.log()
        for name in ("daily", "daily-check", "daily"):  # the second backfill of daily replaces the first's runs
            args = ("backfill", "-c", str(config), "--monitor", name, "--from", day(0), "--to", day(DAYS))
            done = driftwatch(*args, cwd=tmp_path) if name == "daily" else on_terminal(*args, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert f"{name}: stored 10 backfilled run(s)" in done.stdout
            assert "(5 critical, 5 ok)" in done.stdout
        for name in ("daily", "daily-check"):
            got = pages(daemon, name, "origin=backfill&limit=3")
            assert [len(page) for page in got] == [3, 3, 3, 1]
            runs = [run for page in got for run in page]
            assert [run["report"]["window"]["end"] for run in runs] == [day(n) for n in range(DAYS, 0, -1)]
            assert [run["severity"] for run in runs] == ["critical"] * 5 + ["ok"] * 5
            assert {run["origin"] for run in runs} == {"backfill"}
        everything = [run for page in pages(daemon, "daily", "limit=500") for run in page]
        assert {run["origin"] for run in everything} == {"schedule", "backfill"}
        assert "\r\x1b[Kdaily-check: window 10/10 ending 2024-05-11 00:00 UTC" in progress[0]
        status = daemon.json("/api/v1/monitors/daily")
        assert status["outcome"] == "no_data"  # the daemon's own latest run: now has no data
        assert daemon.get("/api/v1/monitors/daily/runs?before=nonsense")[0] == 400
        assert daemon.get("/api/v1/monitors/daily/runs?limit=0")[0] == 400
        assert daemon.get("/api/v1/monitors/daily/runs?origin=manual")[0] == 400
        assert daemon.get("/api/v1/monitors/nobody/runs")[0] == 404
        done = driftwatch(
            "backfill", "-c", str(config), "--monitor", "daily-check", "--from", day(0), "--to", day(DAYS),
            "--delete", cwd=tmp_path,
        )  # fmt: skip
        assert "deleted 10 backfilled run(s)" in done.stdout, done.stderr
        assert daemon.get("/api/v1/monitors/daily-check/runs")[0] == 404
    finally:
        assert daemon.stop() == 0, daemon.log()
