"""Many windows of one monitor in one process: `check --from/--to` (a timeline) and `backfill` (stored runs).

The monitor is prepared once (its reference profile loaded or built once); each window is then one ordinary
run (`run_monitor`), so a timeline's reports are exactly those the daemon or `check --at END` gives. Windows are
[t, t + window) for t = from, from + step, ... as long as they end by `to`. A backfill stores each run with the
window's end as its time, marked `origin: backfill`: it sends no alert and switches no model (those act on
the present), and the daemon's latest status and metrics stay those of its own runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime, timedelta

from driftwatch.errors import DriftwatchError
from driftwatch.runtime.monitor import Monitor, RunResult, run_monitor
from driftwatch.runtime.store import BACKFILL_BATCH, RunRow, Store
from driftwatch.sources.base import as_utc

#: The most windows one command evaluates (a typo in --step should not start a million runs).
MAX_WINDOWS = 100_000

#: Called before each window with (window number from 1, windows in all, the window's end).
WindowProgress = Callable[[int, int, datetime], None]


def window_ends(start: datetime, end: datetime, window: timedelta, step: timedelta) -> list[datetime]:
    """The ends of the windows [t, t + window) for t = start, start + step, ... that end by `end`, in UTC;
    DriftwatchError (one line) when there is none or too many."""
    start, end = as_utc(start), as_utc(end)
    if step <= timedelta(0):
        raise DriftwatchError("--step must be positive")
    if start + window > end:
        raise DriftwatchError(
            f"no window fits: --from {start.isoformat()} plus the monitor's window ends after --to {end.isoformat()}"
        )
    count = (end - start - window) // step + 1
    if count > MAX_WINDOWS:
        raise DriftwatchError(f"{count} windows from --from to --to: at most {MAX_WINDOWS} (use a larger --step)")
    return [start + window + i * step for i in range(count)]


def run_windows(
    monitor: Monitor,
    ends: Sequence[datetime],
    progress: WindowProgress | None = None,
    executor: Executor | None = None,
) -> Iterator[RunResult]:
    """One run of `monitor` per window end, in order (features on `executor`, if given)."""
    for i, end in enumerate(ends, 1):
        if progress is not None:
            progress(i, len(ends), end)
        yield run_monitor(monitor, end, executor)


def backfill(
    monitor: Monitor,
    store: Store,
    ends: Sequence[datetime],
    progress: WindowProgress | None = None,
    executor: Executor | None = None,
) -> list[RunResult]:
    """Run every window and store the runs as backfilled runs of the monitor (replacing earlier backfilled runs
    of the same windows), `BACKFILL_BATCH` at a time; the results in order."""
    results: list[RunResult] = []
    pending: list[RunRow] = []
    for result in run_windows(monitor, ends, progress, executor):
        results.append(result)
        pending.append(run_row(result))
        if len(pending) == BACKFILL_BATCH:
            store.record_backfill(monitor.name, pending)
            pending = []
    if pending:
        store.record_backfill(monitor.name, pending)
    return results


def run_row(result: RunResult) -> RunRow:
    """A run as the daemon records it: its time is the window's end; no report unless the batch was judged."""
    report = result.report
    return RunRow(
        started=result.end,
        finished=datetime.now(UTC),
        outcome=result.outcome,
        severity=report.severity.label if report else None,
        error=result.error,
        report=report.to_dict() if report else None,
    )
