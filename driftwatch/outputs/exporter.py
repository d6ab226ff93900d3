"""Prometheus exposition of the monitors' latest statuses: a custom Collector rebuilt on every scrape.

Nothing is set globally: each scrape reads one immutable snapshot, so a monitor or feature that is gone from
the snapshot is gone from the exposition, and a statistic that is unknown (None or NaN) is left out, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from itertools import accumulate

from prometheus_client import PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from driftwatch.core.status import DURATION_BUCKETS, MonitorStatus

#: Gauges `driftwatch_feature_<attribute>` (labels monitor, feature): (FeatureStats attribute, HELP).
FEATURE_STATISTICS: tuple[tuple[str, str], ...] = (
    ("psi", "Population stability index of the feature against its reference."),
    ("ks_statistic", "Two-sample Kolmogorov-Smirnov statistic (numeric features)."),
    ("ks_pvalue", "P-value of the two-sample Kolmogorov-Smirnov test (numeric features)."),
    ("chi2_pvalue", "P-value of the chi-square test (categorical features)."),
    ("js_distance", "Jensen-Shannon distance between reference and current distributions."),
    ("wasserstein", "Wasserstein distance between reference and current (numeric features)."),
    ("missing_share", "Share of missing values in the current batch."),
)

#: Monitor gauges (label `monitor`): (metric name, HELP text).
MONITOR_GAUGES: tuple[tuple[str, str], ...] = (
    ("driftwatch_monitor_drift_share", "Share of the monitor's features that drifted in its last run."),
    ("driftwatch_monitor_severity", "Drift severity of the monitor's last run: 0 ok, 1 warning, 2 critical."),
    ("driftwatch_monitor_rows", "Rows in the current batch of the monitor's last run."),
    ("driftwatch_monitor_reference_rows", "Rows in the monitor's reference profile."),
    ("driftwatch_monitor_up", "Whether the monitor's last run succeeded (1) or failed (0)."),
    ("driftwatch_monitor_last_run_timestamp_seconds", "Unix time the monitor's last run finished."),
    (
        "driftwatch_monitor_last_success_timestamp_seconds",
        "Unix time the monitor's last successful run finished.",
    ),
    ("driftwatch_monitor_rows_read", "Rows read so far by the current pass of the monitor's run in progress."),
)


class DriftCollector(Collector):
    """Metric families built fresh from `snapshot()` on every collect()."""

    def __init__(
        self,
        snapshot: Callable[[], Mapping[str, MonitorStatus]],
        version: str,
        reload_ok: Callable[[], bool],
    ) -> None:
        self._snapshot = snapshot
        self._version = version
        self._reload_ok = reload_ok

    def collect(self) -> Iterator[Metric]:
        """Yield every driftwatch metric family that has at least one sample."""
        statuses = dict(self._snapshot())
        families = [
            *_feature_families(statuses),
            *_monitor_families(statuses),
            *_health_families(statuses),
            _run_duration_family(statuses),
            _gauge(
                "driftwatch_build_info",
                "Driftwatch build information; always 1.",
                ["version"],
                [([self._version], 1.0)],
            ),
            _gauge(
                "driftwatch_config_last_reload_successful",
                "Whether the last configuration reload succeeded (1) or failed (0).",
                None,
                [([], 1.0 if self._reload_ok() else 0.0)],
            ),
        ]
        yield from (family for family in families if family.samples)


def metrics_registry(collector: Collector) -> CollectorRegistry:
    """A fresh registry with `collector` plus the process_* and python_info collectors."""
    registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(collector)
    return registry


def _feature_families(statuses: Mapping[str, MonitorStatus]) -> list[Metric]:
    labels = ["monitor", "feature"]
    rows: dict[str, list[tuple[list[str], float]]] = {attr: [] for attr, _ in FEATURE_STATISTICS}
    severity: list[tuple[list[str], float]] = []
    thresholds: list[tuple[list[str], float]] = []
    for name, status in statuses.items():
        if status.report is None:
            continue
        for result in status.report.features:
            key = [name, result.name]
            for attr, _ in FEATURE_STATISTICS:
                value = _known(getattr(result.stats, attr))
                if value is not None:
                    rows[attr].append((key, value))
            if result.stats.status == "ok":
                severity.append((key, float(int(result.severity))))
            for statistic, levels in result.thresholds.items():
                for level, value in zip(("warning", "critical"), levels, strict=True):
                    thresholds.append(([*key, statistic, level], float(value)))
    families: list[Metric] = [
        _gauge(f"driftwatch_feature_{attr}", doc, labels, rows[attr]) for attr, doc in FEATURE_STATISTICS
    ]
    families.append(
        _gauge(
            "driftwatch_feature_severity",
            "Drift severity of the feature: 0 ok, 1 warning, 2 critical.",
            labels,
            severity,
        )
    )
    families.append(
        _gauge(
            "driftwatch_feature_threshold",
            "Threshold applied to a statistic of the feature in its last run (fixed, or calibrated on the baseline).",
            [*labels, "statistic", "level"],
            thresholds,
        )
    )
    return families


def _monitor_families(statuses: Mapping[str, MonitorStatus]) -> list[Metric]:
    samples: dict[str, list[tuple[list[str], float]]] = {name: [] for name, _ in MONITOR_GAUGES}
    runs = CounterMetricFamily(
        "driftwatch_monitor_runs_total", "Monitor runs since the daemon started.", labels=["monitor"]
    )
    failures = CounterMetricFamily(
        "driftwatch_monitor_run_failures_total",
        "Monitor runs that failed with an error since the daemon started.",
        labels=["monitor"],
    )
    skipped = CounterMetricFamily(
        "driftwatch_monitor_runs_skipped",
        "Scheduled runs skipped because the monitor's previous run was still going.",
        labels=["monitor"],
    )
    for name, status in statuses.items():
        for metric, value in _monitor_values(status).items():
            if value is not None:
                samples[metric].append(([name], value))
        runs.add_metric([name], status.runs_total)
        failures.add_metric([name], status.failures_total)
        skipped.add_metric([name], status.skipped_total)
    gauges = [_gauge(name, doc, ["monitor"], samples[name]) for name, doc in MONITOR_GAUGES]
    return [*gauges, runs, failures, skipped]


def _monitor_values(status: MonitorStatus) -> dict[str, float | None]:
    """The monitor gauge values of `status` (None where unknown)."""
    report = status.report
    return {
        "driftwatch_monitor_drift_share": _known(report.drift_share) if report else None,
        "driftwatch_monitor_severity": float(int(report.severity)) if report else None,
        "driftwatch_monitor_rows": float(report.current_rows) if report else None,
        "driftwatch_monitor_reference_rows": _known(status.reference_rows),
        "driftwatch_monitor_up": None if status.outcome == "never" else float(status.up),
        "driftwatch_monitor_last_run_timestamp_seconds": _unix(status.last_run),
        "driftwatch_monitor_last_success_timestamp_seconds": _unix(status.last_success),
        "driftwatch_monitor_rows_read": None if status.rows_read is None else float(status.rows_read),
    }


#: Gauges of one data-health signal's value: signal -> (metric name, labels, HELP).
HEALTH_VALUES: Mapping[str, tuple[str, list[str], str]] = {
    "missing_share": (
        "driftwatch_feature_missing_share_increase",
        ["monitor", "feature"],
        "Missing share of the feature in the last run minus its missing share in the reference.",
    ),
    "volume": (
        "driftwatch_monitor_volume_drop_ratio",
        ["monitor"],
        "Drop of the last run's rows below the median rows of the latest successful runs (0 when not lower).",
    ),
    "freshness": (
        "driftwatch_monitor_data_age_seconds",
        ["monitor"],
        "Age of the newest row of the last run's window at the window's end.",
    ),
}


def _health_families(statuses: Mapping[str, MonitorStatus]) -> list[Metric]:
    """Data-health metrics of each monitor's last run: severities per signal, values, and the volume baseline."""
    severity: list[tuple[list[str], float]] = []
    worst: list[tuple[list[str], float]] = []
    values: dict[str, list[tuple[list[str], float]]] = {signal: [] for signal in HEALTH_VALUES}
    baseline: list[tuple[list[str], float]] = []
    for name, status in statuses.items():
        health = status.health
        if health is None:
            continue
        worst.append(([name], float(int(health.severity))))
        for signal in health.signals:
            severity.append(([name, signal.name, signal.feature or ""], float(int(signal.severity))))
            value = _known(signal.value)
            if signal.name in values and value is not None:
                values[signal.name].append(([name, signal.feature] if signal.feature else [name], value))
            if signal.name == "volume" and signal.baseline is not None:
                baseline.append(([name], float(signal.baseline)))
    families: list[Metric] = [
        _gauge(
            "driftwatch_monitor_health_severity",
            "Worst data-health severity of the monitor's last run: 0 ok, 1 warning, 2 critical.",
            ["monitor"],
            worst,
        ),
        _gauge(
            "driftwatch_health_severity",
            "Severity of one data-health signal in the monitor's last run (feature empty for dataset signals).",
            ["monitor", "signal", "feature"],
            severity,
        ),
        _gauge(
            "driftwatch_monitor_volume_baseline_rows",
            "Median rows of the latest successful runs, the baseline of the volume signal.",
            ["monitor"],
            baseline,
        ),
    ]
    families += [_gauge(metric, doc, labels, values[signal]) for signal, (metric, labels, doc) in HEALTH_VALUES.items()]
    return families


def _run_duration_family(statuses: Mapping[str, MonitorStatus]) -> Metric:
    family = HistogramMetricFamily(
        "driftwatch_monitor_run_duration_seconds", "Duration of monitor runs in seconds.", labels=["monitor"]
    )
    bounds = [str(float(bound)) for bound in DURATION_BUCKETS] + ["+Inf"]
    for name, status in statuses.items():
        cumulative = [float(count) for count in accumulate(status.durations.counts)]
        family.add_metric([name], list(zip(bounds, cumulative, strict=True)), status.durations.total)
    return family


def _gauge(name: str, doc: str, labels: list[str] | None, samples: list[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels or [])
    for key, value in samples:
        family.add_metric(key, value)
    return family


def _known(value: float | None) -> float | None:
    """`value` as a float, or None when it is unknown (None or NaN)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _unix(moment: datetime | None) -> float | None:
    """Unix seconds of `moment` (None stays None); a naive datetime is taken as UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
