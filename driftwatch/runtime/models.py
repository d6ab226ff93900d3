"""Fallback switching in the daemon: feed monitor runs and manual actions to the pure logic, then persist,
audit, actuate (through the `Actuator`s of `driftwatch.outputs.actuators`) and step the `ModelSwitched` alert.

A model's route, the JSON that serving layers read (`GET /api/v1/models/NAME`, the route file, the webhook):
`{"model", "active", "primary", "fallbacks", "pinned", "since", "reason", "state_version"}`.

One transaction per decision holds the model's state, its audit entries, the actuators' outbox rows, and the
ModelSwitched alert state with its notifications (`Alerting.apply_model`: silences, repeats, the alerts API).
Direct actuators (the route file) run after it commits; a crash in between leaves the file one version behind
until the next start or run rewrites it from the stored state.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from driftwatch.config import Config, FileActuatorConfig, ModelConfig
from driftwatch.core.fallback import (
    Decision,
    ModelSpec,
    ModelState,
    MonitorOutcome,
    NoChange,
    Switch,
    SwitchRules,
    initial_state,
    manual_restore,
    manual_switch,
    manual_unpin,
    on_monitor_run,
)
from driftwatch.core.report import Severity
from driftwatch.errors import ModelSwitchError
from driftwatch.outputs.actuators import Actuator, FileActuator, OutboxRow, WebhookActuator
from driftwatch.outputs.notifiers import Notifier
from driftwatch.outputs.outbox import RetryPolicy
from driftwatch.runtime.alerts import Alerting
from driftwatch.runtime.monitor import RunResult
from driftwatch.runtime.store import Store

log = logging.getLogger("driftwatch.models")


def model_spec(name: str, config: ModelConfig) -> ModelSpec:
    """The core's spec of a configured model."""
    rules = SwitchRules(
        on=Severity.parse(config.switch.on),
        after_runs=config.switch.after_runs,
        min_dwell=config.switch.min_dwell,
        restore_after_runs=config.restore.after_runs if config.restore else None,
        data_loss_after_runs=config.switch.data_loss.after_runs if config.switch.data_loss else None,
    )
    return ModelSpec(name, config.primary, config.fallbacks, rules, config.dry_run)


def route(spec: ModelSpec, state: ModelState) -> dict[str, Any]:
    """The route document serving layers read."""
    return {
        "model": spec.name,
        "active": state.active,
        "primary": spec.primary,
        "fallbacks": list(spec.fallbacks),
        "pinned": state.pinned,
        "since": state.since.isoformat(),
        "reason": state.reason,
        "state_version": state.state_version,
    }


def build_actuators(name: str, config: ModelConfig) -> tuple[Actuator, ...]:
    """The actuators of model `name`, in config order."""
    actuators: list[Actuator] = []
    for i, a in enumerate(config.actuators):
        if isinstance(a, FileActuatorConfig):
            actuators.append(FileActuator(name, i, a.path))
        else:
            actuators.append(
                WebhookActuator(
                    name,
                    i,
                    a.url,
                    secret=a.secret.get_secret_value() if a.secret else None,
                    timeout=a.timeout.total_seconds(),
                    retry=RetryPolicy(a.retry.initial, a.retry.max_interval, a.retry.max_age),
                )
            )
    return tuple(actuators)


class Models:
    """The switching state of every configured model; thread-safe (runs and API calls share one lock)."""

    def __init__(self, store: Store, config: Config, now: datetime, alerting: Alerting) -> None:
        self._store = store
        self._alerting = alerting
        self._lock = threading.Lock()
        self._actuators: dict[str, tuple[Actuator, ...]] = {}
        self._states: dict[str, ModelState] = {}
        stored = store.model_states()
        self._config = config
        self._specs: dict[str, ModelSpec] = {}
        self.update_config(config, now, stored)

    # -- configuration ------------------------------------------------------------------------------------------
    def update_config(self, config: Config, now: datetime, stored: Mapping[str, Any] | None = None) -> None:
        """Take the models of `config`; new models start on their primary, known ones keep their state."""
        with self._lock:
            self._config = config
            self._specs = {name: model_spec(name, m) for name, m in config.models.items()}
            self._actuators = {name: build_actuators(name, m) for name, m in config.models.items()}
            for name, spec in self._specs.items():
                state = self._states.get(name)
                if state is None and stored and name in stored:
                    state = ModelState.from_dict(stored[name])
                if state is None:
                    state = initial_state(spec, now)
                    self._store.apply_model_change(name, state.to_dict(), [], self._route_deliveries(spec, state), now)
                feeding = set(config.model_monitors(name))
                self._states[name] = replace(
                    state,
                    monitor_severity={m: s for m, s in state.monitor_severity.items() if m in feeding},
                    data_loss_runs={m: n for m, n in state.data_loss_runs.items() if m in feeding},
                )
                self._actuate(name)

    def notifiers(self) -> dict[str, Notifier]:
        """The outbox sinks of the actuators (webhooks)."""
        return {
            sink: notifier
            for actuators in self._actuators.values()
            for a in actuators
            for sink, (notifier, _) in a.sinks().items()
        }

    def retry_policies(self) -> dict[str, RetryPolicy]:
        """The retry policies of the actuators' outbox sinks."""
        return {
            sink: policy
            for actuators in self._actuators.values()
            for a in actuators
            for sink, (_, policy) in a.sinks().items()
        }

    # -- events ---------------------------------------------------------------------------------------------------
    def after_run(self, monitor: str, result: RunResult, now: datetime) -> None:
        """Feed one monitor run to the model it feeds (if that model is configured)."""
        name = self._config.monitors[monitor].model if monitor in self._config.monitors else None
        if name not in self._specs:
            return
        report = result.report
        details: dict[str, Any] = {}
        if report is not None:
            details = {
                "drift_share": report.drift_share,
                "features": {
                    r.name: {"severity": r.severity.label, "breaches": {k: v.label for k, v in r.breaches.items()}}
                    for r in report.features
                    if r.severity > 0
                },
            }
        if result.data_loss:
            details["data_loss"] = {
                "outcome": result.outcome,
                "error": result.error,
                "health": [s.to_dict() for s in result.health.signals if s.severity > 0] if result.health else [],
            }
        severity = report.severity if report else Severity.OK
        outcome = MonitorOutcome(monitor, result.outcome == "ok", severity, details, data_loss=result.data_loss)
        with self._lock:
            spec, state = self._specs[name], self._states[name]
            new, decisions = on_monitor_run(spec, state, outcome, now)
            self._commit(spec, state, new, decisions, now, trigger=monitor, actor="auto")
            self._actuate(name)  # also retries a route file that failed before

    def switch(self, name: str, to: str, *, reason: str, pin: bool, actor: str, now: datetime) -> dict[str, Any]:
        """Manual switch to version `to` (pinned if `pin`); returns the outcome and the route."""
        with self._lock:
            spec, state = self._spec(name), self._states[name]
            try:
                new, decision = manual_switch(spec, state, to, reason=reason, pin=pin, actor=actor, now=now)
            except ValueError as err:
                raise ModelSwitchError(str(err)) from err
            return self._manual(spec, state, new, decision, now, actor)

    def restore(self, name: str, *, reason: str, actor: str, now: datetime) -> dict[str, Any]:
        """Manual restore to the primary (and unpin)."""
        with self._lock:
            spec, state = self._spec(name), self._states[name]
            new, decision = manual_restore(spec, state, reason=reason, actor=actor, now=now)
            return self._manual(spec, state, new, decision, now, actor)

    def unpin(self, name: str, *, actor: str, now: datetime) -> dict[str, Any]:
        """Let automatic switching act on the model again."""
        with self._lock:
            spec, state = self._spec(name), self._states[name]
            new, decision = manual_unpin(spec, state, actor=actor, now=now)
            return self._manual(spec, state, new, decision, now, actor)

    # -- views ------------------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._specs)

    def view(self, name: str) -> dict[str, Any]:
        """The route plus what the API adds: dry-run decision, counts, actuation status."""
        spec, state = self._spec(name), self._states[name]
        return {
            **route(spec, state),
            "actor": state.actor,
            "dry_run": spec.dry_run,
            "dry_run_active": state.dry_run_active,
            "breaching_runs": state.breaching_runs,
            "clean_runs": state.clean_runs,
            "actuation": self._actuation(name, state),
        }

    def history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        """The audit trail of `name`, newest first."""
        self._spec(name)
        return self._store.model_history(name, limit)

    def snapshot(self) -> list[tuple[ModelSpec, ModelState, dict[str, str]]]:
        """Each model's spec, state and actuation status, for /metrics."""
        with self._lock:
            return [
                (spec, self._states[name], self._actuation(name, self._states[name]))
                for name, spec in self._specs.items()
            ]

    # -- internals ----------------------------------------------------------------------------------------------
    def _spec(self, name: str) -> ModelSpec:
        spec = self._specs.get(name)
        if spec is None:
            raise KeyError(name)
        return spec

    def _manual(
        self, spec: ModelSpec, old: ModelState, new: ModelState, decision: Decision, now: datetime, actor: str
    ) -> dict[str, Any]:
        self._commit(spec, old, new, (decision,), now, trigger=None, actor=actor)
        self._actuate(spec.name)
        changed = new.state_version != old.state_version
        message = (
            decision.reason
            if isinstance(decision, NoChange)
            else (
                f"{'would switch' if decision.dry_run else 'switched'} {decision.from_version} -> {decision.to_version}"
            )
        )
        return {"changed": changed, "message": message, "model": self.view(spec.name)}

    def _commit(
        self,
        spec: ModelSpec,
        old: ModelState,
        new: ModelState,
        decisions: Sequence[Decision],
        now: datetime,
        *,
        trigger: str | None,
        actor: str,
    ) -> None:
        """Persist `new` with its audit entries, the actuators' outbox rows and the step of the model's
        ModelSwitched alert in one transaction (nothing if nothing changed).

        Every switch and every manual action is audited; automatic no-change decisions are only logged.
        """
        manual = trigger is None
        history = [
            audit_entry(d, old, new, actor=actor, config_hash=self._config.fingerprint, now=now)
            for d in decisions
            if isinstance(d, Switch) or manual
        ]
        for d in decisions:
            if isinstance(d, NoChange):
                log.debug("model %s: no change (%s)", spec.name, d.reason)
            else:
                log.warning(
                    "model %s: %s %s -> %s (%s, by %s)%s",
                    spec.name,
                    "would switch" if d.dry_run else "switched",
                    d.from_version,
                    d.to_version,
                    d.reason,
                    d.actor,
                    " [dry run]" if d.dry_run else "",
                    extra={"model": spec.name, "to": d.to_version, "direction": d.direction},
                )
        changed = new != old or bool(history)
        deliveries: list[OutboxRow] = []
        if new.active != old.active or new.pinned != old.pinned:
            deliveries += self._route_deliveries(spec, new)

        def persist(alerts: Mapping[str, dict[str, Any] | None], notifications: Sequence[OutboxRow]) -> None:
            if changed:
                self._store.apply_model_change(
                    spec.name, new.to_dict(), history, [*deliveries, *notifications], now, alerts=alerts
                )
            elif alerts or notifications:
                self._store.apply_alert_changes(alerts, notifications, now)

        switches = [d for d in decisions if isinstance(d, Switch) and not d.dry_run]
        monitors = self._config.model_monitors(spec.name)
        if monitors:  # always, in a valid config
            self._alerting.apply_model(
                self._config,
                spec.name,
                trigger or monitors[0],
                off_primary=new.active != spec.primary,
                details=switch_details(spec, new, switches[-1] if switches else None),
                changed=bool(switches),
                now=now,
                persist=persist,
            )
        else:
            persist({}, [])
        self._states[spec.name] = new

    def _route_deliveries(self, spec: ModelSpec, state: ModelState) -> list[OutboxRow]:
        document = route(spec, state)
        return [row for a in self._actuators[spec.name] for row in a.outbox_rows(document)]

    def _actuate(self, name: str) -> None:
        """Give every direct actuator of `name` (the route file) the current route."""
        document = route(self._specs[name], self._states[name])
        for actuator in self._actuators[name]:
            actuator.apply(document)

    def _actuation(self, name: str, state: ModelState) -> dict[str, str]:
        document = route(self._specs[name], state)
        return {a.label: a.status(document, self._store) for a in self._actuators[name]}


def switch_details(spec: ModelSpec, state: ModelState, switch: Switch | None) -> dict[str, Any]:
    """The details of a ModelSwitched alert: the switch (model, from, to, actor, reason, trigger), or the state."""
    if switch is None:
        return {
            "model": spec.name,
            "from": None,
            "to": state.active,
            "actor": state.actor,
            "reason": state.reason,
            "trigger": {},
        }
    return {
        "model": spec.name,
        "from": switch.from_version,
        "to": switch.to_version,
        "actor": switch.actor,
        "reason": switch.reason,
        "trigger": dict(switch.details),
    }


def audit_entry(
    decision: Decision, old: ModelState, new: ModelState, *, actor: str, config_hash: str, now: datetime
) -> dict[str, Any]:
    """One audit-trail entry: time, actor, from, to, reason, the statistics that triggered it, config hash."""
    if isinstance(decision, Switch):
        return {
            "kind": "switch",
            "at": decision.at.isoformat(),
            "actor": decision.actor,
            "from": decision.from_version,
            "to": decision.to_version,
            "direction": decision.direction,
            "reason": decision.reason,
            "dry_run": decision.dry_run,
            "pinned": decision.pinned,
            "details": dict(decision.details),
            "config_hash": config_hash,
            "state_version": new.state_version,
        }
    return {
        "kind": "no_change",
        "at": now.isoformat(),
        "actor": actor,
        "from": old.decided,
        "to": new.decided,
        "direction": None,
        "reason": decision.reason,
        "dry_run": False,
        "pinned": new.pinned,
        "details": {},
        "config_hash": config_hash,
        "state_version": new.state_version,
    }
