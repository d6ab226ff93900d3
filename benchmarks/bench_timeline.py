"""A year of weekly windows in one process (`check --from/--to --step 7d`) against one `check --at`.

Writes (seeded) a year of data every `--freq` (default 1h, like the hourly year of issue 15; 1min gives 10,080
rows a window), 20 numeric + 2 categorical features with a daily cycle, as monthly parquet files, a reference
month (January) and a config with one monitor (`window: 7d`, `min_rows: 100`). Then times,
as subprocesses (`python -m driftwatch ...`, what a user runs), after one warm-up that builds the cached profile:

- `check --monitor year --at T` (one window), the median of `--repeats` runs;
- `check --monitor year --from 2024-01-01 --to 2024-12-30 --step 7d --format json` (52 windows), the median too;
- `backfill` of the same 52 windows into the state database.

Prints the times and the ratio timeline / single check (target of issue 15: under 5x for 52 windows).

Run: .venv/bin/python benchmarks/bench_timeline.py [--freq 1h] [--repeats 3] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
START = datetime(2024, 1, 1, tzinfo=UTC)
NUMERIC = 20
TARGET_RATIO = 5.0


def month_frame(rng: np.random.Generator, first: datetime, last: datetime, freq: str) -> pd.DataFrame:
    """Rows every `freq` in [first, last): numeric features with a daily cycle and a slow seasonal drift."""
    stamps = pd.date_range(first, last, freq=freq, inclusive="left")
    hours = (stamps.hour + stamps.minute / 60).to_numpy()
    season = np.sin(2 * np.pi * stamps.day_of_year.to_numpy() / 365)
    data: dict[str, object] = {"event_time": stamps}
    for i in range(NUMERIC):
        cycle = np.sin(2 * np.pi * (hours + i) / 24)
        data[f"x{i}"] = cycle + 0.5 * season * (i % 3) + rng.normal(0, 1, len(stamps))
    data["plan"] = rng.choice(["basic", "plus", "premium"], len(stamps), p=[0.6, 0.3, 0.1])
    data["region"] = rng.choice([f"r{i}" for i in range(12)], len(stamps))
    return pd.DataFrame(data)


def write_year(folder: Path, freq: str) -> None:
    """data/YYYY-MM.parquet for 2024, reference.parquet (January) and driftwatch.yaml."""
    rng = np.random.default_rng(15)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for month in range(1, 13):
        first = datetime(2024, month, 1, tzinfo=UTC)
        last = datetime(2024 + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        frame = month_frame(rng, first, last, freq)
        frame.to_parquet(folder / "data" / f"2024-{month:02d}.parquet", index=False, row_group_size=65_536)
        if month == 1:
            frame.drop(columns=["event_time"]).to_parquet(folder / "reference.parquet", index=False)
    (folder / "driftwatch.yaml").write_text(
        "state: {path: var/state.db}\n"
        "sources:\n"
        '  prod: {kind: parquet, path: "data/*.parquet", timestamp_column: event_time}\n'
        "monitors:\n"
        "  year:\n"
        "    reference: {path: reference.parquet}\n"
        "    source: prod\n"
        "    window: 7d\n"
        "    min_rows: 100\n"
        "    features: auto\n"
    )


def timed(folder: Path, *args: str) -> tuple[float, str]:
    """Seconds of `python -m driftwatch ARGS` in `folder`, and its stdout (exit 0 or 1 expected)."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "driftwatch", "--log-level", "warning", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    seconds = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"driftwatch {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--freq", default="1h", help="a pandas frequency: 1h (default), 10min, 1min")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="dw-timeline-"))
    try:
        began = time.perf_counter()
        write_year(folder, args.freq)
        print(f"wrote a year of data every {args.freq} (22 features) in {time.perf_counter() - began:.1f}s to {folder}")
        config = ["-c", "driftwatch.yaml", "--monitor", "year"]
        at = (START + timedelta(days=7 * 30)).isoformat()
        timed(folder, "check", *config, "--at", at)  # warm-up: builds and caches the reference profile
        single = [timed(folder, "check", *config, "--at", at)[0] for _ in range(args.repeats)]
        span = ["--from", START.isoformat(), "--to", (START + timedelta(days=364)).isoformat(), "--step", "7d"]
        timeline, output = [], ""
        for _ in range(args.repeats):
            seconds, output = timed(folder, "check", *config, *span, "--format", "json")
            timeline.append(seconds)
        windows = [json.loads(line) for line in output.splitlines()]
        backfill = timed(folder, "backfill", *config, *span)[0]
        one, many = statistics.median(single), statistics.median(timeline)
        severities = {s: sum(1 for w in windows if w["severity"] == s) for s in ("ok", "warning", "critical")}
        print(f"single check (1 window of 7d):  {one:.2f}s  (median of {args.repeats}: {single})")
        print(f"timeline ({len(windows)} windows of 7d):   {many:.2f}s  (median of {args.repeats}: {timeline})")
        print(f"backfill ({len(windows)} windows, stored): {backfill:.2f}s")
        print(f"ratio timeline / single check: {many / one:.2f}x (target < {TARGET_RATIO:g}x); severities {severities}")
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
