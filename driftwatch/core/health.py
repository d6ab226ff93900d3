"""Data-health signals: is the data there, complete, fresh and shaped like the reference? Pure decisions.

Drift asks whether the values moved; health asks whether the data arrived. Each signal has its own thresholds
and severity, independent of the drift verdict:

- `missing_share` (per feature): the current missing share minus the reference's (absolute increase). Like drift
  it must be material AND significant: the increase reaches a level only when a one-sided binomial test of the
  missing count against the reference share (`scipy.stats.binom.sf`, computed as `scipy.special.betainc`),
  corrected across the monitor's features like the drift gate, is below alpha (0.001 by default, stricter than
  drift's 0.01, so that the two together stay under 1% false-alarm runs), so a 100-row window does not alarm on
  noise.
- `volume`: the drop of the window's rows below the median rows of the last successful runs,
  `1 - rows / median` (0 when there are more rows); needs `min_runs` earlier runs.
- `freshness`: the age of the newest timestamp in the window at the window's end, in seconds.
- `schema`: a profiled column missing from the source or of another type (critical: nothing can be judged).
- `no_data`: the window had no rows, or the source matched no file (critical).

A signal that could not be evaluated in a run is absent (its alert holds); an evaluated one is present with
severity ok when healthy. A run whose health is critical, or that failed or had no data, is a *data-loss run*
(`driftwatch.core.fallback` counts them when a model switches on data loss).

>>> policy = HealthPolicy()
>>> volume_signal(40, (100, 110, 90), policy).severity.label
'warning'
>>> freshness_signal(None, datetime(2026, 1, 1, tzinfo=UTC), policy) is None
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import scipy.special

from driftwatch.core.policy import Level, Significance, adjust_pvalues, check_level
from driftwatch.core.report import FeatureStats, Severity, _num

SignalName = Literal["missing_share", "volume", "freshness", "schema", "no_data"]
SIGNALS: tuple[str, ...] = ("missing_share", "volume", "freshness", "schema", "no_data")

DEFAULT_MISSING_SHARE = Level(0.05, 0.20)
#: The missing-share gate is stricter than drift's (0.01): together they keep false alarms under 1% of runs.
DEFAULT_MISSING_ALPHA = 0.001
DEFAULT_VOLUME = Level(0.5, 0.9)
#: Default freshness levels as shares of the monitor's window (the config turns them into seconds).
DEFAULT_FRESHNESS_SHARE = Level(0.5, 0.9)


@dataclass(frozen=True)
class HealthPolicy:
    """Thresholds of the health signals; None switches a signal off.

    `missing_share`: absolute increase over the reference share; `volume`: drop share (0..1) against the median
    rows of the last `volume_runs` successful runs, evaluated once `volume_min_runs` are known; `freshness`: age
    of the newest timestamp in seconds; `schema`: whether a schema mismatch is a critical signal;
    `significance`: the gate of the missing-share increase (None: no gate; default alpha 0.001, BH).
    """

    missing_share: Level | None = DEFAULT_MISSING_SHARE
    volume: Level | None = DEFAULT_VOLUME
    volume_runs: int = 10
    volume_min_runs: int = 3
    freshness: Level | None = None
    schema: bool = True
    significance: Significance | None = field(default_factory=lambda: Significance(DEFAULT_MISSING_ALPHA))

    def __post_init__(self) -> None:
        for name, level in (("missing_share", self.missing_share), ("volume", self.volume)):
            if level is not None:
                check_level(name, level)
                if not 0 <= level.warning <= 1 or not 0 <= level.critical <= 1:
                    raise ValueError(f"{name} levels must be shares between 0 and 1")
        if self.freshness is not None:
            check_level("freshness", self.freshness)
        if not 1 <= self.volume_min_runs <= self.volume_runs:
            raise ValueError(f"volume needs 1 <= min_runs <= runs, got {self.volume_min_runs} and {self.volume_runs}")


@dataclass(frozen=True)
class HealthSignal:
    """One evaluated signal. `value`: missing-share increase, volume drop share or age in seconds (None for schema
    and no_data); `baseline`: the reference missing share or the median rows; `pvalue`: the corrected p-value of
    a missing-share increase; `level`: the thresholds it was judged against."""

    name: SignalName
    severity: Severity
    value: float | None = None
    feature: str | None = None
    baseline: float | None = None
    pvalue: float | None = None
    level: Level | None = None
    detail: str = ""

    @property
    def subject(self) -> str:
        """The feature for a per-feature signal, else "dataset"."""
        return self.feature if self.feature is not None else "dataset"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of this signal."""
        return {
            "signal": self.name,
            "feature": self.feature,
            "severity": self.severity.label,
            "value": _num(self.value),
            "baseline": _num(self.baseline),
            "pvalue": _num(self.pvalue),
            "thresholds": (
                {"warning": self.level.warning, "critical": self.level.critical} if self.level is not None else None
            ),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Health:
    """The health signals of one run; its severity is the worst signal's."""

    signals: tuple[HealthSignal, ...] = ()

    @property
    def severity(self) -> Severity:
        return max((s.severity for s in self.signals), default=Severity.OK)

    @property
    def critical(self) -> bool:
        """True when some signal is critical (the run counts as a data-loss run)."""
        return self.severity >= Severity.CRITICAL

    def signal(self, name: str, feature: str | None = None) -> HealthSignal | None:
        """The signal `name` (of `feature`), or None if it was not evaluated."""
        return next((s for s in self.signals if s.name == name and s.feature == feature), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the severity and every evaluated signal."""
        return {"severity": self.severity.label, "signals": [s.to_dict() for s in self.signals]}


def missing_signals(
    features: Sequence[FeatureStats], reference_missing: Mapping[str, float], policy: HealthPolicy
) -> tuple[HealthSignal, ...]:
    """The missing-share signal of every feature with rows and a known reference share.

    >>> from driftwatch.core.report import FeatureStats
    >>> stats = [FeatureStats("a", "numeric", "ok", 1000, missing_share=0.16)]
    >>> missing_signals(stats, {"a": 0.019}, HealthPolicy())[0].severity.label
    'warning'
    """
    level = policy.missing_share
    if level is None:
        return ()
    judged = [s for s in features if s.rows > 0 and s.missing_share is not None and s.name in reference_missing]
    raw = [_missing_pvalue(s, reference_missing[s.name]) for s in judged]
    gate = policy.significance
    adjusted = adjust_pvalues(raw, gate.correction) if gate is not None and raw else np.asarray(raw, dtype=float)
    signals = []
    for s, p in zip(judged, adjusted, strict=True):
        reference = float(reference_missing[s.name])
        increase = float(s.missing_share or 0.0) - reference
        significant = gate is None or float(p) < gate.alpha
        severity = _level(increase, level) if significant else Severity.OK
        detail = f"missing {s.missing_share:.1%} vs {reference:.1%} in the reference"
        if not significant and _level(increase, level) > Severity.OK:
            detail += f" (not significant: p={float(p):.3g})"
        signals.append(HealthSignal("missing_share", severity, increase, s.name, reference, float(p), level, detail))
    return tuple(signals)


def _missing_pvalue(stats: FeatureStats, reference: float) -> float:
    """One-sided p-value of at least this many missing values among `rows` if each is missing with `reference`."""
    rows = stats.rows
    missing = int(round(float(stats.missing_share or 0.0) * rows))
    if missing == 0:
        return 1.0
    if reference <= 0.0:
        return 0.0
    if reference >= 1.0:
        return 1.0
    # P(X >= missing) for X ~ Binomial(rows, reference): scipy.stats.binom.sf(missing - 1, ...) is this
    # regularized incomplete beta (the same value; scipy.stats alone costs ~0.5 s to import)
    return float(scipy.special.betainc(missing, rows - missing + 1, reference))


def volume_signal(rows: int, history: Sequence[int], policy: HealthPolicy) -> HealthSignal | None:
    """The drop of `rows` below the median of `history` (rows of the latest successful runs, newest first)."""
    level = policy.volume
    recent = [int(r) for r in history[: policy.volume_runs]]
    if level is None or len(recent) < policy.volume_min_runs:
        return None
    median = float(np.median(recent))
    if median <= 0:
        return None
    drop = max(0.0, 1.0 - rows / median)
    detail = f"{rows} rows vs a median of {median:g} over the last {len(recent)} runs"
    return HealthSignal("volume", _level(drop, level), drop, None, median, None, level, detail)


def freshness_signal(newest: datetime | None, end: datetime, policy: HealthPolicy) -> HealthSignal | None:
    """The age of the newest timestamp seen (`newest`) at the window's `end`; None when unknown or off."""
    level = policy.freshness
    if level is None or newest is None:
        return None
    age = max(0.0, (_utc(end) - _utc(newest)).total_seconds())
    detail = f"newest row at {_utc(newest).isoformat()}, {age:g}s before the window's end"
    return HealthSignal("freshness", _level(age, level), age, None, None, None, level, detail)


def schema_signal(error: str | None, policy: HealthPolicy) -> HealthSignal | None:
    """Critical with the mismatch's message when `error` is set, ok otherwise (None when the signal is off)."""
    if not policy.schema:
        return None
    if error is None:
        return HealthSignal("schema", Severity.OK)
    return HealthSignal("schema", Severity.CRITICAL, detail=error)


def no_data_signal(rows: int, reason: str | None = None) -> HealthSignal:
    """Critical when the window had no rows, ok otherwise."""
    if rows > 0:
        return HealthSignal("no_data", Severity.OK)
    return HealthSignal("no_data", Severity.CRITICAL, 0.0, detail=reason or "no rows in the window")


def reference_missing_shares(features: Mapping[str, Any]) -> dict[str, float]:
    """Each profiled feature's missing share in the reference (profile features carry `rows` and `missing`)."""
    return {name: (f.missing / f.rows if f.rows else 0.0) for name, f in features.items()}


def assess(
    policy: HealthPolicy,
    *,
    rows: int,
    end: datetime,
    features: Sequence[FeatureStats] = (),
    reference_missing: Mapping[str, float] | None = None,
    history: Sequence[int] = (),
    newest: datetime | None = None,
) -> Health:
    """The health of a run that read `rows` rows (see the module docstring); no data is only `no_data`."""
    if rows <= 0:
        return Health((no_data_signal(rows),))
    found: list[HealthSignal | None] = [no_data_signal(rows), schema_signal(None, policy)]
    found.append(volume_signal(rows, history, policy))
    found.append(freshness_signal(newest, end, policy))
    found.extend(missing_signals(features, reference_missing or {}, policy))
    return Health(tuple(s for s in found if s is not None))


def _level(value: float, level: Level) -> Severity:
    """The severity a higher-is-worse `value` reaches."""
    if value >= level.critical:
        return Severity.CRITICAL
    return Severity.WARNING if value >= level.warning else Severity.OK


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
