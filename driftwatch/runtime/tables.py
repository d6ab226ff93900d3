"""Text tables of `driftwatch check`: one run (severity first, every feature with its gate decision) and a
timeline of many windows (`check --from/--to`). Times are shown in UTC."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from driftwatch.config import format_duration
from driftwatch.core.report import FeatureResult, Report, Severity
from driftwatch.runtime.monitor import RunResult
from driftwatch.sources.base import as_utc


def utc_text(moment: datetime) -> str:
    """`2024-01-08 00:00:00` in UTC."""
    return f"{as_utc(moment):%Y-%m-%d %H:%M:%S}"


def window_text(start: datetime, end: datetime) -> str:
    """`2024-01-01 00:00:00 .. 2024-01-08 00:00:00 UTC (7d)`: both ends dated, whatever the window's length."""
    return f"{utc_text(start)} .. {utc_text(end)} UTC ({format_duration(as_utc(end) - as_utc(start))})"


def verdict(result: RunResult) -> str:
    """What the run says, first: the severity (`CRITICAL`) when the batch was judged, else its outcome."""
    return result.report.severity.label.upper() if result.report is not None else result.outcome.upper()


def format_result(name: str, result: RunResult, reference_rows: int) -> str:
    """A readable table of one run: verdict, UTC window and rows, then one line per feature."""
    rows = "unknown" if result.rows is None else f"{result.rows:,}"
    head = (
        f"{name}: {verdict(result)}"
        + (f"  drift share {result.report.drift_share or 0:.2f}" if result.report is not None else "")
        + f"\n  window {window_text(result.start, result.end)}  rows {rows} (reference {reference_rows:,})"
    )
    if result.report is None:
        return f"{head}\n  {result.error}" + "".join(f"\n{line}" for line in health_lines(result))
    return "\n".join([head, *baseline_lines(result.report), *feature_lines(result.report), *health_lines(result)])


def health_lines(result: RunResult) -> list[str]:
    """The data-health lines of a run: its severity and each signal that is not ok (nothing without signals)."""
    if result.health is None or not result.health.signals:
        return []
    lines = [f"  data health {result.health.severity.label.upper()}"]
    for signal in result.health.signals:
        if signal.severity > 0:
            what = f"{signal.name} {signal.feature}" if signal.feature else signal.name
            lines.append(f"    {what}: {signal.severity.label}: {signal.detail}")
    return lines


def baseline_lines(report: Report) -> list[str]:
    """A moving baseline's window, and where calibrated thresholds came from (nothing for a plain file)."""
    info = report.baseline or {}
    lines = []
    if info.get("kind") == "window" and info.get("start") and info.get("end"):
        start, end = datetime.fromisoformat(info["start"]), datetime.fromisoformat(info["end"])
        lines.append(f"  baseline {info.get('source')} {window_text(start, end)}  rows {info.get('rows', 0):,}")
    calibration = info.get("calibration")
    if isinstance(calibration, dict):
        lines.append(f"  thresholds calibrated on {calibration.get('windows')} baseline windows")
    return lines


#: The gate column: did the feature pass the significance gate (its adjusted p-value below alpha)?
_GATE = {True: "yes", False: "no"}


def feature_lines(report: Report) -> list[str]:
    """The feature table of a report, worst severity first: severity, statistics, raw and adjusted p-value, the
    significance gate's decision (`significant`: yes / no / off when the monitor has no gate) and the breaches."""
    width = max([len("feature"), *(len(r.name) for r in report.features)])
    lines = [
        f"  {'severity':<9} {'feature':<{width}} {'kind':<11} {'psi':>7} {'ks':>7} {'js':>6} {'wass':>8} "
        f"{'missing':>7} {'p-value':>9} {'adj. p':>9} {'significant':<11} breaches"
    ]
    ordered = sorted(report.features, key=lambda r: (-int(r.severity), r.stats.status != "ok", r.name))
    for r in ordered:
        s = r.stats
        lines.append(
            f"  {(r.severity.label if s.status == 'ok' else s.status):<9} {r.name:<{width}} {s.kind:<11} "
            f"{_f(s.psi, 7, 3)} {_f(s.ks_statistic, 7, 3)} {_f(s.js_distance, 6, 3)} {_f(s.wasserstein, 8, 3, 'g')} "
            f"{_f(s.missing_share, 7, 3)} {_f(s.test_pvalue, 9, 2, 'e')} {_f(r.adjusted_pvalue, 9, 2, 'e')} "
            f"{_gate(r):<11} {_breaches(r)}".rstrip()
        )
        if s.new_categories:
            shares = ", ".join(f"{k} ({v:.1%})" for k, v in s.new_categories.items())
            lines.append(f"  {'':<9} {'':<{width}} new categories: {shares}")
    return lines


def _gate(result: FeatureResult) -> str:
    if result.stats.status != "ok":
        return "-"
    if result.adjusted_pvalue is None and result.significant:
        return "off"
    return _GATE[result.significant]


def _breaches(result: FeatureResult) -> str:
    """`psi>=critical ks_statistic>=warning`; held back by the gate: `(not significant)` after them."""
    if not result.breaches:
        return "-"
    text = " ".join(f"{name}>={level.label}" for name, level in result.breaches.items())
    return text if result.significant else f"{text} (not significant)"


def format_timeline(
    name: str, results: Sequence[RunResult], reference_rows: int | None, window: timedelta, step: timedelta
) -> str:
    """One line per window (end, verdict, drift share, rows, the features at warning or above), then a summary;
    `reference_rows` None: a moving baseline (its rows change with the window)."""
    reference = "a moving baseline" if reference_rows is None else f"reference {reference_rows:,} rows"
    lines = [
        f"{name}: {len(results)} windows of {format_duration(window)} every {format_duration(step)}, {reference}",
        f"  {'window end (UTC)':<19}  {'verdict':<17} {'share':>5} {'rows':>10}  features at warning or above",
    ]
    for result in results:
        report = result.report
        rows = "-" if result.rows is None else f"{result.rows:,}"
        share = "-" if report is None or report.drift_share is None else f"{report.drift_share:.2f}"
        if report is None:
            detail = result.error or ""
        else:
            drifted = sorted(
                (r for r in report.features if r.severity >= Severity.WARNING), key=lambda r: (-int(r.severity), r.name)
            )
            detail = ", ".join(f"{r.name} ({r.severity.label})" for r in drifted) or "-"
        lines.append(f"  {utc_text(result.end):<19}  {verdict(result).lower():<17} {share:>5} {rows:>10}  {detail}")
    counts = Counter(verdict(r).lower() for r in results)
    order = ("critical", "warning", "ok", "insufficient_data", "no_data", "error")
    lines.append("  " + ", ".join(f"{counts[k]} {k}" for k in order if counts[k]))
    return "\n".join(lines)


def _f(value: float | None, width: int, digits: int, kind: str = "f") -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}{kind}}"
