"""False-alarm and detection rates of driftwatch's default Policy, by batch size.

The reference is `--reference-rows` rows x `--features` independent standard normal features, profiled
once with `driftwatch.build_profile`. For each batch size N:

- false alarms: `--runs` fresh batches from the SAME distribution, each compared under `Policy()` and
  assessed by the default data-health signals (`HealthPolicy()`, freshness at 50%/90% of a 1h window);
  a run is a false alarm when any feature reaches warning or above, or any health signal does (target:
  <= 1% of runs). So that every signal is exercised under the null, the reference and every batch have
  `--missing-share` missing values (each value independently), a null batch has Poisson(N) rows whose
  timestamps are uniform over the hour before the window's end, and the volume signal compares it with the
  rows of the previous null batches of that size (up to 10);
- detection (N >= 10,000 only, `--detection-runs` runs each): every feature's mean shifted by 0.3 sigma,
  a hit when the report reaches at least warning (target >= 95%); and shifted by 0.6 sigma, a hit when it
  reaches critical (target >= 95%). The share of feature-runs at that level is printed too, since the
  report's own severity can also come from the drift share.

Each run draws from its own generator seeded by (seed, N, run, scenario), so the output is reproducible.
A size stops early once `--max-seconds-per-size` have passed (runs of the three scenarios are
interleaved, so an early stop keeps their counts balanced) and the table shows how many runs it did.

Run: .venv/bin/python benchmarks/bench_false_alarms.py [--runs 200] [--sizes 100,1000,10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

import driftwatch
from driftwatch import Severity
from driftwatch.core.health import HealthPolicy, assess, reference_missing_shares
from driftwatch.core.policy import Level

DETECT_MIN_ROWS = 10_000
WINDOW_SECONDS = 3600.0
#: The defaults of a monitor with `window: 1h` (config/health.py: freshness at 50% and 90% of the window).
HEALTH = HealthPolicy(freshness=Level(0.5 * WINDOW_SECONDS, 0.9 * WINDOW_SECONDS))
END = datetime(2026, 1, 1, tzinfo=UTC)
#: scenario name -> (mean shift in sigmas, severity that counts as a hit)
SCENARIOS = {"null": (0.0, Severity.WARNING), "warn@0.3": (0.3, Severity.WARNING), "crit@0.6": (0.6, Severity.CRITICAL)}


@dataclass
class Tally:
    """Outcomes of one scenario at one batch size."""

    runs: int = 0
    hits: int = 0
    drift_hits: int = 0
    health_hits: int = 0
    history: deque[int] = field(default_factory=lambda: deque(maxlen=10))
    feature_runs: int = 0
    feature_hits: int = 0
    seconds: list[float] = field(default_factory=list)

    def share(self) -> float:
        return self.hits / self.runs if self.runs else float("nan")

    def feature_share(self) -> float:
        return self.feature_hits / self.feature_runs if self.feature_runs else float("nan")


def batch(
    rng: np.random.Generator, rows: int, features: list[str], shift: float, missing: float
) -> dict[str, np.ndarray]:
    """A batch of independent normal features, every mean shifted by `shift` sigmas, a `missing` share NaN."""
    data = {}
    for name in features:
        values = rng.standard_normal(rows) + shift
        values[rng.random(rows) < missing] = np.nan
        data[name] = values
    return data


def run_once(
    profile: driftwatch.Profile,
    features: list[str],
    rows: int,
    shift: float,
    level: Severity,
    seed: tuple[int, ...],
    tally: Tally,
    missing: float,
) -> None:
    """Compare one fresh batch and record whether the report (and each feature) reached `level`; a null batch
    (shift 0) has Poisson(rows) rows and its data health counts too."""
    rng = np.random.default_rng(seed)
    null = shift == 0.0
    size = int(rng.poisson(rows)) if null else rows
    data = batch(rng, size, features, shift, missing)
    start = time.perf_counter()
    report = driftwatch.compare(profile, data)
    tally.seconds.append(time.perf_counter() - start)
    drifted = report.severity >= level
    unhealthy = False
    if null:
        newest = END - timedelta(seconds=float(rng.uniform(0, WINDOW_SECONDS, size).min())) if size else None
        health = assess(
            HEALTH,
            rows=size,
            end=END,
            features=[r.stats for r in report.features],
            reference_missing=reference_missing_shares(profile.features),
            history=list(reversed(tally.history)),
            newest=newest,
        )
        unhealthy = health.severity >= level
        tally.history.append(size)
    tally.runs += 1
    tally.hits += drifted or unhealthy
    tally.drift_hits += drifted
    tally.health_hits += unhealthy
    tally.feature_runs += len(report.features)
    tally.feature_hits += sum(r.severity >= level for r in report.features)


def measure_size(
    profile: driftwatch.Profile, features: list[str], rows: int, args: argparse.Namespace
) -> dict[str, Tally]:
    """All scenarios at one batch size, interleaved, until the runs are done or the time is up."""
    tallies = {name: Tally() for name in SCENARIOS}
    deadline = time.perf_counter() + args.max_seconds_per_size
    for run in range(args.runs):
        if time.perf_counter() > deadline:
            break
        for index, (name, (shift, level)) in enumerate(SCENARIOS.items()):
            if name != "null" and (rows < DETECT_MIN_ROWS or run >= args.detection_runs):
                continue
            seed = (args.seed, rows, run, index)
            run_once(profile, features, rows, shift, level, seed, tallies[name], args.missing_share)
    return tallies


def fmt_share(tally: Tally, with_features: bool = False, with_causes: bool = False) -> str:
    if not tally.runs:
        return "-"
    text = f"{tally.share():.1%} ({tally.hits}/{tally.runs})"
    if with_causes:
        text += f" d{tally.drift_hits} h{tally.health_hits}"
    return f"{text} feat {tally.feature_share():.1%}" if with_features else text


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="null batches per size")
    parser.add_argument("--detection-runs", type=int, default=50, help="shifted batches per size and shift")
    parser.add_argument("--sizes", default="100,1000,10000,100000,1000000", help="comma-separated batch sizes")
    parser.add_argument("--reference-rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds-per-size", type=float, default=120.0)
    parser.add_argument("--missing-share", type=float, default=0.02, help="missing values in reference and batches")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    features = [f"x{i:02d}" for i in range(args.features)]
    start = time.perf_counter()
    reference = batch(np.random.default_rng((args.seed, 0)), args.reference_rows, features, 0.0, args.missing_share)
    profile = driftwatch.build_profile(reference, numeric=features)
    del reference
    print(
        f"reference: {args.reference_rows:,} rows x {args.features} N(0,1) features, profiled in "
        f"{time.perf_counter() - start:.1f}s, {args.missing_share:.0%} missing; policy: default Policy() and "
        f"HealthPolicy(); up to {args.max_seconds_per_size:g}s/size"
    )
    header = (
        f"{'N':>9} {'runs':>5}  {'false alarms (<=1%)':<30}{'warn@0.3sd (>=95%)':<34}"
        f"{'crit@0.6sd (>=95%)':<34}{'median s/run':>12}"
    )
    print(header)
    worst_false, worst_warn, worst_crit = 0.0, 1.0, 1.0
    for rows in sizes:
        t = measure_size(profile, features, rows, args)
        null, warn, crit = t["null"], t["warn@0.3"], t["crit@0.6"]
        print(
            f"{rows:>9,} {null.runs:>5}  {fmt_share(null, with_causes=True):<30}{fmt_share(warn, True):<34}"
            f"{fmt_share(crit, True):<34}{statistics.median(null.seconds):>12.3f}",
            flush=True,
        )
        worst_false = max(worst_false, null.share())
        if warn.runs:
            worst_warn = min(worst_warn, warn.share())
        if crit.runs:
            worst_crit = min(worst_crit, crit.share())
    print(
        f"RESULT false_alarm_max={worst_false:.1%} warn_detect_min={worst_warn:.1%} "
        f"crit_detect_min={worst_crit:.1%} (targets <=1%, >=95%, >=95%)"
    )


if __name__ == "__main__":
    main()
