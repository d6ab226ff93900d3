"""Whole-process `driftwatch check` on big parquet windows: wall time, rows/s and peak RSS, against naive pandas+scipy.

Writes (seeded, one 1M-row file at a time, so the writer never holds a window) a 1M-row reference and a pool of
window files of `--file-rows` rows x (20 numeric + 5 categorical) features plus a timestamp column. Numeric
features have varied shapes (normal, log-normal, integer-valued with ties, zero-inflated, normal with 1% NaN);
every third one is shifted, scaled or re-weighted in the window so that some drift. Categorical features have
5-50 short string levels; one gains a category the reference never saw, one changes its shares. A window of N
rows is the first N / file_rows pool files, hard-linked into its own directory and read through a glob.

For each size it runs, each as a fresh child process whose wall time and peak RSS come from `os.wait4` (the
rusage of that one child, not a cumulative maximum):

- check: `python -m driftwatch check -c CONFIG --monitor scale --at END --format json`. The very first check
  (1M rows) builds and caches the reference profile and is reported as `cold`; every timed run reuses the cache
  (one state directory for all sizes). Median of `--repeats` (default 3, and 1 for windows of 30M rows or more).
- naive: a child that does what a competent user writes by hand (see bench_stats.py `naive_pass`):
  `pandas.read_parquet` of the reference and of the window's files (feature columns only), then per numeric
  column `scipy.stats.ks_2samp` on the finite values + PSI from `np.histogram` over reference-quantile edges,
  per categorical column `scipy.stats.chi2_contingency` of the aligned `value_counts`. Only where it fits in
  memory (windows up to `--naive-max-rows`, default 10M); median of 3 runs at 1M, one run above.

Then an equality spot check at 10M rows (or the largest size run below it): the KS D of three numeric features
from the check's JSON against `scipy.stats.ks_2samp` on the same values (read column by column).

Targets (issue 13): peak RSS at 30M <= 1.5 GB and <= 1.3x the 1M figure; throughput >= 1.5M rows/s; whole-process
check on 1M rows >= 3x faster than the naive baseline; |dKS| <= 1e-12.

With `--pushdown` (issue 14) it then loads the window of `--pushdown-rows` rows (default: the largest size up to
10M) into a throwaway PostgreSQL (Debian package, started as by the tests; COPY, one file at a time) and runs the
same `check` against a `kind: sql` source with `pushdown: true`, once: wall time, rows/s and the daemon-side peak
RSS (target <= 400 MB; PostgreSQL's own memory is not counted), and every statistic against the parquet check of
the same rows (bit-equal, Wasserstein within 1e-12 relative). The default run is unchanged.

Run: .venv/bin/python benchmarks/bench_scale.py [--sizes 1e6,1e7,3e7] [--dir DIR] [--keep] [--repeats N]
     [--pushdown [--pushdown-rows N]]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

N_NUMERIC = 20
N_CATEGORICAL = 5
T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILE_SPAN = timedelta(hours=1)  # each window file covers one hour of timestamps
BINS = 10  # driftwatch's default psi.bins, used by the naive PSI too
EPSILON = 1e-4  # driftwatch's default psi.epsilon
MONITOR = "scale"
SPOT_FEATURES = ("x00", "x02", "x03")  # normal, integer-valued with ties, zero-inflated (all three drift or not)
ROOT = Path(__file__).resolve().parent.parent

TARGET_RSS_MB = 1536.0
TARGET_RSS_GROWTH = 1.3
TARGET_ROWS_PER_S = 1.5e6
TARGET_NAIVE_RATIO = 3.0
TARGET_DKS = 1e-12
TARGET_PUSHDOWN_RSS_MB = 400.0


def numeric_names(n: int = N_NUMERIC) -> list[str]:
    return [f"x{i:02d}" for i in range(n)]


def categorical_names(n: int = N_CATEGORICAL) -> list[str]:
    return [f"cat{j}" for j in range(n)]


def numeric_column(rng: np.random.Generator, i: int, rows: int, window: bool) -> np.ndarray:
    """Values of numeric feature i; in the window every third feature (i % 3 == 0) drifts a little."""
    drift = window and i % 3 == 0
    kind = i % 5
    if kind == 0:  # normal, shifted
        return rng.standard_normal(rows) + (0.1 * (1 + i % 4) if drift else 0.0)
    if kind == 1:  # log-normal, scaled
        return rng.lognormal(0.0, 0.75, rows) * (1.15 if drift else 1.0)
    if kind == 2:  # integer-valued with heavy ties
        return rng.poisson(3.0 + i % 4 + (0.3 if drift else 0.0), rows).astype(np.float64)
    if kind == 3:  # zero-inflated: many exact zeros, then a skewed tail
        zeros = 0.45 if drift else 0.4
        return np.where(rng.random(rows) < zeros, 0.0, rng.exponential(2.0, rows))
    values = rng.normal(5.0, 2.0 * (1.2 if drift else 1.0), rows)  # normal with 1% missing
    values[rng.random(rows) < 0.01] = np.nan
    return values


def category_labels(j: int, n_categorical: int = N_CATEGORICAL) -> list[str]:
    """The short string levels of categorical feature j (5 to 50 of them)."""
    levels = np.linspace(5, 50, max(n_categorical, 2)).astype(int)[j]
    return [f"c{j}_{k:02d}" for k in range(int(levels))]


def category_weights(seed: int, j: int, levels: int, window: bool) -> np.ndarray:
    """Level shares of categorical feature j: fixed per feature (not per file); feature 1 changes in the window."""
    weights = np.random.default_rng([seed, 1_000 + j]).dirichlet(np.ones(levels))
    if window and j == 1:
        weights = np.random.default_rng([seed, 2_000 + j]).dirichlet(np.ones(levels))
    return weights


def make_table(seed: int, part: int, rows: int, window: bool, n_numeric: int, n_categorical: int, start: datetime):
    """One file's rows as an arrow table: timestamp `ts` spread over FILE_SPAN from `start`, then the features."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng([seed, int(window), part])
    step = FILE_SPAN / timedelta(microseconds=1) / rows
    micros = int((start - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    ts = micros + (np.arange(rows) * step).astype(np.int64)
    columns = {"ts": pa.array(ts, type=pa.timestamp("us", tz="UTC"))}
    for i, name in enumerate(numeric_names(n_numeric)):
        columns[name] = pa.array(numeric_column(rng, i, rows, window))
    for j, name in enumerate(categorical_names(n_categorical)):
        labels = category_labels(j, n_categorical)
        codes = rng.choice(len(labels), size=rows, p=category_weights(seed, j, len(labels), window))
        values = pa.array(labels + ["new_cat"]).take(pa.array(codes))
        if window and j == 0:  # a category the reference never saw, 1% of the rows
            mask = rng.random(rows) < 0.01
            values = pc.if_else(pa.array(mask), pa.scalar("new_cat"), values)
        columns[name] = values
    return pa.table(columns)


def write_file(path: Path, table, row_group_rows: int) -> None:
    import pyarrow.parquet as pq

    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=row_group_rows)
    tmp.rename(path)


@dataclass
class Layout:
    """Where the data lives and what was generated."""

    root: Path
    file_rows: int
    reference: Path = field(init=False)
    pool: Path = field(init=False)

    def __post_init__(self) -> None:
        self.reference = self.root / "reference.parquet"
        self.pool = self.root / "pool"

    def pool_file(self, part: int) -> Path:
        return self.pool / f"part-{part:04d}.parquet"

    def window_dir(self, rows: int) -> Path:
        return self.root / f"window_{label(rows)}"

    def config(self, rows: int) -> Path:
        return self.root / f"config_{label(rows)}.yaml"


def generate(layout: Layout, sizes: list[int], ref_rows: int, seed: int, row_group_rows: int) -> float:
    """Write the reference, the pool files the largest window needs, and one hard-linked directory per window."""
    began = time.perf_counter()
    layout.pool.mkdir(parents=True, exist_ok=True)
    if not layout.reference.exists():
        write_file(layout.reference, make_table(seed, 0, ref_rows, False, N_NUMERIC, N_CATEGORICAL, T0), row_group_rows)
    parts = max(sizes) // layout.file_rows
    for part in range(parts):
        path = layout.pool_file(part)
        if not path.exists():
            table = make_table(seed, part, layout.file_rows, True, N_NUMERIC, N_CATEGORICAL, T0 + part * FILE_SPAN)
            write_file(path, table, row_group_rows)
            del table
            print(f"  wrote {path.name} ({part + 1}/{parts}, {time.perf_counter() - began:.0f}s)", flush=True)
    for rows in sizes:
        directory = layout.window_dir(rows)
        directory.mkdir(exist_ok=True)
        for part in range(rows // layout.file_rows):
            link = directory / layout.pool_file(part).name
            if not link.exists():
                os.link(layout.pool_file(part), link)
        write_config(layout, rows)
    return time.perf_counter() - began


def window_end(layout: Layout, rows: int) -> datetime:
    return T0 + (rows // layout.file_rows) * FILE_SPAN


def write_config(layout: Layout, rows: int) -> None:
    """One parquet source over the window's directory and one monitor whose window covers its files."""
    hours = rows // layout.file_rows * int(FILE_SPAN.total_seconds() // 3600)
    numeric = ", ".join(numeric_names())
    categorical = ", ".join(categorical_names())
    layout.config(rows).write_text(
        f"""# written by benchmarks/bench_scale.py
state: {{path: {layout.root / "state" / "driftwatch.db"}}}
sources:
  window:
    kind: parquet
    path: "{layout.window_dir(rows)}/*.parquet"
    timestamp_column: ts
monitors:
  {MONITOR}:
    reference: {{path: {layout.reference}}}
    source: window
    schedule: {{every: 1h}}
    window: {hours}h
    min_rows: 1
    features:
      numeric: [{numeric}]
      categorical: [{categorical}]
"""
    )


@dataclass
class Child:
    """One finished child process: wall seconds, peak RSS (MiB), exit code and the file holding its stdout."""

    wall: float
    rss_mb: float
    code: int
    stdout: Path


#: Runs argv and writes its peak RSS (KiB) to a file. Children are started through it because Linux carries the
#: peak RSS of the process that forks into the child's `ru_maxrss` at exec (measured: a bare `python -c pass`
#: forked from a 800 MB parent reports 789 MB); this launcher is small, so the figure it writes is the child's own.
LAUNCHER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_child(argv: list[str], stdout: Path, stderr: Path) -> Child:
    """Run argv to completion; wall time, and the peak RSS of exactly this child (through LAUNCHER)."""
    peak = stdout.with_suffix(".maxrss")
    with stdout.open("wb") as out, stderr.open("wb") as err:
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(peak), *argv], stdout=out, stderr=err, cwd=ROOT)
        _, status, _ = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_kib = int(peak.read_text()) if peak.exists() else 0
    return Child(wall, rss_kib / 1024, proc.returncode, stdout)


def run_check(layout: Layout, rows: int, tag: str) -> Child:
    argv = [sys.executable, "-m", "driftwatch", "check", "-c", str(layout.config(rows)), "--monitor", MONITOR]
    argv += ["--at", window_end(layout, rows).isoformat(), "--format", "json"]
    logs = layout.root / "logs"
    logs.mkdir(exist_ok=True)
    child = run_child(argv, logs / f"check_{label(rows)}_{tag}.json", logs / f"check_{label(rows)}_{tag}.err")
    if child.code not in (0, 1):
        raise SystemExit(f"check failed (exit {child.code}):\n{(logs / f'check_{label(rows)}_{tag}.err').read_text()}")
    report = json.loads(child.stdout.read_text())["monitors"][0]
    if report["status"] != "ok" or report["rows"]["current"] != rows:
        raise SystemExit(f"check did not judge {rows} rows: {report.get('status')} {report.get('reason')}")
    return child


def run_naive(layout: Layout, rows: int, tag: str) -> Child:
    argv = [sys.executable, __file__, "--naive-child", str(layout.reference), str(layout.window_dir(rows))]
    logs = layout.root / "logs"
    child = run_child(argv, logs / f"naive_{label(rows)}_{tag}.json", logs / f"naive_{label(rows)}_{tag}.err")
    if child.code != 0:
        raise SystemExit(f"naive child failed:\n{(logs / f'naive_{label(rows)}_{tag}.err').read_text()}")
    return child


def naive_child(reference: str, window_dir: str) -> None:
    """The naive baseline as a whole process: read everything into pandas, then scipy per column."""
    import pandas as pd
    import scipy.stats

    columns = numeric_names() + categorical_names()
    ref = pd.read_parquet(reference, columns=columns)
    cur = pd.read_parquet(window_dir, columns=columns)
    out: dict[str, dict[str, float]] = {}
    for name in numeric_names():
        r = ref[name].to_numpy(dtype=np.float64)
        c = cur[name].to_numpy(dtype=np.float64)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        ks = scipy.stats.ks_2samp(r, c)
        inner = np.unique(np.quantile(r, np.arange(1, BINS) / BINS))
        edges = np.concatenate(([-np.inf], inner, [np.inf]))
        rs = np.maximum(np.histogram(r, edges)[0] / r.size, EPSILON)
        cs = np.maximum(np.histogram(c, edges)[0] / c.size, EPSILON)
        out[name] = {"ks": float(ks.statistic), "psi": float(np.sum((cs - rs) * np.log(cs / rs)))}
    for name in categorical_names():
        table = pd.concat([ref[name].value_counts(), cur[name].value_counts()], axis=1).fillna(0)
        out[name] = {"chi2": float(scipy.stats.chi2_contingency(table.to_numpy().T).statistic)}
    json.dump({"rows": len(cur), "stats": out}, sys.stdout)


def spot_check(layout: Layout, rows: int, report_file: Path) -> tuple[float, dict[str, tuple[float, float]]]:
    """max |KS D(check JSON) - scipy ks_2samp D| over SPOT_FEATURES, reading one column at a time."""
    import pyarrow.dataset as ds
    import scipy.stats

    features = json.loads(report_file.read_text())["monitors"][0]["features"]
    pairs: dict[str, tuple[float, float]] = {}
    for name in SPOT_FEATURES:
        ref = ds.dataset(layout.reference).to_table(columns=[name]).column(0).to_numpy()
        cur = ds.dataset(str(layout.window_dir(rows))).to_table(columns=[name]).column(0).to_numpy()
        d = float(scipy.stats.ks_2samp(ref[np.isfinite(ref)], cur[np.isfinite(cur)]).statistic)
        pairs[name] = (float(features[name]["ks_statistic"]), d)
        del ref, cur
    return max(abs(a - b) for a, b in pairs.values()), pairs


def label(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"


def provenance() -> str:
    """HEAD commit of the repository and whether driftwatch/ has uncommitted changes (what was measured)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "driftwatch"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown commit"
    return f"commit {head.stdout.strip()}" + (" + uncommitted changes in driftwatch/" if dirty.stdout.strip() else "")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7,3e7", help="window rows, comma-separated (default 1e6,1e7,3e7)")
    parser.add_argument("--dir", type=Path, help="data directory (default: a new temp dir under /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--repeats", type=int, help="timed check runs per size (default 3, 1 at >= 30M rows)")
    parser.add_argument("--file-rows", type=int, default=1_000_000, help="rows per window file")
    parser.add_argument("--row-group-rows", type=int, default=1 << 20, help="parquet row group (pandas' default)")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--naive-max-rows", type=int, default=10_000_000, help="largest window for the baseline")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pushdown", action="store_true", help="also time a pushdown check on PostgreSQL")
    parser.add_argument("--pushdown-rows", type=int, help="window rows for --pushdown (default: largest size <= 10M)")
    parser.add_argument("--naive-child", nargs=2, metavar=("REFERENCE", "WINDOW_DIR"), help=argparse.SUPPRESS)
    return parser.parse_args()


def fmt(value: float | None, spec: str) -> str:
    """`value` formatted by `spec`, or "-" in the same width when there is none."""
    if value is None:
        return format("-", spec.split(".")[0] or "")
    return format(value, spec)


def main() -> None:
    args = parse_args()
    if args.naive_child:
        naive_child(*args.naive_child)
        return
    sizes = sorted({int(float(s)) for s in args.sizes.split(",")})
    if any(rows % args.file_rows for rows in sizes):
        raise SystemExit(f"every size must be a multiple of --file-rows {args.file_rows}")
    root = args.dir or Path(tempfile.mkdtemp(prefix="bench_scale_", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    layout = Layout(root, args.file_rows)
    print(
        f"bench_scale: windows {', '.join(label(s) for s in sizes)} rows x ({N_NUMERIC} numeric + {N_CATEGORICAL} "
        f"categorical), reference {label(args.reference_rows)} rows, {args.file_rows:,} rows per file, row groups "
        f"of {args.row_group_rows:,}; {os.cpu_count()} CPUs; {provenance()}; data in {root}",
        flush=True,
    )
    try:
        seconds = generate(layout, sizes, args.reference_rows, args.seed, args.row_group_rows)
        on_disk = sum(p.stat().st_size for p in layout.pool.glob("*.parquet")) + layout.reference.stat().st_size
        print(f"data: generated in {seconds:.0f}s, {on_disk / 2**30:.2f} GiB of parquet", flush=True)
        reports = measure(args, layout, sizes)
        if args.pushdown:
            rows = args.pushdown_rows or max((r for r in sizes if r <= 10_000_000), default=sizes[0])
            if rows not in sizes:
                raise SystemExit(f"--pushdown-rows {rows} must be one of --sizes")
            measure_pushdown(layout, rows, reports[rows])
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def measure(args: argparse.Namespace, layout: Layout, sizes: list[int]) -> dict[int, Path]:
    """Time the parquet checks (and the naive baseline); returns each size's last check report (JSON file)."""
    cold = run_check(layout, sizes[0], "cold")  # builds and caches the reference profile
    print(
        f"cold check ({label(sizes[0])} rows, builds the profile): {cold.wall:.2f}s, peak RSS {cold.rss_mb:,.0f} MB",
        flush=True,
    )
    results: dict[int, dict[str, object]] = {}
    for rows in sizes:
        repeats = args.repeats or (1 if rows >= 30_000_000 else 3)
        checks = [run_check(layout, rows, f"r{k}") for k in range(repeats)]
        naive: list[Child] = []
        if rows <= args.naive_max_rows:
            naive = [run_naive(layout, rows, f"r{k}") for k in range(3 if rows <= 1_000_000 else 1)]
        results[rows] = {"checks": checks, "naive": naive}
        wall = statistics.median(c.wall for c in checks)
        print(
            f"  {label(rows)}: check {', '.join(f'{c.wall:.2f}s/{c.rss_mb:.0f}MB' for c in checks)}; "
            f"naive {', '.join(f'{c.wall:.2f}s/{c.rss_mb:.0f}MB' for c in naive) or 'skipped'} "
            f"({rows / wall / 1e6:.2f}M rows/s)",
            flush=True,
        )

    header = (
        f"{'rows':>6} {'runs':>4} {'check s':>8} {'rows/s':>8} {'RSS MB':>7} {'naive s':>8} {'naive MB':>8} "
        f"{'naive/check':>11}"
    )
    print()
    print(header)
    summary: dict[int, tuple[float, float, float | None]] = {}
    for rows, result in results.items():
        checks, naive = result["checks"], result["naive"]
        assert isinstance(checks, list) and isinstance(naive, list)
        wall = statistics.median(c.wall for c in checks)
        rss = max(c.rss_mb for c in checks)
        naive_wall = statistics.median(c.wall for c in naive) if naive else None
        naive_rss = max(c.rss_mb for c in naive) if naive else None
        summary[rows] = (wall, rss, naive_wall / wall if naive_wall else None)
        note = "" if naive else f"  (naive skipped: > {label(args.naive_max_rows)} rows does not fit comfortably)"
        print(
            f"{label(rows):>6} {len(checks):>4} {wall:>8.2f} {rows / wall / 1e6:>7.2f}M {rss:>7.0f} "
            f"{fmt(naive_wall, '>8.2f')} {fmt(naive_rss, '>8.0f')} {fmt(summary[rows][2], '>10.2f')}x{note}"
        )
    print(f"cold first check at {label(sizes[0])} (profile build + check): {cold.wall:.2f}s, {cold.rss_mb:.0f} MB")

    small, big = sizes[0], sizes[-1]
    growth = summary[big][1] / summary[small][1]
    throughput = {rows: rows / s[0] for rows, s in summary.items()}
    best = max(throughput.values())
    print(
        f"peak RSS {label(big)} / {label(small)}: {growth:.2f}x (target <= {TARGET_RSS_GROWTH}x); "
        f"peak RSS at {label(big)}: {summary[big][1]:,.0f} MB (target <= {TARGET_RSS_MB:.0f} MB"
        f"{'' if big >= 30_000_000 else ', stated for 30M'})"
    )
    print(
        f"throughput: {', '.join(f'{label(r)} {t / 1e6:.2f}M rows/s' for r, t in throughput.items())} "
        f"(target >= {TARGET_ROWS_PER_S / 1e6:.1f}M rows/s)"
    )
    ratio_1m = summary.get(1_000_000, (0.0, 0.0, None))[2]
    print(f"naive/check at 1M rows (whole processes): {fmt(ratio_1m, '.2f')}x (target >= {TARGET_NAIVE_RATIO:.0f}x)")

    spot_rows = max((r for r in sizes if r <= 10_000_000), default=sizes[0])
    checks = results[spot_rows]["checks"]
    assert isinstance(checks, list)
    dks, pairs = spot_check(layout, spot_rows, checks[-1].stdout)
    print(
        f"spot check at {label(spot_rows)}: max|dKS|={dks:.3g} (target <= {TARGET_DKS:g}); "
        + ", ".join(f"{n} D={a:.6f} scipy={b:.6f}" for n, (a, b) in pairs.items())
    )
    ok = {
        "rss": summary[big][1] <= TARGET_RSS_MB and growth <= TARGET_RSS_GROWTH,
        "throughput": best >= TARGET_ROWS_PER_S,
        "naive": ratio_1m is not None and ratio_1m >= TARGET_NAIVE_RATIO,
        "ks": dks <= TARGET_DKS,
    }
    print(
        f"RESULT sizes={','.join(label(s) for s in sizes)} rss_{label(big)}={summary[big][1]:.0f}MB "
        f"rss_growth={growth:.2f}x rows_per_s_{label(big)}={throughput[big] / 1e6:.2f}M "
        f"naive_ratio_1M={fmt(ratio_1m, '.2f')}x max_dks={dks:.2g} "
        f"targets_missed={','.join(k for k, v in ok.items() if not v) or 'none'}"
    )
    return {rows: result["checks"][-1].stdout for rows, result in results.items()}  # type: ignore[index]


PUSHDOWN_TABLE = "window_rows"


def load_postgres(url: str, layout: Layout, rows: int) -> float:
    """COPY the window's files (one at a time, as CSV) into PUSHDOWN_TABLE; returns the seconds it took."""
    import io

    import psycopg
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    began = time.perf_counter()
    columns = ["ts timestamptz"] + [f"{n} double precision" for n in numeric_names()]
    columns += [f"{n} text" for n in categorical_names()]
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {PUSHDOWN_TABLE}")
        conn.execute(f"CREATE TABLE {PUSHDOWN_TABLE} ({', '.join(columns)})")
        for path in sorted(layout.window_dir(rows).glob("*.parquet")):
            buffer = io.BytesIO()
            pacsv.write_csv(pq.read_table(path), buffer)
            with conn.cursor().copy(f"COPY {PUSHDOWN_TABLE} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
                copy.write(buffer.getbuffer())
            del buffer
        conn.execute(f"ANALYZE {PUSHDOWN_TABLE}")
    return time.perf_counter() - began


def pushdown_config(layout: Layout, rows: int, url: str) -> Path:
    """The window's parquet config with its source replaced by the PostgreSQL table, counted by pushdown."""
    text = layout.config(rows).read_text()
    head, _, tail = text.partition("sources:\n")
    _, _, monitors = tail.partition("monitors:\n")
    source = (
        f'sources:\n  window:\n    kind: sql\n    url: "{url}"\n    table: {PUSHDOWN_TABLE}\n'
        "    timestamp_column: ts\n    pushdown: true\n"
    )
    path = layout.root / f"config_{label(rows)}_pushdown.yaml"
    path.write_text(head + source + "monitors:\n" + monitors)
    return path


def same_statistics(pushed: Path, streamed: Path) -> tuple[int, float]:
    """(statistics that differ, max relative Wasserstein difference) between two check reports."""
    a = json.loads(pushed.read_text())["monitors"][0]
    b = json.loads(streamed.read_text())["monitors"][0]
    differ, worst = int(a["rows"] != b["rows"]), 0.0
    for name, want in b["features"].items():
        for key, value in want.items():
            have = a["features"][name][key]
            if key == "wasserstein" and value is not None and have is not None:
                worst = max(worst, abs(have - value) / max(abs(value), 1e-300))
                differ += abs(have - value) > 1e-12 * abs(value)
            else:
                differ += have != value
    return differ, worst


def measure_pushdown(layout: Layout, rows: int, parquet_report: Path) -> None:
    """Load the window into PostgreSQL, time one pushdown check and compare it with the parquet check."""
    sys.path.insert(0, str(ROOT / "tests"))
    from servers import postgres_server  # the tests' throwaway server (initdb, loopback, free port)

    with postgres_server() as url:
        loaded = load_postgres(url, layout, rows)
        print(f"pushdown: loaded {label(rows)} rows into PostgreSQL in {loaded:.0f}s (COPY)", flush=True)
        config = pushdown_config(layout, rows, url)
        argv = [sys.executable, "-m", "driftwatch", "check", "-c", str(config), "--monitor", MONITOR]
        argv += ["--at", window_end(layout, rows).isoformat(), "--format", "json"]
        logs = layout.root / "logs"
        child = run_child(argv, logs / f"pushdown_{label(rows)}.json", logs / f"pushdown_{label(rows)}.err")
    if child.code not in (0, 1):
        raise SystemExit(
            f"pushdown check failed (exit {child.code}):\n{(logs / f'pushdown_{label(rows)}.err').read_text()}"
        )
    differ, worst = same_statistics(child.stdout, parquet_report)
    streamed = json.loads(parquet_report.read_text())["monitors"][0]["rows"]["current"]
    print(
        f"pushdown {label(rows)}: check {child.wall:.2f}s ({rows / child.wall / 1e6:.2f}M rows/s), daemon peak RSS "
        f"{child.rss_mb:.0f} MB (target <= {TARGET_PUSHDOWN_RSS_MB:.0f} MB); against the parquet check of the same "
        f"{streamed:,} rows: {differ} statistics differ, max relative |dWasserstein| {worst:.2g}"
    )
    print(
        f"RESULT pushdown rows={label(rows)} wall={child.wall:.1f}s rows_per_s={rows / child.wall / 1e6:.2f}M "
        f"rss={child.rss_mb:.0f}MB differ={differ} max_rel_dw={worst:.2g} "
        f"targets_missed={'rss' if child.rss_mb > TARGET_PUSHDOWN_RSS_MB else 'none'}"
    )


if __name__ == "__main__":
    main()
