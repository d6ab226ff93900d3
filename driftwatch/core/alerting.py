"""The alert lifecycle: observations of one run in, new alert states and notification decisions out.

Pure logic (no clock: `now` is an argument). One alert per `AlertKey` (monitor, subject, alertname):

    inactive --breach--> pending --breach x for_runs--> firing --clean x resolve_after_runs--> inactive
                 pending --clean--> inactive (nothing was ever sent)

A run is *breaching* for a key when its observed severity reaches `AlertRules.min_severity`, *clean*
when it is below. A key without an observation in a run *holds* (its state is unchanged), so a failing
or data-less run neither confirms nor clears drift; the exception is a FeatureDrift alert of a monitor
whose run was judged (outcome "ok") while the feature was not in the report at all (the feature was
removed from the config): that counts as clean, so the alert resolves.

While firing every run yields exactly one `Notify`: "fired" on the run that starts firing, "escalated"
when the severity rises above the last notified one, "repeat" once `repeat_interval` has passed since the
last notification (or at once when the observation says the condition `changed`), "resolved" on the run
that ends the alert, and otherwise "refresh". Refreshes are only for sinks that need an active alert
re-posted (Alertmanager); other sinks ignore them, which makes a de-escalation silent for them.

Data-health alerts (`observe_health`, one alertname per signal of `driftwatch.core.health`): `MissingValues`
(subject: the feature), `VolumeDrop`, `StaleData` (subject "dataset"), `SchemaChanged` and `NoData` (subject
"monitor"). Each evaluated signal is an observation at its severity; a signal not evaluated in a run holds.

`ModelSwitched` (subject: the model) is observed by the model switching shell, not by `observe_report`:
critical while the model serves a version other than its primary, clean once it is back; it fires and
resolves at once (`model_switched_rules`), and a move to another fallback is a `changed` observation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import numpy as np

from driftwatch.core.health import Health
from driftwatch.core.report import Report, Severity

AlertName = Literal[
    "FeatureDrift",
    "DatasetDrift",
    "MonitorFailing",
    "ModelSwitched",
    "MissingValues",
    "VolumeDrop",
    "StaleData",
    "SchemaChanged",
    "NoData",
]
Phase = Literal["pending", "firing"]
NotifyStatus = Literal["firing", "resolved"]
NotifyReason = Literal["fired", "repeat", "escalated", "refresh", "resolved"]

ALERT_NAMES: tuple[str, ...] = get_args(AlertName)
MODEL_SWITCHED = "ModelSwitched"
DATASET_SUBJECT = "dataset"
MONITOR_SUBJECT = "monitor"
#: The alertname of each data-health signal, and the subject of its alert (None: the signal's feature).
HEALTH_ALERTS: Mapping[str, tuple[str, str | None]] = {
    "missing_share": ("MissingValues", None),
    "volume": ("VolumeDrop", DATASET_SUBJECT),
    "freshness": ("StaleData", DATASET_SUBJECT),
    "schema": ("SchemaChanged", MONITOR_SUBJECT),
    "no_data": ("NoData", MONITOR_SUBJECT),
}
#: Alertnames whose subject is a feature (silences and events match it as `feature`).
FEATURE_ALERTS: frozenset[str] = frozenset({"FeatureDrift", "MissingValues"})
#: Statistics of a feature copied into the details of its FeatureDrift observation.
FEATURE_DETAIL_STATS: tuple[str, ...] = (
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "chi2_pvalue",
    "js_distance",
    "wasserstein",
    "missing_share",
    "adjusted_pvalue",
)
#: Key of a DatasetDrift observation's details listing the report's features that could not be judged in
#: this run (status other than "ok"): their FeatureDrift alerts hold instead of counting as clean.
UNJUDGED_FEATURES = "unjudged_features"


@dataclass(frozen=True, order=True)
class AlertKey:
    """Identity of one alert: `subject` is a feature name, "dataset" or "monitor"."""

    monitor: str
    subject: str
    alertname: str

    def to_str(self) -> str:
        """`monitor/subject/alertname` (monitor and alert names contain no '/')."""
        return f"{self.monitor}/{self.subject}/{self.alertname}"

    @classmethod
    def from_str(cls, s: str) -> AlertKey:
        """The key written `monitor/subject/alertname` by `to_str` (ValueError if malformed)."""
        monitor, sep, rest = s.partition("/")
        subject, sep2, alertname = rest.rpartition("/")
        if not (sep and sep2 and monitor and subject) or alertname not in ALERT_NAMES:
            raise ValueError(f"not an alert key: {s!r} (expected monitor/subject/alertname)")
        return cls(monitor, subject, alertname)


@dataclass(frozen=True)
class AlertRules:
    """When alerts fire, resolve and repeat."""

    for_runs: int = 2
    resolve_after_runs: int = 2
    repeat_interval: timedelta = timedelta(hours=4)
    min_severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if self.for_runs < 1:
            raise ValueError(f"for_runs must be >= 1, not {self.for_runs}")
        if self.resolve_after_runs < 1:
            raise ValueError(f"resolve_after_runs must be >= 1, not {self.resolve_after_runs}")
        if self.repeat_interval < timedelta(0):
            raise ValueError(f"repeat_interval must not be negative, not {self.repeat_interval}")
        if self.min_severity <= Severity.OK:
            raise ValueError("min_severity must be warning or critical")

    def breaching(self, severity: Severity) -> bool:
        """True when an observation of `severity` counts as a breach (else it is clean)."""
        return severity >= self.min_severity


@dataclass(frozen=True)
class AlertState:
    """A pending or firing alert. `details` (JSON-ready) are those of the latest breaching observation."""

    key: AlertKey
    phase: Phase
    severity: Severity
    breaching_runs: int
    clean_runs: int
    started_at: datetime
    fired_at: datetime | None
    last_notified_at: datetime | None
    notified_severity: Severity | None
    details: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ISO times, severities as labels."""
        return {
            "monitor": self.key.monitor,
            "subject": self.key.subject,
            "alertname": self.key.alertname,
            "phase": self.phase,
            "severity": self.severity.label,
            "breaching_runs": self.breaching_runs,
            "clean_runs": self.clean_runs,
            "started_at": self.started_at.isoformat(),
            "fired_at": _iso(self.fired_at),
            "last_notified_at": _iso(self.last_notified_at),
            "notified_severity": self.notified_severity.label if self.notified_severity is not None else None,
            "details": _plain(self.details),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AlertState:
        """The state written by `to_dict` (KeyError or ValueError if malformed)."""
        phase = d["phase"]
        if phase not in get_args(Phase):
            raise ValueError(f"unknown alert phase {phase!r}")
        alertname = d["alertname"]
        if alertname not in ALERT_NAMES:
            raise ValueError(f"unknown alert name {alertname!r}")
        notified = d.get("notified_severity")
        return cls(
            key=AlertKey(str(d["monitor"]), str(d["subject"]), alertname),
            phase=phase,
            severity=Severity.parse(d["severity"]),
            breaching_runs=int(d["breaching_runs"]),
            clean_runs=int(d["clean_runs"]),
            started_at=datetime.fromisoformat(d["started_at"]),
            fired_at=_from_iso(d.get("fired_at")),
            last_notified_at=_from_iso(d.get("last_notified_at")),
            notified_severity=Severity.parse(notified) if notified is not None else None,
            details=dict(d.get("details") or {}),
        )


@dataclass(frozen=True)
class Observation:
    """What one run says about one alert key; `Severity.OK` means clean.

    `changed`: the breaching condition changed in substance (a model moved to another fallback), so a firing
    alert notifies again now (reason "repeat") instead of waiting for `repeat_interval`.
    """

    key: AlertKey
    severity: Severity
    details: Mapping[str, Any]
    changed: bool = False


@dataclass(frozen=True)
class Notify:
    """A decision to notify. Sinks other than Alertmanager skip reason "refresh"."""

    key: AlertKey
    status: NotifyStatus
    severity: Severity
    reason: NotifyReason
    at: datetime
    started_at: datetime
    details: Mapping[str, Any]

    @property
    def notification_id(self) -> str:
        """Deterministic id of this notification (the same on every delivery attempt and after a restart)."""
        text = f"{self.key.to_str()}|{self.started_at.isoformat()}|{self.status}|{self.reason}|{self.at.isoformat()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def model_switched_rules(rules: AlertRules) -> AlertRules:
    """The rules of a ModelSwitched alert: it fires and resolves at once and repeats like `rules` say."""
    return replace(rules, for_runs=1, resolve_after_runs=1, min_severity=Severity.WARNING)


def observe_report(monitor: str, report: Report | None, outcome: str, error: str | None) -> tuple[Observation, ...]:
    """The observations of one run of `monitor` that ended with `outcome` ("ok", "error", "insufficient_data").

    "ok": one FeatureDrift per judged feature, one DatasetDrift and a clean MonitorFailing.
    "error": MonitorFailing critical only; "insufficient_data" (or an "ok" run whose report could not be
    judged): MonitorFailing warning only, so the drift alerts hold.
    """
    failing = AlertKey(monitor, MONITOR_SUBJECT, "MonitorFailing")
    if outcome == "error":
        return (Observation(failing, Severity.CRITICAL, {"error": error}),)
    if outcome == "insufficient_data":
        return (Observation(failing, Severity.WARNING, {"reason": error}),)
    if outcome == "no_data":  # the NoData alert (observe_health) says it; drift and failure alerts hold
        return ()
    if outcome != "ok":
        raise ValueError(f"unknown run outcome {outcome!r} (expected ok, error, insufficient_data or no_data)")
    if report is None:
        raise ValueError("a run with outcome 'ok' must have a report")
    if report.status != "ok":
        return (Observation(failing, Severity.WARNING, {"reason": report.reason or error}),)
    whole = report.to_dict()
    window = whole["window"]
    observations = []
    for result in report.features:
        if result.stats.status != "ok":
            continue
        feature = result.to_dict()
        details: dict[str, Any] = {stat: feature[stat] for stat in FEATURE_DETAIL_STATS}
        details["breaches"] = feature["breaches"]
        details["window"] = dict(window)
        observations.append(Observation(AlertKey(monitor, result.name, "FeatureDrift"), result.severity, details))
    dataset = {
        "drift_share": whole["drift_share"],
        "rows": whole["rows"],
        "window": dict(window),
        "drifted_features": [r.name for r in report.features if r.stats.status == "ok" and r.severity > Severity.OK],
        UNJUDGED_FEATURES: [r.name for r in report.features if r.stats.status != "ok"],
    }
    observations.append(Observation(AlertKey(monitor, DATASET_SUBJECT, "DatasetDrift"), report.severity, dataset))
    observations.append(Observation(failing, Severity.OK, {}))
    return tuple(observations)


def observe_health(
    monitor: str, health: Health | None, window: Mapping[str, Any] | None = None
) -> tuple[Observation, ...]:
    """One observation per evaluated data-health signal of a run (none when health was not assessed)."""
    if health is None:
        return ()
    observations = []
    for signal in health.signals:
        alertname, subject = HEALTH_ALERTS[signal.name]
        details: dict[str, Any] = {
            signal.name: signal.value,
            "baseline": signal.baseline,
            "detail": signal.detail,
            "thresholds": {"warning": signal.level.warning, "critical": signal.level.critical}
            if signal.level
            else None,
        }
        if signal.pvalue is not None:
            details["adjusted_pvalue"] = signal.pvalue
        if window is not None:
            details["window"] = dict(window)
        key = AlertKey(monitor, subject or signal.subject, alertname)
        observations.append(Observation(key, signal.severity, details))
    return tuple(observations)


def step(
    states: Mapping[AlertKey, AlertState], observations: Sequence[Observation], now: datetime, rules: AlertRules
) -> tuple[dict[AlertKey, AlertState], tuple[Notify, ...]]:
    """The alert states after one run observed `observations` at `now`, and the notifications to send.

    Returns a fresh dict of every active alert (untouched ones included) and the notifications sorted by
    key (at most one per key). Raises ValueError when two observations share a key.
    """
    observed: dict[AlertKey, Observation] = {}
    for obs in observations:
        if obs.key in observed:
            raise ValueError(f"two observations of {obs.key.to_str()} in one step")
        observed[obs.key] = obs
    unjudged = {  # monitor judged in this run -> features its report listed but could not judge
        o.key.monitor: frozenset(o.details.get(UNJUDGED_FEATURES, ()))
        for o in observations
        if o.key.alertname == "DatasetDrift"
    }
    new_states: dict[AlertKey, AlertState] = {}
    notifications: list[Notify] = []
    for key in sorted(set(states) | set(observed)):
        state = states.get(key)
        observation = observed.get(key)
        if observation is None and _removed_feature(key, unjudged):
            observation = Observation(key, Severity.OK, {"reason": "feature no longer monitored"})
        new_state: AlertState | None
        notify: Notify | None
        if observation is not None:
            new_state, notify = _advance(state, observation, now, rules)
        elif state is not None:
            new_state, notify = _hold(state, now)
        else:  # unreachable: every key comes from states or observations
            continue
        if new_state is not None:
            new_states[key] = new_state
        if notify is not None:
            notifications.append(notify)
    return new_states, tuple(notifications)


def _removed_feature(key: AlertKey, unjudged: Mapping[str, frozenset[str]]) -> bool:
    """True for an unobserved FeatureDrift key of a judged monitor whose report did not list the feature."""
    return key.alertname in FEATURE_ALERTS and key.monitor in unjudged and key.subject not in unjudged[key.monitor]


def _hold(state: AlertState, now: datetime) -> tuple[AlertState, Notify | None]:
    """A run that did not observe `state`'s key: unchanged; a firing alert is refreshed."""
    return state, _notify(state, "refresh", now) if state.phase == "firing" else None


def _advance(
    state: AlertState | None, observation: Observation, now: datetime, rules: AlertRules
) -> tuple[AlertState | None, Notify | None]:
    """The state of one key after `observation`, and its notification if any."""
    if not rules.breaching(observation.severity):
        if state is None or state.phase == "pending":
            return None, None
        clean = replace(state, breaching_runs=0, clean_runs=state.clean_runs + 1)
        if clean.clean_runs >= rules.resolve_after_runs:
            details = {**_plain(state.details), "resolved_with": _plain(observation.details)}
            return None, _notify(replace(clean, details=details), "resolved", now)
        return clean, _notify(clean, "refresh", now)

    if state is None:
        state = AlertState(observation.key, "pending", observation.severity, 0, 0, now, None, None, None, {})
    state = replace(
        state,
        severity=observation.severity,
        breaching_runs=state.breaching_runs + 1,
        clean_runs=0,
        details=_plain(observation.details),
    )
    if state.phase == "pending":
        if state.breaching_runs < rules.for_runs:
            return state, None
        fired = replace(state, phase="firing", fired_at=now, last_notified_at=now, notified_severity=state.severity)
        return fired, _notify(fired, "fired", now)
    if state.notified_severity is None or state.severity > state.notified_severity:
        reason: NotifyReason = "escalated"
    elif observation.changed or state.last_notified_at is None or now - state.last_notified_at >= rules.repeat_interval:
        reason = "repeat"
    else:
        return state, _notify(state, "refresh", now)
    notified = replace(state, last_notified_at=now, notified_severity=state.severity)
    return notified, _notify(notified, reason, now)


def _notify(state: AlertState, reason: NotifyReason, now: datetime) -> Notify:
    status: NotifyStatus = "resolved" if reason == "resolved" else "firing"
    return Notify(state.key, status, state.severity, reason, now, state.started_at, state.details)


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings become dicts with str keys, tuples and lists lists, numpy scalars Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None
