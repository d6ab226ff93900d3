"""Speed and memory of driftwatch's per-batch statistics against a naive scipy baseline and a sort floor.

Generates (seeded) a reference and a current batch of ROWS rows each: 20 numeric features (some shifted
or scaled, a few with NaN and inf, a couple with heavy ties) and 5 categorical ones (object arrays of
short strings, 5-50 levels, one with a category the reference never saw). Then prints medians over
`--repeats` runs, all measured in this one process so that the ratios compare like with like:

- profile: `driftwatch.build_profile(reference, ...)` (done once per reference in production);
- per_batch: `driftwatch.compare(profile, current)` with the default thread pool;
- per_batch_1t: the same on the calling thread (`driftwatch.core.compare`, no executor)
  (threading efficiency = per_batch_1t / per_batch);
- naive: what a user writes by hand, one thread: per numeric column `scipy.stats.ks_2samp` on the
  finite values and PSI from `np.histogram` over reference-quantile edges (-inf/+inf outer edges); per
  categorical column `scipy.stats.chi2_contingency` of the 2xK table of `np.unique` counts;
- floor: `np.sort` of the current batch's finite numeric values (one thread), a lower bound for any
  exact KS that must order the batch.

Targets: naive / per_batch >= 8x; per_batch / floor <= 3x; peak memory allocated by one `compare`
(measured with tracemalloc in a separate, untimed pass) <= 2x the input arrays, where "inputs" are
the reference and current numeric float64 arrays plus the 8-byte pointers of the categorical object
arrays (the ratio over the numeric arrays alone is printed too). A spot check prints the largest
|KS_driftwatch - KS_scipy| over the numeric features (should be <= 1e-12).

Run: .venv/bin/python benchmarks/bench_stats.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.stats

import driftwatch

BINS = 10  # driftwatch's default ProfileSettings.bins, used by the naive PSI as well
EPSILON = 1e-4  # driftwatch's default PSI floor on shares


@dataclass
class Data:
    """The benchmark's columns: reference and current batch as column -> numpy array."""

    reference: dict[str, np.ndarray]
    current: dict[str, np.ndarray]
    numeric: list[str]
    categorical: list[str]


def numeric_pair(rng: np.random.Generator, i: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current values of numeric feature i; the kind of drift depends on i."""
    ref = rng.standard_normal(rows)
    cur = rng.standard_normal(rows)
    kind = i % 10
    if kind == 1:  # shifted mean
        cur += 0.05 * (1 + i)
    elif kind == 2:  # scaled
        cur *= 1.3
    elif kind == 3:  # NaN and inf in both
        for values in (ref, cur):
            values[rng.random(rows) < 0.02] = np.nan
            values[rng.random(rows) < 0.005] = np.inf
            values[rng.random(rows) < 0.005] = -np.inf
    elif kind == 4:  # heavy ties: rounded values
        ref, cur = np.round(ref, 1), np.round(cur + 0.02, 1)
    elif kind == 5:  # heavy ties: many zeros, then a skewed tail
        ref = np.where(rng.random(rows) < 0.6, 0.0, rng.exponential(1.0, rows))
        cur = np.where(rng.random(rows) < 0.5, 0.0, rng.exponential(1.2, rows))
    elif kind == 6:  # log-normal, a little NaN in the batch only
        ref, cur = np.exp(ref), np.exp(cur)
        cur[rng.random(rows) < 0.01] = np.nan
    elif kind == 7:  # uniform, unchanged
        ref, cur = rng.random(rows), rng.random(rows)
    return ref, cur


def categorical_pair(rng: np.random.Generator, i: int, rows: int, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current object arrays of short strings; feature 0 gains a new category."""
    labels = np.array([f"c{i}_{k:02d}" for k in range(levels)], dtype=object)
    weights = rng.dirichlet(np.ones(levels))
    ref = labels[rng.choice(levels, size=rows, p=weights)]
    if i == 1:  # shifted shares
        weights = rng.dirichlet(np.ones(levels))
    cur = labels[rng.choice(levels, size=rows, p=weights)]
    if i == 0:
        cur[rng.random(rows) < 0.01] = "brand_new"
    return ref, cur


def make_data(rows: int, n_numeric: int, n_categorical: int, seed: int) -> Data:
    """Seeded reference and current batch (see the module docstring)."""
    rng = np.random.default_rng(seed)
    data = Data({}, {}, [f"x{i:02d}" for i in range(n_numeric)], [f"cat{i}" for i in range(n_categorical)])
    for i, name in enumerate(data.numeric):
        data.reference[name], data.current[name] = numeric_pair(rng, i, rows)
    level_choices = np.linspace(5, 50, max(n_categorical, 1)).astype(int)
    for i, name in enumerate(data.categorical):
        data.reference[name], data.current[name] = categorical_pair(rng, i, rows, int(level_choices[i]))
    return data


def finite(values: np.ndarray) -> np.ndarray:
    """The finite values of a numeric column (a copy)."""
    return values[np.isfinite(values)]


def naive_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """PSI over reference-quantile bins with np.histogram, shares floored at EPSILON."""
    inner = np.unique(np.quantile(ref, np.arange(1, BINS) / BINS))
    edges = np.concatenate(([-np.inf], inner, [np.inf]))
    r = np.maximum(np.histogram(ref, edges)[0] / ref.size, EPSILON)
    c = np.maximum(np.histogram(cur, edges)[0] / cur.size, EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def naive_chi2(ref: np.ndarray, cur: np.ndarray) -> float:
    """Chi-square statistic of the 2xK table of category counts from np.unique."""
    ref_levels, ref_counts = np.unique(ref, return_counts=True)
    cur_levels, cur_counts = np.unique(cur, return_counts=True)
    union = np.union1d(ref_levels, cur_levels)
    table = np.zeros((2, union.size))
    table[0, np.searchsorted(union, ref_levels)] = ref_counts
    table[1, np.searchsorted(union, cur_levels)] = cur_counts
    return float(scipy.stats.chi2_contingency(table).statistic)


def naive_pass(data: Data) -> dict[str, dict[str, float]]:
    """Every statistic computed the way a user writes it by hand; returns name -> {stat: value}."""
    out: dict[str, dict[str, float]] = {}
    for name in data.numeric:
        ref, cur = finite(data.reference[name]), finite(data.current[name])
        ks = scipy.stats.ks_2samp(ref, cur)
        out[name] = {"ks": float(ks.statistic), "ks_p": float(ks.pvalue), "psi": naive_psi(ref, cur)}
    for name in data.categorical:
        out[name] = {"chi2": naive_chi2(data.reference[name], data.current[name])}
    return out


def floor_pass(finite_current: list[np.ndarray]) -> None:
    """The floor: one sort of each numeric column of the batch."""
    for values in finite_current:
        np.sort(values)


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Median wall time of `repeats` calls of fn, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes traced by tracemalloc during one call of fn (numpy reports its buffers to it)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def input_bytes(data: Data) -> tuple[int, int]:
    """Bytes of reference + current: (numeric float64 + categorical pointers, numeric only)."""
    numeric = sum(data.reference[n].nbytes + data.current[n].nbytes for n in data.numeric)
    pointers = sum(data.reference[n].nbytes + data.current[n].nbytes for n in data.categorical)
    return numeric + pointers, numeric


def spot_check(report: driftwatch.Report, naive: dict[str, dict[str, float]], data: Data) -> dict[str, float]:
    """Largest differences between driftwatch's statistics and the naive ones."""
    stats = {name: report.feature(name).stats for name in data.numeric + data.categorical}
    return {
        "ks": max(abs((stats[n].ks_statistic or 0.0) - naive[n]["ks"]) for n in data.numeric),
        "psi": max(abs((stats[n].psi or 0.0) - naive[n]["psi"]) for n in data.numeric),
        "chi2_rel": max(
            abs((stats[n].chi2_statistic or 0.0) - naive[n]["chi2"]) / max(naive[n]["chi2"], 1e-300)
            for n in data.categorical
        ),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the reference and of the batch")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median)")
    parser.add_argument("--numeric", type=int, default=20, help="numeric features")
    parser.add_argument("--categorical", type=int, default=5, help="categorical features")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    data = make_data(args.rows, args.numeric, args.categorical, args.seed)
    print(
        f"data: {args.rows:,} rows x {args.numeric} numeric + {args.categorical} categorical, "
        f"reference and batch, generated in {time.perf_counter() - start:.1f}s; repeats={args.repeats}"
    )

    def build() -> driftwatch.Profile:
        return driftwatch.build_profile(data.reference, numeric=data.numeric, categorical=data.categorical)

    t_profile, profile = median_time(build, args.repeats)
    t_batch, report = median_time(lambda: driftwatch.compare(profile, data.current), args.repeats)
    t_batch_1t, _ = median_time(lambda: driftwatch.core.compare(profile, data.current), args.repeats)
    t_naive, naive = median_time(lambda: naive_pass(data), args.repeats)
    finite_current = [finite(data.current[name]) for name in data.numeric]
    t_floor, _ = median_time(lambda: floor_pass(finite_current), args.repeats)
    peak = peak_memory(lambda: driftwatch.compare(profile, data.current))
    with_pointers, numeric_only = input_bytes(data)
    diffs = spot_check(report, naive, data)

    rows = [
        ("profile (build_profile, once)", t_profile, ""),
        ("per_batch (compare, shared pool)", t_batch, ""),
        ("per_batch_1t (core compare, one thread)", t_batch_1t, f"threading speedup {t_batch_1t / t_batch:.2f}x"),
        ("naive (ks_2samp + histogram PSI + chi2)", t_naive, f"{t_naive / t_batch:.1f}x per_batch (target >= 8x)"),
        ("floor (np.sort of batch, 1 thread)", t_floor, f"per_batch {t_batch / t_floor:.2f}x floor (target <= 3x)"),
    ]
    print(f"{'step':<42}{'median s':>10}  note")
    for label, seconds, note in rows:
        print(f"{label:<42}{seconds:>10.3f}  {note}")
    print(
        f"peak memory of one compare: {peak / 2**20:,.0f} MiB = {peak / with_pointers:.2f}x inputs "
        f"(ref+cur numeric float64 + categorical pointers, {with_pointers / 2**20:,.0f} MiB; target <= 2x) "
        f"= {peak / numeric_only:.2f}x numeric arrays only ({numeric_only / 2**20:,.0f} MiB)"
    )
    print(
        f"spot check vs naive: max|dKS|={diffs['ks']:.3g} (target <= 1e-12), "
        f"max|dPSI|={diffs['psi']:.3g}, max rel|dchi2|={diffs['chi2_rel']:.3g}; "
        f"report severity={report.severity.label}, drift_share={report.drift_share:.2f}"
    )
    print(
        f"RESULT per_batch={t_batch:.2f}s naive={t_naive:.1f}s floor={t_floor:.2f}s "
        f"naive_ratio={t_naive / t_batch:.1f}x floor_ratio={t_batch / t_floor:.1f}x "
        f"peak_mem={peak / with_pointers:.1f}x_inputs"
    )


if __name__ == "__main__":
    main()
