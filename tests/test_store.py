"""The SQLite state store: round trips, persistence, newest-run queries, writability checks and retention."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from driftwatch.config import StateConfig
from driftwatch.errors import DriftwatchError, StoreError
from driftwatch.runtime.store import SCHEMA_VERSION, RunRecord, Store, prune_interval

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
REPORT = {"monitor": "churn", "features": [{"name": "age", "psi": 0.31, "ok": False}], "rows": 1200}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store in a nested directory that does not exist yet."""
    with Store(tmp_path / "state" / "nested" / "driftwatch.db") as opened:
        yield opened


def record(store: Store, monitor: str, minutes: int, outcome: str = "ok", **extra: Any) -> None:
    """Record a run of `monitor` started `minutes` after T0 and lasting 2 seconds."""
    started = T0 + timedelta(minutes=minutes)
    fields: dict[str, Any] = {"severity": None, "error": None, "report": None, **extra}
    store.record_run(monitor, started=started, finished=started + timedelta(seconds=2), outcome=outcome, **fields)


def test_round_trip_keeps_every_field(store: Store) -> None:
    """A recorded run comes back with aware UTC datetimes and the report as a dict."""
    started = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    store.record_run(
        "churn",
        started=started,
        finished=started + timedelta(seconds=3),
        outcome="ok",
        severity="critical",
        error=None,
        report=REPORT,
    )
    (run,) = store.runs("churn")
    assert run == RunRecord(
        id=run.id,
        monitor="churn",
        started_at=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        finished_at=datetime(2024, 5, 1, 12, 0, 3, 123456, tzinfo=UTC),
        outcome="ok",
        severity="critical",
        error=None,
        report=REPORT,
    )
    assert run.started_at.utcoffset() == timedelta(0)


def test_error_run_without_report(store: Store) -> None:
    """A failed run keeps its error and no report."""
    record(store, "churn", 0, outcome="error", error="source prod: column 'x' not found (available: a)")
    run = store.last_runs()["churn"]
    assert (run.outcome, run.severity, run.report) == ("error", None, None)
    assert run.error == "source prod: column 'x' not found (available: a)"


def test_naive_datetimes_are_taken_as_utc(store: Store) -> None:
    """Naive datetimes are stored and returned as UTC."""
    store.record_run(
        "m",
        started=datetime(2024, 1, 1),
        finished=datetime(2024, 1, 1, 0, 1),
        outcome="ok",
        severity=None,
        error=None,
        report=None,
    )
    assert store.runs("m")[0].started_at == datetime(2024, 1, 1, tzinfo=UTC)


def test_last_runs_returns_newest_per_monitor(store: Store) -> None:
    """last_runs has one entry per monitor: its newest run, even when recorded out of order."""
    assert store.last_runs() == {}
    record(store, "churn", 0, outcome="error", error="boom")
    record(store, "fraud", 5, severity="warning")
    record(store, "churn", 10, severity="ok", report=REPORT)
    record(store, "fraud", 1, outcome="error", error="late backfill of an older run")
    last = store.last_runs()
    assert sorted(last) == ["churn", "fraud"]
    assert (last["churn"].outcome, last["churn"].report) == ("ok", REPORT)
    assert last["fraud"].started_at == T0 + timedelta(minutes=5)


def test_runs_are_newest_first_and_limited(store: Store) -> None:
    """runs() lists one monitor's runs newest first, up to the limit."""
    for minute in range(7):
        record(store, "churn", minute)
    record(store, "other", 100)
    runs = store.runs("churn", limit=3)
    assert [run.started_at for run in runs] == [T0 + timedelta(minutes=m) for m in (6, 5, 4)]
    assert len(store.runs("churn")) == 7
    assert store.runs("nobody") == []


def test_persists_across_reopen(tmp_path: Path) -> None:
    """Runs survive closing and reopening; the schema version and WAL mode are set."""
    path = tmp_path / "driftwatch.db"
    with Store(path) as first:
        record(first, "churn", 0, report=REPORT)
    with Store(path) as second:
        assert second.last_runs()["churn"].report == REPORT
        record(second, "churn", 1)
        assert len(second.runs("churn")) == 2
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer driftwatch is refused with a StoreError."""
    path = tmp_path / "driftwatch.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        Store(path)


def test_concurrent_writers_share_one_store(store: Store) -> None:
    """Threads recording at once lose no runs."""

    def work(worker: int) -> None:
        for minute in range(25):
            record(store, f"m{worker}", minute)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(store.last_runs()) == ["m0", "m1", "m2", "m3"]
    assert all(len(store.runs(f"m{worker}", limit=100)) == 25 for worker in range(4))


def test_check_writable_leaves_no_trace(store: Store) -> None:
    """check_writable passes on a writable store and rolls its test write back."""
    record(store, "churn", 0)
    store.check_writable()
    assert list(store.last_runs()) == ["churn"]
    assert len(store.runs("")) == 0


def make_read_only_by_mode(path: Path) -> None:
    """chmod the database read-only (root ignores file modes, so the case skips under root)."""
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    path.chmod(0o444)


def make_read_only_by_header(path: Path) -> None:
    """Set the SQLite header's write version to 3, which every SQLite (even as root) must treat as read-only."""
    data = bytearray(path.read_bytes())
    data[18] = 3
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "make_read_only",
    [pytest.param(make_read_only_by_mode, id="chmod-444"), pytest.param(make_read_only_by_header, id="header")],
)
def test_check_writable_fails_on_read_only_file(tmp_path: Path, make_read_only: Callable[[Path], None]) -> None:
    """A read-only database file fails check_writable with a DriftwatchError chained to sqlite."""
    path = tmp_path / "driftwatch.db"
    with Store(path) as first:
        record(first, "churn", 0)
    assert not path.with_name(path.name + "-wal").exists()  # checkpointed on close, so the header is final
    make_read_only(path)
    with Store(path) as reopened:
        assert list(reopened.last_runs()) == ["churn"]
        with pytest.raises(DriftwatchError, match="not writable") as info:
            reopened.check_writable()
        assert isinstance(info.value.__cause__, sqlite3.Error)


def test_check_writable_fails_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    """A database locked by another writer past the timeout is reported as not writable."""
    path = tmp_path / "driftwatch.db"
    with Store(path, timeout=0.05) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked"):
                store.check_writable()
        finally:
            other.execute("ROLLBACK")
            other.close()
        store.check_writable()


def test_unusable_path_is_store_error(tmp_path: Path) -> None:
    """A path whose parent is a file cannot hold a store."""
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        Store(tmp_path / "file" / "driftwatch.db")


# --- schema version 2: alert states, the outbox and silences ------------------------------------------------------

EVENT = {"event": "alert.firing", "monitor": "churn", "subject": "age", "status": "firing"}


def firing_state(since: str = "2024-05-01T12:00:00+00:00") -> dict[str, Any]:
    """An alert state as the lifecycle would store it."""
    return {"monitor": "churn", "status": "firing", "severity": "warning", "started_at": since}


def test_migrates_a_version_1_database(tmp_path: Path) -> None:
    """A version-1 file keeps its runs and gains the alert tables."""
    path = tmp_path / "driftwatch.db"
    raw = sqlite3.connect(path)
    raw.executescript(
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, monitor TEXT NOT NULL, started_at TEXT NOT NULL,"
        " finished_at TEXT NOT NULL, outcome TEXT NOT NULL, severity TEXT NULL, error TEXT NULL,"
        " report_json TEXT NULL);"
        " INSERT INTO runs (monitor, started_at, finished_at, outcome)"
        " VALUES ('churn', '2024-05-01T12:00:00.000000+00:00', '2024-05-01T12:00:02.000000+00:00', 'ok');"
        " PRAGMA user_version = 1;"
    )
    raw.close()
    with Store(path) as migrated:
        assert list(migrated.last_runs()) == ["churn"]
        migrated.apply_alert_changes({"k": firing_state()}, [("d1", "oncall", EVENT)], T0)
        assert migrated.outbox_counts() == {"pending": 1, "dead": 0}
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        tables = {name for (name,) in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    raw.close()
    assert {"runs", "alert_states", "outbox", "silences"} <= tables


def test_alert_states_upsert_and_delete(store: Store) -> None:
    """States are upserted by key, None deletes, and they can be listed per monitor."""
    assert store.alert_states() == {}
    other = {**firing_state(), "monitor": "fraud"}
    store.apply_alert_changes({"churn/age/FeatureDrift": firing_state(), "fraud/dataset/DatasetDrift": other}, [], T0)
    store.apply_alert_changes({"churn/age/FeatureDrift": {**firing_state(), "severity": "critical"}}, [], T0)
    assert store.alert_states()["churn/age/FeatureDrift"]["severity"] == "critical"
    assert list(store.alert_states(monitor="fraud")) == ["fraud/dataset/DatasetDrift"]
    store.apply_alert_changes({"churn/age/FeatureDrift": None, "never-existed": None}, [], T0)
    assert list(store.alert_states()) == ["fraud/dataset/DatasetDrift"]


def test_duplicate_delivery_ids_are_ignored(store: Store) -> None:
    """Re-applying a decision with the same delivery id enqueues nothing new."""
    store.apply_alert_changes({}, [("d1", "oncall", EVENT), ("d1-slack", "slack", EVENT)], T0)
    store.apply_alert_changes({}, [("d1", "oncall", {**EVENT, "status": "changed"})], T0 + timedelta(minutes=1))
    rows = store.deliveries()
    assert sorted(row.delivery_id for row in rows) == ["d1", "d1-slack"]
    assert next(row for row in rows if row.delivery_id == "d1").event == EVENT


@pytest.mark.parametrize(
    "bad_event",
    [
        pytest.param({"at": datetime(2024, 1, 1)}, id="datetime-not-serialisable"),
        pytest.param({"values": {1, 2}}, id="set-not-serialisable"),
    ],
)
def test_apply_alert_changes_is_atomic(store: Store, bad_event: dict[str, Any]) -> None:
    """A delivery that cannot be stored rolls back the state change and the other deliveries."""
    store.apply_alert_changes({"k": firing_state()}, [], T0)
    with pytest.raises(StoreError, match="cannot apply alert changes"):
        store.apply_alert_changes(
            {"k": None, "new": firing_state()},
            [("d1", "oncall", EVENT), ("d2", "oncall", bad_event)],
            T0,
        )
    assert store.alert_states() == {"k": firing_state()}
    assert store.deliveries() == []
    store.apply_alert_changes({"k": None}, [("d1", "oncall", EVENT)], T0)  # the connection is usable afterwards
    assert store.alert_states() == {} and len(store.deliveries()) == 1


def test_due_deliveries_are_pending_due_and_ordered(store: Store) -> None:
    """Only pending rows whose next attempt is due are returned, oldest due first, up to the limit."""
    store.apply_alert_changes({}, [("a", "oncall", EVENT)], T0 + timedelta(seconds=2))
    store.apply_alert_changes({}, [("b", "oncall", EVENT), ("c", "slack", EVENT)], T0)
    b, c = sorted((row for row in store.deliveries() if row.delivery_id in "bc"), key=lambda row: row.delivery_id)
    assert (b.status, b.attempts, b.created_at, b.next_attempt_at) == ("pending", 0, T0, T0)
    store.mark_retry(c.id, T0 + timedelta(minutes=5), "HTTP 503")
    assert [row.delivery_id for row in store.due_deliveries(T0)] == ["b"]
    assert [row.delivery_id for row in store.due_deliveries(T0 + timedelta(seconds=2))] == ["b", "a"]
    assert [row.delivery_id for row in store.due_deliveries(T0 + timedelta(hours=1), limit=2)] == ["b", "a"]
    assert len(store.due_deliveries(T0 + timedelta(hours=1))) == 3
    retried = next(row for row in store.deliveries() if row.delivery_id == "c")
    assert (retried.attempts, retried.last_error) == (1, "HTTP 503")


def test_delivered_dead_and_replay(store: Store) -> None:
    """Delivered rows are done; dead rows are counted and replayed per sink with fresh attempts."""
    store.apply_alert_changes({}, [("a", "oncall", EVENT), ("b", "oncall", EVENT), ("c", "slack", EVENT)], T0)
    rows = {row.delivery_id: row for row in store.deliveries()}
    store.mark_delivered(rows["a"].id, T0 + timedelta(seconds=1))
    store.mark_dead(rows["b"].id, "HTTP 400")
    store.mark_dead(rows["c"].id, "HTTP 404")
    assert store.outbox_counts() == {"pending": 0, "dead": 2}
    assert store.due_deliveries(T0 + timedelta(days=1)) == []
    later = T0 + timedelta(hours=3)
    assert store.retry_dead(sink="oncall", now=later) == 1
    (replayed,) = store.due_deliveries(later)
    assert (replayed.delivery_id, replayed.attempts, replayed.replayed_at, replayed.age_from) == ("b", 0, later, later)
    assert replayed.last_error == "HTTP 400"
    assert store.retry_dead(now=later) == 1
    assert store.outbox_counts() == {"pending": 2, "dead": 0}
    delivered = next(row for row in store.deliveries(status="delivered"))
    assert (delivered.delivery_id, delivered.attempts, delivered.delivered_at) == ("a", 1, T0 + timedelta(seconds=1))


def test_silences(store: Store) -> None:
    """Silences are active until `until`, match on their non-empty matchers, and can be deleted."""
    everything_churn = store.add_silence(monitor="churn", until=T0 + timedelta(hours=1), comment="deploy", now=T0)
    one_feature = store.add_silence(
        monitor="churn", feature="age", alertname="FeatureDrift", until=T0 + timedelta(hours=3), now=T0
    )
    store.add_silence(until=T0 - timedelta(minutes=1), now=T0 - timedelta(hours=1))  # already over
    active = store.active_silences(T0)
    assert [silence.id for silence in active] == [everything_churn, one_feature]
    assert active[0].comment == "deploy" and active[0].created_at == T0
    assert active[0].matches("churn", "dataset", "DatasetDrift")
    assert not active[0].matches("fraud", "age", "FeatureDrift")
    assert active[1].matches("churn", "age", "FeatureDrift")
    assert not active[1].matches("churn", "income", "FeatureDrift")
    assert [silence.id for silence in store.active_silences(T0 + timedelta(hours=2))] == [one_feature]
    assert store.delete_silence(one_feature) is True
    assert store.delete_silence(one_feature) is False
    assert [silence.id for silence in store.active_silences(T0)] == [everything_churn]


# --- retention ----------------------------------------------------------------------------------------------


def count_rows(store: Store, table: str) -> int:
    """Rows of `table`, read through a second connection."""
    with sqlite3.connect(f"file:{store.path}?mode=ro", uri=True) as conn:
        (count,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    conn.close()
    return int(count)


def test_prune_keeps_recent_runs_and_each_monitors_newest(store: Store) -> None:
    """Runs started before the cut-off go, except the newest of each monitor, however old."""
    for minutes in range(5):
        record(store, "churn", minutes)
    record(store, "fraud", 0)
    counts = store.prune(T0 + timedelta(minutes=10), timedelta(minutes=7))
    assert counts == {"runs": 3, "outbox": 0, "silences": 0, "model_history": 0}
    assert [run.started_at for run in store.runs("churn")] == [T0 + timedelta(minutes=4), T0 + timedelta(minutes=3)]
    assert store.last_runs()["fraud"].started_at == T0
    assert store.prune(T0 + timedelta(days=365), timedelta(minutes=7))["runs"] == 1
    assert set(store.last_runs()) == {"churn", "fraud"}


def test_prune_outbox_keeps_pending_recent_and_each_sinks_newest(store: Store) -> None:
    """Delivered rows go by delivery time and dead ones by last attempt; pending rows and each sink's newest stay."""
    names = ["pending", "delivered-old", "delivered-new", "dead-old", "dead-late"]
    store.apply_alert_changes({}, [*((name, "oncall", EVENT) for name in names), ("slack-old", "slack", EVENT)], T0)
    ids = {row.delivery_id: row.id for row in store.deliveries()}
    store.mark_delivered(ids["delivered-old"], T0 + timedelta(seconds=1))
    store.mark_delivered(ids["delivered-new"], T0 + timedelta(minutes=90))
    store.mark_dead(ids["dead-old"], "HTTP 400")
    store.mark_retry(ids["dead-late"], T0 + timedelta(minutes=100), "HTTP 503")
    store.mark_dead(ids["dead-late"], "HTTP 503")
    store.mark_delivered(ids["slack-old"], T0 + timedelta(seconds=1))
    assert store.prune(T0 + timedelta(hours=2), timedelta(hours=1))["outbox"] == 2
    assert sorted(row.delivery_id for row in store.deliveries()) == sorted(
        ["pending", "delivered-new", "dead-late", "slack-old"]
    )
    assert store.prune(T0 + timedelta(days=30), timedelta(hours=1))["outbox"] == 1  # delivered-new
    assert sorted(row.delivery_id for row in store.deliveries()) == ["dead-late", "pending", "slack-old"]


def test_prune_silences_ended_before_the_cut_off(store: Store) -> None:
    """A silence is kept for `retention` after it ended, then deleted; active ones stay."""
    long_over = store.add_silence(until=T0 - timedelta(hours=2), now=T0 - timedelta(hours=3))
    recently_over = store.add_silence(until=T0 - timedelta(minutes=10), now=T0 - timedelta(hours=1))
    active = store.add_silence(until=T0 + timedelta(hours=1), now=T0)
    assert store.prune(T0, timedelta(hours=1))["silences"] == 1
    assert not store.delete_silence(long_over)
    assert [silence.id for silence in store.active_silences(T0 - timedelta(hours=1))] == [recently_over, active]


def test_prune_keeps_model_history_unless_audit_retention(store: Store) -> None:
    """The model audit trail survives `retention`; `audit_retention` deletes entries older than itself."""
    for hours in range(4):
        store.apply_model_change(
            "churn", {"active": "v1"}, [{"kind": "switch", "n": hours}], [], T0 + timedelta(hours=hours)
        )
    now = T0 + timedelta(days=10)
    assert store.prune(now, timedelta(hours=1))["model_history"] == 0
    assert (
        store.prune(now, timedelta(hours=1), audit_retention=timedelta(days=10) - timedelta(hours=2))["model_history"]
        == 2
    )
    assert [entry["n"] for entry in store.model_history("churn")] == [3, 2]
    assert store.model_states() == {"churn": {"active": "v1"}}


def test_prune_deletes_in_batches(store: Store) -> None:
    """Each batch is one DELETE statement of at most `batch` rows, so others can write between batches."""
    for minutes in range(8):
        record(store, "churn", minutes)
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    counts = store.prune(T0 + timedelta(days=1), timedelta(hours=1), batch=2)
    store._conn.set_trace_callback(None)
    assert counts["runs"] == 7 and count_rows(store, "runs") == 1
    assert sum(statement.startswith("DELETE FROM runs") for statement in statements) == 4  # 2 + 2 + 2 + 1


def test_prune_after_close_does_nothing(tmp_path: Path) -> None:
    """A prune racing shutdown stops quietly once the store is closed."""
    store = Store(tmp_path / "state.db")
    record(store, "churn", 0)
    store.close()
    assert store.prune(T0 + timedelta(days=1), timedelta(hours=1)) == {
        "runs": 0,
        "outbox": 0,
        "silences": 0,
        "model_history": 0,
    }


@pytest.mark.parametrize(
    ("retention", "seconds"),
    [
        pytest.param(timedelta(seconds=3), 1.0, id="tiny-retention-at-least-1s"),
        pytest.param(timedelta(seconds=10), 1.0, id="10s"),
        pytest.param(timedelta(hours=1), 360.0, id="tenth-of-retention"),
        pytest.param(timedelta(days=30), 600.0, id="default-at-most-10m"),
    ],
)
def test_prune_interval(retention: timedelta, seconds: float) -> None:
    """The daemon prunes every tenth of the retention, between 1 s and 10 minutes."""
    assert prune_interval(retention) == seconds


def test_state_retention_defaults() -> None:
    """Runs are kept 30 days by default and the model audit trail forever."""
    state = StateConfig.model_validate({}, context={"base_dir": Path("/tmp")})
    assert (state.retention, state.audit_retention) == (timedelta(days=30), None)
    assert StateConfig.model_validate(
        {"retention": "10s", "audit_retention": "365d"}, context={"base_dir": Path("/tmp")}
    ).audit_retention == timedelta(days=365)
