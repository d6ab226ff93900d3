"""The daemon's state in SQLite (standard library sqlite3, WAL, `user_version` schema).

Tables: `runs` (one row per monitor run; `origin` 'schedule' for the daemon's, 'backfill' for `driftwatch
backfill`'s, which are never its latest run and never pruned), `alert_states` (the alert lifecycle, keyed by alert
identity), `outbox` (notifications to deliver: pending -> delivered | dead, written in the same transaction as the state
change that decided them), `silences`, `model_states` (fallback switching) and `model_history` (its audit
trail). Times are fixed-width UTC ISO text, so text order is time order. `Store.prune` deletes history older than
the retention in small batches; SQLite reuses the freed pages, so the file stops growing (it does not shrink).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from driftwatch.errors import StoreError
from driftwatch.outputs.deliveries import Delivery

SCHEMA_VERSION = 4

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    monitor TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    severity TEXT NULL,
    error TEXT NULL,
    report_json TEXT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_monitor ON runs (monitor, started_at);
"""
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS alert_states (
    key TEXT PRIMARY KEY,
    monitor TEXT NOT NULL,
    state_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL UNIQUE,
    sink TEXT NOT NULL,
    event_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    delivered_at TEXT NULL,
    replayed_at TEXT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY,
    monitor TEXT NULL,
    feature TEXT NULL,
    alertname TEXT NULL,
    until TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
"""
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS model_states (
    model TEXT PRIMARY KEY,
    state_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_history (
    id INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    at TEXT NOT NULL,
    entry_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS model_history_by_model ON model_history (model, id);
"""
_SCHEMA_V4 = """
ALTER TABLE runs ADD COLUMN origin TEXT NOT NULL DEFAULT 'schedule';
"""
#: Scripts that bring a database from version i to version i + 1.
_MIGRATIONS = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4)
_COLUMNS = "id, monitor, started_at, finished_at, outcome, severity, error, report_json, origin"
#: Backfilled runs written per transaction (the daemon's writes wait for one batch at most).
BACKFILL_BATCH = 200
_OUTBOX_COLUMNS = (
    "id, delivery_id, sink, event_json, created_at, next_attempt_at, attempts, last_error, status,"
    " delivered_at, replayed_at"
)
_SILENCE_COLUMNS = "id, monitor, feature, alertname, until, comment, created_at"
#: Rows deleted per transaction by `Store.prune`: short enough that runs and API calls barely wait.
PRUNE_BATCH = 500
#: The longest pause between two prunes of the daemon.
PRUNE_EVERY_MAX = timedelta(minutes=10)


def prune_interval(retention: timedelta) -> float:
    """Seconds between prunes: a tenth of `retention`, at least 1 s and at most `PRUNE_EVERY_MAX`."""
    return max(1.0, min(retention / 10, PRUNE_EVERY_MAX).total_seconds())


@dataclass(frozen=True)
class RunRecord:
    """One recorded monitor run; datetimes are aware UTC."""

    id: int
    monitor: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    severity: str | None
    error: str | None
    report: dict[str, Any] | None
    origin: str = "schedule"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (an item of GET /api/v1/monitors/{name}/runs)."""
        return {
            "id": self.id,
            "monitor": self.monitor,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "origin": self.origin,
            "outcome": self.outcome,
            "severity": self.severity,
            "error": self.error,
            "report": self.report,
        }


@dataclass(frozen=True)
class RunRow:
    """A run to append: `started` is the run's time (its window's end), `finished` when it was recorded."""

    started: datetime
    finished: datetime
    outcome: str
    severity: str | None
    error: str | None
    report: dict[str, Any] | None


@dataclass(frozen=True)
class Silence:
    """Mute matching alerts until `until`; a None matcher matches anything."""

    id: int
    monitor: str | None
    feature: str | None
    alertname: str | None
    until: datetime
    comment: str
    created_at: datetime

    def matches(self, monitor: str, feature: str | None, alertname: str) -> bool:
        """True if this silence covers the alert `(monitor, feature or subject, alertname)`."""
        return (
            (self.monitor is None or self.monitor == monitor)
            and (self.feature is None or self.feature == feature)
            and (self.alertname is None or self.alertname == alertname)
        )


def _text(moment: datetime) -> str:
    """Fixed-width UTC text, so text order is time order."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


def _record(row: tuple[Any, ...]) -> RunRecord:
    ident, monitor, started, finished, outcome, severity, error, report, origin = row
    return RunRecord(
        id=ident,
        monitor=monitor,
        started_at=datetime.fromisoformat(started),
        finished_at=datetime.fromisoformat(finished),
        outcome=outcome,
        severity=severity,
        error=error,
        report=json.loads(report) if report is not None else None,
        origin=origin,
    )


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _delivery(row: tuple[Any, ...]) -> Delivery:
    ident, delivery_id, sink, event, created, next_attempt, attempts, error, status, delivered, replayed = row
    return Delivery(
        id=ident,
        delivery_id=delivery_id,
        sink=sink,
        event=json.loads(event),
        created_at=datetime.fromisoformat(created),
        next_attempt_at=datetime.fromisoformat(next_attempt),
        attempts=attempts,
        last_error=error,
        status=status,
        delivered_at=_time(delivered),
        replayed_at=_time(replayed),
    )


def _silence(row: tuple[Any, ...]) -> Silence:
    ident, monitor, feature, alertname, until, comment, created = row
    return Silence(
        id=ident,
        monitor=monitor,
        feature=feature,
        alertname=alertname,
        until=datetime.fromisoformat(until),
        comment=comment,
        created_at=datetime.fromisoformat(created),
    )


class Store:
    """Run history in one SQLite file; safe to share between threads (one lock, one connection)."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False, isolation_level=None)
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"state store {self.path}: cannot open ({err})") from err
        try:
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            self._conn.close()
            raise StoreError(f"state store {self.path}: cannot prepare ({err})") from err

    def _migrate(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreError(f"state store {self.path}: schema version {version} is newer than {SCHEMA_VERSION}")
        for step in range(version, SCHEMA_VERSION):
            self._conn.executescript(f"BEGIN IMMEDIATE; {_MIGRATIONS[step]} PRAGMA user_version = {step + 1}; COMMIT;")

    def record_run(
        self,
        monitor: str,
        *,
        started: datetime,
        finished: datetime,
        outcome: str,
        severity: str | None,
        error: str | None,
        report: dict[str, Any] | None,
    ) -> None:
        """Append one run (StoreError when the database is locked, full or closed)."""
        row = (
            monitor,
            _text(started),
            _text(finished),
            outcome,
            severity,
            error,
            json.dumps(report) if report is not None else None,
        )
        with self._transaction("record a run"):
            self._conn.execute(
                "INSERT INTO runs (monitor, started_at, finished_at, outcome, severity, error, report_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest run of every monitor that has one."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs AS r WHERE id = (SELECT id FROM runs WHERE monitor = r.monitor"
                " AND origin = 'schedule' ORDER BY started_at DESC, id DESC LIMIT 1) ORDER BY monitor"
            ).fetchall()
        return {record.monitor: record for record in map(_record, rows)}

    def runs(
        self, monitor: str, limit: int = 50, *, before: tuple[datetime, int] | None = None, origin: str | None = None
    ) -> list[RunRecord]:
        """Up to `limit` runs of `monitor`, newest first (by start time, then id); only those older than the
        `before` = (started_at, id) of a run, a page's last, when given; only those of `origin` when given."""
        where, params = "monitor = ?", list[object]([monitor])
        if before is not None:
            where += " AND (started_at < ? OR (started_at = ? AND id < ?))"
            params += [_text(before[0]), _text(before[0]), before[1]]
        if origin is not None:
            where += " AND origin = ?"
            params.append(origin)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE {where} ORDER BY started_at DESC, id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_record(row) for row in rows]

    def has_runs(self, monitor: str) -> bool:
        """True when `monitor` has any recorded run."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM runs WHERE monitor = ? LIMIT 1", (monitor,)).fetchone() is not None

    def record_backfill(self, monitor: str, runs: Sequence[RunRow]) -> int:
        """Store `runs` as backfilled runs of `monitor`, replacing backfilled runs with the same start times, in
        transactions of `BACKFILL_BATCH` runs; returns how many earlier backfilled runs were replaced."""
        replaced = 0
        for first in range(0, len(runs), BACKFILL_BATCH):
            batch = runs[first : first + BACKFILL_BATCH]
            with self._transaction("record backfilled runs"):
                for run in batch:
                    replaced += self._conn.execute(
                        "DELETE FROM runs WHERE monitor = ? AND origin = 'backfill' AND started_at = ?",
                        (monitor, _text(run.started)),
                    ).rowcount
                self._conn.executemany(
                    "INSERT INTO runs (monitor, started_at, finished_at, outcome, severity, error, report_json, origin)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'backfill')",
                    [
                        (
                            monitor,
                            _text(run.started),
                            _text(run.finished),
                            run.outcome,
                            run.severity,
                            run.error,
                            json.dumps(run.report) if run.report is not None else None,
                        )
                        for run in batch
                    ],
                )
        return replaced

    def delete_backfill(self, monitor: str, start: datetime, end: datetime) -> int:
        """Delete the backfilled runs of `monitor` started in [start, end]; returns how many."""
        with self._transaction("delete backfilled runs"):
            return int(
                self._conn.execute(
                    "DELETE FROM runs WHERE monitor = ? AND origin = 'backfill'"
                    " AND started_at >= ? AND started_at <= ?",
                    (monitor, _text(start), _text(end)),
                ).rowcount
            )

    def recent_rows(self, monitor: str, limit: int) -> list[int]:
        """The rows (`report.rows.current`) of up to `limit` latest successful runs of `monitor`, newest first."""
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT json_extract(report_json, '$.rows.current') FROM runs WHERE monitor = ? AND outcome = 'ok'"
                    " AND report_json IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT ?",
                    (monitor, limit),
                ).fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"state store {self.path}: cannot read runs ({err})") from err
        return [int(value) for (value,) in rows if isinstance(value, int) and value > 0]

    def run_history(self, monitor: str, limit: int = 30, *, features: bool = True) -> list[dict[str, Any]]:
        """The `limit` newest runs of `monitor`, oldest first: `{"started_at", "finished_at", "outcome", "severity",
        "features": {NAME: {"psi", "ks_statistic", "severity"}}}` (features empty when `features` is False).

        The statistics are picked out by SQLite's JSON functions, so the stored reports (with their chart data)
        are never parsed whole in Python: what the web view's history charts and severity strips need.
        """
        newest = (
            "SELECT id, started_at, finished_at, outcome, severity, report_json FROM runs WHERE monitor = ?"
            " ORDER BY started_at DESC, id DESC LIMIT ?"
        )
        if features:
            query = (
                "SELECT r.id, r.started_at, r.finished_at, r.outcome, r.severity, f.key,"
                " json_extract(f.value, '$.psi'), json_extract(f.value, '$.ks_statistic'),"
                f" json_extract(f.value, '$.severity') FROM ({newest}) AS r"
                " LEFT JOIN json_each(r.report_json, '$.features') AS f ORDER BY r.started_at, r.id, f.id"
            )
        else:
            query = (
                "SELECT id, started_at, finished_at, outcome, severity, NULL, NULL, NULL, NULL"
                f" FROM ({newest}) ORDER BY started_at, id"
            )
        with self._lock:
            rows = self._conn.execute(query, (monitor, limit)).fetchall()
        runs: dict[int, dict[str, Any]] = {}
        for ident, started, finished, outcome, severity, name, psi, ks, feature_severity in rows:
            run = runs.get(ident)
            if run is None:
                run = runs[ident] = {
                    "started_at": datetime.fromisoformat(started),
                    "finished_at": datetime.fromisoformat(finished),
                    "outcome": outcome,
                    "severity": severity,
                    "features": {},
                }
            if name is not None:
                run["features"][name] = {"psi": psi, "ks_statistic": ks, "severity": feature_severity}
        return list(runs.values())

    def check_writable(self) -> None:
        """Raise StoreError unless a real write (rolled back) succeeds."""
        with self._lock:
            try:
                self._conn.execute("SAVEPOINT check_writable")
                try:
                    self._conn.execute(
                        "INSERT INTO runs (monitor, started_at, finished_at, outcome) VALUES ('', '', '', 'check')"
                    )
                finally:
                    self._conn.execute("ROLLBACK TO check_writable")
                    self._conn.execute("RELEASE check_writable")
            except (sqlite3.Error, OSError) as err:
                raise StoreError(f"state store {self.path}: not writable ({err})") from err

    # --- alert lifecycle state and the outbox ----------------------------------------------------------------

    def alert_states(self, monitor: str | None = None) -> dict[str, dict[str, Any]]:
        """Every stored alert state (of one monitor, if given), by key."""
        with self._lock:
            if monitor is None:
                rows = self._conn.execute("SELECT key, state_json FROM alert_states ORDER BY key").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT key, state_json FROM alert_states WHERE monitor = ? ORDER BY key", (monitor,)
                ).fetchall()
        return {key: json.loads(state) for key, state in rows}

    def apply_alert_changes(
        self,
        states: Mapping[str, dict[str, Any] | None],
        deliveries: Sequence[tuple[str, str, dict[str, Any]]],
        now: datetime,
    ) -> None:
        """In ONE transaction: upsert (or, for None, delete) alert states and enqueue `(delivery_id, sink, event)`.

        A delivery id already in the outbox is ignored, so re-applying the same decision enqueues nothing twice.
        Any failure (including an event that is not JSON-serialisable) rolls everything back and raises StoreError.
        """
        with self._transaction("apply alert changes"):
            self._put_alert_states(states)
            self._enqueue(deliveries, now)

    def _put_alert_states(self, states: Mapping[str, dict[str, Any] | None]) -> None:
        """Upsert (or, for None, delete) alert states inside the caller's transaction."""
        for key, state in states.items():
            if state is None:
                self._conn.execute("DELETE FROM alert_states WHERE key = ?", (key,))
            else:
                self._conn.execute(
                    "INSERT INTO alert_states (key, monitor, state_json) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET monitor = excluded.monitor, state_json = excluded.state_json",
                    (key, str(state.get("monitor", "")), json.dumps(state)),
                )

    @contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One write transaction under the lock; any failure rolls back and raises StoreError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except (sqlite3.Error, TypeError, ValueError) as err:
                raise StoreError(f"state store {self.path}: cannot {what} ({err})") from err

    def _enqueue(self, deliveries: Sequence[tuple[str, str, dict[str, Any]]], now: datetime) -> None:
        """Insert outbox rows inside the caller's transaction; a known delivery id is ignored."""
        stamp = _text(now)
        for delivery_id, sink, event in deliveries:
            self._conn.execute(
                "INSERT INTO outbox (delivery_id, sink, event_json, created_at, next_attempt_at, attempts, status)"
                " VALUES (?, ?, ?, ?, ?, 0, 'pending') ON CONFLICT (delivery_id) DO NOTHING",
                (delivery_id, sink, json.dumps(event), stamp, stamp),
            )

    def delivery(self, delivery_id: str) -> Delivery | None:
        """The outbox row of `delivery_id`, if any."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()
        return _delivery(row) if row else None

    def due_deliveries(
        self,
        now: datetime,
        limit: int = 100,
        *,
        sink: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Delivery]:
        """Pending deliveries due at `now`, oldest due first: of `sink` only, or of no sink in `exclude`."""
        where, params = "status = 'pending' AND next_attempt_at <= ?", [_text(now)]
        if sink is not None:
            where, params = where + " AND sink = ?", [*params, sink]
        if exclude:
            where, params = where + f" AND sink NOT IN ({', '.join('?' * len(exclude))})", [*params, *exclude]
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE {where} ORDER BY next_attempt_at, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def deliveries(self, status: str | None = None, sink: str | None = None, limit: int = 100) -> list[Delivery]:
        """Outbox rows (optionally of one status and/or sink), newest first: for the API, CLI and tests."""
        clauses, params = [], []
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if sink is not None:
            clauses.append("sink = ?")
            params.append(sink)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM outbox{where} ORDER BY id DESC LIMIT ?", (*params, limit)
            ).fetchall()
        return [_delivery(row) for row in rows]

    def mark_delivered(self, id: int, now: datetime) -> None:
        """The sink accepted the delivery (2xx)."""
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ? WHERE id = ?",
                (_text(now), id),
            )

    def mark_retry(self, id: int, next_attempt_at: datetime, error: str) -> None:
        """An attempt failed and may succeed later: try again at `next_attempt_at`."""
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                (_text(next_attempt_at), error, id),
            )

    def mark_dead(self, id: int, error: str) -> None:
        """Give up: move the delivery to the dead letters (replayable with `retry_dead`)."""
        with self._lock:
            self._conn.execute(
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?"
                " WHERE id = ? AND status = 'pending'",
                (error, id),
            )

    def retry_dead(self, sink: str | None = None, now: datetime | None = None) -> int:
        """Move dead letters (of one sink, if given) back to pending, due now with fresh attempts; return how many."""
        stamp = _text(now or datetime.now(UTC))
        query = (
            "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, replayed_at = ?"
            " WHERE status = 'dead'"
        )
        params: tuple[Any, ...] = (stamp, stamp)
        if sink is not None:
            query += " AND sink = ?"
            params += (sink,)
        with self._lock:
            return self._conn.execute(query, params).rowcount

    def outbox_counts(self) -> dict[str, int]:
        """How many deliveries are `pending` and `dead` (both keys always present)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT status, COUNT(*) FROM outbox WHERE status IN ('pending', 'dead') GROUP BY status"
            ).fetchall()
        return {"pending": 0, "dead": 0, **dict(rows)}

    # --- silences --------------------------------------------------------------------------------------------

    def add_silence(
        self,
        *,
        until: datetime,
        monitor: str | None = None,
        feature: str | None = None,
        alertname: str | None = None,
        comment: str = "",
        now: datetime | None = None,
    ) -> int:
        """Store a silence and return its id."""
        created = _text(now or datetime.now(UTC))
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO silences (monitor, feature, alertname, until, comment, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (monitor, feature, alertname, _text(until), comment, created),
            )
        return int(cursor.lastrowid or 0)

    def active_silences(self, now: datetime) -> list[Silence]:
        """Silences that have not ended at `now`, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_SILENCE_COLUMNS} FROM silences WHERE until > ? ORDER BY id", (_text(now),)
            ).fetchall()
        return [_silence(row) for row in rows]

    def delete_silence(self, id: int) -> bool:
        """Remove a silence; False if there was none with that id."""
        with self._lock:
            return self._conn.execute("DELETE FROM silences WHERE id = ?", (id,)).rowcount > 0

    # --- models (fallback switching) -------------------------------------------------------------------------

    def model_states(self) -> dict[str, dict[str, Any]]:
        """Every stored model state, by model."""
        with self._lock:
            rows = self._conn.execute("SELECT model, state_json FROM model_states ORDER BY model").fetchall()
        return {model: json.loads(state) for model, state in rows}

    def apply_model_change(
        self,
        model: str,
        state: dict[str, Any],
        history: Sequence[dict[str, Any]],
        deliveries: Sequence[tuple[str, str, dict[str, Any]]],
        now: datetime,
        alerts: Mapping[str, dict[str, Any] | None] | None = None,
    ) -> None:
        """In ONE transaction: store the model's state, append audit entries, enqueue deliveries, and upsert (or,
        for None, delete) the alert states in `alerts` (its ModelSwitched alert)."""
        with self._transaction("apply model change"):
            self._put_alert_states(alerts or {})
            self._conn.execute(
                "INSERT INTO model_states (model, state_json) VALUES (?, ?)"
                " ON CONFLICT (model) DO UPDATE SET state_json = excluded.state_json",
                (model, json.dumps(state)),
            )
            for entry in history:
                self._conn.execute(
                    "INSERT INTO model_history (model, at, entry_json) VALUES (?, ?, ?)",
                    (model, _text(now), json.dumps(entry)),
                )
            self._enqueue(deliveries, now)

    def model_history(self, model: str, limit: int = 100) -> list[dict[str, Any]]:
        """Up to `limit` audit entries of `model`, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT entry_json FROM model_history WHERE model = ? ORDER BY id DESC LIMIT ?", (model, limit)
            ).fetchall()
        return [json.loads(entry) for (entry,) in rows]

    def model_switch_counts(self) -> dict[tuple[str, str], int]:
        """How many real (not dry-run) switches each (model, direction) had, for a counter metric."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT model, json_extract(entry_json, '$.direction'), count(*) FROM model_history"
                " WHERE json_extract(entry_json, '$.kind') = 'switch' AND NOT json_extract(entry_json, '$.dry_run')"
                " GROUP BY 1, 2"
            ).fetchall()
        return {(model, direction): count for model, direction, count in rows}

    # --- retention ------------------------------------------------------------------------------------------

    def prune(
        self, now: datetime, retention: timedelta, audit_retention: timedelta | None = None, *, batch: int = PRUNE_BATCH
    ) -> dict[str, int]:
        """Delete history older than `now - retention` in transactions of at most `batch` rows; counts per table.

        Runs started before the cut-off, except each monitor's newest (statuses are seeded from it after a
        restart); delivered outbox rows delivered before it and dead ones last attempted before it, except each
        sink's newest (a model's actuation status reads its latest route delivery); pending rows never; silences
        that ended before it; model history only when `audit_retention` is given. The lock is released between
        batches, so runs and API calls wait for one batch at most; a store closed meanwhile stops the prune.
        """
        cut = _text(now - retention)
        counts = {"runs": 0, "outbox": 0, "silences": 0, "model_history": 0}
        with self._lock:
            try:
                rows = [] if self._closed else self._conn.execute("SELECT DISTINCT monitor FROM runs").fetchall()
            except sqlite3.Error as err:
                raise StoreError(f"state store {self.path}: cannot prune runs ({err})") from err
        steps: list[tuple[str, str, tuple[Any, ...]]] = [
            (
                "runs",
                "SELECT id FROM runs WHERE monitor = ? AND started_at < ? AND origin = 'schedule' AND id != (SELECT id"
                " FROM runs WHERE monitor = ? AND origin = 'schedule' ORDER BY started_at DESC, id DESC LIMIT 1)"
                " ORDER BY started_at LIMIT ?",
                (monitor, cut, monitor),
            )
            for (monitor,) in rows
        ]
        newest_per_sink = "id NOT IN (SELECT max(id) FROM outbox GROUP BY sink)"
        steps += [
            (
                "outbox",
                f"SELECT id FROM outbox WHERE status = 'delivered' AND delivered_at < ? AND {newest_per_sink} LIMIT ?",
                (cut,),
            ),
            (
                "outbox",
                f"SELECT id FROM outbox WHERE status = 'dead' AND next_attempt_at < ? AND {newest_per_sink} LIMIT ?",
                (cut,),
            ),
            ("silences", "SELECT id FROM silences WHERE until < ? LIMIT ?", (cut,)),
        ]
        if audit_retention is not None:
            steps.append(
                (
                    "model_history",
                    "SELECT id FROM model_history WHERE at < ? ORDER BY id LIMIT ?",
                    (_text(now - audit_retention),),
                )
            )
        for table, select, params in steps:
            while True:
                deleted = self._delete_batch(table, select, (*params, batch))
                if deleted is None:
                    return counts
                counts[table] += deleted
                if deleted < batch:
                    break
        return counts

    def _delete_batch(self, table: str, select: str, params: tuple[Any, ...]) -> int | None:
        """Delete the rows of `table` whose ids `select` finds, in one statement; None once the store is closed."""
        with self._lock:
            if self._closed:
                return None
            try:
                return self._conn.execute(f"DELETE FROM {table} WHERE id IN ({select})", params).rowcount
            except sqlite3.Error as err:
                raise StoreError(f"state store {self.path}: cannot prune {table} ({err})") from err

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
