"""The Prometheus collector: exact samples from a status snapshot, nothing fake, nothing stale."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from conftest import require_binary
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from driftwatch.core.report import FeatureResult, FeatureStats, Report, Severity
from driftwatch.core.status import DURATION_BUCKETS, MonitorStatus
from driftwatch.outputs.exporter import DriftCollector, metrics_registry

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def numeric(name: str = "age", **stats: float | None) -> FeatureStats:
    """Numeric feature statistics with every numeric statistic set unless overridden."""
    values: dict[str, float | None] = {
        "missing_share": 0.01,
        "psi": 0.31,
        "ks_statistic": 0.2,
        "ks_pvalue": 0.001,
        "js_distance": 0.12,
        "wasserstein": 1.5,
    }
    return FeatureStats(name, "numeric", "ok", 500, **{**values, **stats})


def categorical(name: str = "country") -> FeatureStats:
    """Categorical feature statistics (no KS, no Wasserstein)."""
    return FeatureStats(
        name, "categorical", "ok", 500, missing_share=0.0, psi=0.05, chi2_statistic=3.0, chi2_pvalue=0.4,
        js_distance=0.03,
    )  # fmt: skip


def report(*results: FeatureResult, severity: Severity = Severity.CRITICAL, share: float | None = 0.5) -> Report:
    """A report over `results` with 1000 reference rows and 500 current rows."""
    return Report(results, reference_rows=1000, current_rows=500, status="ok", severity=severity, drift_share=share)


def result(stats: FeatureStats, severity: Severity = Severity.OK) -> FeatureResult:
    """The policy verdict `severity` on `stats`."""
    return FeatureResult(stats, severity, adjusted_pvalue=None, significant=severity > Severity.OK)


def ran(rep: Report | None = None, name: str = "payments", outcome: str = "ok", seconds: float = 0.3):
    """A monitor status after one run with `outcome`."""
    return MonitorStatus(name, "*/5 * * * *").after_run(
        outcome, finished=T0, seconds=seconds, report=rep, error="boom" if outcome == "error" else None
    )


def scrape(statuses: Mapping[str, MonitorStatus], reload_ok: bool = True) -> dict[tuple, float]:
    """Every driftwatch sample of one scrape as {(name, sorted labels): value}."""
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: statuses, "1.2.3", lambda: reload_ok))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def names(samples: dict[tuple, float]) -> set[str]:
    """Sample names of a scrape."""
    return {name for name, _ in samples}


def test_full_report_exports_exact_feature_and_monitor_samples():
    """A monitor with a report exports exactly its statistics, severities, rows, times and counters."""
    rep = report(result(numeric(), Severity.CRITICAL), result(categorical(), Severity.WARNING))
    samples = scrape({"payments": ran(rep)})
    age = (("feature", "age"), ("monitor", "payments"))
    country = (("feature", "country"), ("monitor", "payments"))
    mon = (("monitor", "payments"),)
    expected = {
        ("driftwatch_feature_psi", age): 0.31,
        ("driftwatch_feature_ks_statistic", age): 0.2,
        ("driftwatch_feature_ks_pvalue", age): 0.001,
        ("driftwatch_feature_js_distance", age): 0.12,
        ("driftwatch_feature_wasserstein", age): 1.5,
        ("driftwatch_feature_missing_share", age): 0.01,
        ("driftwatch_feature_severity", age): 2.0,
        ("driftwatch_feature_psi", country): 0.05,
        ("driftwatch_feature_chi2_pvalue", country): 0.4,
        ("driftwatch_feature_js_distance", country): 0.03,
        ("driftwatch_feature_missing_share", country): 0.0,
        ("driftwatch_feature_severity", country): 1.0,
        ("driftwatch_monitor_drift_share", mon): 0.5,
        ("driftwatch_monitor_severity", mon): 2.0,
        ("driftwatch_monitor_rows", mon): 500.0,
        ("driftwatch_monitor_reference_rows", mon): 1000.0,
        ("driftwatch_monitor_up", mon): 1.0,
        ("driftwatch_monitor_last_run_timestamp_seconds", mon): T0.timestamp(),
        ("driftwatch_monitor_last_success_timestamp_seconds", mon): T0.timestamp(),
        ("driftwatch_monitor_runs_total", mon): 1.0,
        ("driftwatch_monitor_run_failures_total", mon): 0.0,
        ("driftwatch_monitor_runs_skipped_total", mon): 0.0,
        ("driftwatch_monitor_run_duration_seconds_sum", mon): 0.3,
        ("driftwatch_monitor_run_duration_seconds_count", mon): 1.0,
        ("driftwatch_build_info", (("version", "1.2.3"),)): 1.0,
        ("driftwatch_config_last_reload_successful", ()): 1.0,
    }
    buckets = {k: v for k, v in samples.items() if k[0] == "driftwatch_monitor_run_duration_seconds_bucket"}
    assert {k: v for k, v in samples.items() if k not in buckets} == expected
    assert len(buckets) == len(DURATION_BUCKETS) + 1


@pytest.mark.parametrize(
    "missing",
    [
        pytest.param("psi", id="psi"),
        pytest.param("ks_pvalue", id="ks-pvalue"),
        pytest.param("missing_share", id="missing-share"),
        pytest.param("wasserstein", id="wasserstein"),
    ],
)
def test_none_statistic_is_absent_not_zero(missing: str):
    """A statistic that is None is left out of the exposition, while its siblings stay."""
    samples = scrape({"payments": ran(report(result(numeric(**{missing: None}))))})
    assert f"driftwatch_feature_{missing}" not in names(samples)
    assert "driftwatch_feature_js_distance" in names(samples)


def test_nan_statistic_is_absent():
    """A NaN statistic is unknown, so it is left out like None."""
    samples = scrape({"payments": ran(report(result(numeric(psi=float("nan"))), share=float("nan")))})
    assert not {"driftwatch_feature_psi", "driftwatch_monitor_drift_share"} & names(samples)


def test_feature_severity_only_for_features_with_status_ok():
    """A feature skipped for insufficient data has no severity sample."""
    thin = FeatureStats("thin", "numeric", "insufficient_data", 3, missing_share=0.5)
    samples = scrape({"payments": ran(report(result(numeric()), result(thin)))})
    severities = {labels for name, labels in samples if name == "driftwatch_feature_severity"}
    assert severities == {(("feature", "age"), ("monitor", "payments"))}
    assert samples[("driftwatch_feature_missing_share", (("feature", "thin"), ("monitor", "payments")))] == 0.5


def test_never_run_monitor_exports_only_counters_and_histogram():
    """A monitor that never ran has no up, time, row or report samples; counters and histogram are 0."""
    samples = scrape({"idle": MonitorStatus("idle", "@hourly")})
    monitor_names = {name for name in names(samples) if name.startswith("driftwatch_monitor")}
    assert monitor_names == {
        "driftwatch_monitor_runs_total",
        "driftwatch_monitor_run_failures_total",
        "driftwatch_monitor_runs_skipped_total",
        "driftwatch_monitor_run_duration_seconds_bucket",
        "driftwatch_monitor_run_duration_seconds_sum",
        "driftwatch_monitor_run_duration_seconds_count",
    }
    assert not any(name.startswith("driftwatch_feature") for name in names(samples))
    assert samples[("driftwatch_monitor_runs_total", (("monitor", "idle"),))] == 0.0


def test_skipped_runs_are_counted_and_change_nothing_else():
    """A skipped tick raises runs_skipped_total only: the last run's outcome, report and counters stay."""
    before = ran(report(result(numeric())))
    after = before.after_skip().after_skip()
    samples, earlier = scrape({"payments": after}), scrape({"payments": before})
    mon = (("monitor", "payments"),)
    assert samples.pop(("driftwatch_monitor_runs_skipped_total", mon)) == 2.0
    assert earlier.pop(("driftwatch_monitor_runs_skipped_total", mon)) == 0.0
    assert samples == earlier


def test_failed_run_sets_up_zero_and_keeps_last_success():
    """After a failed run: up 0, one failure, no report samples, last success and reference rows kept."""
    status = ran(report(result(numeric()))).after_run("error", finished=T1, seconds=1.0, error="boom")
    samples = scrape({"payments": status})
    mon = (("monitor", "payments"),)
    assert samples[("driftwatch_monitor_up", mon)] == 0.0
    assert samples[("driftwatch_monitor_run_failures_total", mon)] == 1.0
    assert samples[("driftwatch_monitor_runs_total", mon)] == 2.0
    assert samples[("driftwatch_monitor_last_run_timestamp_seconds", mon)] == T1.timestamp()
    assert samples[("driftwatch_monitor_last_success_timestamp_seconds", mon)] == T0.timestamp()
    assert samples[("driftwatch_monitor_reference_rows", mon)] == 1000.0
    gone = {"driftwatch_monitor_rows", "driftwatch_monitor_severity", "driftwatch_monitor_drift_share"}
    assert not gone & names(samples)
    assert not any(name.startswith("driftwatch_feature") for name in names(samples))


def test_insufficient_data_run_is_up_without_report():
    """A run skipped for insufficient data keeps the monitor up and exports no report samples."""
    samples = scrape({"payments": ran(None, outcome="insufficient_data")})
    mon = (("monitor", "payments"),)
    assert samples[("driftwatch_monitor_up", mon)] == 1.0
    assert ("driftwatch_monitor_last_success_timestamp_seconds", mon) not in samples
    assert "driftwatch_monitor_rows" not in names(samples)


def test_removed_feature_and_monitor_disappear_on_next_scrape():
    """The collector reads the snapshot on every scrape, so removed series vanish."""
    first = {
        "payments": ran(report(result(numeric("age")), result(numeric("income")))),
        "signups": ran(report(result(categorical())), name="signups"),
    }
    second = {"payments": ran(report(result(numeric("age"))))}
    snapshots = iter([first, second])
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: next(snapshots), "1.2.3", lambda: True))

    def series() -> set[tuple]:
        text = generate_latest(registry).decode()
        return {tuple(sorted(s.labels.items())) for f in text_string_to_metric_families(text) for s in f.samples}

    before, after = series(), series()
    assert (("feature", "income"), ("monitor", "payments")) in before
    assert (("monitor", "signups"),) in before
    assert not any(("feature", "income") in labels or ("monitor", "signups") in labels for labels in after)
    assert (("feature", "age"), ("monitor", "payments")) in after


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count():
    """Duration buckets count runs at or under each bound cumulatively, ending in +Inf == count."""
    status = MonitorStatus("payments", "@hourly")
    for finished, seconds in [(T0, 0.07), (T0, 0.3), (T1, 0.3), (T1, 4000.0)]:
        status = status.after_run("insufficient_data", finished=finished, seconds=seconds)
    samples = scrape({"payments": status})
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in samples.items()
        if name == "driftwatch_monitor_run_duration_seconds_bucket"
    }
    assert buckets["0.05"] == 0.0
    assert buckets["0.1"] == 1.0
    assert buckets["0.25"] == 1.0
    assert buckets["0.5"] == 3.0
    assert buckets["900.0"] == 3.0
    assert buckets["+Inf"] == 4.0
    values = list(buckets.values())
    assert values == sorted(values)
    mon = (("monitor", "payments"),)
    assert samples[("driftwatch_monitor_run_duration_seconds_count", mon)] == 4.0
    assert samples[("driftwatch_monitor_run_duration_seconds_sum", mon)] == pytest.approx(4000.67)


@pytest.mark.parametrize(
    ("reload_ok", "value"), [pytest.param(True, 1.0, id="reload-ok"), pytest.param(False, 0.0, id="reload-failed")]
)
def test_build_info_and_reload_flag(reload_ok: bool, value: float):
    """build_info carries the version; the reload gauge follows reload_ok()."""
    samples = scrape({}, reload_ok=reload_ok)
    assert samples == {
        ("driftwatch_build_info", (("version", "1.2.3"),)): 1.0,
        ("driftwatch_config_last_reload_successful", ()): value,
    }


def test_counters_are_typed_counter_with_total_suffix():
    """Counter families are typed counter and exposed as *_total."""
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: {"payments": ran()}, "1.2.3", lambda: True))
    text = generate_latest(registry).decode()
    families = text_string_to_metric_families(text)
    counters = {f.name: {s.name for s in f.samples} for f in families if f.type == "counter"}
    assert counters == {
        "driftwatch_monitor_runs": {"driftwatch_monitor_runs_total"},
        "driftwatch_monitor_run_failures": {"driftwatch_monitor_run_failures_total"},
        "driftwatch_monitor_runs_skipped": {"driftwatch_monitor_runs_skipped_total"},
    }


def test_metrics_registry_adds_process_and_platform_metrics():
    """The daemon registry exposes process_* and python_info next to driftwatch metrics."""
    registry = metrics_registry(DriftCollector(lambda: {"payments": ran()}, "1.2.3", lambda: True))
    families = {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert {"python_info", "driftwatch_build_info", "driftwatch_monitor_runs"} <= families
    assert any(name.startswith("process_") for name in families)


@pytest.mark.integration
def test_promtool_accepts_exposition():
    """promtool check metrics finds no problems in a full exposition."""
    promtool = require_binary("promtool")
    statuses = {
        "payments": ran(report(result(numeric(), Severity.CRITICAL), result(categorical(), Severity.WARNING))),
        "failing": ran(name="failing", outcome="error"),
        "idle": MonitorStatus("idle", "@hourly"),
    }
    registry = metrics_registry(DriftCollector(lambda: statuses, "1.2.3", lambda: False))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True, timeout=30
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
