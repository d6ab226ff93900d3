"""Resident memory of a daemon with many monitors, each on its own 1M-row reference and 1M-row window.

Writes (seeded, with bench_scale.py's generator) one reference and one window parquet file per monitor, each of
`--rows` rows x (`--numeric` numeric + `--categorical` categorical) features (default 20 + 5, the shape of
bench_scale.py), timestamps in the last two hours; a config with one parquet source and one monitor per file
(`schedule: {every: --every}`, a 1d window, `min_rows: 1`) and a free loopback port. Then runs
`python -m driftwatch run -c CONFIG` as a subprocess, polls GET /api/v1/monitors until every monitor has run
`--runs` times (default 2), and samples the daemon's /proc/PID/status (VmRSS, VmHWM) every `--sample` seconds
throughout.

Prints the startup time (until the API answers), the peak RSS (VmHWM), the steady RSS (median VmRSS after every
monitor's first run; and the last sample, after the last run), and those divided by the number of monitors, next
to what holding every reference and window as float64 arrays in memory would take (the in-memory baseline).
Target (issue 13): RSS <= 3 GB for 20 monitors of 1M rows.

Run: .venv/bin/python benchmarks/bench_daemon_memory.py [--monitors 20] [--rows 1000000] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_scale import ROOT, categorical_names, make_table, numeric_names, provenance, write_file

TARGET_RSS_MB = 3 * 1024.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate(root: Path, args: argparse.Namespace, start: datetime) -> float:
    """One reference and one window file per monitor (distinct seeds), each written from one table."""
    began = time.perf_counter()
    (root / "data").mkdir(parents=True, exist_ok=True)
    for m in range(args.monitors):
        for window in (False, True):
            path = root / "data" / f"{'window' if window else 'reference'}_{m:02d}.parquet"
            if not path.exists():
                table = make_table(args.seed + m, 0, args.rows, window, args.numeric, args.categorical, start)
                write_file(path, table, 1 << 20)
                del table
        print(f"  wrote monitor {m + 1}/{args.monitors}'s files ({time.perf_counter() - began:.0f}s)", flush=True)
    return time.perf_counter() - began


def write_config(root: Path, args: argparse.Namespace, port: int) -> Path:
    numeric = ", ".join(numeric_names(args.numeric))
    categorical = ", ".join(categorical_names(args.categorical))
    lines = [
        "# written by benchmarks/bench_daemon_memory.py",
        f"server: {{host: 127.0.0.1, port: {port}}}",
        f"state: {{path: {root / 'state' / 'driftwatch.db'}}}",
        "sources:",
    ]
    for m in range(args.monitors):
        lines += [f"  src{m:02d}:", "    kind: parquet", f"    path: {root / 'data' / f'window_{m:02d}.parquet'}"]
        lines += ["    timestamp_column: ts"]
    lines.append("monitors:")
    for m in range(args.monitors):
        lines += [
            f"  mon{m:02d}:",
            f"    reference: {{path: {root / 'data' / f'reference_{m:02d}.parquet'}}}",
            f"    source: src{m:02d}",
            f"    schedule: {{every: {args.every}s}}",
            "    window: 1d",
            "    min_rows: 1",
            f"    features: {{numeric: [{numeric}], categorical: [{categorical}]}}",
        ]
    path = root / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def memory(pid: int) -> tuple[float, float, float, float]:
    """(VmRSS, VmHWM, RssAnon, RssFile) of `pid` in MiB (RssFile: mapped files, e.g. memory-mapped profiles)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                key, amount, _ = line.split()
                values[key[:-1]] = int(amount) / 1024
    return values["VmRSS"], values["VmHWM"], values["RssAnon"], values["RssFile"]


def monitors(port: int) -> list[dict] | None:
    """GET /api/v1/monitors, None while the daemon does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/monitors", timeout=2) as response:
            return json.loads(response.read())["monitors"]
    except (urllib.error.URLError, OSError, ValueError):
        return None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--monitors", type=int, default=20)
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=1_000_000, help="reference and window rows")
    parser.add_argument("--numeric", type=int, default=20)
    parser.add_argument("--categorical", type=int, default=5)
    parser.add_argument("--every", type=int, default=30, help="schedule interval in seconds")
    parser.add_argument("--runs", type=int, default=2, help="wait until every monitor has run this often")
    parser.add_argument("--sample", type=float, default=0.25, help="seconds between RSS samples")
    parser.add_argument("--timeout", type=float, default=1200.0, help="give up after this many seconds")
    parser.add_argument("--dir", type=Path, help="data directory (default: a new temp dir under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench_daemon_", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"bench_daemon_memory: {args.monitors} monitors, each {args.rows:,}-row reference + window x "
        f"({args.numeric} numeric + {args.categorical} categorical), every {args.every}s; {os.cpu_count()} CPUs; "
        f"{provenance()}; data in {root}",
        flush=True,
    )
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)
    try:
        seconds = generate(root, args, start)
        print(f"data: generated in {seconds:.0f}s", flush=True)
        measure(root, args)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def measure(root: Path, args: argparse.Namespace) -> None:
    port = free_port()
    config = write_config(root, args, port)
    log = (root / "daemon.log").open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "driftwatch", "run", "-c", str(config)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    began = time.perf_counter()
    samples: list[tuple[float, float, float, float, float]] = []  # (seconds, VmRSS, VmHWM, RssAnon, RssFile)
    ready = first_round = last_round = None
    final: list[dict] = []
    try:
        next_poll = 0.0
        while True:
            now = time.perf_counter() - began
            if proc.poll() is not None:
                raise SystemExit(f"daemon exited with {proc.returncode}:\n{(root / 'daemon.log').read_text()[-3000:]}")
            if now > args.timeout:
                raise SystemExit(f"timeout after {args.timeout:.0f}s; last status: {final}")
            samples.append((now, *memory(proc.pid)))
            if now >= next_poll:
                next_poll = now + 1.0
                status = monitors(port)
                if status is not None:
                    ready = ready if ready is not None else now
                    final = status
                    runs = [m["runs_total"] for m in status]
                    if first_round is None and len(runs) == args.monitors and min(runs) >= 1:
                        first_round = now
                        print(f"  every monitor has run once at {now:.0f}s, RSS {samples[-1][1]:.0f} MB", flush=True)
                    if len(runs) == args.monitors and min(runs) >= args.runs:
                        last_round = now
                        break
            time.sleep(args.sample)
        for _ in range(int(5 / args.sample)):  # a few idle seconds after the last run
            time.sleep(args.sample)
            samples.append((time.perf_counter() - began, *memory(proc.pid)))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()

    assert ready is not None and first_round is not None and last_round is not None
    peak = max(s[2] for s in samples)
    at_ready = next(s[1] for s in samples if s[0] >= ready)
    steady = statistics.median(s[1] for s in samples if s[0] >= first_round)
    last = samples[-1][1]
    outcomes = sorted({m["outcome"] for m in final})
    rows = sorted({m["rows"] for m in final})
    n = args.monitors
    # What an in-memory design holds: every reference and window as float64 arrays (+ 8-byte string pointers).
    in_memory = n * 2 * args.rows * (args.numeric + args.categorical) * 8 / 2**20
    print()
    print(f"{'phase':<44}{'seconds':>8}{'RSS MB':>9}{'per monitor':>13}")
    print(f"{'API answers (profiles loaded or built)':<44}{ready:>8.1f}{at_ready:>9.0f}{at_ready / n:>13.1f}")
    print(f"{'every monitor has run once':<44}{first_round:>8.1f}")
    print(f"{f'every monitor has run {args.runs} times':<44}{last_round:>8.1f}")
    print(f"{'peak (VmHWM)':<44}{'':>8}{peak:>9.0f}{peak / n:>13.1f}")
    print(f"{'steady (median VmRSS after the first round)':<44}{'':>8}{steady:>9.0f}{steady / n:>13.1f}")
    print(f"{'last sample (idle, after the last run)':<44}{'':>8}{last:>9.0f}{last / n:>13.1f}")
    anon, mapped = max(s[3] for s in samples), max(s[4] for s in samples)
    print(
        f"breakdown: largest RssAnon (heap, arrow buffers) {anon:,.0f} MB, largest RssFile (mapped files: "
        f"profiles, libraries) {mapped:,.0f} MB; at the last sample {samples[-1][3]:,.0f} + {samples[-1][4]:,.0f} MB"
    )
    print(
        f"outcomes: {', '.join(outcomes)}; window rows per monitor: {', '.join(map(str, rows))}; "
        f"{len(samples)} RSS samples"
    )
    print(
        f"in-memory baseline (every reference + window as 8-byte values): {in_memory:,.0f} MB = "
        f"{in_memory / peak:.1f}x the measured peak"
    )
    verdict = "met" if peak <= TARGET_RSS_MB else "MISSED"
    print(f"target: RSS <= {TARGET_RSS_MB:.0f} MB for 20 monitors -> peak {peak:.0f} MB {verdict}")
    print(
        f"RESULT monitors={n} peak_rss={peak:.0f}MB steady_rss={steady:.0f}MB per_monitor_peak={peak / n:.0f}MB "
        f"per_monitor_steady={steady / n:.0f}MB target_met={peak <= TARGET_RSS_MB}"
    )


if __name__ == "__main__":
    main()
