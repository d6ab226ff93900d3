"""`driftwatch report`: one run of a monitor now (or at a given time), written as a self-contained HTML file.

The file is the web view's monitor page without its links: inline CSS and SVG, no script, nothing fetched, so it
opens anywhere (a CI artifact, an e-mail attachment). When the config's state database exists, the feature
histories show the runs recorded there up to the report's time, with this run last.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from driftwatch.config import Config
from driftwatch.errors import DriftwatchError
from driftwatch.outputs.web import report_document
from driftwatch.runtime.monitor import RunResult, close_sources, open_sources, prepare_monitor, result_dict, run_monitor
from driftwatch.runtime.store import Store

#: Stored runs shown in the feature histories of a report file.
HISTORY_RUNS = 30


def build_report(config: Config, name: str, at: datetime) -> tuple[str, RunResult]:
    """The HTML document of one run of monitor `name` with its window ending at `at`, and the run's result.

    Raises DriftwatchError for an unknown monitor or a run that failed (a window with too few rows is a page
    that says so).
    """
    if name not in config.monitors:
        raise DriftwatchError(f"unknown monitor {name!r} (defined: {', '.join(config.monitors)})")
    sources = open_sources(config)
    try:
        monitor = prepare_monitor(name, config, Path(config.state.path).parent / "profiles", sources)
        result = run_monitor(monitor, at)
    finally:
        close_sources(sources.values())
    if result.outcome == "error":
        raise DriftwatchError(f"monitor {name}: {result.error}")
    report = result_dict(name, result, monitor.profile.rows)
    return report_document(report, stored_history(Path(config.state.path), name, at, report)), result


def stored_history(path: Path, name: str, at: datetime, report: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded runs of `name` started up to `at` (oldest first) with this report's run last; empty when the
    state database does not exist (it is not created) or holds no run of the monitor."""
    if not path.exists():
        return []
    with Store(path) as store:
        runs = [run for run in store.run_history(name, HISTORY_RUNS) if run["started_at"] <= at]
    if not runs:
        return []
    features = {
        feature: {key: data.get(key) for key in ("psi", "ks_statistic", "severity")}
        for feature, data in report.get("features", {}).items()
    }
    this_run = {"started_at": at, "finished_at": at, "outcome": report.get("status"), "features": features}
    return [*runs[-(HISTORY_RUNS - 1) :], {**this_run, "severity": report.get("severity")}]
