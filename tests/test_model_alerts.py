"""ModelSwitched through the alert path, in process on a real Store: silences, repeats, the alerts API's
states, one transaction with the model change, and the actuators (route file 0644, webhook outbox rows)."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from driftwatch.config import Config, parse_config
from driftwatch.core import build_profile, compare
from driftwatch.core.alerting import AlertKey
from driftwatch.core.report import Severity
from driftwatch.errors import StoreError
from driftwatch.outputs.actuators import FileActuator, WebhookActuator, route_delivery_id
from driftwatch.outputs.outbox import RetryPolicy
from driftwatch.runtime.alerts import Alerting
from driftwatch.runtime.models import Models
from driftwatch.runtime.monitor import RunResult
from driftwatch.runtime.store import Store

T0 = datetime(2024, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
KEY = AlertKey("churn-inputs", "churn", "ModelSwitched")

CONFIG = """
server: {external_url: "http://dw.example"}
state: {path: var/state.db}
sources:
  files: {kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}
monitors:
  churn-inputs:
    model: churn
    reference: {path: reference/train.parquet}
    source: files
    schedule: {every: 1m}
    window: 1h
    features: {numeric: [x]}
    alerts: {repeat_interval: 1h, sinks: [hook]}
  other: {reference: {path: reference/train.parquet}, source: files, schedule: {every: 1m}, window: 1h,
          features: {numeric: [x]}, alerts: {sinks: [console]}}
models:
  churn:
    primary: churn-v3
    fallbacks: [churn-v2, churn-rules]
    switch: {on: critical, after_runs: 1, min_dwell: 1s}
    restore: {after_runs: 1}
    actuators:
      - {kind: file, path: var/routes/churn.json}
      - {kind: webhook, url: "http://127.0.0.1:9/route"}
alerting:
  sinks:
    hook: {kind: webhook, url: "http://127.0.0.1:9/alerts"}
    console: {kind: log}
"""


@pytest.fixture(scope="module")
def runs() -> dict[str, RunResult]:
    """A drifting and a clean run of churn-inputs."""
    rng = np.random.default_rng(5)
    profile = build_profile({"x": rng.normal(0, 1, 2000)}, numeric=["x"], categorical=[])
    window = (T0 - timedelta(hours=1), T0)
    results = {}
    for name, shift in (("drift", 2.0), ("clean", 0.0)):
        report = compare(profile, {"x": rng.normal(shift, 1, 2000)}, monitor="churn-inputs", window=window)
        results[name] = RunResult("ok", *window, rows=2000, report=report)
    assert results["drift"].report and results["drift"].report.severity == Severity.CRITICAL
    assert results["clean"].report and results["clean"].report.severity == Severity.OK
    return results


class Shell:
    """Alerting and Models over one real Store, as the daemon wires them."""

    def __init__(self, tmp_path: Path, text: str = CONFIG) -> None:
        (tmp_path / "prod").mkdir(exist_ok=True)
        (tmp_path / "reference").mkdir(exist_ok=True)
        (tmp_path / "reference" / "train.parquet").touch()  # the config checks it exists; nothing reads it here
        self.config: Config = parse_config(text, base_dir=tmp_path, env={})
        self.store = Store(tmp_path / "var" / "state.db")
        self.alerting = Alerting(self.store, {})
        self.models = Models(self.store, self.config, T0, self.alerting)

    def events(self, sink: str = "hook") -> list[dict[str, Any]]:
        """ModelSwitched events in the outbox of `sink`, oldest first."""
        rows = reversed(self.store.deliveries(sink=sink, limit=1000))
        return [r.event for r in rows if r.event["alertname"] == "ModelSwitched"]

    def alert(self) -> dict[str, Any] | None:
        state = self.alerting.states().get(KEY)
        return state.to_dict() if state else None


@pytest.fixture
def shell(tmp_path: Path):
    shell = Shell(tmp_path)
    yield shell
    shell.store.close()


def test_switch_fires_and_restore_resolves_through_the_alert_path(shell: Shell, runs):
    """A fallback fires ModelSwitched (critical, README shape) to the feeding monitors' sinks; a restore resolves it."""
    shell.models.after_run("churn-inputs", runs["drift"], T0)
    assert shell.models.view("churn")["active"] == "churn-v2"
    alert = shell.alert()
    assert alert and alert["phase"] == "firing" and alert["severity"] == "critical"
    (fired,) = shell.events()
    assert fired["event"] == "alert.firing" and fired["reason"] == "fired" and fired["severity"] == "critical"
    assert (fired["monitor"], fired["subject"], fired["feature"]) == ("churn-inputs", "churn", None)
    assert {k: fired["details"][k] for k in ("model", "from", "to", "actor")} == {
        "model": "churn",
        "from": "churn-v3",
        "to": "churn-v2",
        "actor": "auto",
    }
    assert fired["details"]["trigger"]["monitor"] == "churn-inputs"
    assert fired["links"]["report"] == "http://dw.example/api/v1/models/churn"
    assert shell.events("console") == []  # only `other` sends to console, and it does not feed churn

    shell.models.after_run("churn-inputs", runs["clean"], T0 + MINUTE)
    assert shell.models.view("churn")["active"] == "churn-v3"
    assert shell.alert() is None
    resolved = shell.events()[-1]
    assert resolved["event"] == "alert.resolved" and resolved["reason"] == "resolved"
    assert (resolved["details"]["from"], resolved["details"]["to"]) == ("churn-v2", "churn-v3")
    assert resolved["started_at"] == fired["started_at"]
    assert shell.store.alert_states() == {}


def test_silence_mutes_the_notification_but_the_switch_happens_and_is_audited(shell: Shell, runs):
    """A silence on alertname ModelSwitched sends nothing; the switch, audit, route and alert state still happen."""
    shell.store.add_silence(until=T0 + timedelta(hours=1), alertname="ModelSwitched", now=T0)
    shell.models.after_run("churn-inputs", runs["drift"], T0)
    assert shell.models.view("churn")["active"] == "churn-v2"
    assert [h["to"] for h in shell.models.history("churn") if h["kind"] == "switch"] == ["churn-v2"]
    assert json.loads((Path(shell.config.models["churn"].actuators[0].path)).read_text())["active"] == "churn-v2"
    assert shell.store.delivery(route_delivery_id("churn", 1, shell.models.view("churn")["state_version"]))
    assert shell.events() == []
    assert (shell.alert() or {}).get("phase") == "firing"  # silenced alerts keep their state (GET /api/v1/alerts)

    shell.models.after_run("churn-inputs", runs["drift"], T0 + 2 * MINUTE)  # on to the next fallback
    assert shell.models.view("churn")["active"] == "churn-rules"
    assert shell.events() == []


def test_silence_of_another_alertname_does_not_mute_it(shell: Shell, runs):
    """A silence of FeatureDrift leaves ModelSwitched alone."""
    shell.store.add_silence(until=T0 + timedelta(hours=1), alertname="FeatureDrift", now=T0)
    shell.models.after_run("churn-inputs", runs["drift"], T0)
    assert [e["status"] for e in shell.events()] == ["firing"]


def test_repeat_interval_and_a_move_to_another_fallback_notify_again(shell: Shell, runs):
    """While firing: nothing more within repeat_interval, a repeat after it, and at once on a further switch."""
    shell.models.after_run("churn-inputs", runs["drift"], T0)
    shell.models.unpin("churn", actor="api", now=T0 + MINUTE)  # a manual no-op action observes the alert too
    assert len(shell.events()) == 1
    shell.models.switch("churn", "churn-v2", reason="noop", pin=False, actor="api", now=T0 + 30 * MINUTE)
    assert len(shell.events()) == 1
    shell.models.switch("churn", "churn-v2", reason="noop", pin=False, actor="api", now=T0 + 61 * MINUTE)
    repeat = shell.events()[-1]
    assert (repeat["reason"], repeat["details"]["to"]) == ("repeat", "churn-v2")
    shell.models.switch("churn", "churn-rules", reason="incident 7", pin=True, actor="cli", now=T0 + 62 * MINUTE)
    moved = shell.events()[-1]
    assert (moved["reason"], moved["details"]["from"], moved["details"]["to"]) == ("repeat", "churn-v2", "churn-rules")
    assert (moved["details"]["actor"], moved["details"]["reason"]) == ("cli", "incident 7")
    assert [e["status"] for e in shell.events()] == ["firing"] * 3


def test_manual_switch_keys_the_first_feeding_monitor_and_survives_a_restart(tmp_path: Path, runs):
    """A manual switch fires under the first feeding monitor; after a restart it neither fires again nor is lost."""
    first = Shell(tmp_path)
    first.models.switch("churn", "churn-v2", reason="incident 9", pin=True, actor="api", now=T0)
    assert [(e["status"], e["monitor"], e["details"]["actor"]) for e in first.events()] == [
        ("firing", "churn-inputs", "api")
    ]
    first.store.close()

    second = Shell(tmp_path)
    try:
        assert (second.alert() or {}).get("phase") == "firing"
        second.models.after_run("churn-inputs", runs["drift"], T0 + MINUTE)  # pinned: stays, still firing
        assert len(second.events()) == 1
        second.models.restore("churn", reason="fixed", actor="cli", now=T0 + 2 * MINUTE)
        assert [e["status"] for e in second.events()] == ["firing", "resolved"]
        assert second.alert() is None
    finally:
        second.store.close()


def test_dry_run_switch_raises_no_alert(tmp_path: Path, runs):
    """A dry-run model decides and audits but serves the primary, so ModelSwitched does not fire."""
    text = CONFIG.replace("    restore: {after_runs: 1}\n", "    restore: {after_runs: 1}\n    dry_run: true\n")
    shell = Shell(tmp_path, text)
    try:
        shell.models.after_run("churn-inputs", runs["drift"], T0)
        assert shell.models.view("churn")["dry_run_active"] == "churn-v2"
        assert shell.alert() is None and shell.events() == []
    finally:
        shell.store.close()


def test_a_failed_write_changes_neither_model_nor_alert(shell: Shell, runs, monkeypatch):
    """The model change and its ModelSwitched alert are one transaction: a failure rolls both back."""
    enqueue = shell.store._enqueue

    def failing(deliveries, now):
        enqueue(deliveries, now)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(shell.store, "_enqueue", failing)
    with pytest.raises(StoreError):
        shell.models.after_run("churn-inputs", runs["drift"], T0)
    assert shell.models.view("churn")["active"] == "churn-v3"
    assert shell.store.model_states()["churn"]["active"] == "churn-v3"
    assert shell.alert() is None and shell.store.alert_states() == {}
    assert all(d.event.get("alertname") != "ModelSwitched" for d in shell.store.deliveries())
    monkeypatch.undo()
    shell.models.after_run("churn-inputs", runs["drift"], T0 + MINUTE)
    assert shell.models.view("churn")["active"] == "churn-v2"
    assert [e["status"] for e in shell.events()] == ["firing"]
    assert KEY.to_str() in shell.store.alert_states()


def test_route_file_is_readable_by_others_and_rewritten_only_on_change(tmp_path: Path):
    """The file actuator writes mode 0644 durably, leaves no temporary file, and confirms the route."""
    path = tmp_path / "routes" / "churn.json"
    actuator = FileActuator("churn", 0, path)
    route = {"model": "churn", "active": "churn-v2", "state_version": 2}
    assert actuator.status(route, None) == "pending"  # type: ignore[arg-type]
    old_umask = os.umask(0o077)
    try:
        actuator.apply(route)
    finally:
        os.umask(old_umask)
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert json.loads(path.read_text()) == route and path.read_text().endswith("\n")
    assert sorted(p.name for p in path.parent.iterdir()) == ["churn.json"]
    assert actuator.status(route, None) == "confirmed"  # type: ignore[arg-type]
    before = os.stat(path).st_mtime_ns
    actuator.apply(route)
    assert os.stat(path).st_mtime_ns == before


def test_route_file_failure_is_reported_and_retried(tmp_path: Path):
    """A route file that cannot be written says why in its status; the next apply repairs it."""
    blocker = tmp_path / "routes"
    blocker.write_text("a file where the folder should be")
    actuator = FileActuator("churn", 0, blocker / "churn.json")
    actuator.apply({"active": "churn-v2"})
    assert actuator.status({}, None).startswith("failed: ")  # type: ignore[arg-type]
    blocker.unlink()
    actuator.apply({"active": "churn-v2"})
    assert actuator.status({}, None) == "confirmed"  # type: ignore[arg-type]


def test_webhook_actuator_rows_status_and_sink(tmp_path: Path):
    """The webhook actuator has one outbox row per route version, and reads its status from the outbox."""
    actuator = WebhookActuator("churn", 1, "http://127.0.0.1:9/route", secret=None, timeout=2.0, retry=RetryPolicy())
    route = {"model": "churn", "active": "churn-v2", "state_version": 4}
    ((delivery_id, sink, event),) = actuator.outbox_rows(route)
    assert (delivery_id, sink, event) == (route_delivery_id("churn", 1, 4), "actuator:churn:1", route)
    assert set(actuator.sinks()) == {"actuator:churn:1"}
    with Store(tmp_path / "state.db") as store:
        assert actuator.status(route, store) == "confirmed"  # nothing to deliver for this version
        store.apply_model_change("churn", {"model": "churn"}, [], actuator.outbox_rows(route), T0)
        assert actuator.status(route, store) == "pending"
        store.mark_dead(store.delivery(delivery_id).id, "gave up")  # type: ignore[union-attr]
        assert actuator.status(route, store) == "failed: gave up"


def test_monitor_alerting_leaves_the_model_alert_to_the_model_shell(shell: Shell, runs):
    """A run's drift alerting neither ends, refreshes nor duplicates the ModelSwitched alert keyed to its monitor."""
    policy = shell.config.monitors["churn-inputs"].policy()
    shell.alerting.after_run(shell.config, "churn-inputs", runs["drift"], policy, T0)
    shell.models.after_run("churn-inputs", runs["drift"], T0)
    firing = shell.alert()
    for i in (1, 2):
        shell.alerting.after_run(shell.config, "churn-inputs", runs["clean"], policy, T0 + i * MINUTE)
    assert shell.alert() == firing
    assert KEY.to_str() in shell.store.alert_states()
    assert [e["status"] for e in shell.events()] == ["firing"]
