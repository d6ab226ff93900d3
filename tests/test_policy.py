"""Thresholds, the significance gate, drift share, and the compare() report end to end."""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.core import Level, Policy, Severity, Significance, build_profile, compare
from driftwatch.core.policy import adjust_pvalues, check_level, evaluate, summarise
from driftwatch.core.report import FeatureStats

#: A caller-owned pool, as the daemon passes its own to compare().
POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="test-stats")

# --------------------------------------------------------------------------------------------------
# Multiple-testing correction
# --------------------------------------------------------------------------------------------------

PVALUES = [
    pytest.param([0.01], id="single"),
    pytest.param([0.01, 0.04, 0.03, 0.2], id="unsorted"),
    pytest.param([0.02, 0.02, 0.02], id="ties"),
    pytest.param([1e-12, 0.5, 0.999, 1.0, 1.0], id="extremes"),
    pytest.param([0.9, 0.8, 0.95], id="all-large-capped"),
    pytest.param(np.random.default_rng(1).random(40).tolist(), id="random-40"),
    pytest.param(np.random.default_rng(2).random(25).tolist() * 2, id="random-duplicated"),
]


@pytest.mark.parametrize("pvalues", PVALUES)
def test_bh_matches_scipy(pvalues):
    """Benjamini-Hochberg equals scipy.stats.false_discovery_control(method='bh'), in input order."""
    expected = scipy.stats.false_discovery_control(pvalues, method="bh")
    np.testing.assert_allclose(adjust_pvalues(pvalues, "bh"), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("pvalues", PVALUES)
def test_bonferroni_and_none(pvalues):
    """Bonferroni is min(1, p * k); 'none' returns the p-values unchanged."""
    p = np.asarray(pvalues)
    np.testing.assert_allclose(adjust_pvalues(pvalues, "bonferroni"), np.minimum(1.0, p * p.size), rtol=1e-15)
    np.testing.assert_array_equal(adjust_pvalues(pvalues, "none"), p)


@pytest.mark.parametrize("correction", ["bh", "bonferroni", "none"])
def test_adjust_empty(correction):
    """No p-values give no adjusted p-values."""
    assert adjust_pvalues([], correction).size == 0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30))
def test_property_bh_matches_scipy(pvalues):
    """For any p-values, BH equals scipy's and lies between p and 1."""
    adjusted = adjust_pvalues(pvalues, "bh")
    np.testing.assert_allclose(adjusted, scipy.stats.false_discovery_control(pvalues, method="bh"), rtol=1e-12)
    assert np.all(adjusted >= np.asarray(pvalues) - 1e-15)
    assert np.all(adjusted <= 1.0)


# --------------------------------------------------------------------------------------------------
# Feature severity: thresholds and the significance gate
# --------------------------------------------------------------------------------------------------


def numeric(name: str = "x", *, psi: float = 0.0, ks: float = 0.0, p: float = 0.5, **extra: float) -> FeatureStats:
    """A hand-made numeric FeatureStats."""
    return FeatureStats(name, "numeric", "ok", 1000, 0.0, psi=psi, ks_statistic=ks, ks_pvalue=p, **extra)


def categorical(name: str = "c", *, psi: float = 0.0, p: float = 0.5) -> FeatureStats:
    """A hand-made categorical FeatureStats."""
    return FeatureStats(name, "categorical", "ok", 1000, 0.0, psi=psi, chi2_statistic=1.0, chi2_pvalue=p)


def insufficient(name: str = "gone") -> FeatureStats:
    """A feature without usable values."""
    return FeatureStats(name, "numeric", "insufficient_data", 10, 1.0)


PSI_ONLY = {"psi": Level(0.1, 0.25)}
UNCORRECTED = Significance(alpha=0.01, correction="none")


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        pytest.param(numeric(psi=0.3, p=0.001), Severity.CRITICAL, id="critical"),
        pytest.param(numeric(psi=0.25, p=0.001), Severity.CRITICAL, id="critical-at-level"),
        pytest.param(numeric(psi=0.15, p=0.001), Severity.WARNING, id="warning"),
        pytest.param(numeric(psi=0.1, p=0.001), Severity.WARNING, id="warning-at-level"),
        pytest.param(numeric(psi=0.05, p=0.001), Severity.OK, id="below"),
        pytest.param(numeric(psi=0.3, p=0.02), Severity.OK, id="not-significant"),
        pytest.param(numeric(psi=0.3, p=0.01), Severity.OK, id="p-equal-alpha-not-significant"),
        pytest.param(numeric(psi=0.3, p=0.0099), Severity.CRITICAL, id="p-just-below-alpha"),
        pytest.param(categorical(psi=0.3, p=0.001), Severity.CRITICAL, id="categorical-chi2-gate"),
        pytest.param(categorical(psi=0.3, p=0.5), Severity.OK, id="categorical-not-significant"),
    ],
)
def test_severity_needs_threshold_and_significance(stats, expected):
    """Severity is the threshold level reached, only when the corrected p-value is below alpha."""
    (result,) = evaluate([stats], Policy(thresholds=PSI_ONLY, significance=UNCORRECTED))
    assert result.severity == expected
    assert result.significant == (stats.test_pvalue < 0.01)
    assert result.adjusted_pvalue == stats.test_pvalue


def test_breaches_recorded_even_when_not_significant():
    """A threshold breach is reported in breaches even when the gate keeps severity at ok."""
    (result,) = evaluate([numeric(psi=0.3, p=0.5)], Policy(thresholds=PSI_ONLY, significance=UNCORRECTED))
    assert result.severity == Severity.OK
    assert dict(result.breaches) == {"psi": Severity.CRITICAL}


def test_highest_level_of_any_statistic():
    """A feature's severity is the highest level over all its thresholded statistics."""
    policy = Policy(thresholds={"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2)}, significance=UNCORRECTED)
    (result,) = evaluate([numeric(psi=0.12, ks=0.5, p=1e-9)], policy)
    assert result.severity == Severity.CRITICAL
    assert dict(result.breaches) == {"psi": Severity.WARNING, "ks_statistic": Severity.CRITICAL}


def test_significance_none_disables_gate():
    """With significance None thresholds alone decide, whatever the p-value."""
    (result,) = evaluate([numeric(psi=0.3, p=0.9)], Policy(thresholds=PSI_ONLY, significance=None))
    assert result.severity == Severity.CRITICAL
    assert result.adjusted_pvalue is None


@pytest.mark.parametrize(
    ("pvalue", "expected"),
    [
        pytest.param(0.2, Severity.OK, id="high-p-ok"),
        pytest.param(0.05, Severity.WARNING, id="at-warning"),
        pytest.param(0.01, Severity.WARNING, id="between"),
        pytest.param(0.001, Severity.CRITICAL, id="at-critical"),
        pytest.param(1e-9, Severity.CRITICAL, id="tiny"),
    ],
)
def test_pvalue_thresholds_lower_is_worse(pvalue, expected):
    """A p-value threshold is breached by values at or below its levels."""
    policy = Policy(thresholds={"ks_pvalue": Level(0.05, 0.001)}, significance=None)
    (result,) = evaluate([numeric(p=pvalue)], policy)
    assert result.severity == expected


def test_correction_across_features():
    """The gate uses p-values corrected across the run's tested features (insufficient ones excluded)."""
    stats = [numeric("a", psi=0.3, p=0.008), numeric("b", psi=0.3, p=0.008), insufficient()]
    bonferroni = evaluate(stats, Policy(thresholds=PSI_ONLY, significance=Significance(0.01, "bonferroni")))
    assert [r.severity for r in bonferroni] == [Severity.OK, Severity.OK, Severity.OK]
    assert bonferroni[0].adjusted_pvalue == pytest.approx(0.016)
    assert bonferroni[2].adjusted_pvalue is None
    uncorrected = evaluate(stats, Policy(thresholds=PSI_ONLY, significance=UNCORRECTED))
    assert [r.severity for r in uncorrected[:2]] == [Severity.CRITICAL, Severity.CRITICAL]
    alone = evaluate([stats[0], stats[2]], Policy(thresholds=PSI_ONLY, significance=Significance(0.01, "bonferroni")))
    assert alone[0].severity == Severity.CRITICAL


def test_bh_gate():
    """Under BH, p-values (0.001, 0.009, 0.5) adjust to (0.003, 0.0135, 0.5): only the first passes 0.01."""
    stats = [numeric("a", psi=0.3, p=0.001), numeric("b", psi=0.3, p=0.009), numeric("c", psi=0.3, p=0.5)]
    results = evaluate(stats, Policy(thresholds=PSI_ONLY, significance=Significance(0.01, "bh")))
    assert [r.adjusted_pvalue for r in results] == pytest.approx([0.003, 0.0135, 0.5])
    assert [r.severity for r in results] == [Severity.CRITICAL, Severity.OK, Severity.OK]


@pytest.mark.parametrize(
    ("name", "level"),
    [
        pytest.param("psi", Level(0.25, 0.1), id="higher-is-worse-inverted"),
        pytest.param("ks_pvalue", Level(0.001, 0.05), id="pvalue-inverted"),
        pytest.param("chi2_pvalue", Level(0.01, 0.02), id="chi2-pvalue-inverted"),
        pytest.param("drift_share", Level(0.5, 0.3), id="drift-share-inverted"),
    ],
)
def test_check_level_ordering_errors(name, level):
    """Critical must be at or beyond warning in the worse direction."""
    with pytest.raises(ValueError, match="critical"):
        check_level(name, level)


@pytest.mark.parametrize(
    ("name", "level"),
    [
        pytest.param("psi", Level(0.1, 0.1), id="equal"),
        pytest.param("psi", Level(0.1, 0.25), id="higher"),
        pytest.param("ks_pvalue", Level(0.05, 0.001), id="pvalue-lower"),
    ],
)
def test_check_level_accepts_valid(name, level):
    """Properly ordered levels are accepted."""
    check_level(name, level)


def test_policy_validates_thresholds():
    """Policy refuses unknown statistics and misordered levels with ValueError."""
    with pytest.raises(ValueError, match="no statistic named"):
        Policy(thresholds={"kurtosis": Level(1, 2)})
    with pytest.raises(ValueError):
        Policy(thresholds={"psi": Level(0.3, 0.1)})
    with pytest.raises(ValueError):
        Policy(drift_share=Level(0.6, 0.2))


# --------------------------------------------------------------------------------------------------
# Dataset level: drift share and overall severity
# --------------------------------------------------------------------------------------------------


def _summary(stats: list[FeatureStats], policy: Policy):
    return summarise(evaluate(stats, policy), policy, reference_rows=1000, current_rows=1000)


@pytest.mark.parametrize(
    ("psis", "share", "expected"),
    [
        pytest.param([0.0, 0.0, 0.0, 0.0], 0.0, Severity.OK, id="none-drifted"),
        pytest.param([0.15, 0.0, 0.0, 0.0], 0.25, Severity.WARNING, id="worst-feature-warning"),
        pytest.param([0.3, 0.0, 0.0, 0.0], 0.25, Severity.CRITICAL, id="worst-feature-critical"),
        pytest.param([0.15, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.2, Severity.WARNING, id="share-low"),
        pytest.param([0.15, 0.15, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.3, Severity.WARNING, id="share-warning"),
        pytest.param([0.15, 0.15, 0.0, 0.0], 0.5, Severity.CRITICAL, id="share-critical-beats-worst"),
    ],
)
def test_drift_share_and_dataset_severity(psis, share, expected):
    """Dataset severity is the max of the worst feature and the drift-share level."""
    stats = [numeric(f"f{i}", psi=v, p=1e-6) for i, v in enumerate(psis)]
    report = _summary(stats, Policy(thresholds=PSI_ONLY, significance=None))
    assert report.status == "ok"
    assert report.drift_share == pytest.approx(share)
    assert report.severity == expected


def test_drift_share_ignores_insufficient_features():
    """Features without usable values are left out of the drift share's denominator."""
    stats = [numeric("a", psi=0.15), numeric("b"), insufficient("c"), insufficient("d")]
    report = _summary(stats, Policy(thresholds=PSI_ONLY, significance=None))
    assert report.drift_share == 0.5
    assert report.severity == Severity.CRITICAL


def test_all_features_insufficient():
    """When no feature has usable values the report is insufficient_data with drift_share None."""
    report = _summary([insufficient("a"), insufficient("b")], Policy())
    assert report.status == "insufficient_data"
    assert report.drift_share is None
    assert report.severity == Severity.OK
    assert all(r.severity == Severity.OK for r in report.features)


# --------------------------------------------------------------------------------------------------
# compare(): end to end, large-sample honesty, thread pool, errors, JSON
# --------------------------------------------------------------------------------------------------


def _compare_one(reference: np.ndarray, current: np.ndarray):
    profile = build_profile({"x": reference}, numeric=["x"])
    return compare(profile, {"x": current})


def test_large_samples_immaterial_shift_is_ok():
    """200k vs 200k rows with a 0.02 sigma shift: KS p-value tiny, but severity ok (immaterial)."""
    rng = np.random.default_rng(21)
    report = _compare_one(rng.normal(0, 1, 200_000), rng.normal(0.02, 1, 200_000))
    result = report.feature("x")
    assert result.stats.ks_pvalue < 1e-3
    assert result.significant
    assert result.severity == Severity.OK
    assert report.severity == Severity.OK


def test_small_batches_from_reference_rarely_warn():
    """Batches of 100 rows from the reference distribution warn in at most 2 of 50 seeds."""
    reference = np.random.default_rng(0).normal(0, 1, 20_000)
    profile = build_profile({"x": reference}, numeric=["x"])
    warned = 0
    psi_over_threshold = 0
    for seed in range(1, 51):
        report = compare(profile, {"x": np.random.default_rng(seed).normal(0, 1, 100)})
        warned += report.severity >= Severity.WARNING
        psi_over_threshold += report.feature("x").stats.psi >= 0.1
    assert warned <= 2
    assert psi_over_threshold > warned, "the gate, not luck, should be what keeps these quiet"


def test_material_shift_is_critical():
    """A 0.6 sigma shift at 10k rows is critical."""
    rng = np.random.default_rng(22)
    report = _compare_one(rng.normal(0, 1, 10_000), rng.normal(0.6, 1, 10_000))
    assert report.feature("x").severity == Severity.CRITICAL
    assert report.severity == Severity.CRITICAL


def _mixed(seed: int, rows: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(shift, 1, rows)
    a[::17] = np.nan
    return {
        "a": a,
        "b": rng.integers(0, 6, rows).astype(float) + (shift > 0),
        "c": rng.choice(np.array(["x", "y", "z", None], dtype=object), rows),
        "d": rng.exponential(1 + shift, rows),
        "e": np.full(rows, np.nan),
    }


def _mixed_profile():
    return build_profile(_mixed(1, 3000), numeric=["a", "b", "d", "e"], categorical=["c"])


def test_pool_gives_identical_reports():
    """compare on the calling thread and on a thread pool gives the same report."""
    profile, batch = _mixed_profile(), _mixed(2, 800, shift=0.3)
    one = compare(profile, batch)
    two = compare(profile, batch, executor=POOL)
    assert one == two
    assert one.to_dict() == two.to_dict()
    assert [r.name for r in one.features] == ["a", "b", "d", "e", "c"]


def test_compare_threads_leave_warning_filters_alone():
    """compare on a thread pool leaves the process-wide warning filters exactly as they were."""
    rng = np.random.default_rng(5)
    columns = {f"f{i}": rng.normal(size=2000) for i in range(8)}
    profile = build_profile(columns, numeric=list(columns))
    batch = {name: rng.normal(size=500) for name in columns}
    with warnings.catch_warnings():  # restores the filters for the rest of the session whatever happens
        before = list(warnings.filters)
        for _ in range(20):  # a race: each call leaks in roughly half the runs, so 20 calls make it certain
            compare(profile, batch, executor=POOL)
            assert list(warnings.filters) == before


def test_missing_batch_column_raises_key_error():
    """A profiled feature absent from the batch raises KeyError naming it."""
    batch = _mixed(2, 100)
    del batch["d"]
    with pytest.raises(KeyError, match="'d'"):
        compare(_mixed_profile(), batch)


def test_report_to_dict_is_json():
    """Report.to_dict is strict JSON with the documented keys."""
    window = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC))
    report = compare(_mixed_profile(), _mixed(2, 800, shift=0.3), monitor="m1", window=window)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["monitor"] == "m1"
    assert data["window"] == {"start": "2024-05-01T00:00:00+00:00", "end": "2024-05-02T00:00:00+00:00"}
    assert data["rows"] == {"reference": 3000, "current": 800}
    assert data["status"] == "ok"
    assert data["severity"] in ("ok", "warning", "critical")
    assert data["drift_share"] == pytest.approx(report.drift_share)
    assert set(data["features"]) == {"a", "b", "c", "d", "e"}
    keys = {
        "kind",
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "chi2_pvalue",
        "js_distance",
        "wasserstein",
        "missing_share",
        "new_categories",
        "severity",
    }
    for name, feature in data["features"].items():
        assert keys <= set(feature), name
    assert data["features"]["a"]["kind"] == "numeric"
    assert data["features"]["a"]["missing_share"] == pytest.approx(len(range(0, 800, 17)) / 800)
    assert data["features"]["c"]["kind"] == "categorical"
    assert data["features"]["c"]["ks_statistic"] is None
    assert data["features"]["e"]["psi"] is None
    assert data["features"]["e"]["status"] == "insufficient_data"


def test_insufficient_report_to_dict_is_json():
    """An all-missing batch gives an insufficient_data report that still serialises as strict JSON."""
    profile = _mixed_profile()
    batch = {name: np.full(5, None, dtype=object) for name in profile.features}
    report = compare(profile, batch, executor=POOL)
    assert report.status == "insufficient_data"
    assert report.drift_share is None
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["drift_share"] is None
    assert data["window"] == {"start": None, "end": None}
    assert all(f["psi"] is None for f in data["features"].values())
