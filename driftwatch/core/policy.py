"""Thresholds and the significance gate: statistics in, severities out.

A feature's severity is the highest level any of its thresholded statistics reaches, but only when the
difference is also statistically significant: its test p-value (KS for numeric, chi-square for
categorical), corrected across the features of one run, must be below `Significance.alpha`. Drift is
thus "material AND significant": big batches do not alarm on immaterial shifts (p-values alone would),
small batches do not alarm on sampling noise (PSI and D alone would).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from driftwatch.core.report import FeatureResult, FeatureStats, Report, Severity

Correction = Literal["bh", "bonferroni", "none"]

#: Statistics that may carry thresholds, and whether a LOWER value is worse (p-values) or a higher one.
LOWER_IS_WORSE: Mapping[str, bool] = MappingProxyType(
    {
        "psi": False,
        "ks_statistic": False,
        "ks_pvalue": True,
        "chi2_pvalue": True,
        "js_distance": False,
        "wasserstein": False,
        "missing_share": False,
    }
)


@dataclass(frozen=True)
class Level:
    """Warning and critical levels of one statistic."""

    warning: float
    critical: float


@dataclass(frozen=True)
class Significance:
    """The significance gate: corrected test p-value must be below `alpha`."""

    alpha: float = 0.01
    correction: Correction = "bh"


DEFAULT_THRESHOLDS: Mapping[str, Level] = MappingProxyType({"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2)})
DEFAULT_DRIFT_SHARE = Level(0.3, 0.5)


@dataclass(frozen=True)
class Policy:
    """How statistics become severities. A threshold applies to every feature that has that statistic;
    `feature_thresholds` (e.g. calibrated ones, `driftwatch.core.calibration`) replace some of them per feature."""

    thresholds: Mapping[str, Level] = field(default_factory=lambda: DEFAULT_THRESHOLDS)
    drift_share: Level = DEFAULT_DRIFT_SHARE
    significance: Significance | None = field(default_factory=Significance)
    feature_thresholds: Mapping[str, Mapping[str, Level]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for levels in (self.thresholds, *self.feature_thresholds.values()):
            for name, level in levels.items():
                if name not in LOWER_IS_WORSE:
                    raise ValueError(f"no statistic named {name!r}; known: {', '.join(LOWER_IS_WORSE)}")
                check_level(name, level)
        check_level("drift_share", self.drift_share)

    def levels_for(self, feature: str | None) -> Mapping[str, Level]:
        """The thresholds that apply to `feature`: the common ones, with its own in their place."""
        own = self.feature_thresholds.get(feature) if feature is not None else None
        return {**self.thresholds, **own} if own else self.thresholds


def check_level(name: str, level: Level) -> None:
    """Raise ValueError unless critical lies at or beyond warning in the worse direction."""
    if LOWER_IS_WORSE.get(name, False):
        if level.critical > level.warning:
            raise ValueError(f"critical ({level.critical:g}) must be <= warning ({level.warning:g})")
    elif level.critical < level.warning:
        raise ValueError(f"critical ({level.critical:g}) must be >= warning ({level.warning:g})")


def adjust_pvalues(pvalues: Sequence[float], correction: Correction) -> np.ndarray:
    """P-values corrected for multiple testing: Benjamini-Hochberg, Bonferroni or none."""
    p = np.asarray(pvalues, dtype=np.float64)
    k = p.size
    if k == 0 or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * k, 1.0)
    order = np.argsort(p)
    scaled = p[order] * k / np.arange(1, k + 1)
    monotone = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(k)
    adjusted[order] = np.minimum(monotone, 1.0)
    return adjusted


def level_of(name: str, value: float | None, level: Level) -> Severity:
    """The severity that `value` of statistic `name` reaches against `level`."""
    if value is None or not np.isfinite(value):
        return Severity.OK
    if LOWER_IS_WORSE[name]:
        if value <= level.critical:
            return Severity.CRITICAL
        return Severity.WARNING if value <= level.warning else Severity.OK
    if value >= level.critical:
        return Severity.CRITICAL
    return Severity.WARNING if value >= level.warning else Severity.OK


def evaluate(stats: Sequence[FeatureStats], policy: Policy) -> tuple[FeatureResult, ...]:
    """Severity of each feature under `policy`, with the significance gate across the features given."""
    tested = [i for i, s in enumerate(stats) if s.status == "ok" and s.test_pvalue is not None]
    adjusted: dict[int, float] = {}
    if policy.significance is not None and tested:
        values = adjust_pvalues([float(stats[i].test_pvalue or 0.0) for i in tested], policy.significance.correction)
        adjusted = dict(zip(tested, (float(v) for v in values), strict=True))
    results = []
    for i, s in enumerate(stats):
        if s.status != "ok":
            results.append(FeatureResult(s, Severity.OK, None, False))
            continue
        levels = policy.levels_for(s.name)
        breaches = {
            name: sev
            for name, level in levels.items()
            if (sev := level_of(name, getattr(s, name), level)) > Severity.OK
        }
        if policy.significance is None:
            significant, adj = True, None
        else:
            adj = adjusted.get(i)
            significant = adj is not None and adj < policy.significance.alpha
        severity = max(breaches.values(), default=Severity.OK) if significant else Severity.OK
        applied = {
            name: (level.warning, level.critical) for name, level in levels.items() if getattr(s, name) is not None
        }
        results.append(FeatureResult(s, severity, adj, significant, breaches, applied))
    return tuple(results)


def summarise(results: Sequence[FeatureResult], policy: Policy, *, reference_rows: int, current_rows: int) -> Report:
    """The dataset-level report: drift share and overall severity (worst feature or drift share level)."""
    judged = [r for r in results if r.stats.status == "ok"]
    if not judged:
        return Report(
            tuple(results),
            reference_rows,
            current_rows,
            "insufficient_data",
            Severity.OK,
            None,
            reason="no feature has usable values in this batch",
        )
    drifted = sum(1 for r in judged if r.severity >= Severity.WARNING)
    share = drifted / len(judged)
    worst = max(r.severity for r in judged)
    severity = max(worst, level_of_share(share, policy.drift_share))
    return Report(tuple(results), reference_rows, current_rows, "ok", severity, share)


def level_of_share(share: float, level: Level) -> Severity:
    """The severity a drift share reaches (higher is worse)."""
    if share >= level.critical and share > 0:
        return Severity.CRITICAL
    if share >= level.warning and share > 0:
        return Severity.WARNING
    return Severity.OK
