"""Server-side render time of the web view's monitor page, `/monitors/{name}`, with 50 features (target < 200 ms).

Writes (seeded) a reference of 20,000 rows and a drifted window of 5,000 rows with `--numeric` numeric and
`--categorical` categorical features (default 40 + 10, categories from 30 names, some new in the window), and a
config with one monitor running every second, then runs the real daemon (`python -m driftwatch run`) as a
subprocess on a free loopback port. Once the monitor has `--runs` runs in its history (the page draws PSI/KS
history from up to 30), it reloads the config with an hourly schedule (so no run competes for the CPU), requests
the page `--repeats` times and prints the median and maximum of:

- `server`: the time the daemon spends in the page handler (statuses, the run history from SQLite, the report to
  dict, the views and Jinja2 rendering), measured in-process by the same calls on the same state database;
- `http`: the whole GET over loopback as a client sees it (the handler plus uvicorn and the socket).

Run: .venv/bin/python benchmarks/bench_web.py [--numeric 40] [--categorical 10] [--repeats 30] [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_MS = 200.0
MONITOR = "wide"


def frame(rng: np.random.Generator, rows: int, numeric: int, categorical: int, shift: float) -> pd.DataFrame:
    """Rows of `numeric` normal features (the first `numeric // 5` shifted by `shift` sd) and `categorical` ones."""
    data: dict[str, object] = {
        f"num_{i:02d}": rng.normal(shift if i < numeric // 5 else 0.0, 1.0, rows) for i in range(numeric)
    }
    names = np.array([f"cat-{j:02d}" for j in range(30 + (5 if shift else 0))], dtype=object)
    for i in range(categorical):
        weights = np.linspace(1, 3, names.size)
        data[f"cat_{i:02d}"] = rng.choice(names, rows, p=weights / weights.sum())
    return pd.DataFrame(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as reply:
        body = reply.read()
    return time.perf_counter() - started, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numeric", type=int, default=40)
    parser.add_argument("--categorical", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    from driftwatch.core.status import MonitorStatus  # the in-process measurement uses the daemon's own calls
    from driftwatch.outputs.web import monitor_page
    from driftwatch.runtime.http import monitor_summary
    from driftwatch.runtime.store import Store
    from driftwatch.runtime.web import HISTORY_RUNS

    root = Path(tempfile.mkdtemp(prefix="bench-web-"))
    port = free_port()
    process = None
    try:
        rng = np.random.default_rng(16)
        frame(rng, 20_000, args.numeric, args.categorical, 0.0).to_parquet(root / "reference.parquet", index=False)
        window = frame(rng, 5_000, args.numeric, args.categorical, 0.5)
        window.insert(0, "event_time", pd.Timestamp(datetime.now(UTC)) - pd.to_timedelta(np.arange(5_000), unit="s"))
        (root / "prod").mkdir()
        window.to_parquet(root / "prod" / "window.parquet", index=False)
        (root / "driftwatch.yaml").write_text(
            f"server: {{host: 127.0.0.1, port: {port}}}\nstate: {{path: state.db}}\n"
            'sources: {prod: {kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}\n'
            f"monitors:\n  {MONITOR}:\n    reference: {{path: reference.parquet}}\n    source: prod\n"
            "    schedule: {every: 1s}\n    window: 1d\n    min_rows: 1\n"
            "    features: {numeric: auto, categorical: auto}\n"
        )
        log = (root / "daemon.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "driftwatch", "run", "-c", str(root / "driftwatch.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                status = json.loads(get(f"{base}/api/v1/monitors/{MONITOR}")[1])
                if status["runs_total"] >= args.runs:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            print((root / "daemon.log").read_text(), file=sys.stderr)
            return 1
        # stop the schedule (reload with an hourly one), so the requests below do not share the CPU with runs
        config = root / "driftwatch.yaml"
        config.write_text(config.read_text().replace("every: 1s", "every: 1h"))
        urllib.request.urlopen(urllib.request.Request(f"{base}/-/reload", method="POST"), timeout=60).close()
        time.sleep(2)
        report_json = json.loads(get(f"{base}/api/v1/monitors/{MONITOR}/report")[1])
        features = len(report_json["features"])
        http_times, size = [], 0
        for _ in range(args.repeats):
            seconds, body = get(f"{base}/monitors/{MONITOR}")
            http_times.append(seconds)
            size = len(body)
        bars = body.count(b'<rect class="bar ')

        # the handler's work, in-process, on the same state database
        from driftwatch import build_profile, compare

        reference = pd.read_parquet(root / "reference.parquet")
        numeric = [c for c in reference.columns if c.startswith("num_")]
        categorical = [c for c in reference.columns if c.startswith("cat_")]
        report = compare(build_profile(reference, numeric=numeric, categorical=categorical), window, monitor=MONITOR)
        status = MonitorStatus(MONITOR, "every 1s", "ok", last_run=datetime.now(UTC), report=report)
        server_times = []
        with Store(root / "state.db") as store:
            for _ in range(args.repeats):
                started = time.perf_counter()
                history = store.run_history(MONITOR, HISTORY_RUNS)
                page = monitor_page(monitor_summary(status), report.to_dict(), history)
                server_times.append(time.perf_counter() - started)
        ms = [1000 * t for t in server_times]
        http_ms = [1000 * t for t in http_times]
        print(
            f"/monitors/{MONITOR}: {features} features ({len(numeric)} numeric, {len(categorical)} categorical), "
            f"{len(history)} runs of history, {bars} bars, page {size / 1024:.0f} KB"
            f" (in-process {len(page) / 1024:.0f} KB)"
        )
        print(f"server  median {statistics.median(ms):6.1f} ms  max {max(ms):6.1f} ms  ({args.repeats} renders)")
        print(f"http    median {statistics.median(http_ms):6.1f} ms  max {max(http_ms):6.1f} ms  (GET over loopback)")
        verdict = "ok" if statistics.median(http_ms) < TARGET_MS else "OVER"
        print(
            f"RESULT server_median_ms={statistics.median(ms):.1f} http_median_ms={statistics.median(http_ms):.1f} "
            f"target<{TARGET_MS:.0f}ms {verdict}"
        )
        return 0
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
