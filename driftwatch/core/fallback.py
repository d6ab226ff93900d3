"""Fallback model switching: monitor outcomes and manual actions in, new model state and decisions out.

Pure logic (no clock: `now` is an argument). One `ModelState` per model; every monitor that feeds the model
reports each run as a `MonitorOutcome`:

    primary --breach x after_runs--> fallbacks[0] --breach x after_runs, after min_dwell--> fallbacks[1] ...
       ^                                  |
       +------ clean x restore_after_runs (after min_dwell; never when restore_after_runs is None) ------+

Counting (`on_monitor_run`):
- a failed run (`ok=False`: error, no data) holds everything: counts, `monitor_severity`, no decision;
- an ok run records its severity in `monitor_severity[monitor]`; severity >= `rules.on` is a *breaching* run
  (breaching_runs += 1, clean_runs = 0); a lower severity *holds* while another monitor's latest known
  severity still reaches `rules.on` (someone else still drifts), and is otherwise *clean*
  (clean_runs += 1, breaching_runs = 0).

Data loss (only when `rules.data_loss_after_runs` is set): a run with `data_loss` (it failed, found no data,
or its data health was critical) adds one to `data_loss_runs[monitor]` and sets clean_runs = 0; any other run of
that monitor clears its count. A data-loss run never counts as clean, and while any monitor's count is above 0
the other monitors' low-severity runs hold instead of counting clean. Without the rule data loss is not counted
and a failed run holds as above.

Deciding (after counting, on every ok run, and on every data-loss run when data loss is counted):
- fallback when breaching_runs >= after_runs: to the version after the decided one in `spec.versions`;
- fallback when some monitor's data_loss_runs >= data_loss_after_runs, the same way;
- restore when the decided version is not the primary and clean_runs >= restore_after_runs: to the primary.
A switch resets every count. It is blocked, with a `NoChange` naming the reason, when the model is pinned
("pinned"), when there is nowhere to go ("no fallback left"), or by the dwell guard
("min_dwell not reached (12m of 30m)"). A blocked decision is reported on *every* run on which its condition
holds (the shell logs `NoChange` at debug level); the counts keep growing, so the switch happens on the
first ok run after the block lifts.

The dwell guard: no automatic switch before `min_dwell` has passed since the last switch (automatic or
manual; `since` is then the time of that switch). The version a model was initialised with
(`initial_state`: the primary, `last_switch_at` None) has no dwell, so a freshly started daemon may fall
back as soon as `after_runs` breaching runs are seen; a restore to the primary, however, starts the dwell.

Dry run (`spec.dry_run`): the same decisions, with `Switch.dry_run` True; the decided version goes to
`dry_run_active` while `active` (what serving sees) stays put; `since`, `last_switch_at` and
`state_version` still advance, so dwell and counting work on the decided version. Manual switches and
restores of a dry-run model are dry runs too (only pinning is real: it governs the decisions).

Manual actions (`manual_switch`, `manual_restore`, `manual_unpin`) ignore dwell. Every real change of the
state (decided version or pin) increments `state_version` and sets `reason` and `actor`; a version change
also sets `since` and `last_switch_at` and resets the counts. The shell stores the returned state, audits
every `Switch` and every state whose `state_version` changed, and actuates non-dry-run `Switch`es.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np

from driftwatch.core.report import Severity

Direction = Literal["fallback", "restore"]
#: Who changed a model's state: the decision logic, the HTTP API, the CLI, or the initial state.
ACTORS: tuple[str, ...] = ("auto", "api", "cli", "init")


@dataclass(frozen=True)
class SwitchRules:
    """When a model falls back and when it is restored (`restore_after_runs` None: restore only by hand)."""

    on: Severity = Severity.CRITICAL
    after_runs: int = 2
    min_dwell: timedelta = timedelta(minutes=30)
    restore_after_runs: int | None = 6
    data_loss_after_runs: int | None = None  # None: data loss does not switch

    def __post_init__(self) -> None:
        if self.on <= Severity.OK:
            raise ValueError("switch.on must be warning or critical")
        if self.after_runs < 1:
            raise ValueError(f"switch.after_runs must be >= 1, not {self.after_runs}")
        if self.min_dwell < timedelta(0):
            raise ValueError(f"switch.min_dwell must not be negative, not {self.min_dwell}")
        if self.restore_after_runs is not None and self.restore_after_runs < 1:
            raise ValueError(f"restore.after_runs must be >= 1, not {self.restore_after_runs}")
        if self.data_loss_after_runs is not None and self.data_loss_after_runs < 1:
            raise ValueError(f"switch.data_loss.after_runs must be >= 1, not {self.data_loss_after_runs}")

    def breaching(self, severity: int) -> bool:
        """True when a run of `severity` counts as drift for switching."""
        return severity >= self.on


@dataclass(frozen=True)
class ModelSpec:
    """A model's versions in order of preference (primary first) and its switching rules."""

    name: str
    primary: str
    fallbacks: tuple[str, ...]
    rules: SwitchRules = field(default_factory=SwitchRules)
    dry_run: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.primary:
            raise ValueError("a model needs a name and a primary version")
        if len(set(self.versions)) != len(self.versions):
            raise ValueError(f"model {self.name!r}: versions must be distinct, got {list(self.versions)}")

    @property
    def versions(self) -> tuple[str, ...]:
        """The primary followed by the fallbacks, in switching order."""
        return (self.primary, *self.fallbacks)


@dataclass(frozen=True)
class ModelState:
    """The routing state of one model (JSON through `to_dict`/`from_dict`).

    `since`: when the decided version became decided. `monitor_severity`: latest known severity (int value)
    of each monitor feeding the model. `dry_run_active`: in dry-run mode, the version the logic would have
    made active (None = the same as `active`). `last_switch_at`: time of the latest switch or restore (None:
    never switched since `initial_state`; exempts the first fallback from `min_dwell`).
    """

    model: str
    active: str
    since: datetime
    pinned: bool
    reason: str
    actor: str
    breaching_runs: int
    clean_runs: int
    state_version: int
    monitor_severity: Mapping[str, int]
    dry_run_active: str | None = None
    last_switch_at: datetime | None = None
    data_loss_runs: Mapping[str, int] = field(default_factory=dict)  # consecutive data-loss runs per monitor

    @property
    def decided(self) -> str:
        """The version the logic has decided on: `dry_run_active` in dry-run mode, else `active`."""
        return self.dry_run_active if self.dry_run_active is not None else self.active

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ISO times, severities as ints."""
        return {
            "model": self.model,
            "active": self.active,
            "since": self.since.isoformat(),
            "pinned": self.pinned,
            "reason": self.reason,
            "actor": self.actor,
            "breaching_runs": self.breaching_runs,
            "clean_runs": self.clean_runs,
            "state_version": self.state_version,
            "monitor_severity": {str(k): int(v) for k, v in self.monitor_severity.items()},
            "dry_run_active": self.dry_run_active,
            "last_switch_at": self.last_switch_at.isoformat() if self.last_switch_at is not None else None,
            "data_loss_runs": {str(k): int(v) for k, v in self.data_loss_runs.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelState:
        """The state written by `to_dict` (KeyError or ValueError if malformed)."""
        last = d.get("last_switch_at")
        dry = d.get("dry_run_active")
        return cls(
            model=str(d["model"]),
            active=str(d["active"]),
            since=datetime.fromisoformat(d["since"]),
            pinned=bool(d["pinned"]),
            reason=str(d["reason"]),
            actor=str(d["actor"]),
            breaching_runs=int(d["breaching_runs"]),
            clean_runs=int(d["clean_runs"]),
            state_version=int(d["state_version"]),
            monitor_severity={str(k): int(v) for k, v in (d.get("monitor_severity") or {}).items()},
            dry_run_active=str(dry) if dry is not None else None,
            last_switch_at=datetime.fromisoformat(last) if last is not None else None,
            data_loss_runs={str(k): int(v) for k, v in (d.get("data_loss_runs") or {}).items()},
        )


@dataclass(frozen=True)
class MonitorOutcome:
    """One run of a monitor feeding a model; `ok=False`: the run failed or had no data (it holds);
    `data_loss`: it failed, had no data or its data health was critical (counted when the model switches on it)."""

    monitor: str
    ok: bool
    severity: Severity
    details: Mapping[str, Any] = field(default_factory=dict)
    data_loss: bool = False


@dataclass(frozen=True)
class Switch:
    """A decision to route the model to another version (`dry_run`: record only, actuate nothing)."""

    model: str
    from_version: str
    to_version: str
    direction: Direction
    actor: str
    reason: str
    at: datetime
    dry_run: bool
    pinned: bool
    details: Mapping[str, Any]


@dataclass(frozen=True)
class NoChange:
    """No switch, and why ("already active", "pinned", "min_dwell not reached (12m of 30m)", ...)."""

    model: str
    reason: str


Decision = Switch | NoChange


def initial_state(spec: ModelSpec, now: datetime) -> ModelState:
    """The state of a model seen for the first time: the primary, unpinned, version 1."""
    return ModelState(
        model=spec.name,
        active=spec.primary,
        since=now,
        pinned=False,
        reason="initial state",
        actor="init",
        breaching_runs=0,
        clean_runs=0,
        state_version=1,
        monitor_severity={},
    )


def on_monitor_run(
    spec: ModelSpec, state: ModelState, outcome: MonitorOutcome, now: datetime
) -> tuple[ModelState, tuple[Decision, ...]]:
    """The state after one run of a monitor feeding `spec`'s model, and the decisions (at most one)."""
    _check_model(spec, state)
    if not spec.dry_run and state.dry_run_active is not None:
        state = replace(state, dry_run_active=None)  # dry run was switched off: reality is what is active
    rules = spec.rules
    counting_loss = rules.data_loss_after_runs is not None
    if counting_loss:
        state = _count_data_loss(state, outcome)
    if not outcome.ok and not (counting_loss and outcome.data_loss):
        return state, ()
    severities = dict(state.monitor_severity)
    if outcome.ok:
        severities[outcome.monitor] = int(outcome.severity)
        state = replace(state, monitor_severity=severities)
        others_lost = any(n > 0 for m, n in state.data_loss_runs.items() if m != outcome.monitor)
        if rules.breaching(outcome.severity):
            state = replace(state, breaching_runs=state.breaching_runs + 1, clean_runs=0)
        elif not (counting_loss and (outcome.data_loss or others_lost)) and not any(
            rules.breaching(s) for m, s in severities.items() if m != outcome.monitor
        ):
            state = replace(state, clean_runs=state.clean_runs + 1, breaching_runs=0)

    current = _current(spec, state)
    lost_monitor, lost_runs = max(
        state.data_loss_runs.items(), key=lambda item: (item[1], item[0] == outcome.monitor), default=("", 0)
    )
    if state.breaching_runs >= rules.after_runs:
        target = _next_fallback(spec, current)
        direction: Direction = "fallback"
        reason = (
            f"{outcome.monitor} {outcome.severity.label}: {state.breaching_runs} consecutive runs at or above "
            f"{rules.on.label} (after_runs {rules.after_runs})"
        )
    elif rules.data_loss_after_runs is not None and lost_runs >= rules.data_loss_after_runs:
        target = _next_fallback(spec, current)
        direction = "fallback"
        reason = (
            f"{lost_monitor} data loss: {lost_runs} consecutive data-loss runs "
            f"(data_loss after_runs {rules.data_loss_after_runs})"
        )
    elif (
        current != spec.primary
        and rules.restore_after_runs is not None
        and state.clean_runs >= rules.restore_after_runs
    ):
        target = spec.primary
        direction = "restore"
        reason = f"{state.clean_runs} consecutive clean runs (restore after_runs {rules.restore_after_runs})"
    else:
        return state, ()

    if state.pinned:
        return state, (NoChange(spec.name, "pinned"),)
    if target is None:
        return state, (NoChange(spec.name, "no fallback left"),)
    dwelt = now - state.since
    if state.last_switch_at is not None and dwelt < rules.min_dwell:
        return state, (NoChange(spec.name, f"min_dwell not reached ({_dur(dwelt)} of {_dur(rules.min_dwell)})"),)

    details = {
        "monitor": outcome.monitor,
        "severity": outcome.severity.label,
        "statistics": _plain(outcome.details),
        "monitors": {m: Severity(s).label for m, s in sorted(severities.items())},
        "breaching_runs": state.breaching_runs,
        "clean_runs": state.clean_runs,
    }
    if counting_loss:
        details["data_loss"] = outcome.data_loss
        details["data_loss_runs"] = dict(sorted(state.data_loss_runs.items()))
    new_state = _moved(spec, state, target, reason=reason, actor="auto", pinned=state.pinned, now=now)
    switch = Switch(spec.name, current, target, direction, "auto", reason, now, spec.dry_run, new_state.pinned, details)
    return new_state, (switch,)


def manual_switch(
    spec: ModelSpec, state: ModelState, to: str, *, reason: str, pin: bool, actor: str, now: datetime
) -> tuple[ModelState, Decision]:
    """A person routes the model to `to` (ignoring dwell) and sets `pinned = pin`.

    Switching to the decided version changes nothing but the pin ("already active", "already active;
    pinned" or "already active; unpinned"). ValueError if `to` is not one of the model's versions.
    """
    _check_model(spec, state)
    if to not in spec.versions:
        raise ValueError(f"model {spec.name!r} has no version {to!r} (expected one of {', '.join(spec.versions)})")
    current = _current(spec, state)
    if to == current:
        if state.pinned == pin:
            return state, NoChange(spec.name, "already active")
        note = "already active; pinned" if pin else "already active; unpinned"
        return _bump(state, reason=reason, actor=actor, pinned=pin), NoChange(spec.name, note)
    new_state = _moved(spec, state, to, reason=reason, actor=actor, pinned=pin, now=now)
    direction: Direction = "restore" if to == spec.primary else "fallback"
    return new_state, Switch(spec.name, current, to, direction, actor, reason, now, spec.dry_run, pin, {})


def manual_restore(
    spec: ModelSpec, state: ModelState, *, reason: str, actor: str, now: datetime
) -> tuple[ModelState, Decision]:
    """A person routes the model back to its primary (ignoring dwell) and unpins it."""
    return manual_switch(spec, state, spec.primary, reason=reason, pin=False, actor=actor, now=now)


def manual_unpin(spec: ModelSpec, state: ModelState, *, actor: str, now: datetime) -> tuple[ModelState, Decision]:
    """A person hands the model back to the automatic logic; NoChange "unpinned" (or "not pinned")."""
    _check_model(spec, state)
    if not state.pinned:
        return state, NoChange(spec.name, "not pinned")
    return _bump(state, reason="unpinned", actor=actor, pinned=False), NoChange(spec.name, "unpinned")


def _check_model(spec: ModelSpec, state: ModelState) -> None:
    if state.model != spec.name:
        raise ValueError(f"state of model {state.model!r} passed with the spec of {spec.name!r}")


def _current(spec: ModelSpec, state: ModelState) -> str:
    """The version decisions start from: the decided one in dry-run mode, else the active one."""
    return state.decided if spec.dry_run else state.active


def _next_fallback(spec: ModelSpec, current: str) -> str | None:
    """The version after `current` (the first fallback if `current` is no longer configured); None at the end."""
    versions = spec.versions
    position = versions.index(current) if current in versions else 0
    return versions[position + 1] if position + 1 < len(versions) else None


def _moved(
    spec: ModelSpec, state: ModelState, to: str, *, reason: str, actor: str, pinned: bool, now: datetime
) -> ModelState:
    """`state` routed to `to` at `now` (in dry-run mode only `dry_run_active` moves); counts reset."""
    if spec.dry_run:
        active, dry = state.active, (to if to != state.active else None)
    else:
        active, dry = to, None
    return replace(
        state,
        active=active,
        dry_run_active=dry,
        since=now,
        last_switch_at=now,
        pinned=pinned,
        reason=reason,
        actor=actor,
        breaching_runs=0,
        clean_runs=0,
        data_loss_runs={},
        state_version=state.state_version + 1,
    )


def _count_data_loss(state: ModelState, outcome: MonitorOutcome) -> ModelState:
    """`state` with the monitor's consecutive data-loss runs counted (a data-loss run also ends a clean streak)."""
    losses = {m: n for m, n in state.data_loss_runs.items() if m != outcome.monitor}
    if outcome.data_loss:
        losses[outcome.monitor] = state.data_loss_runs.get(outcome.monitor, 0) + 1
        return replace(state, data_loss_runs=losses, clean_runs=0)
    return replace(state, data_loss_runs=losses)


def _bump(state: ModelState, *, reason: str, actor: str, pinned: bool) -> ModelState:
    """`state` with a new pin, reason and actor (no version change)."""
    return replace(state, pinned=pinned, reason=reason, actor=actor, state_version=state.state_version + 1)


def _dur(value: timedelta) -> str:
    """A short duration: whole minutes ("12m"), or seconds below a minute ("45s")."""
    seconds = int(value.total_seconds())
    return f"{seconds // 60}m" if seconds >= 60 else f"{seconds}s"


def _plain(value: Any) -> Any:
    """A JSON-ready copy: mappings become dicts with str keys, tuples and lists lists, numpy scalars Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
