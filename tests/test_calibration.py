"""Calibrated thresholds and moving baselines on real public data that a PyPI package ships (vega_datasets, read
from the installed wheel, no network): hourly temperatures of Seattle and San Francisco in 2010 (autocorrelated,
with a daily and a yearly cycle) and Seattle's daily weather 2012-2015.

The runs go through the shell as the daemon and `check` do: a config file, a parquet source, `prepare_monitor`
(profile and calibration cached in the profile folder) and `run_monitor` (streamed windows, mergeable partials).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import vega_datasets
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftwatch import build_profile, compare
from driftwatch.config import load_config
from driftwatch.core.calibration import CalibrationRule, calibrate, spans
from driftwatch.core.policy import Level, Policy
from driftwatch.core.report import Severity
from driftwatch.core.status import MonitorStatus
from driftwatch.outputs.exporter import DriftCollector
from driftwatch.runtime import baselines
from driftwatch.runtime.monitor import Monitor, open_sources, prepare_monitor, result_dict, run_monitor

DATA = Path(vega_datasets.__file__).parent / "_data"
FEATURES = ["seattle", "sf"]
#: The reference quarter of the hourly data (2,160 hours)
REFERENCE_END = datetime(2010, 4, 1, tzinfo=UTC)


def hourly_temperatures() -> pd.DataFrame:
    """Hourly temperatures (F) of Seattle and San Francisco in 2010, joined on the hour (8,759 rows)."""
    seattle = pd.read_csv(DATA / "seattle-temps.csv")
    sf = pd.read_csv(DATA / "sf-temps.csv")
    seattle["event_time"] = pd.to_datetime(seattle["date"], format="%Y/%m/%d %H:%M", utc=True)
    sf["event_time"] = pd.to_datetime(sf["date"], format="%Y/%m/%d %H:%M:%S", utc=True)
    return (
        seattle[["event_time", "temp"]]
        .rename(columns={"temp": "seattle"})
        .merge(sf[["event_time", "temp"]].rename(columns={"temp": "sf"}), on="event_time")
    )


def daily_weather() -> pd.DataFrame:
    """Seattle's daily weather 2012-2015 (1,461 days): precipitation, temperatures, wind and a weather label."""
    frame = pd.read_csv(DATA / "seattle-weather.csv")
    frame["event_time"] = pd.to_datetime(frame["date"], format="%Y/%m/%d", utc=True)
    return frame.drop(columns=["date"])


def write_config(root: Path, source_file: Path, monitor: dict, *, source_name: str = "prod") -> Path:
    """A config with one parquet source and the monitor `m`; the state (and profile folder) under `root`."""
    config = {
        "state": {"path": str(root / "state.db")},
        "sources": {source_name: {"kind": "parquet", "path": str(source_file), "timestamp_column": "event_time"}},
        "monitors": {"m": {"source": source_name, "schedule": {"every": "1h"}, **monitor}},
    }
    path = root / "driftwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prepared(config_path: Path) -> Monitor:
    config = load_config(config_path)
    return prepare_monitor("m", config, config_path.parent / "profiles", open_sources(config))


@pytest.fixture(scope="module")
def hourly(tmp_path_factory) -> Path:
    """The hourly year as the production parquet, the first quarter as the reference file."""
    root = tmp_path_factory.mktemp("hourly")
    frame = hourly_temperatures()
    frame.to_parquet(root / "prod.parquet")
    frame[frame["event_time"] < REFERENCE_END].to_parquet(root / "reference.parquet")
    return root


def hourly_monitor(root: Path, thresholds: object | None) -> Monitor:
    folder = root / ("calibrated" if thresholds else "fixed")
    folder.mkdir(exist_ok=True)
    monitor = {
        "reference": {"path": str(root / "reference.parquet")},
        "window": "7d",
        "min_rows": 100,
        "features": {"numeric": FEATURES, "categorical": []},
    }
    if thresholds is not None:
        monitor["thresholds"] = thresholds
    return prepared(write_config(folder, root / "prod.parquet", monitor))


def timeline(monitor: Monitor, ends: list[datetime]) -> tuple[list[dict], str]:
    """One run per window end: per feature KS D, PSI and severity; and the table printed when a test fails."""
    rows, lines = [], [f"{'window end':<12} {'monitor':<9} " + "  ".join(f"{f + ' D/psi/sev':<24}" for f in FEATURES)]
    for end in ends:
        result = run_monitor(monitor, end)
        assert result.report is not None, result.error
        features = {f.name: f for f in result.report.features}
        rows.append({"end": end, "severity": result.report.severity, "features": features})
        cells = [
            f"{features[f].stats.ks_statistic:.3f}/{features[f].stats.psi:.2f}/{features[f].severity.label:<8}"
            for f in FEATURES
        ]
        lines.append(f"{end.date()!s:<12} {result.report.severity.label:<9} " + "  ".join(f"{c:<24}" for c in cells))
    return rows, "\n".join(lines)


#: Weekly windows ending every day from Jan 8 to Apr 1: all inside the reference quarter.
IN_SAMPLE = [datetime(2010, 1, 8, tzinfo=UTC) + timedelta(days=k) for k in range(84)]
#: The summer: weekly windows ending every Monday of July and August (documented season change: +20-30 F in Seattle).
SUMMER = [datetime(2010, 7, 5, tzinfo=UTC) + timedelta(days=7 * k) for k in range(9)]


def _critical(row: dict) -> bool:
    return any(f.severity == Severity.CRITICAL for f in row["features"].values())


def test_fixed_thresholds_call_most_in_sample_weeks_critical(hourly):
    """Fixed thresholds (KS D >= 0.2, PSI >= 0.25): most weeks from the reference quarter itself are critical."""
    rows, table = timeline(hourly_monitor(hourly, None), IN_SAMPLE)
    share = sum(map(_critical, rows)) / len(rows)
    assert share >= 0.75, f"only {share:.0%} of in-sample weeks critical under fixed thresholds\n{table}"


def test_calibrated_thresholds_quiet_in_sample_and_still_catch_the_summer(hourly, caplog):
    """Calibrated: >= 90% of in-sample weeks have no critical feature, every summer week is critical for both."""
    with caplog.at_level(logging.INFO, logger="driftwatch.baselines"):
        monitor = hourly_monitor(hourly, "calibrated")
    assert any("calibrated thresholds from 30 of 30 baseline windows" in r.getMessage() for r in caplog.records)
    rows, table = timeline(monitor, IN_SAMPLE)
    quiet = sum(not _critical(row) for row in rows) / len(rows)
    assert quiet >= 0.9, f"only {quiet:.0%} of in-sample weeks without a critical feature\n{table}"
    summer, summer_table = timeline(monitor, SUMMER)
    for row in summer:
        for feature in FEATURES:
            assert row["features"][feature].severity == Severity.CRITICAL, f"{feature} not critical\n{summer_table}"
    # the thresholds: the fixed ones are floors, the calibrated ones sit above them
    for feature in FEATURES:
        levels = monitor.policy.levels_for(feature)
        assert levels["ks_statistic"].critical >= 0.2 and levels["psi"].critical >= 0.25
        assert levels["ks_statistic"].warning > 0.1 and levels["psi"].warning > 0.1


def test_calibration_equals_windows_compared_one_by_one(hourly):
    """Each calibrated level is max(floor, margin x quantile) over the baseline windows, each judged by `compare`."""
    reference = pd.read_parquet(hourly / "reference.parquet")
    profile = build_profile(reference, numeric=FEATURES)
    stamps = reference["event_time"].dt.as_unit("ns").astype("int64").to_numpy()
    week = 7 * 24 * 3600 * 10**9
    windows = spans(int(stamps.min()), int(stamps.max()) + 1, week, 30)
    floors = {"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2)}
    rule = CalibrationRule()
    chunk = {name: reference[name].to_numpy() for name in FEATURES}
    calibration = calibrate(profile, [(chunk, stamps)], windows, floors, rule, min_rows=100)
    assert calibration.windows == len(windows) == 30 and calibration.problem is None
    for feature in FEATURES:
        for stat, floor in floors.items():
            values = []
            for lo, hi in windows:
                inside = (stamps >= lo) & (stamps < hi)
                report = compare(profile, {f: reference[f].to_numpy()[inside] for f in FEATURES}, Policy(thresholds={}))
                values.append(getattr(report.feature(feature).stats, stat))
            expected_warning = max(floor.warning, 1.1 * float(np.quantile(values, 0.95)))
            expected_critical = max(floor.critical, 1.1 * max(values), expected_warning)
            assert calibration.thresholds[feature][stat] == Level(expected_warning, expected_critical)


def test_calibration_is_cached_with_the_profile_and_shown_in_report_and_metrics(hourly, monkeypatch):
    """The calibration is saved beside the profile and reused; the report JSON and the exporter show it."""
    monitor = hourly_monitor(hourly, {"calibrated": {"warning": 0.9, "margin": 1.2}})
    saved = json.loads((hourly / "calibrated" / "profiles" / "m" / baselines.CALIBRATION).read_text())
    assert saved["calibration"]["rule"]["warning"] == 0.9 and saved["calibration"]["windows"] == 30

    def refuse(*args, **kwargs):
        raise AssertionError("calibrated again although cached")

    monkeypatch.setattr(baselines, "calibrate", refuse)
    again = hourly_monitor(hourly, {"calibrated": {"warning": 0.9, "margin": 1.2}})
    assert again.policy.feature_thresholds == monitor.policy.feature_thresholds
    result = run_monitor(again, SUMMER[0])
    out = result_dict("m", result, again.profile.rows)
    assert out["baseline"]["kind"] == "file" and out["baseline"]["calibration"]["windows"] == 30
    levels = again.policy.levels_for("seattle")
    assert out["features"]["seattle"]["thresholds"]["ks_statistic"] == {
        "warning": levels["ks_statistic"].warning,
        "critical": levels["ks_statistic"].critical,
    }
    status = MonitorStatus("m", "every 1h").after_run("ok", finished=SUMMER[0], seconds=0.1, report=result.report)
    registry = CollectorRegistry()
    registry.register(DriftCollector(lambda: {"m": status}, "test", lambda: True))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    key = (
        "driftwatch_feature_threshold",
        (("feature", "seattle"), ("level", "critical"), ("monitor", "m"), ("statistic", "psi")),
    )
    assert samples[key] == levels["psi"].critical
    reference_rows = len(pd.read_parquet(hourly / "reference.parquet"))  # the first quarter, less a DST hour
    assert samples[("driftwatch_monitor_reference_rows", (("monitor", "m"),))] == reference_rows == 2159


def test_too_short_baseline_to_calibrate_is_insufficient_data_with_the_reason(hourly):
    """A baseline with fewer judged windows than `min_windows` makes runs insufficient_data, saying why."""
    monitor = hourly_monitor(hourly, {"calibrated": {"windows": 30, "min_windows": 10}})
    assert run_monitor(monitor, SUMMER[0]).outcome == "ok"
    short = hourly / "short"
    short.mkdir(exist_ok=True)
    frame = pd.read_parquet(hourly / "reference.parquet")
    frame.iloc[:150].to_parquet(short / "reference.parquet")  # 150 hours: no 7-day window fits
    config = {
        "reference": {"path": str(short / "reference.parquet")},
        "window": "7d",
        "min_rows": 100,
        "thresholds": "calibrated",
        "features": {"numeric": FEATURES, "categorical": []},
    }
    result = run_monitor(prepared(write_config(short, hourly / "prod.parquet", config)), SUMMER[0])
    assert result.outcome == "insufficient_data" and result.report is None
    assert result.error == "calibration needs at least 10 baseline windows with >= 100 rows, found 0 of 0"


def test_without_timestamps_calibration_cuts_row_blocks(hourly):
    """A reference without the timestamp column is cut into contiguous row blocks of `rows` rows."""
    folder = hourly / "blocks"
    folder.mkdir(exist_ok=True)
    pd.read_parquet(hourly / "reference.parquet")[FEATURES].to_parquet(folder / "reference.parquet")
    config = {
        "reference": {"path": str(folder / "reference.parquet")},
        "window": "7d",
        "min_rows": 100,
        "thresholds": {"calibrated": {"rows": 168}},
        "features": {"numeric": FEATURES, "categorical": []},
    }
    monitor = prepared(write_config(folder, hourly / "prod.parquet", config))
    assert monitor.baseline is not None
    calibration = monitor.baseline.at(SUMMER[0]).calibration
    assert calibration is not None and calibration.windows == 30 and calibration.problem is None
    # row blocks of a week of hours behave like the week windows: the same order of magnitude of thresholds
    timed = hourly_monitor(hourly, "calibrated").policy.levels_for("seattle")["ks_statistic"].critical
    blocks = monitor.policy.levels_for("seattle")["ks_statistic"].critical
    assert blocks == pytest.approx(timed, rel=0.25)


# ----------------------------------------------------------------------------------------------------------------
# Baselines from a source window
# ----------------------------------------------------------------------------------------------------------------


def _same_profile(judged, frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> None:
    direct = build_profile(frame, numeric=numeric, categorical=categorical, settings=judged.profile.settings)
    assert judged.profile.rows == direct.rows == len(frame)
    assert judged.profile.fingerprint == direct.fingerprint
    for name in numeric:
        ours, theirs = judged.profile.features[name], direct.features[name]
        assert np.array_equal(ours.sorted_values, theirs.sorted_values)
        assert ours.edges.tolist() == theirs.edges.tolist() and ours.counts.tolist() == theirs.counts.tolist()
    for name in categorical:
        ours, theirs = judged.profile.features[name], direct.features[name]
        assert dict(zip(ours.categories, ours.counts.tolist(), strict=True)) == dict(
            zip(theirs.categories, theirs.counts.tolist(), strict=True)
        )


def _same_statistics(report, expected) -> None:
    for ours, theirs in zip(report.features, expected.features, strict=True):
        for stat in ("psi", "ks_statistic", "ks_pvalue", "chi2_pvalue", "js_distance", "missing_share"):
            assert getattr(ours.stats, stat) == getattr(theirs.stats, stat), (ours.name, stat)
        if theirs.stats.wasserstein is not None:
            assert ours.stats.wasserstein == pytest.approx(theirs.stats.wasserstein, rel=1e-12)
        assert ours.severity == theirs.severity


def test_trailing_baseline_equals_a_profile_of_that_window(hourly, caplog):
    """{source: prod, window: 28d, offset: 7d}: the 28 days ending 7 days before the run's window; rebuilt when it
    moves, reused while it does not; rows and statistics equal a profile built directly from those rows."""
    folder = hourly / "trailing"
    folder.mkdir(exist_ok=True)
    config = {
        "reference": {"source": "prod", "window": "28d", "offset": "7d"},
        "window": "7d",
        "min_rows": 100,
        "features": {"numeric": FEATURES, "categorical": []},
    }
    monitor = prepared(write_config(folder, hourly / "prod.parquet", config))
    frame = hourly_temperatures()
    at = datetime(2010, 6, 15, 13, 30, tzinfo=UTC)  # window [Jun 8 13:30, Jun 15 13:30); baseline ends Jun 1 00:00
    result = run_monitor(monitor, at)
    assert result.report is not None
    start, end = datetime(2010, 5, 4, tzinfo=UTC), datetime(2010, 6, 1, tzinfo=UTC)
    baseline_rows = frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]
    assert result.report.baseline == {
        "kind": "window",
        "source": "prod",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "window": "28d",
        "offset": "7d",
        "rows": len(baseline_rows),
    }
    assert result.report.reference_rows == len(baseline_rows) == 672
    assert monitor.baseline is not None
    _same_profile(monitor.baseline.at(at - timedelta(days=7)), baseline_rows, FEATURES, [])
    current = frame[(frame["event_time"] >= at - timedelta(days=7)) & (frame["event_time"] < at)]
    expected = compare(build_profile(baseline_rows, numeric=FEATURES), {f: current[f].to_numpy() for f in FEATURES})
    _same_statistics(result.report, expected)
    # the same day: the same baseline, not read again; the next day: the window moved, built again
    caplog.clear()  # the first run's own "read baseline" line, captured when an earlier test left INFO on
    with caplog.at_level(logging.INFO, logger="driftwatch.baselines"):
        run_monitor(monitor, at + timedelta(hours=3))
        assert not any("read baseline" in r.getMessage() for r in caplog.records)
        moved = run_monitor(monitor, at + timedelta(days=1))
    assert any("read baseline" in r.getMessage() for r in caplog.records)
    assert moved.report is not None and moved.report.baseline["end"] == (end + timedelta(days=1)).isoformat()
    # a restarted monitor loads the profile of the same window from its folder
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="driftwatch.baselines"):
        restarted = prepared(folder / "driftwatch.yaml")
        assert run_monitor(restarted, at + timedelta(days=1)).report.reference_rows == moved.report.reference_rows
    assert any("loaded baseline profile" in r.getMessage() for r in caplog.records)


def test_trailing_baseline_before_the_data_is_insufficient_data(hourly):
    """A baseline window with too few rows (before the source's first row) is insufficient_data with the reason."""
    folder = hourly / "early"
    folder.mkdir(exist_ok=True)
    config = {
        "reference": {"source": "prod", "window": "28d", "offset": "7d"},
        "window": "7d",
        "features": {"numeric": FEATURES, "categorical": []},
    }
    result = run_monitor(
        prepared(write_config(folder, hourly / "prod.parquet", config)), datetime(2010, 1, 20, tzinfo=UTC)
    )
    assert result.outcome == "insufficient_data"
    assert result.error == (
        "baseline window [2009-12-09T00:00:00+00:00, 2010-01-06T00:00:00+00:00) of source prod has 120 rows, "
        "fewer than min_rows 200"
    )


def test_seasonal_baseline_with_calibration_equals_that_window(tmp_path):
    """{source: weather, window: 28d, offset: 364d} on daily weather: last year's weeks; profile, statistics and
    calibration equal those computed directly from that window's rows."""
    frame = daily_weather()
    frame.to_parquet(tmp_path / "weather.parquet")
    numeric, categorical = ["temp_max", "temp_min", "precipitation", "wind"], ["weather"]
    config = {
        "reference": {"source": "weather", "window": "84d", "offset": "364d"},
        "window": "28d",
        "min_rows": 20,
        "thresholds": {"calibrated": {"min_windows": 5}},
        "features": {"numeric": numeric, "categorical": categorical},
    }
    monitor = prepared(write_config(tmp_path, tmp_path / "weather.parquet", config, source_name="weather"))
    at = datetime(2014, 7, 1, tzinfo=UTC)  # window [Jun 3, Jul 1) 2014; baseline [Mar 12, Jun 4) 2013
    result = run_monitor(monitor, at)
    assert result.report is not None, result.error
    start, end = datetime(2013, 3, 12, tzinfo=UTC), datetime(2013, 6, 4, tzinfo=UTC)
    assert (result.report.baseline["start"], result.report.baseline["end"]) == (start.isoformat(), end.isoformat())
    rows = frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]
    assert result.report.reference_rows == len(rows) == 84
    assert monitor.baseline is not None
    judged = monitor.baseline.at(at - timedelta(days=28))
    _same_profile(judged, rows, numeric, categorical)
    direct = build_profile(rows, numeric=numeric, categorical=categorical)
    stamps = rows["event_time"].dt.as_unit("ns").astype("int64").to_numpy()
    day = 24 * 3600 * 10**9
    windows = spans(int(pd.Timestamp(start).value), int(pd.Timestamp(end).value), 28 * day, 30)
    chunk = {name: rows[name].to_numpy() for name in numeric} | {
        name: rows[name].to_numpy(dtype=object) for name in categorical
    }
    floors = {"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2)}
    expected = calibrate(direct, [(chunk, stamps)], windows, floors, CalibrationRule(min_windows=5), min_rows=20)
    assert judged.calibration is not None and judged.calibration.thresholds == expected.thresholds
    current = frame[(frame["event_time"] >= at - timedelta(days=28)) & (frame["event_time"] < at)]
    batch = {name: current[name].to_numpy() for name in numeric} | {
        name: current[name].to_numpy(dtype=object) for name in categorical
    }
    _same_statistics(result.report, compare(direct, batch, expected.apply(Policy())))


def test_check_json_shows_the_baseline_window_and_thresholds(hourly):
    """`driftwatch check --format json` reports the baseline window, its rows and each feature's thresholds."""
    folder = hourly / "cli"
    folder.mkdir(exist_ok=True)
    config = {
        "reference": {"source": "prod", "window": "28d", "offset": "7d"},
        "window": "7d",
        "min_rows": 100,
        "thresholds": "calibrated",
        "features": {"numeric": FEATURES, "categorical": []},
    }
    path = write_config(folder, hourly / "prod.parquet", config)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "driftwatch",
            "check",
            "-c",
            str(path),
            "--at",
            "2010-07-20T00:00:00Z",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    out = json.loads(done.stdout)["monitors"][0]
    assert (
        out["baseline"]["start"] == "2010-06-08T00:00:00+00:00"
        and out["baseline"]["end"] == "2010-07-06T00:00:00+00:00"
    )
    assert out["rows"]["reference"] == out["baseline"]["rows"] == 672
    assert out["baseline"]["calibration"]["windows"] == 30
    assert set(out["features"]["sf"]["thresholds"]) == {"psi", "ks_statistic"}


# ----------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------


def _config_error(tmp_path: Path, monitor: dict) -> str:
    from driftwatch.errors import ConfigError

    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "prod.parquet")
    base = {"reference": {"path": str(tmp_path / "ref.parquet")}, "window": "1h"}
    path = write_config(tmp_path, tmp_path / "prod.parquet", base | monitor)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


@pytest.mark.parametrize(
    ("monitor", "expected"),
    [
        pytest.param(
            {"thresholds": {"calibrated": {"warning": 0.99, "critical": 0.9}}},
            "monitors.m.thresholds.calibrated: critical quantile (0.9) must be >= warning (0.99)",
            id="quantiles-order",
        ),
        pytest.param(
            {"thresholds": {"calibrated": {"windos": 3}}},
            "monitors.m.thresholds.calibrated: unknown key 'windos'",
            id="unknown-knob",
        ),
        pytest.param(
            {"reference": {"source": "prod"}},
            "monitors.m.reference: a source reference needs a window, e.g. {source: prod, window: 28d, offset: 7d}",
            id="source-without-window",
        ),
        pytest.param(
            {"reference": {"source": "nope", "window": "28d"}},
            "monitors.m.reference.source: unknown source 'nope' (defined: prod)",
            id="unknown-baseline-source",
        ),
        pytest.param(
            {"reference": {"source": "prod", "window": "28d", "offset": "0s"}},
            "monitors.m.reference.offset: duration must be > 0",
            id="zero-offset",
        ),
    ],
)
def test_invalid_calibration_and_baseline_config_is_one_line(tmp_path, monitor, expected):
    """Bad `thresholds.calibrated` or source `reference` keys give one line naming the YAML path."""
    assert _config_error(tmp_path, monitor).startswith(expected)


def test_calibrated_config_forms(tmp_path):
    """`thresholds: calibrated` and the mapping form give the rule; fixed levels beside it stay the floors."""
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "ref.parquet")
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(tmp_path / "p.parquet")
    base = {"reference": {"path": str(tmp_path / "ref.parquet")}, "window": "1h"}
    short = load_config(write_config(tmp_path, tmp_path / "p.parquet", base | {"thresholds": "calibrated"}))
    assert short.monitors["m"].calibrated is not None
    assert short.monitors["m"].calibrated.rule() == CalibrationRule()
    assert dict(short.monitors["m"].policy().thresholds) == {"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2)}
    long = {
        "thresholds": {"calibrated": {"margin": 1.5, "windows": 40}, "js_distance": {"warning": 0.1, "critical": 0.2}}
    }
    config = load_config(write_config(tmp_path, tmp_path / "p.parquet", base | long))
    monitor = config.monitors["m"]
    assert monitor.calibrated is not None and monitor.calibrated.rule() == CalibrationRule(margin=1.5, windows=40)
    assert monitor.policy().thresholds["js_distance"] == Level(0.1, 0.2)
    dumped = config.model_dump(mode="json")["monitors"]["m"]["thresholds"]
    assert dumped["calibrated"]["margin"] == 1.5 and "calibrated" not in config.model_dump()["monitors"]["m"]


# ----------------------------------------------------------------------------------------------------------------
# The daemon
# ----------------------------------------------------------------------------------------------------------------


def test_daemon_exports_calibrated_thresholds_of_a_trailing_baseline(tmp_path):
    """A real daemon on the hourly year moved to end now: a calibrated trailing baseline shows in /metrics
    (reference rows, calibrated thresholds) and in the report API (baseline window)."""
    from conftest import free_port
    from daemon_harness import DaemonProcess

    frame = hourly_temperatures()
    now = pd.Timestamp.now(tz="UTC").floor("h")
    frame["event_time"] += now - frame["event_time"].max()  # the last hour of the year is this hour
    frame.to_parquet(tmp_path / "prod.parquet")
    port = free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "state": {"path": str(tmp_path / "state.db")},
        "sources": {
            "prod": {"kind": "parquet", "path": str(tmp_path / "prod.parquet"), "timestamp_column": "event_time"}
        },
        "monitors": {
            "m": {
                "source": "prod",
                "reference": {"source": "prod", "window": "28d", "offset": "7d"},
                "schedule": {"every": "2s"},
                "window": "7d",
                "min_rows": 100,
                "thresholds": "calibrated",
                "features": {"numeric": FEATURES, "categorical": []},
            }
        },
    }
    (tmp_path / "driftwatch.yaml").write_text(yaml.safe_dump(config))
    daemon = DaemonProcess(tmp_path / "driftwatch.yaml", port)
    try:
        rows_key = ("driftwatch_monitor_reference_rows", (("monitor", "m"),))
        daemon.wait_for(lambda: daemon.metrics().get(rows_key, 0) > 0, "a run with its baseline")
        metrics = daemon.metrics()
        report = daemon.json("/api/v1/monitors/m/report")
    finally:
        daemon.kill()
    baseline = report["baseline"]
    start, end = pd.Timestamp(baseline["start"]), pd.Timestamp(baseline["end"])
    assert end - start == pd.Timedelta(days=28) and end == end.floor("D")
    expected_rows = int(((frame["event_time"] >= start) & (frame["event_time"] < end)).sum())
    assert metrics[rows_key] == baseline["rows"] == expected_rows > 600
    assert baseline["calibration"]["windows"] == 30
    for feature in FEATURES:
        for statistic, floor in (("ks_statistic", 0.2), ("psi", 0.25)):
            key = (
                "driftwatch_feature_threshold",
                (("feature", feature), ("level", "critical"), ("monitor", "m"), ("statistic", statistic)),
            )
            assert metrics[key] == report["features"][feature]["thresholds"][statistic]["critical"] >= floor
