"""Drift statistics of one feature: a reference profile and the batch's values in, `FeatureStats` out.

Numeric features cost one sort of the batch: PSI and Jensen-Shannon counts come from `searchsorted` of
the bin edges into it. KS (exactly scipy's, ties included) and Wasserstein come, by batch size m
against the reference's n:
- m at least `SMALL_BATCH_RATIO` times smaller: binary searches of the batch's distinct values into
  the reference and the profile's prefix sums (`NumericProfile.integral`): O(m log n);
- larger: the profile's `ReferenceGrid` (distinct reference values at ~16k evenly spaced ranks, with
  counts and CDF integrals between them). The batch is counted at the grid points, where F_R - F_C is
  exact; between two points both CDFs are monotone, so the counts at the ends bound F_R - F_C inside,
  and where it keeps one sign its integral has a closed form (sums of distances to the interval's end).
  Only the intervals whose bound exceeds the grid's D, or where the sign may change, have their
  reference and batch values merged (typically a few percent of the data, more when the two samples
  are close): no pass over the whole reference;
- where those intervals hold more than `GRID_MERGE_MAX_SHARE` of the values (or without a grid):
  one linear merge with the pre-sorted reference (a stable argsort of the two concatenated runs).

KS p-value, by sample sizes n (reference) and m (batch):
- both <= 10,000: scipy's exact p-value (scipy's own `method="auto"` choice; where scipy's exact
  computation gives up, scipy falls back to `kstwo` as below, and so does this);
- otherwise, while round(n*m/(n+m)) <= 10,000: `scipy.stats.kstwo.sf(D, round(n*m/(n+m)))`, exactly
  scipy's asymptotic path (a few milliseconds at that size);
- beyond: the limiting Kolmogorov distribution `kstwobign.sf(sqrt(n*m/(n+m)) * D)`, within 0.3% of
  scipy's p-value for p >= 1e-6 at n*m/(n+m) = 500k, where `kstwo.sf` would cost up to 0.6 s a feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.stats
from scipy.special import rel_entr
from scipy.stats._stats_py import _attempt_exact_2kssamp  # scipy's exact KS p-value (private, stable since 1.5)

from driftwatch.core.profile import CategoricalProfile, NumericProfile, ReferenceGrid, bin_counts
from driftwatch.core.report import FeatureStats
from driftwatch.core.values import CategoryCounts, category_counts, sorted_finite_values

#: Largest sample size for which scipy computes the exact KS p-value (its MAX_AUTO_N).
KS_EXACT_MAX = 10_000
#: Largest effective size n*m/(n+m) for which `kstwo.sf` is used rather than its limit.
KS_KSTWO_MAX = 10_000


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, epsilon: float = 1e-4) -> float:
    """Population stability index of two count (or share) vectors over the same bins.

    Shares below `epsilon` are raised to `epsilon`; PSI = sum((c - r) * ln(c / r)).
    """
    r = _floored_shares(reference, epsilon)
    c = _floored_shares(current, epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def _floored_shares(counts: npt.ArrayLike, epsilon: float) -> npt.NDArray[np.float64]:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    shares = values / total if total > 0 else np.zeros_like(values)
    return np.maximum(shares, epsilon)


def js_distance(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two count vectors over the same bins."""
    p = np.asarray(reference, dtype=np.float64)
    q = np.asarray(current, dtype=np.float64)
    p = p / p.sum()
    q = q / q.sum()
    m = (p + q) / 2
    divergence = (np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))) / 2
    return float(math.sqrt(max(divergence, 0.0) / math.log(2)))


def ks_pvalue(statistic: float, n: int, m: int) -> float:
    """Two-sided two-sample KS p-value of `statistic` for sample sizes n and m (see the module docstring)."""
    effective = n * m / (n + m)
    if max(n, m) <= KS_EXACT_MAX:
        # scipy's exact computation, called directly: `ks_2samp` would re-sort both samples and signal a
        # failed exact attempt with a warning, and warning filters are not thread-safe.
        success, _, prob = _attempt_exact_2kssamp(n, m, math.gcd(n, m), statistic, "two-sided")
        if success:
            return float(np.clip(prob, 0.0, 1.0))
    if round(effective) <= KS_KSTWO_MAX:
        return float(np.clip(scipy.stats.kstwo.sf(statistic, round(effective)), 0.0, 1.0))
    return float(np.clip(scipy.stats.kstwobign.sf(math.sqrt(effective) * statistic), 0.0, 1.0))


def ks_and_wasserstein(
    reference: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    reference_integral: npt.NDArray[np.float64] | None = None,
    grid: ReferenceGrid | None = None,
) -> tuple[float, float]:
    """KS statistic (as `scipy.stats.ks_2samp`) and Wasserstein-1 distance of two SORTED samples.

    A batch much smaller than the reference (`SMALL_BATCH_RATIO`) costs O(m log n): binary searches of
    its distinct values into the reference, and, given `reference_integral` (see
    `NumericProfile.integral`), the Wasserstein integral from prefix sums. A larger batch, given the
    reference's `grid` (see `NumericProfile.grid`), takes `_ks_and_wasserstein_by_grid`; otherwise one
    linear merge.
    """
    n, m = reference.size, current.size
    if m * SMALL_BATCH_RATIO <= n:
        statistic = _ks_by_search(reference, current)
        if reference_integral is not None:
            return statistic, _wasserstein_by_prefix(reference, current, reference_integral)
        return statistic, _ks_and_wasserstein_by_merge(reference, current)[1]
    if grid is not None:
        return _ks_and_wasserstein_by_grid(reference, current, grid)
    return _ks_and_wasserstein_by_merge(reference, current)


#: A batch of m values against a reference of n takes the O(m log n) path when m * ratio <= n.
SMALL_BATCH_RATIO = 16

#: The grid path merges the values of the intervals it cannot bound while they are at most this share of
#: n + m, and falls back to the full merge beyond.
GRID_MERGE_MAX_SHARE = 0.25


def _ks_and_wasserstein_by_grid(
    reference: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    grid: ReferenceGrid,
    max_share: float | None = None,
) -> tuple[float, float]:
    """KS and Wasserstein of two sorted samples, merging only the values of the grid intervals that need it.

    F_R - F_C is evaluated exactly at the grid points (reference values, where scipy evaluates too).
    Inside an interval between two points both CDFs are monotone, so the counts at its ends bound it
    (`_GridCounts`): only intervals whose bound exceeds the grid's D can raise D, and only intervals
    where F_R - F_C may change sign need more than the closed form of the Wasserstein integral
    (`_bounded_wasserstein`). Those are merged (`_merge_intervals`), unless their values exceed
    `max_share` (default `GRID_MERGE_MAX_SHARE`) of n + m: then the full merge is cheaper.
    """
    n, m = reference.size, current.size
    counts = _GridCounts.of(grid, current, n)
    chosen = counts.unbounded(n, m)
    share = GRID_MERGE_MAX_SHARE if max_share is None else max_share
    if counts.size_of(chosen) > share * (n + m):
        return _ks_and_wasserstein_by_merge(reference, current)
    high, low, inside = _merge_intervals(reference, current, grid, counts, chosen)
    statistic = _ks_from_extremes(max(counts.high, high), min(counts.low, low))
    return statistic, _bounded_wasserstein(current, grid, counts, ~chosen, n) + inside


@dataclass(frozen=True)
class _GridCounts:
    """A sorted batch's counts at a `ReferenceGrid`'s points, and on the open intervals between them.

    Inside interval k, (points[k], points[k + 1]), the reference count runs from `ref_lo[k]` to
    `ref_hi[k]` and the batch count from `cur_lo[k]` to `cur_hi[k]`; `cur_upto` counts the batch values
    <= each point. `high` and `low` are the largest and smallest F_R - F_C (scipy's float arithmetic)
    at the points and below the first point (where F_R = 0).
    """

    ref_lo: npt.NDArray[np.int64]
    ref_hi: npt.NDArray[np.int64]
    cur_lo: npt.NDArray[np.int64]
    cur_hi: npt.NDArray[np.int64]
    cur_upto: npt.NDArray[np.int64]
    high: float
    low: float

    @classmethod
    def of(cls, grid: ReferenceGrid, current: npt.NDArray[np.float64], n: int) -> _GridCounts:
        """Count the batch at the grid points (a binary search per point, a second where the batch holds it)."""
        m = current.size
        cur_below = np.searchsorted(current, grid.points, side="left")
        cur_upto = cur_below.copy()
        held = np.flatnonzero(current[np.minimum(cur_below, m - 1)] == grid.points)
        cur_upto[held] = np.searchsorted(current, grid.points[held], side="right")
        differences = grid.upto / n - cur_upto / m
        below_first = -(int(cur_below[0]) / m)
        return cls(
            grid.upto[:-1],
            grid.below[1:],
            cur_upto[:-1],
            cur_below[1:],
            cur_upto,
            float(np.max(differences)),
            min(float(np.min(differences)), below_first),
        )

    def unbounded(self, n: int, m: int) -> npt.NDArray[np.bool_]:
        """Intervals that may hold a larger |F_R - F_C| than the grid's D, or a sign change of F_R - F_C."""
        statistic = _ks_from_extremes(self.high, self.low)
        may_exceed = (self.ref_hi / n - self.cur_lo / m > statistic) | (self.cur_hi / m - self.ref_lo / n > statistic)
        one_sign = (self.ref_lo * m >= self.cur_hi * n) | (self.cur_lo * n >= self.ref_hi * m)
        occupied = (self.ref_hi > self.ref_lo) | (self.cur_hi > self.cur_lo)
        return (may_exceed | ~one_sign) & occupied

    def size_of(self, chosen: npt.NDArray[np.bool_]) -> int:
        """Number of reference and batch values inside the `chosen` intervals."""
        return int(np.sum(self.ref_hi - self.ref_lo + self.cur_hi - self.cur_lo, where=chosen))


def _bounded_wasserstein(
    current: npt.NDArray[np.float64],
    grid: ReferenceGrid,
    counts: _GridCounts,
    bounded: npt.NDArray[np.bool_],
    n: int,
) -> float:
    """The Wasserstein integral over the `bounded` intervals (F_R - F_C of one sign) and outside the grid.

    Over (a, b), n * the integral of F_R is ref_lo * (b - a) + the sum of b - x over the reference values
    x inside (`grid.gap_sums`), and likewise m * that of F_C; below the first point F_R = 0, above the
    last F_R = 1, and the integrals of F_C there are sums of distances of batch values to that point.
    """
    m = current.size
    widths = np.diff(grid.points)
    batch_sums = _distance_sums(current, grid.points, counts.cur_upto)
    reference_part = (grid.gap_sums + counts.ref_lo * widths) * m  # n m * integral of F_R
    batch_part = (batch_sums[1:-1] + counts.cur_lo * widths) * n  # n m * integral of F_C
    inner = float(np.sum(np.abs(reference_part - batch_part), where=bounded))
    return (inner / n + float(batch_sums[0]) + float(batch_sums[-1])) / m


def _distance_sums(
    current: npt.NDArray[np.float64], points: npt.NDArray[np.float64], upto: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """Per piece of the sorted batch cut after `upto` counts: the sum of its values' distances to a point.

    Piece 0 (values <= points[0]) and piece k (values in (points[k - 1], points[k]]) measure to
    points[k]; the last piece (values > points[-1]) to points[-1]. Each sum is size * (point - a) minus the
    sum of (value - a) for the batch's median a: rounding scales with the values' spread, not their offset
    (and a constant batch gives exact zeros).
    """
    m = current.size
    anchor = float(current[m // 2])
    sizes = np.diff(upto, prepend=0, append=m)
    starts = np.concatenate(([0], upto))
    inside = int(np.searchsorted(starts, m))  # pieces from here on are empty
    sums: npt.NDArray[np.float64] = (np.append(points, points[-1]) - anchor) * sizes
    sums[:inside] -= np.add.reduceat(current - anchor, starts[:inside])
    sums[sizes == 0] = 0.0
    sums[-1] = -sums[-1]
    return sums


def _merge_intervals(
    reference: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
    grid: ReferenceGrid,
    counts: _GridCounts,
    chosen: npt.NDArray[np.bool_],
) -> tuple[float, float, float]:
    """Largest and smallest F_R - F_C, and the Wasserstein integral, over the `chosen` grid intervals.

    Their reference and batch values are gathered (each side stays one sorted run, the intervals being
    disjoint and ordered) and merged by one stable argsort, reference first, as in
    `_ks_and_wasserstein_by_merge`; the counts after each merged value are offset per interval to the
    global ones, and KS reads them at tie-group ends (an interval's last value ends a group).
    """
    n, m = reference.size, current.size
    ref_lo, ref_hi = counts.ref_lo[chosen], counts.ref_hi[chosen]
    cur_lo, cur_hi = counts.cur_lo[chosen], counts.cur_hi[chosen]
    if ref_lo.size == 0:
        return -math.inf, math.inf, 0.0
    ref_sizes, cur_sizes = ref_hi - ref_lo, cur_hi - cur_lo
    sizes = ref_sizes + cur_sizes
    buffer = np.concatenate((_gather(reference, ref_lo, ref_sizes), _gather(current, cur_lo, cur_sizes)))
    order = np.argsort(buffer, kind="stable")
    merged = buffer[order]
    ref_count = np.cumsum(order < int(np.sum(ref_sizes)))
    cur_count = np.arange(1, merged.size + 1) - ref_count
    ref_count += np.repeat(ref_lo - _starts(ref_sizes), sizes)
    cur_count += np.repeat(cur_lo - _starts(cur_sizes), sizes)
    group_ends = np.append(merged[1:] != merged[:-1], True)
    differences = ref_count[group_ends] / n - cur_count[group_ends] / m
    # Wasserstein: n m |F_R - F_C| right of each merged value times the gap to the next value (for an
    # interval's last value, to the interval's right end), plus each interval's start up to its first value;
    # exact integers as floats (a float dot product is SIMD-fast, a mixed integer one is not)
    starts = _starts(sizes)
    following = np.append(merged[1:], 0.0)
    following[starts + sizes - 1] = grid.points[1:][chosen]
    scaled = np.abs(ref_count * m - cur_count * n).astype(np.float64)
    inside = _dot(scaled, following - merged)
    start_scaled = np.abs(ref_lo * m - cur_lo * n).astype(np.float64)
    inside += _dot(start_scaled, merged[starts] - grid.points[:-1][chosen])
    return float(np.max(differences)), float(np.min(differences)), inside / n / m


def _dot(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """The dot product of two float vectors on the calling thread only.

    `np.dot` hands it to OpenBLAS, whose worker threads then spin-wait and take the CPU from the other features'
    threads (per-batch time measured 1.4x longer on two cores); `einsum` runs numpy's own SIMD loop instead.
    """
    return float(np.einsum("i,i->", a, b))


def _starts(sizes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Where each of consecutive pieces of these sizes starts."""
    return np.cumsum(sizes) - sizes


def _gather(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The slices values[starts[k] : starts[k] + sizes[k]], concatenated."""
    positions = np.arange(int(np.sum(sizes))) + np.repeat(starts - _starts(sizes), sizes)
    gathered: npt.NDArray[np.float64] = values[positions]
    return gathered


def _ks_and_wasserstein_by_merge(
    reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]
) -> tuple[float, float]:
    """KS and Wasserstein from one merge of the two sorted samples (linear: timsort merges two runs).

    The reference goes first, so a stable sort puts equal values reference-before-current and the
    counts at a tie group's last position are the right-continuous CDFs that scipy evaluates. After i
    reference and j batch values, F_R - F_C = e / (n*m) with e = i*m - j*n, an integer that grows by m
    at a reference value and falls by n at a batch value: one cumulative sum (exact in float64 below
    2**53) gives it everywhere. KS takes its extremes at tie-group ends and computes D in float from
    the counts there, as scipy does; Wasserstein is the sum of |e| times the gaps (zero inside a group).
    """
    n, m = reference.size, current.size
    buffer = np.concatenate((reference, current))
    order = np.argsort(buffer, kind="stable")
    merged = buffer[order]
    from_current = order >= n
    del order
    scaled = np.multiply(from_current, -float(n + m), out=buffer)  # reuses the concatenation's memory
    del from_current
    scaled += m
    np.cumsum(scaled, out=scaled)  # e after each merged position; e[-1] == 0
    group_ends = merged[1:] != merged[:-1]  # tie-group ends (the last position is one too)
    high = float(np.max(scaled[:-1], where=group_ends, initial=0.0))
    low = float(np.min(scaled[:-1], where=group_ends, initial=0.0))
    del group_ends
    statistic = _ks_from_extremes(_cdf_difference(scaled, high, n, m), _cdf_difference(scaled, low, n, m))
    gaps = np.diff(merged)
    del merged
    np.abs(scaled, out=scaled)
    wasserstein = _dot(scaled[:-1], gaps) / n / m
    return statistic, wasserstein


def _cdf_difference(scaled: npt.NDArray[np.float64], value: float, n: int, m: int) -> float:
    """F_R - F_C in scipy's float arithmetic (i/n - j/m) at the first position where e equals `value`."""
    position = int(np.argmax(scaled == value)) + 1 if value != 0 else 0  # e == 0 gives 0.0 exactly
    if position == 0:
        return 0.0
    j = (position * m - round(value)) // (n + m)
    return (position - j) / n - j / m


def _ks_from_extremes(max_diff: float, min_diff: float) -> float:
    """scipy's D from the largest and smallest F_R - F_C: max(maxS, clip(-minS, 0, 1))."""
    return max(max_diff, min(max(-min_diff, 0.0), 1.0))


def _current_groups(current: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The distinct values of a sorted sample and the number of values <= each (its tie group's end + 1)."""
    ends = np.append(np.flatnonzero(current[1:] != current[:-1]), current.size - 1)
    return current[ends], ends + 1


def _ks_by_search(reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]) -> float:
    """KS statistic by binary search of the batch's distinct values into the sorted reference.

    F_R - F_C only rises at reference values and only falls at batch values, so its minimum over the
    pooled values is at a batch value u (right-continuous counts) and its maximum just below one
    (the last pooled value before u: reference count `left` of u, batch count of the previous group).
    """
    n, m = reference.size, current.size
    distinct, upto = _current_groups(current)
    before = np.concatenate(([0], upto[:-1]))
    left = np.searchsorted(reference, distinct, side="left")
    right = np.searchsorted(reference, distinct, side="right")
    max_diff = float(np.max(left / n - before / m))
    min_diff = float(np.min(right / n - upto / m))
    return _ks_from_extremes(max_diff, min_diff)


def _wasserstein_by_prefix(
    reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64], integral: npt.NDArray[np.float64]
) -> float:
    """Wasserstein-1 = integral of |F_R - F_C|, piece by piece between the batch's distinct values.

    On a piece [lo, hi) F_C is a constant a = s/m; F_R < a left of x* (the reference value of rank
    ceil(s*n/m)) and >= a from there, so the piece is a*(x'-lo) - (I(x')-I(lo)) + (I(hi)-I(x')) - a*(hi-x')
    with x* clipped to the piece and I the integral of F_R, from the reference's prefix sums.
    """
    n, m = reference.size, current.size
    distinct, upto = _current_groups(current)
    bounds = np.concatenate(([min(reference[0], distinct[0])], distinct, [max(reference[-1], distinct[-1])]))
    below = np.concatenate(([0], upto))  # batch count on each piece [bounds[k], bounds[k + 1])
    lo, hi = bounds[:-1], bounds[1:]
    rank = (below * n + m - 1) // m  # ceil(s * n / m): F_R >= s/m from the value of this rank on
    crossing = np.where(rank > 0, reference[np.maximum(rank - 1, 0)], lo)
    crossing = np.minimum(np.maximum(crossing, lo), hi)
    level = below * (n / m)  # a * n
    at_bounds = _scaled_integral(reference, integral, bounds)
    at_crossing = _scaled_integral(reference, integral, crossing)
    pieces = level * ((crossing - lo) - (hi - crossing)) + at_bounds[:-1] + at_bounds[1:] - 2 * at_crossing
    return float(np.sum(pieces)) / n


def _scaled_integral(
    reference: npt.NDArray[np.float64], integral: npt.NDArray[np.float64], x: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """n * the integral of F_R from -inf to each x (`integral[k]` is it at reference[k])."""
    count = np.searchsorted(reference, x, side="right")
    last = np.maximum(count - 1, 0)
    return np.where(count > 0, integral[last] + count * (x - reference[last]), 0.0)


def numeric_stats(profile: NumericProfile, values: npt.ArrayLike, epsilon: float = 1e-4) -> FeatureStats:
    """All drift statistics of a numeric feature against its reference profile."""
    current, rows = sorted_finite_values(values)
    missing_share = (rows - current.size) / rows if rows else None
    if current.size == 0 or profile.sorted_values.size == 0:
        return FeatureStats(profile.name, "numeric", "insufficient_data", rows, missing_share)
    counts = bin_counts(current, profile.edges)
    reference = profile.sorted_values
    if current.size * SMALL_BATCH_RATIO <= reference.size:
        statistic, wasserstein = ks_and_wasserstein(reference, current, reference_integral=profile.integral)
    else:
        statistic, wasserstein = ks_and_wasserstein(reference, current, grid=profile.grid)
    std = profile.std
    return FeatureStats(
        profile.name,
        "numeric",
        "ok",
        rows,
        missing_share,
        psi=psi(profile.counts, counts, epsilon),
        ks_statistic=statistic,
        ks_pvalue=ks_pvalue(statistic, profile.sorted_values.size, current.size),
        js_distance=js_distance(profile.counts, counts),
        wasserstein=wasserstein / std if std > 0 else None,
    )


def categorical_stats(
    profile: CategoricalProfile, values: npt.ArrayLike | CategoryCounts, epsilon: float = 1e-4
) -> FeatureStats:
    """All drift statistics of a categorical feature: PSI, chi-square, new categories.

    `values` may be raw values or their `CategoryCounts` (counts of several chunks merged).
    """
    counted = values if isinstance(values, CategoryCounts) else category_counts(values)
    rows = counted.rows
    missing_share = counted.missing / rows if rows else None
    present = rows - counted.missing
    if present == 0 or profile.counts.sum() == 0:
        return FeatureStats(profile.name, "categorical", "insufficient_data", rows, missing_share)
    reference = dict(zip(profile.categories, profile.counts.tolist(), strict=True))
    union = sorted(set(reference) | set(counted.counts))
    ref_counts = np.array([reference.get(c, 0) for c in union], dtype=np.float64)
    cur_counts = np.array([counted.counts.get(c, 0) for c in union], dtype=np.float64)
    chi2 = scipy.stats.chi2_contingency(np.vstack((ref_counts, cur_counts)))
    new = {c: counted.counts[c] / present for c in union if c not in reference}
    return FeatureStats(
        profile.name,
        "categorical",
        "ok",
        rows,
        missing_share,
        psi=psi(ref_counts, cur_counts, epsilon),
        chi2_statistic=float(chi2.statistic),
        chi2_pvalue=float(chi2.pvalue),
        new_categories=new,
    )
