"""Drift statistics from counts: PSI, Jensen-Shannon, the KS p-value, chi-square and new categories.

The counts come from `driftwatch.core.partials` (numeric features: bins, grid and cell counts, from which it
also takes KS and Wasserstein exactly) and `driftwatch.core.values` (category counts).

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

import numpy as np
import numpy.typing as npt
import scipy.special
from scipy.special import rel_entr

from driftwatch.core.distribution import category_shares
from driftwatch.core.profile import CategoricalProfile
from driftwatch.core.report import FeatureStats
from driftwatch.core.values import CategoryCounts, category_counts

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


def ks_test(max_diff: float, min_diff: float, n: int, m: int) -> tuple[float, float]:
    """scipy's two-sided `ks_2samp` (method auto) from the extremes of F_R - F_C: the statistic and p-value.

    D = max(max_diff, clip(-min_diff, 0, 1)). Where scipy takes its exact method (both sizes <= 10,000) it
    reduces D to the nearest multiple of 1/lcm(n, m), so 200/2000 is 0.1 and not 0.09999999999999998; so does
    this, and a threshold on D then compares what scipy reports.
    """
    statistic = ks_from_extremes(max_diff, min_diff)
    effective = n * m / (n + m)
    if max(n, m) <= KS_EXACT_MAX:
        # scipy's exact computation, called directly: `ks_2samp` would re-sort both samples and signal a
        # failed exact attempt with a warning, and warning filters are not thread-safe. Private, stable since
        # scipy 1.5; imported here, as `scipy.stats` costs ~0.5-1 s to import and big windows never need it.
        from scipy.stats._stats_py import _attempt_exact_2kssamp

        success, reduced, prob = _attempt_exact_2kssamp(n, m, math.gcd(n, m), statistic, "two-sided")
        statistic = float(reduced)
        if success:
            return statistic, float(np.clip(prob, 0.0, 1.0))
    if round(effective) <= KS_KSTWO_MAX:
        from scipy.stats import kstwo

        return statistic, float(np.clip(kstwo.sf(statistic, round(effective)), 0.0, 1.0))
    # `scipy.stats.kstwobign.sf` is this function
    return statistic, float(np.clip(scipy.special.kolmogorov(math.sqrt(effective) * statistic), 0.0, 1.0))


def ks_from_extremes(max_diff: float, min_diff: float) -> float:
    """scipy's D from the largest and smallest F_R - F_C: max(maxS, clip(-minS, 0, 1))."""
    return max(max_diff, min(max(-min_diff, 0.0), 1.0))


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
    chi2_statistic, chi2_pvalue = chi2_test(np.vstack((ref_counts, cur_counts)))
    new = {c: counted.counts[c] / present for c in union if c not in reference}
    return FeatureStats(
        profile.name,
        "categorical",
        "ok",
        rows,
        missing_share,
        psi=psi(ref_counts, cur_counts, epsilon),
        chi2_statistic=chi2_statistic,
        chi2_pvalue=chi2_pvalue,
        new_categories=new,
        distribution=category_shares(reference, counted.counts),
    )


def chi2_test(observed: npt.NDArray[np.float64]) -> tuple[float, float]:
    """`scipy.stats.chi2_contingency(observed)` (Pearson, Yates' correction at one degree of freedom), written out
    in scipy's own arithmetic so that `scipy.stats` need not be imported. Every column must have a count."""
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    if dof == 0:
        return 0.0, 1.0
    if dof == 1:
        difference = expected - observed
        observed = observed + np.minimum(0.5, np.abs(difference)) * np.sign(difference)
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(scipy.special.chdtrc(dof, statistic))
