"""Immutable result types of one comparison, and their JSON shape (the `check --format json` contract)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from driftwatch.core.health import Health

from driftwatch.core.distribution import Distribution

FeatureKind = Literal["numeric", "categorical"]
Status = Literal["ok", "insufficient_data", "no_data", "error"]


class Severity(IntEnum):
    """Drift severity; the integer is the value exported to Prometheus."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        """Lower-case name used in JSON, logs and config (`ok`, `warning`, `critical`)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """The severity named `text` (case-insensitive)."""
        return cls[text.upper()]


@dataclass(frozen=True)
class FeatureStats:
    """Drift statistics of one feature; None where a statistic does not apply or could not be computed."""

    name: str
    kind: FeatureKind
    status: Status
    rows: int
    missing_share: float | None = None
    psi: float | None = None
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    js_distance: float | None = None
    wasserstein: float | None = None
    new_categories: Mapping[str, float] = field(default_factory=dict)
    distribution: Distribution | None = None  # chart data: shares per PSI bin or per category

    @property
    def test_pvalue(self) -> float | None:
        """The p-value of this feature's two-sample test (KS for numeric, chi-square for categorical)."""
        return self.ks_pvalue if self.kind == "numeric" else self.chi2_pvalue


@dataclass(frozen=True)
class FeatureResult:
    """A feature's statistics with the verdict of the policy."""

    stats: FeatureStats
    severity: Severity
    adjusted_pvalue: float | None
    significant: bool
    breaches: Mapping[str, Severity] = field(default_factory=dict)
    thresholds: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # statistic -> (warning, critical)

    @property
    def name(self) -> str:
        return self.stats.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of this feature (the `features.NAME` object of `check --format json`)."""
        s = self.stats
        return {
            "kind": s.kind,
            "status": s.status,
            "rows": s.rows,
            "psi": _num(s.psi),
            "ks_statistic": _num(s.ks_statistic),
            "ks_pvalue": _num(s.ks_pvalue),
            "chi2_statistic": _num(s.chi2_statistic),
            "chi2_pvalue": _num(s.chi2_pvalue),
            "js_distance": _num(s.js_distance),
            "wasserstein": _num(s.wasserstein),
            "missing_share": _num(s.missing_share),
            "new_categories": {k: _num(v) for k, v in s.new_categories.items()},
            "adjusted_pvalue": _num(self.adjusted_pvalue),
            "significant": self.significant,
            "breaches": {k: v.label for k, v in self.breaches.items()},
            "thresholds": {k: {"warning": w, "critical": c} for k, (w, c) in self.thresholds.items()},
            "severity": self.severity.label,
            "distribution": s.distribution.to_dict() if s.distribution is not None else None,
        }


@dataclass(frozen=True)
class Report:
    """The outcome of comparing one batch with a reference profile."""

    features: tuple[FeatureResult, ...]
    reference_rows: int
    current_rows: int
    status: Status
    severity: Severity
    drift_share: float | None
    monitor: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    reason: str | None = None
    baseline: Mapping[str, Any] | None = None  # what the reference was: file or source window, rows, calibration
    health: Health | None = None  # the data-health signals of the run (driftwatch.core.health), if assessed

    def feature(self, name: str) -> FeatureResult:
        """The result of feature `name` (KeyError if it was not compared)."""
        for result in self.features:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of this report (one item of `monitors` in `check --format json`)."""
        return {
            "monitor": self.monitor,
            "window": {
                "start": self.window_start.isoformat() if self.window_start else None,
                "end": self.window_end.isoformat() if self.window_end else None,
            },
            "rows": {"reference": self.reference_rows, "current": self.current_rows},
            "status": self.status,
            "reason": self.reason,
            "severity": self.severity.label,
            "drift_share": _num(self.drift_share),
            "features": {r.name: r.to_dict() for r in self.features},
            "health": self.health.to_dict() if self.health is not None else None,
        } | ({"baseline": dict(self.baseline)} if self.baseline is not None else {})

    def _repr_html_(self) -> str:
        """The report as the web view's monitor page (a notebook shows it): `driftwatch.outputs.web.report_html`.

        Presentation is imported only when asked for, so the core loads no templating (the one upward import
        of the core, allowed by name in tests/test_import_edges.py).
        """
        from driftwatch.outputs.web import report_html

        return report_html(self.to_dict())


def _num(value: float | None) -> float | None:
    """A float for JSON: None stays None, non-finite values become None (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
