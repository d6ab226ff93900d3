"""The Dask engine on real clusters: a `distributed.LocalCluster` of 2 worker processes, and a scheduler and 2
workers started as separate `dask scheduler` / `dask worker` processes on 127.0.0.1.

The report counted on the cluster must equal the streamed in-process report of the same files statistic for
statistic (bit-equal but Wasserstein, 1e-12 relative: `assert_same_report`), for many files with ties, NaN,
infinities, new categories, an all-missing file and empty windows. A worker killed mid-run gives the correct report
or a one-line error, and the next run is correct; a dead scheduler is a one-line source error within the monitor's
timeout; without the `dask` extra, `validate` says in one line what to install.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import IN_CI, free_port
from test_partials import (
    BATCH_ROWS,
    CATEGORICAL,
    END,
    NUMERIC,
    POLICIES,
    START,
    T0,
    Batches,
    assert_same_report,
    job_state,
    profile_with_grids,
    window_frames,
    write_csv,
    write_parquet,
)

from driftwatch.config import parse_config
from driftwatch.core.partials import Job, count_window
from driftwatch.core.profile import Profile
from driftwatch.engines import DaskEngine, DaskSource
from driftwatch.errors import SourceError
from driftwatch.runtime.monitor import close_sources, open_sources, prepare_monitor, run_monitor
from driftwatch.sources import CsvSource, ParquetSource

pytestmark = pytest.mark.integration

COLUMNS = [*NUMERIC, *CATEGORICAL]


def require_distributed() -> None:
    """Skip without `distributed` (the `dask` extra), fail instead in CI (the `test` extra installs it)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        message = "dask[distributed] is not installed (pip install 'driftwatch[dask]')"
        if IN_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)


def counted(window: Any, profile: Profile) -> Job:
    """Every pass of a job counted by a `CountingWindow`."""
    job = Job.start(profile)
    while job.request is not None:
        job = job.absorb(window.count(job.request))
    return job


def assert_same_job(got: Job, want: Job) -> None:
    for policy in POLICIES:
        assert_same_report(got.finish(policy).to_dict(), want.finish(policy).to_dict())


# --------------------------------------------------------------------------------------------------------------
# Clusters
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_engine() -> Iterator[DaskEngine]:
    """An engine owning a LocalCluster of 2 worker processes (started by its first count)."""
    require_distributed()
    engine = DaskEngine("local", "local", workers=2)
    yield engine
    engine.close()


class ExternalCluster:
    """`dask scheduler` and 2 `dask worker` processes on 127.0.0.1, stopped with SIGTERM then SIGKILL."""

    def __init__(self, directory: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = directory
        self._start("scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--dashboard-address", "127.0.0.1:0")
        for i in range(workers):
            self._start(
                "worker", self.address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard", f"--name=w{i}"
            )

    def _start(self, *args: str) -> None:
        with (self.logs / f"{args[0]}-{len(self.processes)}.log").open("wb") as log:
            self.processes.append(
                subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=log, stderr=subprocess.STDOUT)
            )

    def wait_for_workers(self, n: int, timeout: float = 60) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            if n:
                client.wait_for_workers(n, timeout=timeout)

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace")[-2000:] for path in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in reversed(self.processes):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture(scope="module")
def external_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExternalCluster]:
    """A scheduler and 2 workers as separate processes."""
    require_distributed()
    cluster = ExternalCluster(tmp_path_factory.mktemp("dask-cluster"))
    try:
        try:
            cluster.wait_for_workers(2)
        except Exception as err:
            raise AssertionError(f"the dask cluster did not come up: {err}\n{cluster.log()}") from err
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def external_engine(external_cluster: ExternalCluster) -> Iterator[DaskEngine]:
    """An engine connected to the external cluster."""
    engine = DaskEngine("lake", external_cluster.address)
    yield engine
    engine.close()


@pytest.fixture(params=["local", "external"])
def engine(request: pytest.FixtureRequest) -> DaskEngine:
    """Each cluster in turn."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The 12 window files of test_partials as parquet and as csv (globs by kind)."""
    directory = tmp_path_factory.mktemp("window")
    frames = window_frames()
    return {"parquet": write_parquet(directory / "pq", frames), "csv": write_csv(directory / "csv", frames)}


def file_source(kind: str, glob: str) -> ParquetSource | CsvSource:
    cls = ParquetSource if kind == "parquet" else CsvSource
    return cls("w", glob, "event_time", batch_rows=BATCH_ROWS)


# --------------------------------------------------------------------------------------------------------------
# Equality with the streamed in-process report
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [pytest.param(None, id="default-grid"), pytest.param(6, id="grid6")])
@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_cluster_report_equals_the_streamed_report(engine: DaskEngine, files: dict[str, str], kind: str, grid: Any):
    """Every pass on the cluster over 12 files gives the streamed in-process report, statistic for statistic."""
    source = file_source(kind, files[kind])
    profile = profile_with_grids(grid)
    window = engine.source(source, timeout=60).window(START, END, COLUMNS)
    got = counted(window, profile)
    want = count_window(profile, Batches(source.window(START, END, COLUMNS)))
    assert got.rows == want.rows == window.rows_read == END.timestamp() - START.timestamp()
    assert_same_job(got, want)
    if grid is not None:
        assert job_state(got) == (True, True)  # passes 2 and 3 ran on the cluster too
    report = got.finish()
    assert report.feature("x").stats.missing_share not in (None, 0.0)
    assert "last" in report.feature("plan").stats.new_categories


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_url_glob_is_read_through_fsspec(engine: DaskEngine, files: dict[str, str], kind: str):
    """A `file://` URL glob (fsspec) gives the local path's report, on the cluster and streamed in-process."""
    profile = profile_with_grids(6)
    local, url = file_source(kind, files[kind]), file_source(kind, "file://" + files[kind])
    window = engine.source(url, timeout=60).window(START, END, COLUMNS)
    assert window.files.files and all(path.startswith("file://") for path in window.files.files)
    want = count_window(profile, Batches(local.window(START, END, COLUMNS)))
    assert_same_job(counted(window, profile), want)
    assert_same_job(count_window(profile, Batches(url.window(START, END, COLUMNS))), want)


@pytest.mark.parametrize(
    "where",
    [pytest.param("before", id="files-without-rows-in-the-window"), pytest.param("nofiles", id="no-files")],
)
def test_an_empty_window_gives_the_streamed_report(engine: DaskEngine, files: dict[str, str], tmp_path: Path, where):
    """A window without rows (files outside it, or no files at all) reports like the streamed one."""
    glob = files["parquet"] if where == "before" else str(tmp_path / "*.parquet")
    source = file_source("parquet", glob)
    profile = profile_with_grids(None)
    start, end = T0 - timedelta(hours=2), T0 - timedelta(hours=1)
    window = engine.source(source, timeout=60).window(start, end, COLUMNS)
    got = counted(window, profile)
    want = count_window(profile, Batches(source.window(start, end, COLUMNS)))
    assert got.rows == want.rows == window.rows_read == 0
    assert_same_job(got, want)


# --------------------------------------------------------------------------------------------------------------
# Through the config and the runtime
# --------------------------------------------------------------------------------------------------------------


def write_config(directory: Path, glob: str, engine: str, timeout: str = "60s") -> Path:
    reference = directory / "reference.parquet"
    if not reference.exists():
        import pandas as pd
        from test_partials import reference_frame

        pd.DataFrame(reference_frame()).to_parquet(reference)
    path = directory / "driftwatch.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            state: {{path: {directory / "state.db"}}}
            engines:
              lake: {{kind: dask, address: "{engine}"}}
            sources:
              files: {{kind: parquet, path: "{glob}", timestamp_column: event_time, batch_rows: {BATCH_ROWS},
                       engine: lake}}
            monitors:
              m:
                reference: {{path: {reference}}}
                source: files
                schedule: {{every: 1h}}
                window: {int((END - START).total_seconds())}s
                timeout: {timeout}
                min_rows: 1
                features: {{numeric: {list(NUMERIC)}, categorical: {list(CATEGORICAL)}}}
            """
        )
    )
    return path


def load(path: Path) -> Any:
    return parse_config(path.read_text(), file=str(path), base_dir=path.parent, env={})


def test_a_configured_engine_runs_the_monitor_on_the_cluster(external_cluster: ExternalCluster, files, tmp_path):
    """`engines` + `engine:` through open_sources and run_monitor: the report of the in-process run."""
    config = load(write_config(tmp_path, files["parquet"], external_cluster.address))
    sources = open_sources(config)
    try:
        source = sources["files"]
        assert isinstance(source, DaskSource) and "counted on dask engine lake" in source.describe()
        monitor = prepare_monitor("m", config, tmp_path / "profiles", sources)
        got = run_monitor(monitor, END)
        assert got.outcome == "ok" and got.report is not None, got.error
        want = count_window(monitor.profile, Batches(source.files.window(START, END, COLUMNS)))
        report = got.report.to_dict()
        assert report.pop("baseline")["kind"] == "file"  # the run names its baseline; the bare job does not
        assert report.pop("health")["signals"]  # and judges data health, which the bare job does not
        expected = want.finish(monitor.policy, monitor="m", window=(START, END)).to_dict()
        assert expected.pop("health") is None
        assert_same_report(report, expected)
    finally:
        close_sources(sources.values())


def test_a_dead_scheduler_is_a_one_line_source_error_within_the_timeout(files: dict[str, str], tmp_path: Path):
    """Nothing listens at the engine's address: the run is an error of one line, inside the monitor's timeout."""
    require_distributed()
    config = load(write_config(tmp_path, files["parquet"], f"tcp://127.0.0.1:{free_port()}", timeout="3s"))
    sources = open_sources(config)
    try:
        monitor = prepare_monitor("m", config, tmp_path / "profiles", sources)
        began = time.monotonic()
        result = run_monitor(monitor, END)
        elapsed = time.monotonic() - began
    finally:
        close_sources(sources.values())
    assert result.outcome == "error" and result.error is not None
    assert "\n" not in result.error and result.error.startswith("source files: dask engine lake")
    assert "cannot connect" in result.error
    assert elapsed < 3 + 3, elapsed


def test_a_cluster_without_workers_is_a_one_line_timeout_error(files: dict[str, str], tmp_path: Path):
    """A scheduler that never runs the tasks (no workers): a one-line source error at the monitor's timeout."""
    require_distributed()
    cluster = ExternalCluster(tmp_path, workers=0)
    try:
        cluster.wait_for_workers(0)
        config = load(write_config(tmp_path, files["parquet"], cluster.address, timeout="4s"))
        sources = open_sources(config)
        try:
            monitor = prepare_monitor("m", config, tmp_path / "profiles", sources)
            began = time.monotonic()
            result = run_monitor(monitor, END)
            elapsed = time.monotonic() - began
        finally:
            close_sources(sources.values())
    finally:
        cluster.stop()
    assert result.outcome == "error" and result.error is not None and "\n" not in result.error
    assert result.error.startswith("source files: dask engine lake") and "deadline" in result.error, result.error
    assert 4 <= elapsed < 4 + 3, elapsed


def test_a_closed_engine_stops_its_local_cluster_and_refuses_work(files: dict[str, str]):
    """close() ends the LocalCluster's worker processes; a later count is a one-line source error."""
    require_distributed()
    from distributed import Client

    engine = DaskEngine("own", "local", workers=1)
    window = engine.source(file_source("parquet", files["parquet"]), timeout=60).window(START, END, COLUMNS)
    counted(window, profile_with_grids(None))
    with Client(engine.scheduler_address, set_as_default=False, timeout=10) as client:
        pids = list(client.run(os.getpid).values())
    assert len(pids) == 1
    engine.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(SourceError, match="closed"):
        window.count(Job.start(profile_with_grids(None)).request)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------
# A worker killed mid-run
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> str:
    """36 parquet files (the test window's 12, 3 times): enough tasks and batches for a run to take a while."""
    directory = tmp_path_factory.mktemp("many")
    frames = window_frames() * 3
    return write_parquet(directory / "pq", frames)


def test_a_worker_killed_mid_run_gives_the_report_or_one_line_then_the_next_run_is_right(
    local_engine: DaskEngine, many_files: str
):
    """SIGKILL of a busy worker: the run's report is right (Dask rescheduled) or one line; the next run is right."""
    from distributed import Client

    engine = local_engine
    source = ParquetSource("w", many_files, "event_time", batch_rows=31)
    counting = engine.source(source, timeout=120)
    profile = profile_with_grids(6)
    start, end = T0, T0 + timedelta(days=1)
    whole = ParquetSource("w", many_files, "event_time")  # the same rows in bigger batches: the same report
    want = count_window(profile, Batches(whole.window(start, end, COLUMNS)))
    counted(counting.window(start, end, COLUMNS), profile)  # the cluster is up (when this test runs alone)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["job"] = counted(counting.window(start, end, COLUMNS), profile)
        except SourceError as err:
            outcome["error"] = str(err)

    with Client(engine.scheduler_address, set_as_default=False, timeout=10) as client:
        pids = client.run(os.getpid)
        thread = threading.Thread(target=run)
        thread.start()
        victim = busy_worker(client, thread)
        assert victim is not None, "the run ended before a worker was seen busy"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(120)
        assert not thread.is_alive()
        if "error" in outcome:
            assert "\n" not in outcome["error"] and outcome["error"].startswith("source w: dask engine local")
        else:
            assert_same_job(outcome["job"], want)
        assert_same_job(counted(counting.window(start, end, COLUMNS), profile), want)
        client.wait_for_workers(2, timeout=30)  # the nanny restarted the killed one: the cluster is whole again


def busy_worker(client: Any, thread: threading.Thread, timeout: float = 60) -> str | None:
    """A worker processing a `count_files` task while `thread` still runs, or None."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        for worker, keys in client.processing().items():
            if any("count_files" in str(key) for key in keys):
                return str(worker)
        time.sleep(0.01)
    return None


# --------------------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------------------

BLOCK_DISTRIBUTED = """
import sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "distributed":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from driftwatch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_validate_without_the_extra_says_which_extra_to_install(files: dict[str, str], tmp_path: Path):
    """With `distributed` not importable, validate exits 2 with one line naming the extra; without an engine, 0."""
    with_engine = write_config(tmp_path, files["parquet"], "tcp://127.0.0.1:8786")
    without = tmp_path / "plain.yaml"
    text = with_engine.read_text().replace("engine: lake", "").replace('lake: {kind: dask, address: "tcp', "# ")
    without.write_text(text.replace("engines:", ""))
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", BLOCK_DISTRIBUTED, "validate", "-c", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in (with_engine, without)
    ]
    (_, failed), (_, passed) = (run.communicate(timeout=60) for run in runs)
    assert runs[0].returncode == 2, failed
    lines = failed.strip().splitlines()
    assert len(lines) == 1 and "engines.lake" in lines[0] and "pip install 'driftwatch[dask]'" in lines[0], lines
    assert runs[1].returncode == 0, passed


@pytest.mark.parametrize(
    ("engines", "source_extra", "problem"),
    [
        pytest.param(
            "{lake: {kind: dask, address: local}}",
            "engine: sea",
            "sources.files.engine: unknown engine 'sea'",
            id="unknown",
        ),
        pytest.param("{lake: {kind: dask, address: 'http://x'}}", "engine: lake", "engines.lake.address", id="address"),
        pytest.param("{lake: {kind: spark, address: local}}", "engine: lake", "engines.lake", id="kind"),
    ],
)
def test_engine_config_errors_are_one_line(engines: str, source_extra: str, problem: str, tmp_path: Path):
    """A wrong engine name, address or kind fails validation with one line naming the YAML path."""
    require_distributed()
    (tmp_path / "d").mkdir()
    text = f"""
engines: {engines}
sources:
  files: {{kind: parquet, path: "d/*.parquet", timestamp_column: ts, {source_extra}}}
"""
    with pytest.raises(ValueError) as caught:
        parse_config(text, base_dir=tmp_path, env={})
    message = str(caught.value)
    assert "\n" not in message and problem in message, message


def test_a_url_path_is_kept_as_a_url_and_a_local_one_resolved(tmp_path: Path):
    """`s3://...` stays the URL it is (fsspec reads it, nothing is checked at load); a local glob is resolved."""
    (tmp_path / "d").mkdir()
    text = """
sources:
  remote: {kind: parquet, path: "s3://bucket/events/*.parquet", timestamp_column: ts}
  local: {kind: parquet, path: "d/*.parquet", timestamp_column: ts}
"""
    config = parse_config(text, base_dir=tmp_path, env={})
    assert config.sources["remote"].path == "s3://bucket/events/*.parquet"
    assert config.sources["local"].path == tmp_path / "d" / "*.parquet"


def test_the_daemon_owns_its_local_cluster_across_reload_and_stop(tmp_path: Path):
    """A real daemon counts on `address: local`; SIGHUP closes that cluster's workers, SIGTERM all of them."""
    require_distributed()
    import pandas as pd
    import psutil
    from daemon_harness import DaemonProcess

    frames = window_frames()
    rows = sum(len(frame) for frame in frames)
    shift = (
        pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
        - pd.Timedelta(seconds=rows + 60)
        - frames[0]["event_time"].iloc[0]
    )
    glob = write_parquet(tmp_path / "pq", [frame.assign(event_time=frame["event_time"] + shift) for frame in frames])
    config = write_config(tmp_path, glob, "local")
    port = free_port()
    text = config.read_text().replace(f"window: {int((END - START).total_seconds())}s", "window: 2h")
    config.write_text(f"server: {{port: {port}}}\n" + text)
    daemon = DaemonProcess(config, port)
    try:
        daemon.wait_ready()
        up = ("driftwatch_monitor_up", (("monitor", "m"),))
        daemon.wait_for(lambda: daemon.metrics().get(up) == 1, "the first run on the cluster", timeout=120)
        assert daemon.metrics()[("driftwatch_monitor_rows", (("monitor", "m"),))] == rows
        workers = cluster_workers(daemon.proc.pid)
        assert len(workers) == 2
        daemon.signal(signal.SIGHUP)
        daemon.wait_for(lambda: not any(map(alive_process, workers)), "the reload to close the cluster", 60)
        daemon.wait_for(lambda: len(cluster_workers(daemon.proc.pid)) == 2, "the next run's cluster", 120)
        descendants = psutil.Process(daemon.proc.pid).children(recursive=True)
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    # worker processes end asynchronously once the cluster is closed: give them a bounded moment
    _, still = psutil.wait_procs(descendants, timeout=15)
    left = [p for p in still if alive_process(p)]
    assert not left, [(p.pid, p.name()) for p in left]


def cluster_workers(pid: int) -> list[Any]:
    """The Dask worker processes below `pid` (spawned by multiprocessing; its resource tracker is not one)."""
    import psutil

    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
    return found


def alive_process(process: Any) -> bool:
    import psutil

    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
