"""The alerting shell: after each run, step the pure lifecycle, persist it, and enqueue notifications.

Every alert goes this way, ModelSwitched included (stepped by the model switching shell through `apply_model`),
so silences, repeats and the alerts API treat them all alike.

State change and outbox rows are written in one SQLite transaction; the outbox `Dispatcher` delivers them.
Silenced alerts keep their lifecycle but enqueue nothing; `refresh` notifications go only to sinks that want
them (Alertmanager, which forgets an alert unless it is re-posted).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from driftwatch.config import Config
from driftwatch.core.alerting import (
    FEATURE_ALERTS,
    MODEL_SWITCHED,
    AlertKey,
    AlertState,
    Notify,
    Observation,
    model_switched_rules,
    observe_health,
    observe_report,
    step,
)
from driftwatch.core.policy import Policy
from driftwatch.core.report import Severity
from driftwatch.outputs.notifiers import (
    AlertmanagerNotifier,
    LogNotifier,
    Notifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
)
from driftwatch.outputs.outbox import RetryPolicy
from driftwatch.runtime.monitor import RunResult
from driftwatch.runtime.store import Store

log = logging.getLogger("driftwatch.alerts")

#: Writes alert state changes (None: the alert ended) and outbox rows `(delivery_id, sink, event)` atomically.
Persist = Callable[[Mapping[str, dict[str, Any] | None], Sequence[tuple[str, str, dict[str, Any]]]], None]


def build_notifiers(config: Config) -> dict[str, Notifier]:
    """One notifier per configured sink."""
    notifiers: dict[str, Notifier] = {}
    for name, sink in config.alerting.sinks.items():
        timeout = sink.timeout.total_seconds()
        if sink.kind == "webhook":
            secret = sink.secret.get_secret_value() if sink.secret else None
            notifiers[name] = WebhookNotifier(name, sink.url, secret, timeout)
        elif sink.kind == "slack":
            notifiers[name] = SlackNotifier(name, sink.url.get_secret_value(), timeout)
        elif sink.kind == "pagerduty":
            notifiers[name] = PagerDutyNotifier(name, sink.routing_key.get_secret_value(), sink.url, timeout)
        elif sink.kind == "alertmanager":
            notifiers[name] = AlertmanagerNotifier(name, sink.url, timeout)
        else:
            notifiers[name] = LogNotifier(name)
    return notifiers


def retry_policies(config: Config) -> dict[str, RetryPolicy]:
    """The retry policy of each sink."""
    return {
        name: RetryPolicy(sink.retry.initial, sink.retry.max_interval, sink.retry.max_age)
        for name, sink in config.alerting.sinks.items()
    }


def delivery_id(notification_id: str, sink: str) -> str:
    """The Standard Webhooks message id of one notification to one sink: the same on every retry."""
    return "msg_" + hashlib.sha256(f"{notification_id}:{sink}".encode()).hexdigest()[:32]


def notification_event(notify: Notify, policy: Policy | None, base_url: str) -> dict[str, Any]:
    """The JSON body every sink receives (documented in the README)."""
    key = notify.key
    details = dict(notify.details)
    breaches: Mapping[str, str] = details.pop("breaches", {}) or {}
    window = details.pop("window", None)
    statistics = {k: v for k, v in details.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    ordered = {**{k: statistics[k] for k in breaches if k in statistics}, **statistics}
    levels = policy.levels_for(key.subject) if policy is not None else {}
    thresholds = {stat: asdict(levels[stat]) for stat in breaches if stat in levels}
    extra = {k: v for k, v in details.items() if k not in statistics}
    return {
        "event": f"alert.{notify.status}",
        "notification_id": notify.notification_id,
        "alertname": key.alertname,
        "monitor": key.monitor,
        "subject": key.subject,
        "feature": key.subject if key.alertname in FEATURE_ALERTS else None,
        "status": notify.status,
        "severity": notify.severity.label if notify.severity else "warning",
        "reason": notify.reason,
        "started_at": notify.started_at.isoformat(),
        "at": notify.at.isoformat(),
        "details": {
            "statistics": ordered,
            "thresholds": thresholds,
            "breaches": dict(breaches),
            "window": window,
            **extra,
        },
        "links": {
            "report": f"{base_url}/api/v1/models/{key.subject}"
            if key.alertname == MODEL_SWITCHED
            else f"{base_url}/api/v1/monitors/{key.monitor}/report"
        },
    }


class Alerting:
    """Runs the alert lifecycle after each monitor run and keeps a snapshot of the alert states.

    `apply` steps a monitor's drift and failure alerts; `apply_model` steps a model's ModelSwitched alert for the
    model switching shell, which writes it in the transaction of the model change.
    """

    def __init__(self, store: Store, notifiers: Mapping[str, Notifier]) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._lock = threading.Lock()
        self._states: dict[AlertKey, AlertState] = {
            AlertKey.from_str(key): AlertState.from_dict(state) for key, state in store.alert_states().items()
        }

    def update_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """Use these notifiers from now on (after a config reload)."""
        self._notifiers = dict(notifiers)

    def states(self) -> Mapping[AlertKey, AlertState]:
        """The current alert states (a snapshot)."""
        return dict(self._states)

    def after_run(self, config: Config, monitor: str, result: RunResult, policy: Policy, now: datetime) -> None:
        """Step the lifecycle of `monitor` with this run's outcome and enqueue what must be sent."""
        window = {"start": result.start.isoformat(), "end": result.end.isoformat()}
        observations = (
            *observe_report(monitor, result.report, result.outcome, result.error),
            *observe_health(monitor, result.health, window),
        )
        self.apply(config, monitor, observations, policy, now)

    def apply(
        self, config: Config, monitor: str, observations: Sequence[Observation], policy: Policy | None, now: datetime
    ) -> None:
        """Step `monitor`'s alerts (but ModelSwitched) with `observations`, persist, and enqueue notifications."""
        with self._lock:
            before = {k: s for k, s in self._states.items() if k.monitor == monitor and k.alertname != MODEL_SWITCHED}
            after, notifications = step(before, observations, now, config.alert_rules(monitor))
            deliveries = self._deliveries(config, notifications, config.alert_sinks(monitor), policy, now)
            self._store.apply_alert_changes(_changes(before, after), deliveries, now)
            self._replace(before, after)

    def apply_model(
        self,
        config: Config,
        model: str,
        monitor: str,
        *,
        off_primary: bool,
        details: Mapping[str, Any],
        changed: bool,
        now: datetime,
        persist: Persist,
    ) -> None:
        """Step the ModelSwitched alert of `model`: critical while `off_primary`, clean otherwise.

        `monitor` keys a new alert (the monitor that triggered the switch, or the first one feeding the model); a
        known alert keeps its key. `details` (model, from, to, actor, reason, trigger) describe the latest switch;
        `changed`: a switch happened in this step (a firing alert then notifies again). Notifications go to the
        sinks of every monitor feeding the model, unless silenced. `persist(states, deliveries)` writes the
        changes (with the model's own, in one transaction); the snapshot changes only once it returned.
        """
        with self._lock:
            known = sorted(k for k in self._states if k.alertname == MODEL_SWITCHED and k.subject == model)
            key = known[0] if known else AlertKey(monitor, model, MODEL_SWITCHED)
            before = {key: self._states[key]} if known else {}
            if known and not changed and off_primary:
                details = before[key].details  # no new switch: the alert keeps describing the last one
            rules = model_switched_rules(config.alert_rules(key.monitor if key.monitor in config.monitors else monitor))
            severity = Severity.CRITICAL if off_primary else Severity.OK
            after, notifications = step(before, [Observation(key, severity, details, changed)], now, rules)
            notifications = tuple(replace(n, details=details) if n.status == "resolved" else n for n in notifications)
            sinks = sorted({sink for m in config.model_monitors(model) for sink in config.alert_sinks(m)})
            deliveries = self._deliveries(config, notifications, sinks, None, now)
            persist(_changes(before, after), deliveries)
            self._replace(before, after)

    def _deliveries(
        self,
        config: Config,
        notifications: Sequence[Notify],
        sinks: Sequence[str],
        policy: Policy | None,
        now: datetime,
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """The outbox rows of `notifications`: none when silenced, refreshes only for sinks that want them."""
        silences = self._store.active_silences(now)
        deliveries = []
        for notify in notifications:
            key = notify.key
            feature = key.subject if key.alertname in FEATURE_ALERTS else None
            if any(s.matches(key.monitor, feature, key.alertname) for s in silences):
                if notify.reason != "refresh":
                    log.info("alert %s %s (%s) silenced", key.to_str(), notify.status, notify.reason)
                continue
            event = notification_event(notify, policy, config.server.base_url)
            for sink in sinks:
                notifier = self._notifiers.get(sink)
                if notify.reason == "refresh" and not getattr(notifier, "wants_refresh", False):
                    continue
                deliveries.append((delivery_id(notify.notification_id, sink), sink, event))
            if notify.reason != "refresh":
                log.info(
                    "alert %s %s (%s, %s)",
                    key.to_str(),
                    notify.status,
                    notify.severity.label,
                    notify.reason,
                    extra={"alert": key.to_str(), "status": notify.status},
                )
        return deliveries

    def _replace(self, before: Mapping[AlertKey, AlertState], after: Mapping[AlertKey, AlertState]) -> None:
        """The snapshot with the keys of `before` replaced by `after`."""
        self._states = {**{k: s for k, s in self._states.items() if k not in before}, **after}


def _changes(
    before: Mapping[AlertKey, AlertState], after: Mapping[AlertKey, AlertState]
) -> dict[str, dict[str, Any] | None]:
    """What to write: None for every alert that ended, the new state of every alert that changed."""
    changes: dict[str, dict[str, Any] | None] = {k.to_str(): None for k in before if k not in after}
    changes.update({k.to_str(): s.to_dict() for k, s in after.items() if before.get(k) != s})
    return changes
