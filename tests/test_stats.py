"""Drift statistics of driftwatch.core.stats against scipy and an independent reference implementation."""

from __future__ import annotations

import math
import pickle
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

from driftwatch.core.partials import numeric_stats
from driftwatch.core.policy import Level, Policy
from driftwatch.core.profile import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileSettings,
    bin_counts,
    build_profile,
)
from driftwatch.core.report import Severity
from driftwatch.core.stats import categorical_stats, js_distance, ks_test, psi
from driftwatch.core.values import (
    OBJECT_CHUNK,
    CategoryCounts,
    category_counts,
    category_label,
    merge_category_counts,
)

# --------------------------------------------------------------------------------------------------
# Independent reference implementation (loops and explicit comparisons, no searchsorted)
# --------------------------------------------------------------------------------------------------


def ref_edges(values: np.ndarray, bins: int = 10, binning: str = "quantile") -> list[float]:
    """Interior edges: every value holding >= 1/(2B) of the reference gets [v, next float up); the rest is cut at
    its quantiles k/B' (B' = B minus the atoms, numpy linear) or the range at equal widths; duplicates dropped."""
    finite = np.sort(np.asarray(values, dtype=float))
    held: dict[float, int] = {}
    for v in finite.tolist():
        held[v] = held.get(v, 0) + 1
    atoms = [v for v, count in held.items() if count * 2 * bins >= finite.size]
    if binning == "quantile":
        rest = np.array([v for v in finite.tolist() if v not in atoms])
        parts = max(bins - len(atoms), 1)
        raw = [float(np.quantile(rest, k / parts)) for k in range(1, parts)] if rest.size else []
    else:
        lo, hi = float(finite[0]), float(finite[-1])
        raw = [lo + (hi - lo) * k / bins for k in range(1, bins)]
    raw += atoms + [float(np.nextafter(a, np.inf)) for a in atoms]
    edges: list[float] = []
    for edge in sorted(raw):
        if not edges or edge > edges[-1]:
            edges.append(edge)
    return edges


def ref_counts(values: np.ndarray, edges: list[float]) -> list[int]:
    """Counts per bin (-inf, e1), [e1, e2), ..., [ek, +inf), by explicit comparisons."""
    counts = [0] * (len(edges) + 1)
    for v in values:
        index = 0
        for i, edge in enumerate(edges):
            if v >= edge:
                index = i + 1
        counts[index] += 1
    return counts


def ref_psi(reference: list[int] | list[float], current: list[int] | list[float], epsilon: float = 1e-4) -> float:
    """PSI = sum((c - r) ln(c / r)) over shares floored at epsilon."""
    r_total, c_total = sum(reference), sum(current)
    total = 0.0
    for r_count, c_count in zip(reference, current, strict=True):
        r = max(r_count / r_total, epsilon)
        c = max(c_count / c_total, epsilon)
        total += (c - r) * math.log(c / r)
    return total


def ref_categorical(reference: list[object], current: list[object]) -> tuple[list[str], list[int], list[int]]:
    """Union of categories (str names, missing dropped) and the two count vectors over it."""

    def present(values: list[object]) -> Counter[str]:
        return Counter(str(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v)))

    r, c = present(reference), present(current)
    union = sorted(set(r) | set(c))
    return union, [r[k] for k in union], [c[k] for k in union]


def numeric_profile(reference: object, **kwargs: object) -> NumericProfile:
    """The numeric profile of one reference column named x."""
    feature = build_profile({"x": reference}, numeric=["x"], settings=ProfileSettings(**kwargs)).features["x"]
    assert isinstance(feature, NumericProfile)
    return feature


def categorical_profile(reference: object) -> CategoricalProfile:
    """The categorical profile of one reference column named c."""
    feature = build_profile({"c": reference}, categorical=["c"]).features["c"]
    assert isinstance(feature, CategoricalProfile)
    return feature


def finite(values: object) -> np.ndarray:
    """The finite values of a column, as float64 (what scipy should be given)."""
    array = pd.Series(np.asarray(values, dtype=object)).to_numpy(dtype=np.float64, na_value=np.nan)
    return array[np.isfinite(array)]


def scipy_ks(reference: np.ndarray, current: np.ndarray) -> Any:
    """scipy's ks_2samp with its default (auto) method."""
    with warnings.catch_warnings():
        # For some heavily tied small samples scipy's exact method gives up and warns that it switches to
        # the asymptotic one; that is scipy's documented result for a valid input, so it is the expected value.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        return scipy.stats.ks_2samp(reference, current)


def _normal(n: int, loc: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(loc, 1.0, n)


def _ints(n: int, high: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, n).astype(float)


def _zero_inflated(n: int, zeros: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < zeros, 0.0, rng.exponential(1.0, n))


# --------------------------------------------------------------------------------------------------
# PSI (numeric)
# --------------------------------------------------------------------------------------------------

PSI_CASES = [
    pytest.param(_normal(2000), _normal(500, 0.3, 1), {}, id="normal-shifted"),
    pytest.param(_normal(2000), _normal(2000, 0.0, 1), {}, id="normal-same"),
    pytest.param(_zero_inflated(1000, 0.7), _zero_inflated(400, 0.4, 1), {}, id="many-zeros"),
    pytest.param(_ints(1000, 5), _ints(300, 7, 1), {}, id="integer-ties-values-on-edges"),
    pytest.param(_normal(1000), _normal(300, 5.0, 1), {}, id="current-beyond-reference"),
    pytest.param(_normal(1000), _normal(300, -5.0, 1), {}, id="current-below-reference"),
    pytest.param(_normal(777), _normal(123, 0.5, 1), {"bins": 5}, id="five-bins"),
    pytest.param(_normal(777), _normal(123, 0.5, 1), {"bins": 2}, id="two-bins"),
    pytest.param(_normal(1000), _normal(50, 0.5, 1), {"bins": 20, "epsilon": 1e-3}, id="twenty-bins-epsilon"),
    pytest.param(_normal(1500), _normal(400, 0.4, 1), {"binning": "uniform"}, id="uniform"),
    pytest.param(
        np.random.default_rng(3).exponential(1, 2000),
        np.random.default_rng(4).exponential(1.3, 300),
        {"binning": "uniform", "bins": 7},
        id="uniform-skewed",
    ),
    pytest.param(_ints(500, 11), _ints(200, 11, 1), {"binning": "uniform"}, id="uniform-integers-on-edges"),
    pytest.param(np.full(100, 3.0), np.array([2.0, 3.0, 3.0, 4.0]), {}, id="constant-reference"),
    pytest.param(np.full(100, 3.0), np.array([2.0, 3.0, 4.0]), {"binning": "uniform"}, id="constant-uniform"),
    pytest.param(np.array([1.0]), np.array([0.0, 1.0, 2.0]), {}, id="single-reference-value"),
]


@pytest.mark.parametrize(("reference", "current", "options"), PSI_CASES)
def test_psi_numeric_matches_reference_implementation(reference, current, options):
    """Edges, counts and PSI agree with an independent loop-based implementation."""
    bins = options.get("bins", 10)
    binning = options.get("binning", "quantile")
    epsilon = options.get("epsilon", 1e-4)
    profile = numeric_profile(reference, **options)
    edges = ref_edges(reference, bins, binning)
    np.testing.assert_allclose(profile.edges, edges, rtol=1e-13, atol=0)
    assert np.all(np.diff(profile.edges) > 0)
    assert profile.counts.tolist() == ref_counts(reference, edges)
    current_counts = ref_counts(current, edges)
    assert bin_counts(np.sort(current), profile.edges).tolist() == current_counts
    stats = numeric_stats(profile, current, epsilon)
    assert stats.psi == pytest.approx(ref_psi(profile.counts.tolist(), current_counts, epsilon), rel=1e-12, abs=1e-15)


def test_value_on_edge_goes_to_the_right_bin():
    """A value equal to an edge is counted in the bin on its right: [e_i, e_{i+1})."""
    profile = numeric_profile(np.arange(11.0), bins=2)  # median of 0..10 is exactly 5
    assert profile.edges.tolist() == [5.0]
    assert profile.counts.tolist() == [5, 6]
    assert bin_counts(np.array([4.0, 5.0, 6.0]), np.array([5.0])).tolist() == [1, 2]
    assert bin_counts(np.array([5.0]), np.array([5.0])).tolist() == [0, 1]


def test_many_zeros_get_their_own_bin():
    """A point mass (70% zeros) gets the bin [0, next float up) alone; the other values are cut at their quantiles."""
    reference = _zero_inflated(1000, 0.7)
    profile = numeric_profile(reference)
    assert profile.edges[:2].tolist() == [0.0, np.nextafter(0.0, 1.0)]
    assert len(profile.edges) == 2 + 8  # 9 bins of the non-zero values
    assert profile.counts[0] == 0
    assert profile.counts[1] == int(np.sum(reference == 0.0))
    rest = profile.counts[2:]
    assert rest.sum() == int(np.sum(reference != 0.0)) and rest.max() - rest.min() <= 1


def test_uniform_edges_equal_width():
    """Uniform binning: equal widths over reference min..max, outer bins open."""
    values = np.array([0.0, 10.0, 3.0, 7.0, 0.5, 1.5, 2.5, 5.5, 8.5, 9.5, 9.0])  # each < 1/(2 x 5): no atoms
    profile = numeric_profile(values, bins=5, binning="uniform")
    np.testing.assert_allclose(profile.edges, [2.0, 4.0, 6.0, 8.0], rtol=1e-15)
    assert profile.counts.tolist() == [3, 2, 1, 1, 4]
    assert bin_counts(np.array([-100.0, 2.0, 100.0]), profile.edges).tolist() == [1, 1, 0, 0, 1]


@pytest.mark.parametrize(
    ("reference", "current", "expected"),
    [
        pytest.param([50, 50], [50, 50], 0.0, id="equal"),
        pytest.param([50, 50], [80, 20], 0.3 * math.log(1.6) + 0.3 * math.log(2.5), id="hand-computed"),
        pytest.param([0.5, 0.5], [0.8, 0.2], 0.3 * math.log(1.6) + 0.3 * math.log(2.5), id="shares"),
        pytest.param(
            [100, 0],
            [50, 50],
            (0.5 - 1) * math.log(0.5) + (0.5 - 1e-4) * math.log(0.5 / 1e-4),
            id="reference-zero-floored",
        ),
        pytest.param(
            [50, 50], [100, 0], 0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5), id="current-zero-floored"
        ),
        pytest.param(
            [99999, 1], [1, 99999], 2 * (0.99999 - 1e-4) * math.log(0.99999 / 1e-4), id="below-epsilon-raised"
        ),
    ],
)
def test_psi_hand_computed(reference, current, expected):
    """PSI of count vectors equals a hand-computed value, with the epsilon floor."""
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------------------------------
# KS statistic and p-value
# --------------------------------------------------------------------------------------------------

KS_CASES = [
    pytest.param(_normal(500), _normal(300, 0.2, 1), id="continuous"),
    pytest.param(_normal(200), _normal(200, 0.0, 1), id="same-distribution"),
    pytest.param(_ints(400, 5), _ints(150, 5, 1), id="integer-ties"),
    pytest.param(_ints(400, 3), _ints(150, 4, 1), id="integer-ties-shifted"),
    pytest.param(_ints(30, 2), _ints(40, 2, 1), id="binary"),
    pytest.param(np.array([1.0]), np.array([2.0]), id="one-each"),
    pytest.param(np.array([1.0]), np.array([1.0]), id="one-each-equal"),
    pytest.param(np.array([1.0, 2.0]), np.array([1.5, 3.0, 0.0]), id="two-three"),
    pytest.param(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]), id="three-permuted"),
    pytest.param(np.array([1.0, 1.0, 2.0]), np.array([1.0]), id="three-one-tie"),
    pytest.param(np.full(50, 4.0), np.full(20, 4.0), id="constant-equal"),
    pytest.param(np.full(50, 4.0), np.full(20, 5.0), id="constant-different"),
    pytest.param(np.full(50, 4.0), _normal(30), id="constant-reference"),
    pytest.param(_normal(30), np.full(50, 0.0), id="constant-current"),
    pytest.param(_normal(5000), _normal(3, 1.0, 1), id="large-vs-tiny"),
    pytest.param(_normal(3000), _normal(10_000, 0.05, 1), id="exact-at-limit"),
]


@pytest.mark.parametrize(("reference", "current"), KS_CASES)
def test_ks_matches_scipy(reference, current):
    """KS statistic equals scipy's to 1e-12 and the p-value to 1e-6 relative (samples <= 10,000)."""
    stats = numeric_stats(numeric_profile(reference), current)
    expected = scipy_ks(reference, current)
    assert stats.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert stats.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)


def test_ks_pvalue_kstwo_path_large_reference():
    """Reference 50,000 and batch 200: the p-value is scipy's asymptotic (kstwo) one to 1e-9."""
    reference, current = _normal(50_000, seed=5), _normal(200, 0.15, 6)
    stats = numeric_stats(numeric_profile(reference), current)
    expected = scipy_ks(reference, current)
    assert stats.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert 1e-6 < expected.pvalue < 0.5, "pick a drift that gives a moderate p-value"
    assert stats.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-9)


def test_ks_pvalue_kstwobign_path_within_one_percent():
    """Reference and batch of 200,000: the limiting distribution is within 1% of scipy's p-value."""
    reference, current = _normal(200_000, seed=7), _normal(200_000, 0.01, 8)
    stats = numeric_stats(numeric_profile(reference), current)
    expected = scipy_ks(reference, current)
    assert stats.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert 1e-6 <= expected.pvalue < 0.5, "pick a drift that gives a moderate p-value"
    assert stats.ks_pvalue == pytest.approx(expected.pvalue, rel=0.01)


# --------------------------------------------------------------------------------------------------
# Jensen-Shannon and Wasserstein
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "current"),
    [c for c in KS_CASES if c.id != "exact-at-limit"]
    + [
        pytest.param(_zero_inflated(800, 0.6), _zero_inflated(300, 0.2, 1), id="many-zeros"),
        pytest.param(_normal(800), _normal(300, 8.0, 1), id="disjoint"),
    ],
)
def test_js_and_wasserstein_match_scipy(reference, current):
    """JS distance equals scipy's on the PSI bin counts; Wasserstein equals scipy's / std(reference)."""
    profile = numeric_profile(reference)
    stats = numeric_stats(profile, current)
    current_counts = ref_counts(current, ref_edges(reference))
    expected_js = jensenshannon(profile.counts, current_counts, base=2)
    assert stats.js_distance == pytest.approx(expected_js, abs=1e-12)
    if np.std(reference) == 0:
        assert stats.wasserstein is None
    else:
        expected = scipy.stats.wasserstein_distance(reference, current) / np.std(reference)
        assert stats.wasserstein == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_js_distance_function_matches_scipy():
    """`js_distance` of raw count vectors equals scipy's base-2 Jensen-Shannon distance."""
    p, q = [10, 0, 5, 3], [0, 7, 5, 1]
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(np.full(10, 2.5), id="constant"),
        pytest.param(np.array([7.0]), id="single-value"),
        pytest.param(np.array([1.0, np.nan, 1.0, np.inf]), id="constant-after-missing"),
    ],
)
def test_wasserstein_none_for_constant_reference(reference):
    """A reference without spread has no scaled Wasserstein distance (None, not inf or nan)."""
    stats = numeric_stats(numeric_profile(reference), np.array([1.0, 2.0, 3.0]))
    assert stats.status == "ok"
    assert stats.wasserstein is None


# --------------------------------------------------------------------------------------------------
# Missing values
# --------------------------------------------------------------------------------------------------

MISSING_BATCHES = [
    pytest.param(np.array([0.1, np.nan, 1.2, -0.4, np.nan, 2.0]), 2, id="nan"),
    pytest.param(np.array([0.1, np.inf, 1.2, -np.inf, 0.5]), 2, id="inf"),
    pytest.param(np.array([0.1, None, 1.2, None, 0.3], dtype=object), 2, id="object-none"),
    pytest.param([0.1, None, 1.2, float("nan"), 0.3, float("inf")], 3, id="list-mixed"),
    pytest.param(np.array([0.1, pd.NA, 1.2, 0.3], dtype=object), 1, id="object-pandas-na"),
    pytest.param(pd.array([0.1, None, 1.2, 0.3, None], dtype="Float64"), 2, id="pandas-Float64"),
    pytest.param(pd.Series([0.1, np.nan, 1.2, 0.3, np.inf]), 2, id="pandas-series"),
]


@pytest.mark.parametrize(("current", "missing"), MISSING_BATCHES)
def test_missing_values_never_reach_statistics(current, missing):
    """Missing values count in missing_share and every statistic equals scipy's on the finite values."""
    reference = _normal(300)
    profile = numeric_profile(reference)
    stats = numeric_stats(profile, current)
    values = finite(current)
    assert stats.status == "ok"
    assert stats.rows == len(current)
    assert stats.missing_share == pytest.approx(missing / len(current))
    expected = scipy_ks(reference, values)
    assert stats.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert stats.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-6)
    edges = ref_edges(reference)
    assert stats.psi == pytest.approx(ref_psi(profile.counts.tolist(), ref_counts(values, edges)), rel=1e-12)
    expected_w = scipy.stats.wasserstein_distance(reference, values) / np.std(reference)
    assert stats.wasserstein == pytest.approx(expected_w, rel=1e-9)


def test_missing_values_in_reference_are_not_profiled():
    """Reference NaN, None and inf are counted as missing and left out of values, edges and counts."""
    raw = [1.0, None, 2.0, np.nan, 3.0, np.inf, -np.inf, 4.0]
    profile = numeric_profile(np.array(raw, dtype=object))
    assert profile.rows == 8
    assert profile.missing == 4
    assert profile.sorted_values.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert int(profile.counts.sum()) == 4
    stats = numeric_stats(profile, [1.0, 2.0, 3.0, 4.0])
    assert stats.psi == 0.0
    assert stats.ks_statistic == 0.0


ALL_MISSING = [
    pytest.param(np.array([]), None, id="empty"),
    pytest.param(np.array([np.nan, np.nan]), 1.0, id="all-nan"),
    pytest.param(np.array([np.inf, -np.inf, np.nan]), 1.0, id="all-inf"),
    pytest.param(np.array([None, None], dtype=object), 1.0, id="all-none-object"),
    pytest.param([None, pd.NA, float("nan")], 1.0, id="all-mixed-list"),
]


@pytest.mark.parametrize(("current", "missing_share"), ALL_MISSING)
def test_numeric_insufficient_data(current, missing_share):
    """An empty or all-missing batch gives insufficient_data with every statistic None."""
    stats = numeric_stats(numeric_profile(_normal(100)), current)
    assert stats.status == "insufficient_data"
    assert stats.missing_share == missing_share
    for name in ("psi", "ks_statistic", "ks_pvalue", "js_distance", "wasserstein"):
        assert getattr(stats, name) is None, name


def test_numeric_insufficient_reference():
    """An all-missing reference gives insufficient_data, not an exception or zeros."""
    stats = numeric_stats(numeric_profile(np.array([np.nan, np.nan])), np.array([1.0, 2.0]))
    assert stats.status == "insufficient_data"
    assert stats.psi is None
    assert stats.ks_statistic is None


# --------------------------------------------------------------------------------------------------
# Categorical: PSI over the union, chi-square, new categories
# --------------------------------------------------------------------------------------------------

CATEGORICAL_CASES = [
    pytest.param(["a"] * 60 + ["b"] * 40, ["a"] * 30 + ["b"] * 45, id="two-categories-yates"),
    pytest.param(["a"] * 50 + ["b"] * 30 + ["c"] * 20, ["a"] * 20 + ["b"] * 20 + ["c"] * 20, id="three"),
    pytest.param(["a"] * 50 + ["b"] * 30, ["a"] * 10 + ["b"] * 5 + ["z"] * 5 + ["y"] * 2, id="new-categories"),
    pytest.param(["a"] * 50 + ["b"] * 30 + ["c"] * 3, ["a"] * 10, id="categories-absent-from-batch"),
    pytest.param(["a"] * 5, ["b"] * 3, id="disjoint-single"),
    pytest.param(["a", None, "b", float("nan"), "a"], ["a", "b", None, "b"], id="with-missing"),
    pytest.param([1, 2, 2, 3, 3, 3], [3, 3, 2, 4], id="integers"),
]


@pytest.mark.parametrize(("reference", "current"), CATEGORICAL_CASES)
def test_categorical_matches_scipy_and_reference(reference, current):
    """PSI over the union, chi2_contingency (with Yates at dof 1) and new-category shares are exact."""
    stats = categorical_stats(categorical_profile(reference), current)
    union, r_counts, c_counts = ref_categorical(reference, current)
    expected = scipy.stats.chi2_contingency(np.array([r_counts, c_counts]))
    assert stats.status == "ok"
    assert stats.psi == pytest.approx(ref_psi(r_counts, c_counts), rel=1e-12, abs=1e-15)
    assert stats.chi2_statistic == pytest.approx(expected.statistic, rel=1e-12, abs=1e-12)
    assert stats.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
    present = sum(c_counts)
    reference_names = {k for k, n in zip(union, r_counts, strict=True) if n}
    expected_new = {k: n / present for k, n in zip(union, c_counts, strict=True) if k not in reference_names}
    assert dict(stats.new_categories) == pytest.approx(expected_new, rel=1e-15)
    missing = sum(1 for v in current if v is None or (isinstance(v, float) and math.isnan(v)))
    assert stats.missing_share == pytest.approx(missing / len(current))


def test_chi2_yates_applies_at_one_degree_of_freedom():
    """With two categories the chi-square statistic is Yates-corrected (differs from the plain one)."""
    stats = categorical_stats(categorical_profile(["a"] * 60 + ["b"] * 40), ["a"] * 30 + ["b"] * 45)
    table = np.array([[60, 40], [30, 45]])
    plain = scipy.stats.chi2_contingency(table, correction=False).statistic
    corrected = scipy.stats.chi2_contingency(table).statistic
    assert corrected != pytest.approx(plain)
    assert stats.chi2_statistic == pytest.approx(corrected, rel=1e-12)


def test_single_category_has_zero_degrees_of_freedom():
    """One category in both samples: PSI 0, chi-square statistic 0 and p-value 1, nothing new."""
    stats = categorical_stats(categorical_profile(["x"] * 10), ["x"] * 4)
    assert stats.status == "ok"
    assert stats.psi == 0.0
    assert stats.chi2_statistic == 0.0
    assert stats.chi2_pvalue == 1.0
    assert dict(stats.new_categories) == {}


@pytest.mark.parametrize(
    "current",
    [
        pytest.param([], id="empty"),
        pytest.param([None, None], id="all-none"),
        pytest.param([float("nan"), None, pd.NA], id="all-mixed"),
        pytest.param(np.array([np.nan, np.nan]), id="float-nan"),
    ],
)
def test_categorical_insufficient_data(current):
    """An empty or all-missing categorical batch gives insufficient_data with statistics None."""
    stats = categorical_stats(categorical_profile(["a", "b"]), current)
    assert stats.status == "insufficient_data"
    assert stats.psi is None
    assert stats.chi2_statistic is None
    assert stats.chi2_pvalue is None
    assert stats.missing_share == (1.0 if len(current) else None)


def test_categorical_missing_values_are_not_categories():
    """None, NaN and pandas NA are missing, never a category named 'None' or 'nan'."""
    counted = category_counts(np.array(["a", None, float("nan"), pd.NA, "b", "a"], dtype=object))
    assert dict(counted.counts) == {"a": 2, "b": 1}
    assert counted.rows == 6
    assert counted.missing == 3


def test_integer_categories_survive_missing_value_promotion():
    """An integer category column read with a missing value (so float64) keeps its categories."""
    profile = categorical_profile(np.array([1, 2, 3, 1, 2, 3]))
    batch = pd.Series([1, 2, 3, None])  # pandas promotes to float64: 1.0, 2.0, 3.0, NaN
    stats = categorical_stats(profile, batch)
    assert dict(stats.new_categories) == {}
    assert stats.psi == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Mergeable counts
# --------------------------------------------------------------------------------------------------


def test_merged_category_counts_equal_whole():
    """Counts of chunks merged equal counts of the whole, including rows and missing."""
    rng = np.random.default_rng(11)
    values = rng.choice(np.array(["a", "b", "c", "d", None], dtype=object), 1000)
    chunks = [values[:1], values[1:400], values[400:400], values[400:]]
    merged = merge_category_counts([category_counts(c) for c in chunks])
    whole = category_counts(values)
    assert dict(merged.counts) == dict(whole.counts)
    assert list(merged.counts) == sorted(merged.counts)
    assert (merged.rows, merged.missing) == (whole.rows, whole.missing)


@pytest.mark.parametrize(
    "as_column", [pytest.param(np.asarray, id="array"), pytest.param(lambda v: pd.Series(v, dtype=object), id="series")]
)
def test_long_object_column_counted_in_chunks_equals_plain_count(as_column):
    """An object column longer than OBJECT_CHUNK (counted chunk by chunk) gives the counts of collections.Counter."""
    rng = np.random.default_rng(13)
    levels = np.array(["a", "b", 1, 1.0, 2.5, None, float("nan")], dtype=object)
    values = rng.choice(levels, OBJECT_CHUNK * 2 + 7)
    counted = category_counts(as_column(values))
    present = [v for v in values.tolist() if not (v is None or (isinstance(v, float) and np.isnan(v)))]
    expected = Counter(category_label(v) for v in present)
    assert dict(counted.counts) == dict(sorted(expected.items()))
    assert (counted.rows, counted.missing) == (values.size, values.size - len(present))


def test_equal_objects_that_are_not_identical_count_as_one_category():
    """Counting by object identity first must still merge equal values held by distinct objects (fresh strings,
    fresh NaN floats), across more distinct objects than OBJECT_CHUNK."""
    rng = np.random.default_rng(14)
    levels = ["alpha", "beta", 1, 1.0, 2.5, None, float("nan")]
    picks = rng.integers(0, len(levels), OBJECT_CHUNK * 4 + 5).tolist()
    shared = [levels[k] for k in picks]
    fresh = [pickle.loads(pickle.dumps(v)) for v in shared]  # new objects, equal values
    values = np.array(shared[: len(shared) // 2] + fresh[len(shared) // 2 :], dtype=object)
    assert len({id(v) for v in values.tolist()}) > OBJECT_CHUNK
    counted = category_counts(values[::-1])  # a non-contiguous view
    present = [v for v in shared if not (v is None or (isinstance(v, float) and np.isnan(v)))]
    assert dict(counted.counts) == dict(sorted(Counter(category_label(v) for v in present).items()))
    assert (counted.rows, counted.missing) == (len(shared), len(shared) - len(present))


def test_categorical_stats_accept_merged_counts():
    """categorical_stats on merged CategoryCounts equals categorical_stats on the raw values."""
    rng = np.random.default_rng(12)
    profile = categorical_profile(rng.choice(["a", "b", "c"], 500).tolist())
    values = rng.choice(np.array(["a", "b", "c", "new", None], dtype=object), 300)
    merged = merge_category_counts([category_counts(values[i : i + 70]) for i in range(0, 300, 70)])
    assert isinstance(merged, CategoryCounts)
    assert categorical_stats(profile, merged) == categorical_stats(profile, values)


def test_bin_counts_of_chunks_sum_to_whole():
    """bin_counts of each sorted chunk summed equals bin_counts of the whole batch."""
    profile = numeric_profile(_ints(1000, 8))
    values = _ints(777, 10, 3)
    whole = bin_counts(np.sort(values), profile.edges)
    parts = sum(bin_counts(np.sort(values[i : i + 100]), profile.edges) for i in range(0, 777, 100))
    assert parts.tolist() == whole.tolist()
    assert whole.tolist() == ref_counts(values, profile.edges.tolist())


# --------------------------------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------------------------------

integer_floats = st.lists(st.integers(-15, 15), min_size=1, max_size=40).map(lambda xs: np.array(xs, dtype=float))
plain_floats = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e6, 1e6, allow_subnormal=False))
with_missing = hnp.arrays(
    np.float64,
    st.integers(0, 40),
    elements=st.one_of(st.floats(-1e3, 1e3, allow_subnormal=False), st.sampled_from([np.nan, np.inf, -np.inf])),
)
samples = st.one_of(integer_floats, plain_floats)
PROPS = settings(max_examples=60, deadline=None)


@PROPS
@given(x=samples, bins=st.integers(2, 12), binning=st.sampled_from(["quantile", "uniform"]))
def test_property_identical_samples_have_no_drift(x, bins, binning):
    """PSI(x, x) == 0, KS == 0 and JS == 0 for any sample and any binning."""
    stats = numeric_stats(numeric_profile(x, bins=bins, binning=binning), x)
    assert stats.psi == 0.0
    assert stats.ks_statistic == 0.0
    assert stats.js_distance == pytest.approx(0.0, abs=1e-7)
    assert stats.wasserstein in (None, 0.0)


@PROPS
@given(reference=samples, current=samples)
def test_property_ks_matches_scipy_and_bounds(reference, current):
    """KS equals scipy's for any pair (ties included) and KS, JS lie in [0, 1], PSI >= 0."""
    stats = numeric_stats(numeric_profile(reference), current)
    expected = scipy_ks(reference, current)
    assert stats.ks_statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert 0.0 <= stats.ks_statistic <= 1.0
    assert 0.0 <= stats.ks_pvalue <= 1.0
    assert 0.0 <= stats.js_distance <= 1.0
    assert stats.psi >= 0.0


@PROPS
@given(reference=integer_floats, current=integer_floats)
def test_property_psi_matches_reference_implementation(reference, current):
    """Quantile-binned PSI of integer samples (ties, values on edges) equals the loop implementation."""
    profile = numeric_profile(reference)
    edges = ref_edges(reference)
    assert profile.edges.tolist() == edges
    assert profile.counts.tolist() == ref_counts(reference, edges)
    expected = ref_psi(profile.counts.tolist(), ref_counts(current, edges))
    assert numeric_stats(profile, current).psi == pytest.approx(expected, rel=1e-12, abs=1e-15)


@PROPS
@given(reference=samples, current=samples, data=st.data())
def test_property_row_order_invariance(reference, current, data):
    """Shuffling the reference or the batch changes no statistic and no fingerprint."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # -0.0 and 0.0 mixed make the fingerprint order-dependent: a known core bug with its own test in
    # test_profile.py (test_fingerprint_ignores_signed_zero_order); normalise here so this property still
    # checks everything else.
    reference, current = reference + 0.0, current + 0.0
    first = build_profile({"x": reference}, numeric=["x"])
    second = build_profile({"x": rng.permutation(reference)}, numeric=["x"])
    assert first.fingerprint == second.fingerprint
    one = numeric_stats(first.features["x"], current)
    two = numeric_stats(second.features["x"], rng.permutation(current))
    assert one == two


@PROPS
@given(reference=integer_floats, current=integer_floats)
def test_property_invariance_to_increasing_transforms(reference, current):
    """KS is invariant under strictly increasing maps of both samples; quantile PSI under exact scalings."""
    base = numeric_stats(numeric_profile(reference), current)
    for transform in (lambda v: 3 * v + 1, lambda v: v**3, lambda v: np.exp(v / 15.0)):
        moved = numeric_stats(numeric_profile(transform(reference)), transform(current))
        assert moved.ks_statistic == base.ks_statistic
    # Quantile edges interpolate linearly between reference values, so PSI is invariant only under
    # affine maps, and bitwise only when the arithmetic is exact: scaling by powers of two.
    for transform in (lambda v: 4 * v, lambda v: v / 2):
        moved = numeric_stats(numeric_profile(transform(reference)), transform(current))
        assert moved.psi == base.psi
        assert moved.js_distance == base.js_distance


@PROPS
@given(reference=with_missing, current=with_missing)
def test_property_missing_values_mixed_in(reference, current):
    """NaN and inf anywhere: statistics equal those of the finite values, or insufficient_data."""
    stats = numeric_stats(numeric_profile(reference), current)
    ref_finite, cur_finite = reference[np.isfinite(reference)], current[np.isfinite(current)]
    if current.size:
        assert stats.missing_share == pytest.approx(1 - cur_finite.size / current.size)
    if ref_finite.size == 0 or cur_finite.size == 0:
        assert stats.status == "insufficient_data"
        assert stats.psi is None and stats.ks_statistic is None and stats.js_distance is None
        return
    clean = numeric_stats(numeric_profile(ref_finite), cur_finite)
    assert (stats.psi, stats.ks_statistic, stats.ks_pvalue, stats.js_distance, stats.wasserstein) == (
        clean.psi,
        clean.ks_statistic,
        clean.ks_pvalue,
        clean.js_distance,
        clean.wasserstein,
    )
    assert stats.ks_statistic == pytest.approx(scipy_ks(ref_finite, cur_finite).statistic, abs=1e-12)


categories = st.lists(st.sampled_from(["a", "b", "c", "d", None, float("nan")]), max_size=40)


@PROPS
@given(reference=categories, current=categories)
def test_property_categorical_matches_reference(reference, current):
    """Categorical PSI, chi-square and new categories match the Counter-based reference, or insufficient."""
    union, r_counts, c_counts = ref_categorical(reference, current)
    profile = categorical_profile(np.array(reference, dtype=object))
    stats = categorical_stats(profile, current)
    if sum(r_counts) == 0 or sum(c_counts) == 0:
        assert stats.status == "insufficient_data"
        assert stats.psi is None and stats.chi2_pvalue is None
        return
    assert stats.psi == pytest.approx(ref_psi(r_counts, c_counts), rel=1e-12, abs=1e-15)
    assert stats.psi >= 0
    expected = scipy.stats.chi2_contingency(np.array([r_counts, c_counts]))
    assert stats.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    new = {k: n / sum(c_counts) for k, r, n in zip(union, r_counts, c_counts, strict=True) if r == 0}
    assert dict(stats.new_categories) == pytest.approx(new)


@PROPS
@given(values=st.lists(st.sampled_from(["a", "b", "c", None]), max_size=60), cuts=st.lists(st.integers(0, 60)))
def test_property_chunked_category_counts_equal_whole(values, cuts):
    """Any chunking of a categorical column merges back to the whole column's counts."""
    array = np.array(values, dtype=object)
    bounds = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
    parts = [category_counts(array[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
    merged, whole = merge_category_counts(parts), category_counts(array)
    assert (dict(merged.counts), merged.rows, merged.missing) == (dict(whole.counts), whole.rows, whole.missing)


@PROPS
@given(reference=integer_floats, values=integer_floats, cuts=st.lists(st.integers(0, 40)))
def test_property_chunked_bin_counts_equal_whole(reference, values, cuts):
    """Any chunking of a numeric batch: per-chunk bin counts add up to the whole batch's."""
    edges = numeric_profile(reference).edges
    bounds = [0, *sorted(c for c in cuts if c <= len(values)), len(values)]
    total = np.zeros(edges.size + 1, dtype=np.int64)
    for a, b in zip(bounds, bounds[1:], strict=False):
        total += bin_counts(np.sort(values[a:b]), edges)
    assert total.tolist() == bin_counts(np.sort(values), edges).tolist() == ref_counts(values, edges.tolist())


# --------------------------------------------------------------------------------------------------
# KS and Wasserstein from mergeable counts (grid, fine cells, crossing values) agree with scipy
# --------------------------------------------------------------------------------------------------

from driftwatch.core import partials  # noqa: E402
from driftwatch.core.compare import compare  # noqa: E402
from driftwatch.core.profile import GRID_SIZE, reference_grid  # noqa: E402
from driftwatch.runtime.stats_pool import stats_executor  # noqa: E402


def with_grid(reference: np.ndarray, size: int = GRID_SIZE) -> NumericProfile:
    """The numeric profile of `reference` with a grid of `size` points (small grids: much refinement)."""
    profile = numeric_profile(reference)
    profile.__dict__["grid"] = reference_grid(profile.sorted_values, size)  # the cached property, preset
    return profile


def counted(feature: NumericProfile, chunks: list[np.ndarray]) -> partials.Job:
    """Every pass of the partials over `chunks` of raw values of one feature."""
    profile = Profile({feature.name: feature}, ProfileSettings(), feature.rows, "")
    return partials.count_window(profile, [{feature.name: chunk} for chunk in chunks])


def ks_and_w(reference: np.ndarray, current: np.ndarray, size: int = GRID_SIZE, parts: int = 1) -> tuple[float, float]:
    """(KS, Wasserstein) from the partials of `current` cut into `parts` chunks, with a grid of `size` points."""
    feature = with_grid(reference, size)
    job = counted(feature, np.array_split(current, parts))
    state, n = job.numeric[feature.name], feature.sorted_values.size
    high, low, wasserstein = partials._extremes_and_wasserstein(feature.grid, state, n, state.grid.finite)
    return ks_test(high, low, n, state.grid.finite)[0], wasserstein


def _signed_zeros(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.choice(np.array([-0.0, 0.0, 1.0, -1.0, 2.5]), n)
    return values


def _mostly_one_value(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.9, 3.0, rng.normal(3.0, 1.0, n))


SMALL_CASES = [
    pytest.param(_normal(20_000), _normal(100, 0.2, 1), id="small-batch-continuous"),
    pytest.param(_normal(20_000), _normal(20_000, 0.01, 1), id="equal-sizes"),
    pytest.param(_ints(20_000, 7), _ints(50, 9, 1), id="small-batch-integer-ties"),
    pytest.param(_ints(5_000, 7), _ints(5_000, 7, 1), id="equal-sizes-integer-ties"),
    pytest.param(_zero_inflated(10_000, 0.6), _zero_inflated(300, 0.3, 1), id="many-zeros"),
    pytest.param(_signed_zeros(3_000, 0), _signed_zeros(40, 1), id="signed-zeros-small"),
    pytest.param(_signed_zeros(3_000, 0), _signed_zeros(3_000, 1), id="signed-zeros-equal"),
    pytest.param(np.full(1_000, -0.0), np.full(10, 0.0), id="minus-zero-vs-zero"),
    pytest.param(_normal(10_000) + 1e6, _normal(100, 0.1, 1) + 1e6, id="large-offset"),
    pytest.param(np.exp(_normal(10_000)), np.exp(_normal(200, 0.3, 1)), id="skewed"),
    pytest.param(_normal(5_000), _normal(30, 9.0, 1), id="batch-above-reference"),
    pytest.param(_normal(5_000), _normal(30, -9.0, 1), id="batch-below-reference"),
    pytest.param(_normal(5_000), np.array([0.0]), id="one-value-batch"),
    pytest.param(np.array([1.0, 1.0, 2.0, 3.0]), np.array([1.0]), id="tiny"),
    pytest.param(np.array([3.0]), np.array([1.0, 3.0, 5.0]), id="single-reference-value"),
    pytest.param(np.full(400, 2.0), np.array([2.0, 2.0]), id="constant-equal"),
    pytest.param(_ints(101, 100).astype(float), np.random.default_rng(3).uniform(0, 100, 5_000), id="discrete-vs-cont"),
]

LARGE_CASES = [
    pytest.param(_normal(200_000), _normal(150_000, 0.0, 1), id="undrifted"),
    pytest.param(_normal(200_000), _normal(150_000, 0.05, 1), id="drifted"),
    pytest.param(_normal(200_000), _normal(150_000, 0.0, 1) * 1.3, id="scaled"),
    pytest.param(np.round(_normal(200_000), 1), np.round(_normal(150_000, 0.02, 1), 1), id="rounded-ties"),
    pytest.param(_zero_inflated(200_000, 0.6), _zero_inflated(150_000, 0.5, 1), id="many-zeros"),
    pytest.param(_mostly_one_value(200_000, 0), _mostly_one_value(150_000, 1), id="mostly-one-value"),
    pytest.param(_mostly_one_value(200_000, 0), _normal(150_000, 3.0, 1), id="one-value-vs-spread"),
    pytest.param(_normal(200_000), _normal(150_000, 9.0, 1), id="batch-above-reference"),
    pytest.param(_normal(200_000), _normal(150_000, -9.0, 1), id="batch-below-reference"),
    pytest.param(_normal(200_000), _normal(200_000), id="batch-equals-reference"),
    pytest.param(_signed_zeros(200_000, 0), _signed_zeros(150_000, 1), id="signed-zeros"),
    pytest.param(np.full(50_000, -0.0), np.full(60_000, 0.0), id="minus-zero-vs-zero"),
    pytest.param(_normal(200_000) + 1e6, _normal(150_000, 0.0, 1) + 1e6, id="large-offset"),
    pytest.param(_normal(200_000) + 1e6, _normal(150_000, 0.01, 1) + 1e6, id="large-offset-drifted"),
    pytest.param(np.exp(_normal(200_000)), np.exp(_normal(150_000, 0.02, 1)), id="skewed"),
    pytest.param(_ints(200_000, 7), _ints(150_000, 7, 1), id="integer-ties"),
]


@pytest.mark.parametrize(("reference", "current"), SMALL_CASES + LARGE_CASES)
@pytest.mark.parametrize(
    ("size", "parts"), [(GRID_SIZE, 1), (64, 3), (2, 7)], ids=["grid", "grid-64-3-chunks", "grid-2"]
)
def test_counts_give_scipys_ks_and_wasserstein(reference, current, size, parts):
    """From the counts of any chunking and grid: scipy's KS statistic bit for bit, Wasserstein to 1e-12 relative."""
    statistic, wasserstein = ks_and_w(reference, current, size, parts)
    assert statistic == scipy_ks(reference, current).statistic
    expected = scipy.stats.wasserstein_distance(reference, current)
    scale = max(1.0, float(np.max(np.abs(np.concatenate((reference, current))))))
    assert wasserstein == pytest.approx(expected, rel=1e-12, abs=1e-15 * scale)


def test_identical_samples_are_exactly_zero():
    """A batch equal to the reference gives KS == 0.0 and Wasserstein == 0.0 exactly, whatever the grid."""
    values = np.concatenate((_normal(100_000), _ints(50_000, 3), [-0.0, 0.0, 0.0]))
    for size, parts in ((GRID_SIZE, 1), (16, 4), (2, 9)):
        assert ks_and_w(values, values.copy(), size, parts) == (0.0, 0.0)


def test_refinement_stays_small_for_a_drifted_batch():
    """Against a drifted batch pass 2 counts at few reference values and pass 3 sees few batch values."""
    reference, current = _normal(200_000), _normal(150_000, 0.2, 1)
    feature = with_grid(reference)
    state = counted(feature, [current]).numeric["x"]
    assert state.cells is not None and state.crossings is not None
    assert state.cells.points.size < 0.05 * reference.size
    assert int(np.sum(state.crossings.counts)) < 0.01 * current.size


def test_near_identical_batch_is_capped_at_the_reference_cells():
    """The worst case (a batch from the reference's own distribution): at most 2k + 1 counts, no raw values."""
    reference, current = _normal(50_000), _normal(50_000, 0.0, 1)
    feature = with_grid(reference, 64)
    state = counted(feature, np.array_split(current, 5)).numeric["x"]
    assert state.cells is not None and state.cells.left.size <= 2 * reference.size + 1
    crossing_values = 0 if state.crossings is None else int(np.sum(state.crossings.counts))
    assert crossing_values < 0.05 * current.size


signed = st.lists(st.sampled_from([-0.0, 0.0, 1.0, -2.0, 3.5]), min_size=1, max_size=30).map(
    lambda xs: np.array(xs, dtype=float)
)


@PROPS
@given(
    reference=st.one_of(samples, signed),
    current=st.one_of(samples, signed),
    size=st.sampled_from([2, 3, 4, 8, GRID_SIZE]),
    parts=st.integers(1, 5),
)
def test_property_counts_match_scipy(reference, current, size, parts):
    """For any pair, grid and chunking the counts give scipy's KS exactly and its Wasserstein to 1e-12."""
    expected_w = scipy.stats.wasserstein_distance(reference, current)
    scale = max(1.0, float(np.max(np.abs(np.concatenate((reference, current))))))
    statistic, wasserstein = ks_and_w(reference, current, size, parts)
    assert statistic == scipy_ks(reference, current).statistic
    assert wasserstein == pytest.approx(expected_w, rel=1e-12, abs=1e-12 * scale)


def test_category_counts_of_numeric_and_boolean_arrays():
    """Numeric arrays count natively with the same labels as objects: whole floats as ints, NaN missing."""
    floats = category_counts(np.array([1.0, 1.0, 2.5, np.nan, -0.0, 0.0, 3.0]))
    assert dict(floats.counts) == {"0": 2, "1": 2, "2.5": 1, "3": 1}
    assert (floats.rows, floats.missing) == (7, 1)
    objects = category_counts(np.array([1, 1.0, 2.5, None, -0.0, 0, 3.0], dtype=object))
    assert dict(objects.counts) == dict(floats.counts)
    assert dict(category_counts(np.array([3, 1, 3])).counts) == {"1": 1, "3": 2}
    assert dict(category_counts(np.array([True, False, True])).counts) == {"False": 1, "True": 2}


def test_category_counts_of_lists_and_pandas_columns():
    """A list keeps its objects (NaN stays missing), Categorical drops unobserved levels, Series count."""
    listed = category_counts(["a", float("nan"), "b", "a", None])
    assert (dict(listed.counts), listed.rows, listed.missing) == ({"a": 2, "b": 1}, 5, 2)
    levels = pd.Series(pd.Categorical(["a", "b", None, "a"], categories=["a", "b", "z"]))
    counted = category_counts(levels)
    assert (dict(counted.counts), counted.rows, counted.missing) == ({"a": 2, "b": 1}, 4, 1)
    strings = category_counts(pd.Series(["x", None, "y", "x"], dtype="string"))
    assert (dict(strings.counts), strings.missing) == ({"x": 2, "y": 1}, 1)


def test_compare_on_a_pool_matches_one_thread_in_profile_order():
    """On a thread pool (largest feature first) compare gives the same report, in profile order, as on one thread."""
    rng = np.random.default_rng(11)
    labels = np.array(["a", "b", "c"], dtype=object)
    reference = {"small": rng.normal(size=300), "big": rng.normal(size=150_000), "c": labels[rng.integers(0, 3, 900)]}
    batch = {"small": rng.normal(size=50), "big": rng.normal(0.1, 1, 150_000), "c": labels[rng.integers(0, 3, 90)]}
    profile = build_profile(reference, numeric=["small", "big"], categorical=["c"])
    pooled, single = compare(profile, batch, executor=stats_executor()), compare(profile, batch)
    assert [r.name for r in pooled.features] == ["small", "big", "c"]
    assert pooled.to_dict() == single.to_dict()


def test_reference_grid_counts_and_gap_sums():
    """Grid points are distinct reference values (minimum and maximum included) with exact counts and sums."""
    values = np.sort(np.concatenate((_ints(5_000, 20), _normal(3_000) * 4)))
    grid = reference_grid(values, 37)
    assert 2 <= grid.points.size <= 37
    assert np.all(np.diff(grid.points) > 0) and np.isin(grid.points, values).all()
    assert grid.points[0] == values[0] and grid.points[-1] == values[-1]
    assert grid.upto.tolist() == [int(np.sum(values <= p)) for p in grid.points]
    assert grid.below.tolist() == [int(np.sum(values < p)) for p in grid.points]
    pairs = zip(grid.points[:-1], grid.points[1:], strict=True)
    expected = [math.fsum(b - x for x in values if a < x < b) for a, b in pairs]
    np.testing.assert_allclose(grid.gap_sums, expected, rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="read-only"):
        grid.points[0] = 1.0
    single = reference_grid(np.array([2.0]), 8)
    assert (single.points.tolist(), single.upto.tolist(), single.gap_sums.size) == ([2.0], [1], 0)


# --------------------------------------------------------------------------------------------------------------
# KS D is scipy's to the last bit, and a D exactly on a threshold breaches it
# --------------------------------------------------------------------------------------------------------------

_TIED = st.lists(st.integers(0, 6), min_size=1, max_size=300)


@settings(max_examples=300, deadline=None)
@given(reference=_TIED, current=_TIED)
def test_property_ks_statistic_on_tied_integers_is_scipys_exactly(reference: list[int], current: list[int]) -> None:
    """On tied integer data (where D is a small fraction) the statistic is scipy's bit for bit: ==, not approx."""
    with warnings.catch_warnings():  # scipy's own notice that its exact p-value fell back to asymptotic
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = scipy.stats.ks_2samp(reference, current)
    got = numeric_stats(numeric_profile(np.array(reference, dtype=float)), np.array(current, dtype=float))
    assert got.ks_statistic == expected.statistic


@pytest.mark.parametrize(
    ("n", "m"), [pytest.param(12_000, 10_001, id="asymptotic"), pytest.param(3000, 700, id="exact")]
)
def test_ks_statistic_on_large_tied_samples_is_scipys_exactly(n: int, m: int) -> None:
    """Past scipy's exact method (no reduction to 1/lcm) D is still scipy's float, bit for bit."""
    rng = np.random.default_rng(n + m)
    reference, current = rng.integers(0, 9, n).astype(float), rng.integers(1, 9, m).astype(float)
    expected = scipy.stats.ks_2samp(reference, current)
    got = numeric_stats(numeric_profile(reference), current)
    assert got.ks_statistic == expected.statistic
    assert got.ks_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_a_ks_statistic_exactly_on_its_threshold_breaches_it() -> None:
    """D = 200/2000 = 0.1 (1 - 180/200 in floats is 0.09999999999999998) reaches a 0.1 threshold, as scipy's D does."""
    reference = np.zeros(2000)
    current = np.r_[np.zeros(180), np.ones(20)]
    assert 1 - 180 / 200 < 0.1  # the naive float difference would miss the threshold
    assert scipy.stats.ks_2samp(reference, current).statistic == 0.1
    profile = build_profile({"x": reference}, numeric=["x"])
    report = compare(profile, {"x": current}, Policy(thresholds={"ks_statistic": Level(0.1, 0.5)}, significance=None))
    stats = report.feature("x").stats
    assert stats.ks_statistic == 0.1
    assert report.feature("x").severity == Severity.WARNING
