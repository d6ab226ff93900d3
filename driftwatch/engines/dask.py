"""Counting a file source's windows on a Dask cluster: the workers read their files, only partials come back.

Per pass the daemon submits one task per file of the window's frozen file list (the task is the window cut to
that file: the same projection, timestamp filter, size/mtime check and batch conversion as a streamed run, see
`driftwatch.sources.files.FileWindow`), then merges the tasks' partials on the cluster in a tree of `FAN_IN`
and gathers one partial. The reference profile is scattered to every worker once per profile and engine and
reused by every pass and run (only what counting needs of it: `counting_profile`); the cells of passes 2 and 3
once per pass, one feature at a time, and only their bounds (`counting_jobs`).

`dask` and `distributed` are imported only when an engine first connects (the optional `dask` extra). A
cluster that cannot be reached, or does not answer before the run's deadline (the monitor's `timeout`), is a
SourceUnavailable for the run that asked, never a crash; a worker lost mid-pass is Dask's to retry (its tasks
are rescheduled); if it cannot, the pass fails with one line and the next run starts afresh.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from driftwatch.core.partials import Partial, Request
from driftwatch.core.profile import FeatureProfile, NumericProfile, Profile
from driftwatch.errors import SourceError, SourceUnavailable
from driftwatch.sources.base import DataSource, Window, batch_arrays, one_line
from driftwatch.sources.files import CsvSource, FileWindow, ParquetSource

log = logging.getLogger("driftwatch.engines.dask")

#: Partials merged per merge task on the cluster (the daemon receives one partial per pass).
FAN_IN = 8
#: Submissions of one pass: a pass the cluster lost is submitted once more.
ATTEMPTS = 2
#: How long a run may wait on the cluster when its monitor has no timeout.
DEFAULT_TIMEOUT = 600.0
#: Bounds on closing a client and a cluster the engine started.
CLOSE_TIMEOUT = 10.0

Counted = tuple[Partial | None, int]  # a partial (None: no rows) and the rows it covers
Client = Any  # distributed.Client, LocalCluster and Future: imported only when an engine connects
LocalCluster = Any
Future = Any


# --------------------------------------------------------------------------------------------------------------
# What runs on a worker (module functions: pickled by reference, the worker imports driftwatch)
# --------------------------------------------------------------------------------------------------------------


def count_files(profile: Profile, stage: int, jobs: Any, window: FileWindow) -> Counted:
    """One pass of a request over `window`'s files, batch by batch as a streamed run counts them."""
    request = Request(profile, stage, jobs)
    numeric = tuple(name for name, feature in profile.features.items() if isinstance(feature, NumericProfile))
    categorical = tuple(name for name in profile.features if name not in numeric)
    total: Partial | None = None
    for frame in window.batches():
        part = request.count(batch_arrays(frame, numeric, categorical, window.source))
        total = part if total is None else total.merge(part)
    return total, window.rows_read


def counting_profile(profile: Profile) -> Profile:
    """What the workers need of a profile: per numeric feature its grid and bin edges, not its values.

    Counting (`Request.count`) reads a numeric reference only through its `grid`, its `edges` and whether it has
    values; the values stay in the daemon (a 1M-row reference of 20 features holds 160 MB, their grids 2.6 MB).
    The slim feature keeps the reference's minimum and maximum as its values.
    """
    features: dict[str, FeatureProfile] = {}
    for name, feature in profile.features.items():
        if isinstance(feature, NumericProfile) and feature.sorted_values.size > 2:
            slim = replace(feature, sorted_values=np.array(feature.sorted_values[[0, -1]]))
            slim.__dict__["grid"] = feature.grid  # the cached grid travels with the feature
            features[name] = slim
        else:
            features[name] = feature
    return replace(profile, features=features)


def counting_jobs(request: Request) -> Any:
    """What the workers need of a later pass's request: the cells' bounds, not what the daemon knows of them.

    Pass 2 (`count_fine`) reads each feature's intervals, points, point slots and cell bounds; the reference
    counts (`ref`, `point_upto`, `point_below`) and `cell_slot` stay here. Pass 3 (`count_crossings`) reads only
    the crossing cells' bounds, so those alone are sent, all marked crossing.
    """
    empty = np.empty(0, dtype=np.int64)
    jobs: dict[str, Any] = {}
    for name, job in request.jobs.items():
        if request.stage == 2:
            jobs[name] = replace(job, cell_slot=empty, ref=empty, point_upto=empty, point_below=empty)
        else:
            cells, crossing = job
            slim = replace(
                cells,
                left=cells.left[crossing],
                right=cells.right[crossing],
                cell_slot=empty,
                first=np.empty(0, dtype=bool),
                last=np.empty(0, dtype=bool),
                ref=empty,
                points=np.empty(0),
                point_slot=empty,
                point_upto=empty,
                point_below=empty,
            )
            jobs[name] = (slim, np.ones(slim.left.size, dtype=bool))
    return jobs


def merge_counted(*counted: Counted) -> Counted:
    """The partials of several tasks added up, and their rows."""
    total: Partial | None = None
    rows = 0
    for partial, n in counted:
        rows += n
        if partial is not None:
            total = partial if total is None else total.merge(partial)
    return total, rows


# --------------------------------------------------------------------------------------------------------------
# The daemon's side
# --------------------------------------------------------------------------------------------------------------


class DaskEngine:
    """A Dask cluster at `address` (a scheduler URL, or `local`: a `LocalCluster` of `workers` processes that
    this engine starts on first use and closes with `close`). Thread-safe: several runs may count at once."""

    def __init__(self, name: str, address: str, *, workers: int = 2, threads_per_worker: int = 1) -> None:
        self.name = name
        self.address = address
        self.workers = workers
        self.threads_per_worker = threads_per_worker
        self._lock = threading.Lock()
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None
        self._closed = False
        self._profiles: dict[int, tuple[weakref.ref[Profile], Future]] = {}

    def describe(self) -> str:
        """One line naming the engine and where its cluster is."""
        where = f"a local cluster of {self.workers} worker processes" if self.address == "local" else self.address
        return f"dask engine {self.name} ({where})"

    @property
    def scheduler_address(self) -> str | None:
        """The scheduler's address once connected (a local cluster's is chosen when it starts), else None."""
        client = self._client
        return None if client is None else str(client.scheduler.address)

    def source(self, files: DataSource, *, timeout: float | None = None) -> DaskSource:
        """`files` with its windows counted on this engine, each run waiting at most `timeout` seconds."""
        if not isinstance(files, ParquetSource | CsvSource):
            raise SourceError(f"engine {self.name} counts parquet and csv sources only", source=files.name)
        return DaskSource(files, self, timeout)

    def count(self, window: FileWindow, request: Request, deadline: float) -> Counted:
        """One pass of `request` over every file of `window` on the cluster, before `deadline` (monotonic).

        A pass the cluster loses (a worker died holding data no task can recompute: the scattered profile or
        cells) is submitted once more, the profile scattered again; a SourceError of a worker (a file changed or
        unreadable) is this run's error as it is.
        """
        if not window.files:
            return None, 0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                client = self._connected(window.source, deadline)
                return self._count_once(client, window, request, deadline)
            except SourceError:
                raise
            except TimeoutError as err:
                raise SourceUnavailable(
                    f"{self.describe()}: no result before the run's deadline (the monitor's timeout)",
                    source=window.source,
                ) from err
            except Exception as err:  # whatever the cluster says (lost workers, cancelled, closed) is this run's
                if attempt == ATTEMPTS or self._closed:
                    raise SourceUnavailable(
                        f"{self.describe()}: {type(err).__name__}: {one_line(err)}", source=window.source
                    ) from err
                log.warning("%s: pass %d lost (%s), submitting it again", self.describe(), request.stage, err)
                self._forget(request.profile)
        raise AssertionError("unreachable")

    def _count_once(self, client: Client, window: FileWindow, request: Request, deadline: float) -> Counted:
        futures: list[Future] = []
        try:
            profile = self._scattered(client, request.profile, deadline)
            jobs: Any = request.jobs
            if request.stage > 1:  # the cells to count: once per pass (not per task), one feature at a time
                jobs = {
                    name: client.scatter([job], broadcast=True, hash=False, timeout=_remaining(deadline))[0]
                    for name, job in counting_jobs(request).items()
                }
            level = [
                client.submit(count_files, profile, request.stage, jobs, window.part([path]), pure=False)
                for path in window.files
            ]
            futures += level
            while len(level) > 1:
                level = [
                    client.submit(merge_counted, *level[i : i + FAN_IN], pure=False)
                    for i in range(0, len(level), FAN_IN)
                ]
                futures += level
            result: Counted = level[0].result(timeout=_remaining(deadline))
            return result
        finally:
            _cancel(client, futures)

    def _forget(self, profile: Profile) -> None:
        with self._lock:
            self._profiles.pop(id(profile), None)

    def close(self) -> None:
        """Disconnect, and stop the cluster this engine started; later counts are refused. Never raises."""
        with self._lock:
            self._closed = True
            client, cluster = self._client, self._cluster
            self._client, self._cluster, self._profiles = None, None, {}
        for what, thing in (("client", client), ("cluster", cluster)):
            if thing is None:
                continue
            try:
                thing.close(timeout=CLOSE_TIMEOUT)
            except Exception as err:  # closing is best effort (a cluster already gone)
                log.warning("%s: cannot close the %s: %s", self.describe(), what, one_line(err))

    # -- internals ------------------------------------------------------------------------------------------
    def _connected(self, source: str, deadline: float) -> Client:
        """The engine's client: connected (or its local cluster started) on first use, again after a loss."""
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise SourceUnavailable(f"{self.describe()}: still connecting at the run's deadline", source=source)
        try:
            if self._closed:
                raise SourceUnavailable(
                    f"{self.describe()}: closed (the config was reloaded, or the daemon is stopping)", source=source
                )
            if self._client is not None and self._client.status in ("running", "connecting"):
                return self._client
            self._drop_client()
            try:
                self._client = self._connect(deadline)
            except Exception as err:  # unreachable, refused, timed out, bad address
                self._drop_client()
                raise SourceUnavailable(
                    f"{self.describe()}: cannot connect ({type(err).__name__}: {one_line(err)})", source=source
                ) from err
            return self._client
        finally:
            self._lock.release()

    def _connect(self, deadline: float) -> Client:
        distributed: Any = importlib.import_module("distributed")  # the optional extra, imported on first use
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines (nannies, comms) are noise here
        if self.address != "local":
            return distributed.Client(self.address, timeout=_remaining(deadline), set_as_default=False)
        if self._cluster is None:
            self._cluster = distributed.LocalCluster(
                n_workers=self.workers,
                threads_per_worker=self.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # the HTTP routes bind a free loopback port, never :8787
            )
        return distributed.Client(
            self._cluster, timeout=_remaining(deadline), set_as_default=False, direct_to_workers=True
        )

    def _drop_client(self) -> None:
        client, self._client, self._profiles = self._client, None, {}
        if client is not None:
            try:
                client.close(timeout=CLOSE_TIMEOUT)
            except Exception as err:  # a client that lost its scheduler may not close cleanly
                log.debug("%s: closing a lost client: %s", self.describe(), one_line(err))

    def _scattered(self, client: Client, profile: Profile, deadline: float) -> Future:
        """`profile` on every worker: scattered once, reused while the profile lives and its data is held."""
        with self._lock:
            self._profiles = {k: v for k, v in self._profiles.items() if v[0]() is not None}
            held = self._profiles.get(id(profile))
        if held is not None and held[0]() is profile and held[1].status == "finished":
            return held[1]
        future: Future = client.scatter(
            counting_profile(profile), broadcast=True, hash=False, timeout=_remaining(deadline)
        )
        with self._lock:
            if self._client is client:
                self._profiles[id(profile)] = (weakref.ref(profile), future)
        return future


def _remaining(deadline: float) -> float:
    """Seconds left before `deadline`; TimeoutError when none (a timeout of 0 may mean "none" to distributed)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the run's deadline has passed")
    return left


def _cancel(client: Client, futures: list[Future]) -> None:
    """Stop what is still running of a pass (nothing, after a result) without waiting for the scheduler."""
    pending = [future for future in futures if not future.done()]
    if pending:
        try:
            client.cancel(pending, asynchronous=False)
        except Exception as err:  # the client may be gone already
            log.debug("cannot cancel %d tasks: %s", len(pending), one_line(err))


class DaskSource:
    """A parquet or csv source whose windows are counted on a Dask engine (`read` still reads in-process)."""

    def __init__(self, files: ParquetSource | CsvSource, engine: DaskEngine, timeout: float | None) -> None:
        self.name = files.name
        self.files = files
        self.engine = engine
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.batch_rows = files.batch_rows

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """The rows themselves, read in this process (the engine only counts)."""
        return self.files.read(start, end, columns)

    def window(
        self, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int | None = None
    ) -> DaskWindow:
        """The window over the files matching now, counted on the engine before the run's deadline."""
        return DaskWindow(self, self.files.window(start, end, columns, batch_rows=batch_rows))

    def describe(self) -> str:
        """The file source's line and the engine that counts it."""
        return f"{self.files.describe()}, counted on {self.engine.describe()}"

    def close(self) -> None:
        """Close the engine (sources sharing it are closed together, on reload and stop)."""
        self.engine.close()


class DaskWindow(Window):
    """A `CountingWindow` over a frozen file list: `count(request)` is one pass on the cluster; `batches` still
    streams the files in-process. The deadline (the source's timeout) starts when the window is made."""

    def __init__(self, source: DaskSource, files: FileWindow) -> None:
        super().__init__(files.source, files.start, files.end, files.columns, batch_rows=files.batch_rows)
        self.files = files
        self._engine = source.engine
        self._deadline = time.monotonic() + source.timeout

    def count(self, request: Request) -> Partial | None:
        """The partial of this pass over every row of the window (None: no rows)."""
        partial, self.rows_read = self._engine.count(self.files, request, self._deadline)
        return partial

    def _scan(self) -> Iterator[pd.DataFrame]:
        yield from self.files._scan()

    def to_frame(self) -> pd.DataFrame:
        """One pass as one frame, read in this process."""
        return self.files.to_frame()
