"""The daemon's state in SQLite: one row per monitor run (standard library sqlite3, WAL, `user_version` schema)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from driftwatch.errors import DriftwatchError

SCHEMA_VERSION = 1

_SCHEMA = """
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
_COLUMNS = "id, monitor, started_at, finished_at, outcome, severity, error, report_json"


class StoreError(DriftwatchError):
    """The state database cannot be opened, read or written."""


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


def _text(moment: datetime) -> str:
    """Fixed-width UTC text, so text order is time order."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


def _record(row: tuple[Any, ...]) -> RunRecord:
    ident, monitor, started, finished, outcome, severity, error, report = row
    return RunRecord(
        id=ident, monitor=monitor, started_at=datetime.fromisoformat(started),
        finished_at=datetime.fromisoformat(finished), outcome=outcome, severity=severity, error=error,
        report=json.loads(report) if report is not None else None,
    )


class Store:
    """Run history in one SQLite file; safe to share between threads (one lock, one connection)."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
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
        if version < SCHEMA_VERSION:
            self._conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    def record_run(
        self, monitor: str, *, started: datetime, finished: datetime, outcome: str, severity: str | None,
        error: str | None, report: dict[str, Any] | None,
    ) -> None:
        """Append one run."""
        row = (monitor, _text(started), _text(finished), outcome, severity, error,
               json.dumps(report) if report is not None else None)
        with self._lock:
            self._conn.execute(
                "INSERT INTO runs (monitor, started_at, finished_at, outcome, severity, error, report_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", row,
            )

    def last_runs(self) -> dict[str, RunRecord]:
        """The newest run of every monitor that has one."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs AS r WHERE id = (SELECT id FROM runs WHERE monitor = r.monitor"
                " ORDER BY started_at DESC, id DESC LIMIT 1) ORDER BY monitor"
            ).fetchall()
        return {record.monitor: record for record in map(_record, rows)}

    def runs(self, monitor: str, limit: int = 50) -> list[RunRecord]:
        """Up to `limit` runs of `monitor`, newest first."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM runs WHERE monitor = ? ORDER BY started_at DESC, id DESC LIMIT ?",
                (monitor, limit),
            ).fetchall()
        return [_record(row) for row in rows]

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

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
