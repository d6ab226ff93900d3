"""Data-health signals (pure core), their config, the newest timestamp of source windows, their alerts, and the
fallback on data loss (pure core; the daemon test is tests/test_health_daemon.py)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_binary
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from scipy import stats as scipy_stats

from driftwatch.config import load_config
from driftwatch.core.alerting import AlertKey, observe_health, observe_report
from driftwatch.core.fallback import (
    ModelSpec,
    MonitorOutcome,
    NoChange,
    Switch,
    SwitchRules,
    initial_state,
    on_monitor_run,
)
from driftwatch.core.health import (
    Health,
    HealthPolicy,
    assess,
    freshness_signal,
    missing_signals,
    no_data_signal,
    schema_signal,
    volume_signal,
)
from driftwatch.core.policy import Level, Significance
from driftwatch.core.report import FeatureStats, Severity
from driftwatch.core.status import MonitorStatus
from driftwatch.errors import ConfigError
from driftwatch.outputs.exporter import DriftCollector, metrics_registry
from driftwatch.sources import open_source
from driftwatch.sources.memory import InMemorySource

END = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICY = HealthPolicy(freshness=Level(1800, 3240))


def stats(name: str, rows: int, missing: int) -> FeatureStats:
    return FeatureStats(name, "numeric", "ok", rows, missing_share=missing / rows)


# -- missing share -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "missing", "reference", "expected"),
    [
        pytest.param(1000, 160, 0.019, Severity.WARNING, id="16%-vs-1.9%-warning"),
        pytest.param(1000, 250, 0.02, Severity.CRITICAL, id="25%-vs-2%-critical"),
        pytest.param(1000, 60, 0.02, Severity.OK, id="increase-below-0.05"),
        pytest.param(100, 16, 0.10, Severity.OK, id="100-rows-noise-not-significant"),
        pytest.param(1000, 1000, 0.0, Severity.CRITICAL, id="all-missing"),
        pytest.param(1000, 0, 0.3, Severity.OK, id="fewer-missing-than-reference"),
    ],
)
def test_missing_share_increase_levels(rows: int, missing: int, reference: float, expected: Severity) -> None:
    """The missing-share increase reaches its level only when material and significant."""
    (signal,) = missing_signals([stats("x", rows, missing)], {"x": reference}, POLICY)
    assert signal.severity == expected
    assert signal.value == pytest.approx(missing / rows - reference)
    assert signal.baseline == reference and signal.feature == "x"


def test_missing_share_pvalue_matches_scipy_binomtest_with_bh() -> None:
    """The gate's p-values are scipy's one-sided binomial test, Benjamini-Hochberg corrected across features."""
    features = [stats("a", 500, 40), stats("b", 500, 30), stats("c", 500, 26)]
    reference = {"a": 0.05, "b": 0.04, "c": 0.05}
    signals = missing_signals(features, reference, POLICY)
    raw = [
        scipy_stats.binomtest(round(f.missing_share * f.rows), f.rows, reference[f.name], alternative="greater").pvalue
        for f in features
    ]
    order = np.argsort(raw)
    bh = np.minimum.accumulate((np.array(raw)[order] * 3 / np.arange(1, 4))[::-1])[::-1]
    expected = np.empty(3)
    expected[order] = np.minimum(bh, 1)
    assert [s.pvalue for s in signals] == pytest.approx(list(expected), rel=1e-9)


def test_missing_share_without_gate_and_switched_off() -> None:
    """Without a significance gate the noise case breaches; with `missing_share` None there is no signal."""
    ungated = HealthPolicy(significance=None)
    (signal,) = missing_signals([stats("x", 100, 16)], {"x": 0.10}, ungated)
    assert signal.severity == Severity.WARNING
    assert missing_signals([stats("x", 100, 90)], {"x": 0.0}, HealthPolicy(missing_share=None)) == ()


# -- volume, freshness, schema, no data ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "history", "expected", "drop"),
    [
        pytest.param(100, [100, 110, 90], Severity.OK, 0.0, id="steady"),
        pytest.param(300, [100, 110, 90], Severity.OK, 0.0, id="more-rows"),
        pytest.param(50, [100, 110, 90], Severity.WARNING, 0.5, id="half-warning"),
        pytest.param(10, [100, 110, 90], Severity.CRITICAL, 0.9, id="90%-drop-critical"),
        pytest.param(10, [100, 110], None, None, id="too-little-history"),
        pytest.param(50, [100, 100, 100] + [10] * 20, Severity.WARNING, 0.5, id="only-newest-runs"),
    ],
)
def test_volume_drop_against_median_of_recent_runs(
    rows: int, history: Sequence[int], expected: Severity | None, drop: float | None
) -> None:
    """Volume compares rows with the median of the newest `volume_runs` successful runs (min_runs needed)."""
    policy = HealthPolicy(volume_runs=3, volume_min_runs=3)
    signal = volume_signal(rows, history, policy)
    if expected is None:
        assert signal is None
        return
    assert signal is not None
    assert signal.severity == expected
    assert signal.value == pytest.approx(drop)
    assert signal.baseline == float(np.median(list(history)[:3]))


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(timedelta(minutes=1), Severity.OK, id="fresh"),
        pytest.param(timedelta(minutes=30), Severity.WARNING, id="at-warning"),
        pytest.param(timedelta(minutes=54), Severity.CRITICAL, id="at-critical"),
    ],
)
def test_freshness_age_of_newest_row(age: timedelta, expected: Severity) -> None:
    """Freshness is the age of the newest row at the window's end, in seconds."""
    signal = freshness_signal(END - age, END, POLICY)
    assert signal is not None
    assert signal.severity == expected and signal.value == age.total_seconds()
    assert freshness_signal(None, END, POLICY) is None
    assert freshness_signal(END, END, HealthPolicy(freshness=None)) is None


def test_schema_and_no_data_signals() -> None:
    """A schema mismatch and an empty window are critical signals; assess of no rows is only no_data."""
    bad = schema_signal("column 'age' not found", POLICY)
    assert bad is not None and bad.severity == Severity.CRITICAL and "age" in bad.detail
    assert schema_signal("x", HealthPolicy(schema=False)) is None
    assert no_data_signal(0, "no file").severity == Severity.CRITICAL
    health = assess(POLICY, rows=0, end=END, history=[100] * 5)
    assert [s.name for s in health.signals] == ["no_data"] and health.critical


def test_assess_combines_signals_and_serialises() -> None:
    """assess evaluates every signal it can; the JSON lists each with its thresholds."""
    health = assess(
        POLICY,
        rows=400,
        end=END,
        features=[stats("a", 400, 120), stats("b", 400, 0)],
        reference_missing={"a": 0.0, "b": 0.0},
        history=[1000, 1000, 1000],
        newest=END - timedelta(minutes=40),
    )
    by_name = {(s.name, s.feature): s.severity for s in health.signals}
    assert by_name == {
        ("no_data", None): Severity.OK,
        ("schema", None): Severity.OK,
        ("volume", None): Severity.WARNING,
        ("freshness", None): Severity.WARNING,
        ("missing_share", "a"): Severity.CRITICAL,
        ("missing_share", "b"): Severity.OK,
    }
    data = json.loads(json.dumps(health.to_dict(), allow_nan=False))
    assert data["severity"] == "critical"
    volume = next(s for s in data["signals"] if s["signal"] == "volume")
    assert volume == {
        "signal": "volume",
        "feature": None,
        "severity": "warning",
        "value": 0.6,
        "baseline": 1000.0,
        "pvalue": None,
        "thresholds": {"warning": 0.5, "critical": 0.9},
        "detail": "400 rows vs a median of 1000 over the last 3 runs",
    }


def test_policy_rejects_bad_levels() -> None:
    """Health levels must be ordered shares, and min_runs at most runs."""
    with pytest.raises(ValueError, match="critical"):
        HealthPolicy(volume=Level(0.9, 0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        HealthPolicy(missing_share=Level(0.5, 2.0))
    with pytest.raises(ValueError, match="min_runs"):
        HealthPolicy(volume_runs=2, volume_min_runs=3)


# -- alerts ---------------------------------------------------------------------------------------------------------


def test_health_observations_name_one_alert_per_signal() -> None:
    """Each evaluated signal is one observation: MissingValues per feature, dataset and monitor alerts."""
    health = Health(
        (
            no_data_signal(10),
            *missing_signals([stats("age", 1000, 300)], {"age": 0.0}, POLICY),
            *(s for s in [volume_signal(10, [100] * 3, POLICY), schema_signal(None, POLICY)] if s),
        )
    )
    observed = {o.key: o.severity for o in observe_health("m", health, {"start": "a", "end": "b"})}
    assert observed == {
        AlertKey("m", "monitor", "NoData"): Severity.OK,
        AlertKey("m", "age", "MissingValues"): Severity.CRITICAL,
        AlertKey("m", "dataset", "VolumeDrop"): Severity.CRITICAL,
        AlertKey("m", "monitor", "SchemaChanged"): Severity.OK,
    }
    assert observe_health("m", None) == ()
    assert observe_report("m", None, "no_data", "no rows") == ()  # drift and failure alerts hold


# -- config -----------------------------------------------------------------------------------------------------------


def write_config(tmp_path: Path, health: str = "", switch: str = "") -> Path:
    (tmp_path / "prod").mkdir(exist_ok=True)
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "ref.parquet")
    path = tmp_path / "c.yaml"
    path.write_text(f"""
sources:
  s: {{kind: parquet, path: "prod/*.parquet", timestamp_column: t}}
monitors:
  m:
    model: churn
    reference: {{path: ref.parquet}}
    source: s
    schedule: {{every: 1m}}
    window: 2h
    {health}
models:
  churn:
    primary: v3
    fallbacks: [v2]
    {switch}
""")
    return path


def test_config_health_defaults_and_overrides(tmp_path: Path) -> None:
    """Defaults are on (freshness from the window); `health:` overrides and `null` switches a signal off."""
    default = load_config(write_config(tmp_path)).monitors["m"].health_policy()
    assert default.missing_share == Level(0.05, 0.20) and default.volume == Level(0.5, 0.9)
    assert default.freshness == Level(3600, 6480) and default.schema
    assert default.significance == Significance(0.001, "bh")
    text = (
        "health: {missing_share: {warning: 0.1, critical: 0.3, alpha: 0.05}, volume: null, "
        "freshness: {warning: 10m}, schema: false}"
    )
    custom = load_config(write_config(tmp_path, text)).monitors["m"].health_policy()
    assert custom.missing_share == Level(0.1, 0.3) and custom.volume is None
    assert custom.freshness == Level(600, 6480) and not custom.schema
    assert custom.significance == Significance(0.05, "bh")
    ungated = "health: {missing_share: {alpha: null}}\n    significance: {correction: bonferroni}"
    assert load_config(write_config(tmp_path, ungated)).monitors["m"].health_policy().significance is None
    off = load_config(write_config(tmp_path, "health: null")).monitors["m"].health_policy()
    assert (off.missing_share, off.volume, off.freshness, off.schema) == (None, None, None, False)


@pytest.mark.parametrize(
    ("health", "message"),
    [
        pytest.param("health: {volume: {warning: 0.9, critical: 0.5}}", "monitors.m.health.volume", id="order"),
        pytest.param("health: {volume: {runs: 2, min_runs: 5}}", "min_runs (5) must be <= runs (2)", id="runs"),
        pytest.param("health: {missing_share: {warning: 2, critical: 3}}", "health.missing_share", id="share"),
        pytest.param("health: {freshness: {warning: 2h, critical: 1h}}", "critical must be >= warning", id="fresh"),
        pytest.param("health: {loudness: 1}", "health: unknown key 'loudness'", id="unknown-key"),
    ],
)
def test_config_health_errors_are_one_line(tmp_path: Path, health: str, message: str) -> None:
    """A bad `health:` mapping is a one-line ConfigError naming the path."""
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, health))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_switch_on_data_loss(tmp_path: Path) -> None:
    """`switch.data_loss.after_runs` reaches the core's rules; 0 is refused."""
    from driftwatch.runtime.models import model_spec

    config = load_config(write_config(tmp_path, switch="switch: {on: critical, data_loss: {after_runs: 3}}"))
    assert model_spec("churn", config.models["churn"]).rules.data_loss_after_runs == 3
    assert model_spec("churn", load_config(write_config(tmp_path)).models["churn"]).rules.data_loss_after_runs is None
    with pytest.raises(ConfigError, match="models.churn.switch.data_loss.after_runs"):
        load_config(write_config(tmp_path, switch="switch: {data_loss: {after_runs: 0}}"))


# -- the newest timestamp of a window -----------------------------------------------------------------------------


def test_windows_report_their_newest_timestamp(tmp_path: Path) -> None:
    """Parquet, csv, SQL and in-memory windows note the newest timestamp inside the window, equal to pandas'."""
    rng = np.random.default_rng(5)
    stamps = END - pd.to_timedelta(rng.uniform(0, 7200, 3000), unit="s")
    frame = pd.DataFrame({"t": stamps.tz_localize(None).floor("us"), "x": rng.normal(size=3000)})
    start, end = END - timedelta(hours=1), END - timedelta(minutes=20)
    inside = frame.loc[(frame.t >= start.replace(tzinfo=None)) & (frame.t < end.replace(tzinfo=None)), "t"]
    expected = inside.max().tz_localize(UTC).to_pydatetime()
    frame.to_parquet(tmp_path / "p.parquet")
    frame.to_csv(tmp_path / "p.csv", index=False)
    with sqlite3.connect(tmp_path / "p.db") as conn:
        frame.to_sql("rows", conn, index=False)
    conn.close()
    sources = [
        open_source("pq", "parquet", timestamp_column="t", path=str(tmp_path / "p.parquet"), batch_rows=500),
        open_source("csv", "csv", timestamp_column="t", path=str(tmp_path / "p.csv"), batch_rows=500),
        open_source("sql", "sql", timestamp_column="t", url=f"sqlite:///{tmp_path / 'p.db'}", table="rows"),
        InMemorySource("mem", frame, "t"),
    ]
    for source in sources:
        window = source.window(start, end, ["x"])
        frames = list(window.batches())
        assert sum(len(f) for f in frames) == len(inside), source.name
        assert all(list(f.columns) == ["x"] for f in frames), source.name
        assert window.newest == expected, source.name
        source.close()
    empty = sources[0].window(END + timedelta(days=1), END + timedelta(days=2), ["x"])
    assert list(empty.batches()) == [] and empty.newest is None


# -- fallback on data loss ----------------------------------------------------------------------------------------

T0 = datetime(2024, 3, 1, tzinfo=UTC)
LOSS = SwitchRules(after_runs=2, min_dwell=timedelta(minutes=30), restore_after_runs=3, data_loss_after_runs=3)


def run(token: str) -> MonitorOutcome:
    """`O`/`C`: ok run of monitor m at that severity; `L`: no data (a data-loss run); `H`: an ok run whose data
    health is critical; `b:` prefixes name monitor b."""
    monitor, _, kind = token.rpartition(":")
    monitor = monitor or "m"
    if kind == "L":
        return MonitorOutcome(monitor, False, Severity.OK, {"outcome": "no_data"}, data_loss=True)
    if kind == "H":
        return MonitorOutcome(monitor, True, Severity.OK, {}, data_loss=True)
    return MonitorOutcome(monitor, True, Severity.CRITICAL if kind == "C" else Severity.OK, {})


def play(rules: SwitchRules, script: str, every: timedelta = timedelta(minutes=10)) -> list[str]:
    spec = ModelSpec("churn", "v3", ("v2", "rules"), rules)
    state = initial_state(spec, T0)
    seen = []
    for i, token in enumerate(script.split()):
        state, decisions = on_monitor_run(spec, state, run(token), T0 + (i + 1) * every)
        seen.append(
            "-"
            if not decisions
            else (
                f"{decisions[0].direction}->{decisions[0].to_version}"
                if isinstance(decisions[0], Switch)
                else decisions[0].reason
            )
        )
    return seen


@pytest.mark.parametrize(
    ("rules", "script", "expected"),
    [
        pytest.param(LOSS, "O L L L O O O", "- - - fallback->v2 - - restore->v3", id="no-data-switches-and-restores"),
        pytest.param(LOSS, "L L O L L", "- - - - -", id="interrupted-loss-does-not-switch"),
        pytest.param(LOSS, "H H H", "- - fallback->v2", id="critical-health-runs-count"),
        pytest.param(LOSS, "L L L O L O O O", "- - fallback->v2 - - - - restore->v3", id="loss-resets-clean-streak"),
        pytest.param(LOSS, "L L L L L L", "- - fallback->v2 - - fallback->rules", id="sustained-loss-moves-on"),
        pytest.param(LOSS, "b:L b:L m:O b:L", "- - - fallback->v2", id="other-monitor-healthy-holds-count"),
        pytest.param(
            SwitchRules(after_runs=2, restore_after_runs=3), "L L L L L", "- - - - -", id="without-rule-loss-holds"
        ),
        pytest.param(LOSS, "L L C C", "- - - fallback->v2", id="drift-still-switches"),
    ],
)
def test_fallback_on_data_loss(rules: SwitchRules, script: str, expected: str) -> None:
    """Sustained data-loss runs switch like drift does, a healthy run clears the count, clean runs restore."""
    assert play(rules, script) == expected.split()


def test_data_loss_switch_respects_dwell_and_records_why() -> None:
    """The dwell guard blocks a second switch; the switch names the data loss and the state round-trips."""
    assert play(LOSS, "L L L L L L", every=timedelta(minutes=1)) == [
        "-",
        "-",
        "fallback->v2",
        "-",
        "-",
        "min_dwell not reached (3m of 30m)",
    ]
    spec = ModelSpec("churn", "v3", ("v2",), LOSS)
    state = initial_state(spec, T0)
    decisions: Sequence[Switch | NoChange] = ()
    for i in range(3):
        state, decisions = on_monitor_run(spec, state, run("L"), T0 + timedelta(minutes=i))
    (switch,) = decisions
    assert isinstance(switch, Switch)
    assert switch.reason == "m data loss: 3 consecutive data-loss runs (data_loss after_runs 3)"
    assert switch.details["data_loss_runs"] == {"m": 3} and switch.details["data_loss"] is True
    assert state.data_loss_runs == {}
    state, _ = on_monitor_run(spec, state, run("L"), T0 + timedelta(hours=1))
    assert type(state).from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert state.data_loss_runs == {"m": 1}


# -- metrics --------------------------------------------------------------------------------------------------------


def health_statuses() -> dict[str, MonitorStatus]:
    health = assess(
        POLICY,
        rows=400,
        end=END,
        features=[stats("age", 400, 120)],
        reference_missing={"age": 0.0},
        history=[1000, 1000, 1000],
        newest=END - timedelta(minutes=40),
    )
    return {
        "payments": MonitorStatus("payments", "@hourly").after_run(
            "insufficient_data", finished=END, seconds=0.1, error="few rows", health=health
        ),
        "gone": MonitorStatus("gone", "@hourly").after_run(
            "no_data", finished=END, seconds=0.1, error="no file", health=Health((no_data_signal(0),))
        ),
        "broken": MonitorStatus("broken", "@hourly").after_run("error", finished=END, seconds=0.1, error="x"),
    }


def test_health_metrics_export_each_signal_and_nothing_unknown() -> None:
    """Health severities and values are exported per signal; a run without health exports none."""
    registry = CollectorRegistry()
    registry.register(DriftCollector(health_statuses, "1.2.3", lambda: True))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
        if "health" in s.name
        or s.name.startswith(("driftwatch_monitor_volume", "driftwatch_monitor_data_age"))
        or s.name == "driftwatch_feature_missing_share_increase"
    }

    def signal(monitor: str, name: str, feature: str = "") -> tuple:
        return ("driftwatch_health_severity", (("feature", feature), ("monitor", monitor), ("signal", name)))

    assert samples == {
        ("driftwatch_monitor_health_severity", (("monitor", "payments"),)): 2.0,
        ("driftwatch_monitor_health_severity", (("monitor", "gone"),)): 2.0,
        signal("payments", "no_data"): 0.0,
        signal("payments", "schema"): 0.0,
        signal("payments", "volume"): 1.0,
        signal("payments", "freshness"): 1.0,
        signal("payments", "missing_share", "age"): 2.0,
        signal("gone", "no_data"): 2.0,
        ("driftwatch_feature_missing_share_increase", (("feature", "age"), ("monitor", "payments"))): 0.3,
        ("driftwatch_monitor_volume_drop_ratio", (("monitor", "payments"),)): 0.6,
        ("driftwatch_monitor_volume_baseline_rows", (("monitor", "payments"),)): 1000.0,
        ("driftwatch_monitor_data_age_seconds", (("monitor", "payments"),)): 2400.0,
    }


def test_promtool_accepts_health_metrics() -> None:
    """promtool check metrics finds no problems in the health metrics."""
    promtool = require_binary("promtool")
    registry = metrics_registry(DriftCollector(health_statuses, "1.2.3", lambda: True))
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(registry), capture_output=True, timeout=30
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, b"", b"")
