"""A prepared monitor (source, reference profile, policy) and one run of it: read -> count -> finish -> outcome.

A run reads its window in batches (`sources.<name>.batch_rows`) and counts them pass by pass with the mergeable
partials of `driftwatch.core.partials`, so memory does not grow with the window. The prepared batches of the
first pass are kept for the later passes while they hold at most `CACHE_ROWS` rows (the window is read once);
a larger window is read again for each later pass, which counts only the values inside the few grid intervals
that need it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftwatch.config import Config, MonitorConfig
from driftwatch.core.health import Health, HealthPolicy, assess, no_data_signal, reference_missing_shares, schema_signal
from driftwatch.core.partials import Chunk, Job, Partial, WindowChanged, prepare
from driftwatch.core.policy import Policy
from driftwatch.core.profile import Profile
from driftwatch.core.report import Report
from driftwatch.core.status import Outcome
from driftwatch.engines import open_engine
from driftwatch.errors import SchemaMismatch, SourceError
from driftwatch.runtime.baselines import Baseline, WindowBaseline, empty_profile, prepare_file_baseline
from driftwatch.runtime.memory import RowBudget
from driftwatch.runtime.profiles import release_mapped_pages
from driftwatch.sources import DataSource, Window, open_source, reference_columns
from driftwatch.sources.base import CountingWindow, as_utc, batch_arrays, missing_columns_message
from driftwatch.sources.cardinality import find_id_like

log = logging.getLogger("driftwatch.monitor")


@dataclass(frozen=True)
class Monitor:
    """Everything one monitor needs at run time; built once per config load."""

    name: str
    config: MonitorConfig
    source: DataSource
    profile: Profile
    policy: Policy
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    baseline: Baseline | None = None  # gives each run its profile and policy (`driftwatch.runtime.baselines`)
    health: HealthPolicy = field(default_factory=HealthPolicy)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def reference_missing(self) -> dict[str, float]:
        """Each feature's missing share in the reference."""
        return reference_missing_shares(self.profile.features)


@dataclass(frozen=True)
class RunResult:
    """The outcome of one run: a report when the batch was judged, else why not (`rows` None: not known)."""

    outcome: Outcome
    start: datetime
    end: datetime
    rows: int | None = None
    report: Report | None = None
    error: str | None = None
    policy: Policy | None = None  # the policy the run was judged by (calibrated per baseline)
    reference_rows: int | None = None  # rows of the run's baseline, when it had one
    health: Health | None = None  # the data-health signals (driftwatch.core.health), when assessed

    @property
    def data_loss(self) -> bool:
        """A run that failed, found no data, or whose data health is critical (for the data-loss fallback)."""
        return self.outcome in ("error", "no_data") or (self.health is not None and self.health.critical)


def resolve_features(config: MonitorConfig, timestamp_column: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Numeric and categorical feature names: as configured, or `auto` from the reference file's schema (without
    `features.exclude` and id-like columns, see `driftwatch.sources.cardinality`; a warning names those)."""
    if config.reference.path is None:  # a source window: its columns are only known when it is read
        listed = [() if f == "auto" else tuple(f) for f in (config.features.numeric, config.features.categorical)]
        if not any(listed):
            raise SchemaMismatch(
                "a source window reference needs its features listed: features: {numeric: [...], categorical: [...]}"
            )
        return listed[0], listed[1]
    path = Path(config.reference.path)
    kinds = reference_columns(path)
    unknown = [c for c in config.features.exclude if c not in kinds]
    if unknown:
        raise SchemaMismatch(f"reference {path}: features.exclude: {missing_columns_message(unknown, kinds)}")
    skip = {timestamp_column, *config.features.exclude}

    def pick(wanted: Sequence[str], kind: str) -> tuple[str, ...]:
        if wanted == "auto":
            picked = [c for c, k in kinds.items() if k == kind and c not in skip]
            id_like = find_id_like(path, picked)
            if id_like:
                log.warning(
                    "reference %s: id-like %s column(s) left out of features: auto: %s (list a column to monitor it,"
                    " or add it to features.exclude to silence this)",
                    path,
                    kind,
                    ", ".join(c.describe() for c in id_like),
                )
            return tuple(c for c in picked if c not in {i.column for i in id_like})
        for column in wanted:
            if column not in kinds:
                raise SchemaMismatch(f"reference {path}: column {column!r} not found (available: {', '.join(kinds)})")
            if kind == "numeric" and kinds[column] != "numeric":
                raise SchemaMismatch(f"reference {path}: column {column!r} is {kinds[column]}, not numeric")
        return tuple(wanted)

    numeric = pick(config.features.numeric, "numeric")
    categorical = tuple(c for c in pick(config.features.categorical, "categorical") if c not in numeric)
    if not numeric and not categorical:
        raise SchemaMismatch(f"reference {path}: no features to monitor")
    return numeric, categorical


def prepare_monitor(name: str, config: Config, profile_dir: Path, sources: Mapping[str, DataSource]) -> Monitor:
    """Resolve features, load or build the reference profile, and bind the monitor's source."""
    monitor = config.monitors[name]
    source_config = config.sources[monitor.source]
    numeric, categorical = resolve_features(monitor, source_config.timestamp_column)
    folder = profile_dir / f"{name}.npz"
    policy = monitor.policy()
    baseline: Baseline
    if monitor.reference.source is not None:
        baseline_source = monitor.reference.source
        timestamp = config.sources[baseline_source].timestamp_column
        baseline = WindowBaseline(name, monitor, sources[baseline_source], folder, numeric, categorical, timestamp)
        profile = empty_profile(numeric, categorical, monitor.profile_settings())
    else:
        file_baseline = prepare_file_baseline(
            name, monitor, folder, numeric, categorical, source_config.timestamp_column
        )
        baseline, profile, policy = file_baseline, file_baseline.judged.profile, file_baseline.judged.policy
    source = sources[monitor.source]
    health = monitor.health_policy()
    return Monitor(name, monitor, source, profile, policy, numeric, categorical, baseline, health=health)


def open_sources(config: Config) -> dict[str, DataSource]:
    """One DataSource per configured source, its waits bounded by the shortest `timeout` of its monitors; a
    source with an `engine` is counted there (the engine starts or connects on its first run)."""
    timeouts: dict[str, float] = {}
    for monitor in config.monitors.values():
        seconds = monitor.timeout.total_seconds()
        timeouts[monitor.source] = min(seconds, timeouts.get(monitor.source, seconds))
    engines = {
        name: open_engine(name, e.kind, address=e.address, workers=e.workers, threads_per_worker=e.threads_per_worker)
        for name, e in config.engines.items()
    }
    sources: dict[str, DataSource] = {}
    for name, s in config.sources.items():
        source = open_source(
            name,
            s.kind,
            timestamp_column=s.timestamp_column,
            path=getattr(s, "path", None),
            url=getattr(s, "url", None),
            table=getattr(s, "table", None),
            query=getattr(s, "query", None),
            timeout=timeouts.get(name),
            batch_rows=s.batch_rows,
            pushdown=getattr(s, "pushdown", False),
        )
        engine = getattr(s, "engine", None)
        sources[name] = source if engine is None else engines[engine].source(source, timeout=timeouts.get(name))
    return sources


def close_sources(sources: Iterable[DataSource]) -> None:
    """Release what the sources hold (database connection pools); never raises."""
    for source in sources:
        try:
            source.close()
        except Exception as err:  # closing is best effort: a broken pool must not stop a reload or shutdown
            log.warning("source %s: cannot close: %s", source.name, err)


#: The prepared batches of a window's first pass are kept for its later passes up to this many rows in all,
#: and all runs together keep at most `CACHE_BUDGET` rows (a run that finds it spent reads its window again).
CACHE_ROWS = 1 << 20
CACHE_BUDGET = RowBudget(2 * CACHE_ROWS)

#: Called after each batch with (pass number, rows read in this pass, seconds since the run started).
Progress = Callable[[int, int, float], None]


def run_monitor(
    monitor: Monitor,
    now: datetime,
    executor: Executor | None = None,
    progress: Progress | None = None,
    history: Sequence[int] = (),
) -> RunResult:
    """Read the window ending at `now` and judge it against the reference (features on `executor`, if given);
    source errors become outcome error, an empty window (or a glob matching no file) outcome no_data. The window is
    in UTC whatever the offset of `now`.

    `history`: rows of the monitor's latest successful runs, newest first (the volume signal's baseline). Every
    outcome but a source error other than a schema mismatch carries its data health (`RunResult.health`).
    """
    end = as_utc(now)
    start = end - monitor.config.window
    judged = None
    if monitor.baseline is not None:
        try:
            judged = monitor.baseline.at(start)
        except SourceError as err:
            return RunResult("error", start, end, error=f"baseline: {err}")
        if judged.problem is not None:
            return RunResult("insufficient_data", start, end, error=judged.problem, reference_rows=judged.profile.rows)
        monitor = replace(monitor, profile=judged.profile, policy=judged.policy)
    try:
        window = monitor.source.window(start, end, monitor.columns)
        job = count_passes(monitor, window, executor, progress)
    except SchemaMismatch as err:
        signal = schema_signal(str(err), monitor.health)
        health = Health((signal,) if signal else ())
        return RunResult("error", start, end, error=str(err), policy=monitor.policy, health=health)
    except SourceError as err:
        return RunResult("error", start, end, error=str(err), policy=monitor.policy)
    except WindowChanged as err:
        return RunResult("error", start, end, error=f"source {monitor.source.name}: {err}", policy=monitor.policy)
    rows, reference_rows = job.rows, monitor.profile.rows
    if rows == 0:
        reason = _no_data_reason(monitor, window)
        health = Health((no_data_signal(0, reason),))
        return RunResult("no_data", start, end, 0, error=reason, reference_rows=reference_rows, health=health)
    report = job.finish(monitor.policy, monitor=monitor.name, window=(start, end))
    if judged is not None:
        report = replace(report, baseline=judged.info)
    health = assess(
        monitor.health,
        rows=rows,
        end=end,
        features=[r.stats for r in report.features],
        reference_missing=monitor.reference_missing,
        history=history,
        newest=getattr(window, "newest", None),
    )
    if rows < monitor.config.min_rows:
        reason = f"{rows} rows in the window, fewer than min_rows {monitor.config.min_rows}"
        return RunResult(
            "insufficient_data", start, end, rows, error=reason, reference_rows=reference_rows, health=health
        )
    if report.status != "ok":
        return RunResult(
            "insufficient_data", start, end, rows, None, report.reason, monitor.policy, reference_rows, health
        )
    report = replace(report, health=health)
    return RunResult("ok", start, end, rows, report, None, monitor.policy, reference_rows, health)


def _no_data_reason(monitor: Monitor, window: Window | CountingWindow) -> str:
    """Why a window had no rows: no file matched the source's glob, or none of its rows is in the window."""
    source = monitor.source
    if getattr(window, "files", None) == ():
        return f"source {source.name}: no file matches {getattr(source, 'path_glob', 'its path')}"
    return f"source {source.name}: no rows in the window"


def count_passes(
    monitor: Monitor, window: Window, executor: Executor | None = None, progress: Progress | None = None
) -> Job:
    """Every pass of the monitor's partials over the window's batches (see the module docstring), or counted
    where the data lives when the window can count (`CountingWindow`: SQL pushdown, Dask)."""
    if isinstance(window, CountingWindow):
        return _counted_passes(monitor.profile, window, progress)
    chunks = _Batches(monitor, window, executor)
    try:
        return _passes(monitor.profile, chunks, executor, progress)
    finally:
        chunks.release()


def _passes(profile: Profile, chunks: _Batches, executor: Executor | None, progress: Progress | None) -> Job:
    began = time.perf_counter()
    job = Job.start(profile)
    while job.request is not None:
        request, seen = job.request, 0
        total: Partial | None = None
        for item in chunks.of_pass(list(request.jobs)):
            chunk = chunks.chunk_of(item)
            part = request.count(chunk, executor)
            total = part if total is None else total.merge(part)
            seen += _rows(next(iter(chunk.values()))) if chunk else 0
            if progress is not None:
                progress(request.stage, seen, time.perf_counter() - began)
        job = job.absorb(total, executor)
    return job


def _counted_passes(profile: Profile, window: CountingWindow, progress: Progress | None) -> Job:
    began = time.perf_counter()
    job = Job.start(profile)
    try:
        while job.request is not None:
            stage = job.request.stage
            job = job.absorb(window.count(job.request))
            release_mapped_pages(profile)  # planning touched reference pages; the database counts the next pass
            if progress is not None:
                progress(stage, window.rows_read, time.perf_counter() - began)
    finally:
        close = getattr(window, "close", None)  # a window holding a transaction across its passes ends it
        if close is not None:
            close()
    return job


class _Batches:
    """The window's batches, each pass: read frames, or on later passes the first pass's prepared chunks when
    they were kept (at most `CACHE_ROWS` rows, within `CACHE_BUDGET`); `chunk_of` turns an item into a chunk."""

    def __init__(self, monitor: Monitor, window: Window, executor: Executor | None) -> None:
        self._monitor, self._window, self._executor = monitor, window, executor
        self._cached: list[Chunk] | None = None
        self._kept: list[Chunk] = []
        self._keeping = False
        self._passes = 0
        self._reserved = 0

    def of_pass(self, features: list[str]) -> Iterator[pd.DataFrame | Chunk]:
        """The next pass over the window, reading only `features` when it reads (a later pass needs few)."""
        self._passes += 1
        if self._cached is not None:
            yield from self._cached
            return
        self._keeping = self._passes == 1
        yield from _read_ahead(self._window.batches(features))
        if self._keeping:
            self._cached, self._kept = self._kept, []

    def chunk_of(self, item: pd.DataFrame | Chunk) -> Chunk:
        """A read frame as column arrays (prepared and kept while the first pass may keep it), or a kept chunk."""
        if not isinstance(item, pd.DataFrame):
            return item
        monitor, rows = self._monitor, len(item)
        numeric = tuple(name for name in monitor.numeric if name in item.columns)
        categorical = tuple(name for name in monitor.categorical if name in item.columns)
        arrays = batch_arrays(item, numeric, categorical, monitor.source.name)
        if self._keeping and self._reserved + rows <= CACHE_ROWS and CACHE_BUDGET.take(rows):
            self._reserved += rows
            chunk: Chunk = prepare(monitor.profile, arrays, self._executor)
            self._kept.append(chunk)
            return chunk
        if self._keeping:
            self._keeping = False
            self.release()
        return arrays

    def release(self) -> None:
        """Drop the kept chunks and return their rows to the budget."""
        self._cached, self._kept = None, []
        CACHE_BUDGET.give(self._reserved)
        self._reserved = 0


def _read_ahead(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """`frames`, the next one read by a helper thread while the caller counts this one (decoding releases the
    GIL, so reading and counting share the cores); errors are re-raised in the caller at the frame they hit.
    A caller that stops early leaves the reader to finish the frame it is reading and close the pass."""
    ahead: queue.Queue[tuple[pd.DataFrame | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: tuple[pd.DataFrame | None, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not offer((frame, None)):
                    return
            offer((None, None))
        except BaseException as err:  # handed to the consumer, which raises it in its own thread
            offer((None, err))
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()

    threading.Thread(target=read, name="driftwatch-read-ahead", daemon=True).start()
    try:
        while True:
            frame, error = ahead.get()
            if error is not None:
                raise error
            if frame is None:
                return
            yield frame
    finally:
        stop.set()


def _rows(values: Any) -> int:
    rows = getattr(values, "rows", None)
    return int(rows) if rows is not None else len(values)


def result_dict(name: str, result: RunResult, reference_rows: int) -> dict[str, Any]:
    """The JSON of one run (`check --format json`, the report API): the report, or why there is none."""
    if result.report is not None:
        return result.report.to_dict()
    return {
        "monitor": name,
        "window": {"start": result.start.isoformat(), "end": result.end.isoformat()},
        "rows": {
            "reference": result.reference_rows if result.reference_rows is not None else reference_rows,
            "current": result.rows,
        },
        "status": result.outcome,
        "reason": result.error,
        "severity": None,
        "drift_share": None,
        "features": {},
        "health": result.health.to_dict() if result.health is not None else None,
    }
