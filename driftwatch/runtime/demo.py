"""`driftwatch demo`: a synthetic reference, a production stream that starts drifting, and the daemon on them.

Everything is written under one work folder: `reference/train.parquet`, `prod/batch-*.parquet` (a file every
2 seconds, 100 rows a second) and `driftwatch.yaml`. After `drift_after` the stream's `age`, then `income` and
`plan`, drift further every second, so the monitor goes ok -> warning -> critical within about a minute, the
alerts fire (to the log), and model `churn` falls back from churn-v3 to churn-v2 (route in
`state/routes/churn.json`).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("driftwatch.demo")

ROWS_PER_SECOND = 100
FILE_EVERY_SECONDS = 2.0
PLANS = ["basic", "standard", "premium"]
REGIONS = ["north", "south", "east", "west"]

CONFIG = """\
# Written by `driftwatch demo`: one monitor on a local parquet stream, checked every 10 seconds, feeding a
# model that falls back to churn-v2 on critical drift; alerts go to the log.
server: {{host: {host}, port: {port}}}
state: {{path: state/driftwatch.db}}
sources:
  demo_stream: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
  churn-inputs:
    model: churn
    reference: {{path: reference/train.parquet}}
    source: demo_stream
    schedule: {{every: 10s}}
    window: 30s
    min_rows: 200
    features: {{numeric: [age, income, tenure_months], categorical: [plan, region]}}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2, churn-rules]
    switch: {{on: critical, after_runs: 2, min_dwell: 2m}}
    restore: {{after_runs: 6}}
    actuators:
      - {{kind: file, path: state/routes/churn.json}}
alerting:
  sinks:
    console: {{kind: log}}
  defaults: {{for_runs: 2, resolve_after_runs: 2, repeat_interval: 30m}}
"""


def features(rng: np.random.Generator, rows: int, drift: float) -> pd.DataFrame:
    """`rows` synthetic customer rows; `drift` 0 is the reference distribution, 1.5 a large shift.

    `age` moves first (warning, then critical on its own), `income` and `plan` follow later.
    """
    later = max(0.0, drift - 0.7)
    plan_p = np.array([0.5, 0.35, 0.15]) * np.array([1 - 0.6 * later, 1, 1 + 3 * later])
    return pd.DataFrame(
        {
            "age": rng.normal(40 + 10 * drift, 12, rows).round(),
            "income": rng.lognormal(10.5 + 0.4 * later, 0.5, rows),
            "tenure_months": rng.exponential(24, rows),
            "plan": rng.choice(PLANS, rows, p=plan_p / plan_p.sum()),
            "region": rng.choice(REGIONS, rows),
        }
    )


def drift_at(elapsed: float, drift_after: float, speed: float = 1.0) -> float:
    """The stream's drift `elapsed` seconds after the start: 0 until `drift_after`, then +`speed` per minute."""
    return float(np.clip((elapsed - drift_after) * speed / 60.0, 0.0, 1.5))


def write_batch(folder: Path, rng: np.random.Generator, end: datetime, seconds: float, drift: float) -> None:
    """One parquet file of the rows that arrived in the `seconds` before `end`."""
    rows = int(ROWS_PER_SECOND * seconds)
    frame = features(rng, rows, drift)
    offsets = np.sort(rng.uniform(0, seconds, rows))
    frame.insert(0, "event_time", pd.to_datetime(end, utc=True) - pd.to_timedelta(seconds - offsets, unit="s"))
    tmp = folder / f".batch-{end:%Y%m%dT%H%M%S%f}.tmp"
    frame.to_parquet(tmp, index=False)
    tmp.rename(folder / f"batch-{end:%Y%m%dT%H%M%S%f}.parquet")


def prepare(workdir: Path, host: str, port: int) -> Path:
    """Write the reference, an empty production folder and the config; return the config path."""
    (workdir / "reference").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / "prod", ignore_errors=True)
    (workdir / "prod").mkdir()
    features(np.random.default_rng(7), 20_000, 0.0).to_parquet(workdir / "reference" / "train.parquet", index=False)
    config = workdir / "driftwatch.yaml"
    config.write_text(CONFIG.format(host=host, port=port))
    return config


def stream(folder: Path, drift_after: float, stop: threading.Event, seed: int = 11, speed: float = 1.0) -> None:
    """Write production batches until `stop` is set; backfills the first 30 seconds."""
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    write_batch(folder, rng, datetime.now(UTC), 30.0, 0.0)
    reported = 0.0
    while not stop.wait(FILE_EVERY_SECONDS):
        drift = drift_at(time.monotonic() - started, drift_after, speed)
        write_batch(folder, rng, datetime.now(UTC), FILE_EVERY_SECONDS, drift)
        if drift - reported >= 0.25:
            log.info(
                "demo stream: drift level %.2f (age +%.1f years; income and plan follow after 0.7)", drift, 10 * drift
            )
            reported = drift
        for old in folder.glob("batch-*.parquet"):
            if old.stat().st_mtime < time.time() - 300:
                old.unlink(missing_ok=True)


def run_demo(
    workdir: Path, *, host: str = "127.0.0.1", port: int, drift_after: timedelta, drift_speed: float = 1.0
) -> None:
    """Prepare the demo folder, start the stream (drifting `drift_speed` times as fast as by default), and run
    the daemon in the foreground."""
    from driftwatch.runtime.daemon import Daemon, serve

    config = prepare(workdir, host, port)
    stop = threading.Event()
    writer = threading.Thread(
        target=stream,
        args=(workdir / "prod", drift_after.total_seconds(), stop),
        kwargs={"speed": drift_speed},
        name="demo-stream",
        daemon=True,
    )
    writer.start()
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    log.info(
        "demo: web view at http://%s:%d/ (monitor http://%s:%d/monitors/churn-inputs); data and config in %s/; "
        "metrics at /metrics; the stream starts drifting in %ds; Ctrl-C stops",
        shown,
        port,
        shown,
        port,
        workdir,
        drift_after.total_seconds(),
    )
    try:
        serve(Daemon(config))
    finally:
        stop.set()
