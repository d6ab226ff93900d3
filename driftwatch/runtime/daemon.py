"""The long-running daemon: config, monitors, scheduler, metrics and the HTTP API, with reload and shutdown."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from driftwatch import __version__
from driftwatch.config import Config, load_config
from driftwatch.core.status import MonitorStatus
from driftwatch.errors import ConfigError, DriftwatchError
from driftwatch.outputs.alert_metrics import AlertingCollector, AlertingSnapshot, OutcomeCounter
from driftwatch.outputs.exporter import DriftCollector, metrics_registry
from driftwatch.outputs.model_metrics import ModelCollector, ModelMetrics
from driftwatch.outputs.outbox import Dispatcher
from driftwatch.runtime.alerts import Alerting, build_notifiers, retry_policies
from driftwatch.runtime.api_alerts import alert_routes
from driftwatch.runtime.api_models import model_routes
from driftwatch.runtime.api_runs import run_routes
from driftwatch.runtime.http import create_app
from driftwatch.runtime.memory import RunSlot, RunSlots, release_unused_memory
from driftwatch.runtime.models import Models
from driftwatch.runtime.monitor import (
    Monitor,
    Progress,
    RunResult,
    close_sources,
    open_sources,
    prepare_monitor,
    run_monitor,
)
from driftwatch.runtime.profiles import release_mapped_pages
from driftwatch.runtime.scheduler import make_scheduler, schedule_monitor
from driftwatch.runtime.stats_pool import stats_executor
from driftwatch.runtime.store import RunRecord, Store, prune_interval
from driftwatch.runtime.web import web_routes
from driftwatch.sources import DataSource

log = logging.getLogger("driftwatch.daemon")


def prepare_monitors(config: Config) -> dict[str, Monitor]:
    """Every configured monitor with a schedule (one warning line for each without), with its source opened and
    its reference profile loaded or built."""
    sources = open_sources(config)
    profile_dir = Path(config.state.path).parent / "profiles"
    scheduled = [name for name, monitor in config.monitors.items() if monitor.schedule is not None]
    for name in (name for name in config.monitors if name not in scheduled):
        log.warning("monitor %s: no schedule, so the daemon does not run it (check and backfill do)", name)
    try:
        return {name: prepare_monitor(name, config, profile_dir, sources) for name in scheduled}
    except BaseException:
        close_sources(sources.values())
        raise


def monitor_sources(monitors: Mapping[str, Monitor]) -> list[DataSource]:
    """The distinct sources `monitors` read from."""
    return list({id(m.source): m.source for m in monitors.values()}.values())


#: A run longer than this logs its progress, every `PROGRESS_EVERY_SECONDS`.
PROGRESS_AFTER_SECONDS = 5.0
PROGRESS_EVERY_SECONDS = 10.0


@dataclass(eq=False)
class RunInFlight:
    """One monitor run on its own thread; `claimed` once its result or its timeout has been recorded."""

    monitor: Monitor
    now: datetime
    started: float = field(default_factory=time.perf_counter)
    claimed: bool = False
    deadline: threading.Timer | None = None
    slot: RunSlot | None = None


class Daemon:
    """Runs monitors on their schedules and exposes their latest results; see `serve`."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config = load_config(config_path)
        self.monitors = prepare_monitors(self.config)
        self.store = Store(Path(self.config.state.path))
        self.alerting = Alerting(self.store, {})
        self.models = Models(self.store, self.config, datetime.now(UTC), self.alerting)
        self.notification_outcomes = OutcomeCounter()
        self.dispatcher = Dispatcher(self.store, {}, on_outcome=self.notification_outcomes)
        self._connect_sinks(self.config)
        self.reload_ok = True
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified whenever a run leaves `_in_flight`
        self._in_flight: dict[str, RunInFlight] = {}
        self._stopping = False
        self._record_lock = threading.Lock()  # a run's records vs. closing the store
        self._slots = RunSlots(self.config.server.max_concurrent_runs or os.cpu_count() or 1)
        self._closed = False
        self._statuses: Mapping[str, MonitorStatus] = self._initial_statuses(self.monitors, {}, self.store.last_runs())
        self.scheduler = make_scheduler()
        self.registry = metrics_registry(
            DriftCollector(self.statuses, version=__version__, reload_ok=lambda: self.reload_ok)
        )
        self.registry.register(AlertingCollector(self.alerting_snapshot))
        self.registry.register(ModelCollector(self.model_metrics))

    # -- DaemonControl ------------------------------------------------------------------------------------
    def statuses(self) -> Mapping[str, MonitorStatus]:
        """The latest status of every monitor (an immutable snapshot)."""
        return self._statuses

    def problems(self) -> list[str]:
        """Why the daemon is not ready (empty when it is)."""
        found = []
        if not self.scheduler.running:
            found.append("scheduler is not running")
        try:
            self.store.check_writable()
        except (DriftwatchError, OSError) as err:
            found.append(f"state store is not writable: {err}")
        return found

    def tokens(self) -> tuple[str | None, str | None]:
        """The API and read bearer tokens from the config (None when unset)."""
        server = self.config.server
        return (
            server.api_token.get_secret_value() if server.api_token else None,
            server.read_token.get_secret_value() if server.read_token else None,
        )

    def reload(self) -> None:
        """Load the config file again; an invalid one keeps the running config and raises ConfigError."""
        try:
            config = load_config(self.config_path)
            monitors = prepare_monitors(config)
        except DriftwatchError as err:
            self.reload_ok = False
            log.error("reload failed, keeping the running config: %s", err)
            if isinstance(err, ConfigError):
                raise
            raise ConfigError(str(err)) from err
        with self._lock:
            old = self.monitors
            self.config, self.monitors = config, monitors
            self._statuses = self._initial_statuses(monitors, self._statuses, {})
        close_sources(monitor_sources(old))  # a run still reading keeps its checked-out connection
        self.models.update_config(config, datetime.now(UTC))
        self._connect_sinks(config)
        for job in self.scheduler.get_jobs():
            if job.name not in monitors:
                job.remove()
        self._schedule_all()
        self.reload_ok = True
        log.info("config reloaded: %d monitor(s)", len(monitors))

    def _connect_sinks(self, config: Config) -> None:
        """Give alerting and the outbox dispatcher the alert sinks and model actuators of `config`."""
        notifiers = build_notifiers(config)
        self.alerting.update_notifiers(notifiers)
        self.dispatcher.update(
            {**notifiers, **self.models.notifiers()}, {**retry_policies(config), **self.models.retry_policies()}
        )

    # -- running ------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduler with one job per monitor."""
        self.dispatcher.start()
        self.scheduler.start()
        self._schedule_all()
        log.info("driftwatch %s started: %d monitor(s)", __version__, len(self.monitors))

    def stop(self) -> list[str]:
        """Stop taking runs, wait up to `server.shutdown_timeout` for running ones, then close the store.

        Returns the monitors whose runs were still going and are abandoned (their threads are daemon threads).
        """
        with self._lock:
            self._stopping = True
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        grace = self.config.server.shutdown_timeout.total_seconds()
        with self._idle:
            self._idle.wait_for(lambda: not self._in_flight, timeout=grace)
            abandoned = sorted(self._in_flight)
        if abandoned:
            log.warning(
                "shutdown: abandoning the run(s) of %s, still going after %gs (server.shutdown_timeout)",
                ", ".join(abandoned),
                grace,
                extra={"abandoned": abandoned},
            )
        if not self.dispatcher.stop(timeout=10):
            log.warning("shutdown: a notification delivery was still in flight; it is retried after a restart")
        with self._record_lock:
            self._closed = True
            self.store.close()
        close_sources(monitor_sources(self.monitors))
        log.info("driftwatch stopped")
        return abandoned

    def run_once(self, name: str) -> None:
        """Start one scheduled run of monitor `name` on its own thread and return at once; never raises.

        A monitor runs at most once at a time: while its previous run is still going this one is skipped and
        counted. At the monitor's `timeout` the run is recorded as failed even if its thread is still blocked.
        """
        monitor = self.monitors.get(name)
        if monitor is None:
            return
        with self._lock:
            if self._stopping:
                return
            busy = self._in_flight.get(name)
            if busy is not None:
                self._statuses = {**self._statuses, name: self._statuses[name].after_skip()}
            else:
                run = self._in_flight[name] = RunInFlight(monitor, datetime.now(UTC))
        if busy is not None:
            log.warning(
                "monitor %s: previous run still going after %.0fs; skipped this run",
                name,
                time.perf_counter() - busy.started,
                extra={"monitor": name},
            )
            return
        run.deadline = threading.Timer(monitor.config.timeout.total_seconds(), self._expire, args=(run,))
        run.deadline.daemon = True
        run.deadline.start()
        threading.Thread(target=self._execute, args=(run,), name=f"driftwatch-run:{name}", daemon=True).start()

    def _execute(self, run: RunInFlight) -> None:
        """The body of a run's thread: read, compare, record (unless the deadline was recorded first)."""
        monitor = run.monitor
        try:
            try:
                timeout = monitor.config.timeout.total_seconds()
                run.slot = self._slots.acquire(timeout - (time.perf_counter() - run.started))
                if run.slot is None:
                    result = self._no_slot(run)
                else:
                    history = self._volume_history(monitor)
                    progress = self._progress_of(monitor.name)
                    result = run_monitor(monitor, run.now, stats_executor(), progress, history)
            except Exception as err:  # a bug must not kill the monitor: record it as a failed run
                log.exception("monitor %s: run crashed", monitor.name)
                result = RunResult("error", run.now - monitor.config.window, run.now, error=f"internal error: {err!r}")
            if run.deadline is not None:
                run.deadline.cancel()
            if self._claim(run):
                self._record(monitor, result, run.now, time.perf_counter() - run.started)
            else:
                log.warning(
                    "monitor %s: run ended %.1fs after its deadline; its result is discarded",
                    monitor.name,
                    time.perf_counter() - run.started,
                    extra={"monitor": monitor.name},
                )
        finally:
            if run.slot is not None:
                run.slot.release()
            release_mapped_pages(monitor.profile)
            release_unused_memory()
            with self._idle:
                if self._in_flight.get(monitor.name) is run:
                    del self._in_flight[monitor.name]
                self._idle.notify_all()

    def _volume_history(self, monitor: Monitor) -> list[int]:
        """Rows of the monitor's latest successful runs (the volume signal's baseline); none if unreadable."""
        try:
            return self.store.recent_rows(monitor.name, monitor.health.volume_runs)
        except DriftwatchError as err:
            log.warning("monitor %s: volume signal without history: %s", monitor.name, err)
            return []

    def _progress_of(self, name: str) -> Progress:
        """A run's progress callback: the rows-read gauge, and a log line every 10 s once a run passes 5 s."""
        logged = [PROGRESS_AFTER_SECONDS - PROGRESS_EVERY_SECONDS]

        def progress(stage: int, rows: int, seconds: float) -> None:
            with self._lock:
                if name in self._statuses:
                    self._statuses = {**self._statuses, name: self._statuses[name].reading(rows)}
            if seconds - logged[0] >= PROGRESS_EVERY_SECONDS:
                logged[0] = seconds
                log.info(
                    "monitor %s: pass %d: %d rows read, %.0fs",
                    name,
                    stage,
                    rows,
                    seconds,
                    extra={"monitor": name, "pass": stage, "rows_read": rows},
                )

        return progress

    def _expire(self, run: RunInFlight) -> None:
        """The deadline of a run passed: record it as failed now (its thread may stay blocked a while)."""
        if run.slot is not None:
            run.slot.release()  # a blocked run must not keep others from running
        if not self._claim(run):
            return
        monitor, timeout = run.monitor, run.monitor.config.timeout.total_seconds()
        if run.slot is None:
            result = self._no_slot(run)
        else:
            result = RunResult(
                "error",
                run.now - monitor.config.window,
                run.now,
                error=f"run timed out after {timeout:g}s (monitor timeout)",
            )
        self._record(monitor, result, run.now, time.perf_counter() - run.started)

    def _no_slot(self, run: RunInFlight) -> RunResult:
        """The failed run of a monitor that waited its whole `timeout` for a run slot."""
        monitor, timeout = run.monitor, run.monitor.config.timeout.total_seconds()
        return RunResult(
            "error",
            run.now - monitor.config.window,
            run.now,
            error=f"run timed out after {timeout:g}s waiting for a run slot "
            f"({self._slots.busy} of server.max_concurrent_runs {self._slots.size} busy)",
        )

    def _claim(self, run: RunInFlight) -> bool:
        """True for the first of (result, deadline) to ask: only that one is recorded."""
        with self._lock:
            first, run.claimed = not run.claimed, True
        return first

    def _record(self, monitor: Monitor, result: RunResult, started: datetime, seconds: float) -> None:
        """Status, log line, then run row, alert step and model step, each attempted even if another fails."""
        finished = datetime.now(UTC)
        with self._lock:
            current = self._statuses.get(monitor.name) or MonitorStatus(monitor.name, "")
            status = current.after_run(
                result.outcome,
                finished=finished,
                seconds=seconds,
                report=result.report,
                error=result.error,
                health=result.health,
            )
            self._statuses = {**self._statuses, monitor.name: status}
        log_result(monitor.name, result, seconds)
        steps: tuple[tuple[str, Callable[[], object]], ...] = (
            (
                "run",
                lambda: self.store.record_run(
                    monitor.name,
                    started=started,
                    finished=finished,
                    outcome=result.outcome,
                    severity=result.report.severity.label if result.report else None,
                    error=result.error,
                    report=result.report.to_dict() if result.report else None,
                ),
            ),
            (
                "alert",
                lambda: self.alerting.after_run(
                    self.config, monitor.name, result, result.policy or monitor.policy, finished
                ),
            ),
            ("model", lambda: self.models.after_run(monitor.name, result, finished)),
        )
        with self._record_lock:
            if self._closed:
                log.warning("monitor %s: run ended after shutdown closed the state store; not recorded", monitor.name)
                return
            for step, record in steps:
                try:
                    record()
                except DriftwatchError as err:
                    log.error(
                        "monitor %s: could not record the %s step in the state store: %s", monitor.name, step, err
                    )
                except Exception:  # e.g. a locked or full database: the other steps still run
                    log.exception("monitor %s: could not record the %s step", monitor.name, step)
        self.dispatcher.wake()

    def model_metrics(self) -> list[ModelMetrics]:
        """Each model's versions, active one, pin, switch counts and actuation, for /metrics."""
        switches = self.store.model_switch_counts()
        return [
            ModelMetrics(
                spec.name,
                spec.versions,
                state.active,
                state.pinned,
                {d: n for (m, d), n in switches.items() if m == spec.name},
                {actuator: status == "confirmed" for actuator, status in actuation.items()},
            )
            for spec, state, actuation in self.models.snapshot()
        ]

    def alerting_snapshot(self) -> AlertingSnapshot:
        """Firing alerts, notification outcomes and the outbox backlog, for /metrics."""
        firing: dict[tuple[str, str, str], int] = {}
        for key, state in self.alerting.states().items():
            if state.phase == "firing":
                label = (key.monitor, key.alertname, state.severity.label)
                firing[label] = firing.get(label, 0) + 1
        counts = self.store.outbox_counts()
        return AlertingSnapshot(firing, self.notification_outcomes.snapshot(), counts["pending"], counts["dead"])

    def prune_state(self) -> None:
        """Delete state older than `state.retention` (see `Store.prune`); logs what went, never raises."""
        state = self.config.state
        try:
            counts = self.store.prune(datetime.now(UTC), state.retention, state.audit_retention)
        except (DriftwatchError, OSError) as err:
            log.error("state retention: prune failed: %s", err)
            return
        if any(counts.values()):
            log.info(
                "state retention: deleted %s",
                ", ".join(f"{n} {table}" for table, n in counts.items() if n),
                extra={"deleted": counts},
            )

    def _schedule_all(self) -> None:
        for name, monitor in self.monitors.items():
            assert monitor.config.schedule is not None  # `prepare_monitors` keeps scheduled monitors only
            schedule_monitor(self.scheduler, name, monitor.config.schedule.trigger(), self.run_once)
        self.scheduler.add_job(
            self.prune_state,
            "interval",
            seconds=prune_interval(self.config.state.retention),
            id="state:prune",
            name="state:prune",
            replace_existing=True,
        )

    @staticmethod
    def _initial_statuses(
        monitors: Mapping[str, Monitor], previous: Mapping[str, MonitorStatus], last_runs: Mapping[str, RunRecord]
    ) -> dict[str, MonitorStatus]:
        """Statuses for `monitors`: kept from `previous` (a reload), else seeded from the stored last run."""
        statuses = {}
        for name, monitor in monitors.items():
            record = last_runs.get(name)
            base = previous.get(name) or MonitorStatus(name, "", last_run=record.finished_at if record else None)
            statuses[name] = replace(
                base,
                schedule=monitor.config.schedule.describe() if monitor.config.schedule else "",
                # a moving baseline has no rows until its first run builds it
                reference_rows=monitor.profile.rows if monitor.config.reference.path else base.reference_rows,
            )
        return statuses


def log_result(name: str, result: RunResult, seconds: float) -> None:
    """One log line per run: severity, drift share and the features that breached, or why there is no report;
    then the data-health signals that are not ok."""
    health = result.health
    unhealthy = [s for s in health.signals if s.severity > 0] if health is not None else []
    if unhealthy and health is not None:
        log.warning(
            "monitor %s: data health %s: %s",
            name,
            health.severity.label,
            "; ".join(
                f"{s.name}{' ' + s.feature if s.feature else ''} {s.severity.label} ({s.detail})" for s in unhealthy
            ),
            extra={"monitor": name, "health": health.severity.label},
        )
    if result.report is None:
        level = logging.ERROR if result.outcome == "error" else logging.WARNING
        log.log(
            level,
            "monitor %s: %s: %s",
            name,
            result.outcome,
            result.error,
            extra={"monitor": name, "outcome": result.outcome},
        )
        return
    report = result.report
    drifted = ", ".join(
        f"{r.name} ({r.severity.label}: " + " ".join(f"{k}={getattr(r.stats, k):.3f}" for k in r.breaches) + ")"
        for r in sorted(report.features, key=lambda r: -r.severity)
        if r.severity > 0
    )
    log.log(
        logging.WARNING if report.severity > 0 else logging.INFO,
        "monitor %s: severity %s, drift share %.2f, %d rows, %.2fs%s",
        name,
        report.severity.label,
        report.drift_share or 0.0,
        report.current_rows,
        seconds,
        f"; drifted: {drifted}" if drifted else "",
        extra={"monitor": name, "severity": report.severity.label, "drift_share": report.drift_share},
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; DriftwatchError with one line if that is impossible."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise DriftwatchError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    sock.listen(128)
    return sock


def serve(daemon: Daemon) -> None:
    """Serve HTTP in this (main) thread until SIGTERM/SIGINT; SIGHUP reloads the config."""
    server_config = daemon.config.server
    sock = listen(server_config.host, server_config.port)
    host, port = sock.getsockname()[:2]
    app = create_app(
        daemon,
        [
            *alert_routes(daemon, daemon.alerting, daemon.store),
            *model_routes(daemon, daemon.models),
            *run_routes(daemon, daemon.store),
            *web_routes(daemon),
        ],
    )
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=5))
    # uvicorn re-raises the signal that stopped it after restoring these handlers: make that harmless.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=_reload_quietly, args=(daemon,)).start())
    daemon.start()
    log.info(
        "serving the web view on http://%s:%d/ (metrics at /metrics, API at /api/v1)",
        host,
        port,
        extra={"host": host, "port": port},
    )
    try:
        server.run(sockets=[sock])
    finally:
        log.info(
            "shutting down: waiting up to %gs for running monitors",
            daemon.config.server.shutdown_timeout.total_seconds(),
        )
        abandoned = daemon.stop()
    if abandoned:  # their threads may be blocked in a driver that ignores signals: do not wait at exit
        logging.shutdown()
        os._exit(0)


def _reload_quietly(daemon: Daemon) -> None:
    """SIGHUP: reload; a failure is logged (by reload) and leaves the old config running."""
    with contextlib.suppress(ConfigError):
        daemon.reload()
