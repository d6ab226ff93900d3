"""The pure fallback switching logic: scripted monitor runs on a fake clock, manual actions, persistence, properties."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.core.fallback import (
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

T0 = datetime(2024, 3, 1, tzinfo=UTC)
EVERY = timedelta(minutes=10)
OK, W, C = Severity.OK, Severity.WARNING, Severity.CRITICAL
LEVELS = {"O": OK, "W": W, "C": C}


def spec_with(*, dry_run: bool = False, **rules) -> ModelSpec:
    return ModelSpec("churn", "v3", ("v2", "rules"), SwitchRules(**rules), dry_run=dry_run)


DEFAULT = spec_with()


def outcome(token: str) -> MonitorOutcome:
    """`C`, `W`, `O` (ok run of that severity) or `F` (failed run) of monitor "m"; `b:C` names monitor "b"."""
    monitor, _, level = token.rpartition(":")
    monitor = monitor or "m"
    if level == "F":
        return MonitorOutcome(monitor, False, OK, {"error": "source down"})
    return MonitorOutcome(monitor, True, LEVELS[level], {"psi": 0.3, "level": level})


def summary(decisions: Sequence[Switch | NoChange]) -> str:
    """`-` for no decision, `fallback->v2` / `restore->v3` for a switch, else the NoChange reason."""
    assert len(decisions) <= 1
    if not decisions:
        return "-"
    decision = decisions[0]
    if isinstance(decision, Switch):
        return f"{decision.direction}->{decision.to_version}"
    return decision.reason


def play(
    spec: ModelSpec, script: Sequence[str], *, state: ModelState | None = None, start: int = 0
) -> tuple[list[str], ModelState]:
    """Run `script` (one outcome token per run, every 10 minutes from T0 + start runs); the summary of each run."""
    state = state if state is not None else initial_state(spec, T0)
    seen = []
    for i, token in enumerate(script, start=start):
        state, decisions = on_monitor_run(spec, state, outcome(token), T0 + i * EVERY)
        seen.append(summary(decisions))
    return seen, state


# --------------------------------------------------------------------------------------------------
# Scripted runs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "script", "expected"),
    [
        pytest.param(DEFAULT, "CC", ["-", "fallback->v2"], id="fresh-daemon-switches-after-after-runs"),
        pytest.param(spec_with(after_runs=3), "CCC", ["-", "-", "fallback->v2"], id="after-runs-3"),
        pytest.param(DEFAULT, "CWCOC", ["-"] * 5, id="interrupted-breaches-never-switch"),
        pytest.param(DEFAULT, "WWWW", ["-"] * 4, id="warning-does-not-switch-on-critical"),
        pytest.param(spec_with(on=W), "WW", ["-", "fallback->v2"], id="warning-switches-on-warning"),
        pytest.param(spec_with(on=W), "WC", ["-", "fallback->v2"], id="critical-counts-for-warning"),
        pytest.param(
            DEFAULT,
            "CCCCC",
            ["-", "fallback->v2", "-", "min_dwell not reached (20m of 30m)", "fallback->rules"],
            id="dwell-delays-second-fallback",
        ),
        pytest.param(
            DEFAULT,
            "CCCCCCCC",
            [
                "-",
                "fallback->v2",
                "-",
                "min_dwell not reached (20m of 30m)",
                "fallback->rules",
                "-",
                "no fallback left",
                "no fallback left",
            ],
            id="no-fallback-left",
        ),
        pytest.param(
            DEFAULT, "CC" + "O" * 6, ["-", "fallback->v2"] + ["-"] * 5 + ["restore->v3"], id="restore-after-6-clean"
        ),
        pytest.param(
            spec_with(restore_after_runs=1),
            "CCOOO",
            [
                "-",
                "fallback->v2",
                "min_dwell not reached (10m of 30m)",
                "min_dwell not reached (20m of 30m)",
                "restore->v3",
            ],
            id="dwell-delays-restore",
        ),
        pytest.param(
            spec_with(restore_after_runs=2),
            "CCOCOO",
            ["-", "fallback->v2", "-", "-", "-", "restore->v3"],
            id="breach-resets-clean-count",
        ),
        pytest.param(
            spec_with(restore_after_runs=None),
            "CC" + "O" * 20,
            ["-", "fallback->v2"] + ["-"] * 20,
            id="manual-restore-never-automatic",
        ),
        pytest.param(
            spec_with(restore_after_runs=1, min_dwell=timedelta(0)),
            "CCOCC",
            ["-", "fallback->v2", "restore->v3", "-", "fallback->v2"],
            id="zero-dwell-flaps-by-rules",
        ),
        pytest.param(
            spec_with(restore_after_runs=1),
            "CCOOOCCC",
            [
                "-",
                "fallback->v2",
                "min_dwell not reached (10m of 30m)",
                "min_dwell not reached (20m of 30m)",
                "restore->v3",
                "-",
                "min_dwell not reached (20m of 30m)",
                "fallback->v2",
            ],
            id="restore-starts-dwell",
        ),
        pytest.param(DEFAULT, "CFC", ["-", "-", "fallback->v2"], id="failure-holds-breaching-count"),
        pytest.param(DEFAULT, "CFFFFC", ["-"] * 5 + ["fallback->v2"], id="many-failures-hold"),
        pytest.param(
            spec_with(restore_after_runs=2),
            "CCOFO",
            ["-", "fallback->v2", "-", "-", "restore->v3"],
            id="failure-holds-clean-count",
        ),
        pytest.param(DEFAULT, ["C", "b:O", "C"], ["-", "-", "fallback->v2"], id="other-clean-monitor-holds"),
        pytest.param(DEFAULT, ["C", "b:C"], ["-", "fallback->v2"], id="two-drifting-monitors-add-up"),
        pytest.param(
            spec_with(restore_after_runs=2),
            ["C", "C", "b:O", "b:O", "b:O", "b:O"],
            ["-", "fallback->v2", "-", "-", "-", "-"],
            id="one-drifting-one-clean-no-restore",
        ),
        pytest.param(
            spec_with(restore_after_runs=2),
            ["C", "C", "b:O", "b:O", "O", "b:O"],
            ["-", "fallback->v2", "-", "-", "-", "restore->v3"],
            id="both-clean-restore-counting",
        ),
        pytest.param(
            spec_with(restore_after_runs=2),
            ["C", "C", "b:O", "F", "b:O", "O", "b:F", "b:O"],
            ["-", "fallback->v2", "-", "-", "-", "-", "-", "restore->v3"],
            id="failed-run-keeps-latest-severity",
        ),
    ],
)
def test_scripted_runs(spec: ModelSpec, script: Sequence[str], expected: list[str]):
    """Each run of the script yields the expected decision (a run every 10 minutes)."""
    seen, _ = play(spec, script)
    assert seen == expected


def test_switch_state_and_details():
    """An auto switch moves active, resets counts, bumps the version and carries the triggering statistics."""
    state = initial_state(DEFAULT, T0)
    state, decisions = on_monitor_run(DEFAULT, state, outcome("C"), T0)
    assert decisions == () and state.breaching_runs == 1 and state.state_version == 1
    state, (switch,) = on_monitor_run(DEFAULT, state, outcome("C"), T0 + EVERY)
    assert isinstance(switch, Switch)
    assert (switch.model, switch.from_version, switch.to_version, switch.direction) == ("churn", "v3", "v2", "fallback")
    assert (switch.actor, switch.at, switch.dry_run, switch.pinned) == ("auto", T0 + EVERY, False, False)
    assert switch.details == {
        "monitor": "m",
        "severity": "critical",
        "statistics": {"psi": 0.3, "level": "C"},
        "monitors": {"m": "critical"},
        "breaching_runs": 2,
        "clean_runs": 0,
    }
    assert "critical" in switch.reason and "2 consecutive" in switch.reason
    assert (state.active, state.decided, state.since, state.last_switch_at) == ("v2", "v2", T0 + EVERY, T0 + EVERY)
    assert (state.breaching_runs, state.clean_runs, state.state_version) == (0, 0, 2)
    assert (state.actor, state.reason, state.pinned) == ("auto", switch.reason, False)
    assert state.monitor_severity == {"m": 2}


def test_failed_run_changes_nothing():
    """A failed run returns the state unchanged (counts, severities, version) and no decision."""
    _, state = play(DEFAULT, ["C", "b:W"])
    after, decisions = on_monitor_run(DEFAULT, state, outcome("F"), T0 + 5 * EVERY)
    assert after == state and decisions == ()


def test_restore_details_and_counts():
    """An auto restore returns to the primary with the clean counts and the last clean statistics."""
    spec = spec_with(restore_after_runs=3)
    seen, state = play(spec, "CCOO")
    assert seen == ["-", "fallback->v2", "-", "-"]
    state, (restore,) = on_monitor_run(spec, state, outcome("O"), T0 + 4 * EVERY)
    assert isinstance(restore, Switch)
    assert (restore.from_version, restore.to_version, restore.direction) == ("v2", "v3", "restore")
    assert restore.details["clean_runs"] == 3 and restore.details["severity"] == "ok"
    assert restore.details["statistics"] == {"psi": 0.3, "level": "O"}
    assert "3 consecutive clean runs" in restore.reason
    assert (state.active, state.state_version, state.clean_runs, state.since) == ("v3", 3, 0, T0 + 4 * EVERY)


# --------------------------------------------------------------------------------------------------
# Pin, dry run
# --------------------------------------------------------------------------------------------------


def test_pinned_never_switches_automatically_and_unpin_reenables():
    """A pinned model reports NoChange "pinned" on every due run; after unpinning the due switch happens."""
    state = initial_state(DEFAULT, T0)
    state, decision = manual_switch(DEFAULT, state, "v3", reason="hold", pin=True, actor="api", now=T0)
    assert decision == NoChange("churn", "already active; pinned") and state.pinned and state.state_version == 2
    seen, state = play(DEFAULT, "CCCC", state=state)
    assert seen == ["-", "pinned", "pinned", "pinned"] and state.active == "v3" and state.breaching_runs == 4
    state, decision = manual_unpin(DEFAULT, state, actor="cli", now=T0 + 4 * EVERY)
    assert decision == NoChange("churn", "unpinned")
    assert (state.pinned, state.actor, state.state_version) == (False, "cli", 3)
    seen, state = play(DEFAULT, "C", state=state, start=5)
    assert seen == ["fallback->v2"] and state.active == "v2"


def test_pinned_fallback_is_not_restored():
    """A model pinned on a fallback stays there however clean the runs."""
    spec = spec_with(restore_after_runs=2)
    state, _ = manual_switch(spec, initial_state(spec, T0), "rules", reason="incident", pin=True, actor="api", now=T0)
    seen, state = play(spec, "OOOO", state=state, start=10)
    assert seen == ["-", "pinned", "pinned", "pinned"] and state.active == "rules"


def test_dry_run_decides_and_records_but_active_stays():
    """In dry-run mode switches are flagged dry_run, dry_run_active moves, active stays the primary."""
    spec = spec_with(dry_run=True, restore_after_runs=2)
    state = initial_state(spec, T0)
    state, _ = on_monitor_run(spec, state, outcome("C"), T0)
    state, (switch,) = on_monitor_run(spec, state, outcome("C"), T0 + EVERY)
    assert isinstance(switch, Switch) and switch.dry_run and switch.to_version == "v2"
    assert (state.active, state.dry_run_active, state.decided) == ("v3", "v2", "v2")
    assert (state.since, state.state_version) == (T0 + EVERY, 2)
    seen, state = play(spec, "CCCC", state=state, start=2)
    assert seen == ["-", "min_dwell not reached (20m of 30m)", "fallback->rules", "-"]
    assert (state.active, state.decided) == ("v3", "rules")
    seen, state = play(spec, "OOOO", state=state, start=6)
    assert seen == ["-", "restore->v3", "-", "-"]
    assert (state.active, state.dry_run_active, state.decided, state.state_version) == ("v3", None, "v3", 4)


def test_dry_run_manual_switch_is_dry_too():
    """A manual switch of a dry-run model is recorded in dry_run_active and flagged dry_run."""
    spec = spec_with(dry_run=True)
    state, switch = manual_switch(spec, initial_state(spec, T0), "v2", reason="try", pin=False, actor="api", now=T0)
    assert isinstance(switch, Switch) and switch.dry_run
    assert (state.active, state.decided) == ("v3", "v2")
    state, again = manual_switch(spec, state, "v2", reason="try", pin=False, actor="api", now=T0)
    assert again == NoChange("churn", "already active")
    state, back = manual_restore(spec, state, reason="done", actor="api", now=T0 + EVERY)
    assert isinstance(back, Switch) and back.direction == "restore" and state.dry_run_active is None


def test_dry_run_switched_off_uses_real_active():
    """When the config drops dry_run, decisions start from what is really active."""
    dry = spec_with(dry_run=True)
    _, state = play(dry, "CC")
    assert state.decided == "v2"
    seen, state = play(DEFAULT, "CC", state=state, start=10)
    assert seen == ["-", "fallback->v2"] and state.active == "v2" and state.dry_run_active is None


# --------------------------------------------------------------------------------------------------
# Manual actions
# --------------------------------------------------------------------------------------------------


def test_manual_switch_unknown_version_is_one_line_value_error():
    """Switching to a version the model does not have raises a one-line ValueError naming the choices."""
    with pytest.raises(ValueError, match="no version 'v9'") as info:
        manual_switch(DEFAULT, initial_state(DEFAULT, T0), "v9", reason="x", pin=False, actor="api", now=T0)
    assert "\n" not in str(info.value) and "v3, v2, rules" in str(info.value)


def test_manual_switch_ignores_dwell_and_is_idempotent():
    """A manual switch right after an auto switch goes through; repeating it is NoChange "already active"."""
    _, state = play(DEFAULT, "CC")
    now = T0 + 2 * EVERY
    state, switch = manual_switch(DEFAULT, state, "rules", reason="v2 is bad", pin=False, actor="cli", now=now)
    assert isinstance(switch, Switch)
    assert (switch.from_version, switch.to_version, switch.direction, switch.actor) == (
        "v2",
        "rules",
        "fallback",
        "cli",
    )
    assert (state.active, state.state_version, state.actor, state.reason) == ("rules", 3, "cli", "v2 is bad")
    again, decision = manual_switch(DEFAULT, state, "rules", reason="v2 is bad", pin=False, actor="cli", now=now)
    assert decision == NoChange("churn", "already active") and again == state


def test_manual_switch_sets_pin_and_restore_unpins():
    """An explicit switch sets pinned = pin; restore goes to the primary and unpins; unpin twice says so."""
    state = initial_state(DEFAULT, T0)
    state, _ = manual_switch(DEFAULT, state, "v2", reason="a", pin=True, actor="api", now=T0)
    assert state.pinned
    state, switch = manual_switch(DEFAULT, state, "rules", reason="b", pin=False, actor="api", now=T0)
    assert not state.pinned and isinstance(switch, Switch) and not switch.pinned
    state, _ = manual_switch(DEFAULT, state, "rules", reason="c", pin=True, actor="api", now=T0)
    state, decision = manual_switch(DEFAULT, state, "rules", reason="d", pin=False, actor="api", now=T0)
    assert decision == NoChange("churn", "already active; unpinned") and not state.pinned
    state, _ = manual_switch(DEFAULT, state, "rules", reason="e", pin=True, actor="api", now=T0)
    state, restore = manual_restore(DEFAULT, state, reason="fixed", actor="cli", now=T0 + EVERY)
    assert isinstance(restore, Switch) and restore.direction == "restore" and restore.to_version == "v3"
    assert (state.active, state.pinned, state.since) == ("v3", False, T0 + EVERY)
    state, decision = manual_unpin(DEFAULT, state, actor="api", now=T0 + EVERY)
    assert decision == NoChange("churn", "not pinned")
    _, decision = manual_restore(DEFAULT, state, reason="again", actor="api", now=T0 + EVERY)
    assert decision == NoChange("churn", "already active")


def test_auto_respects_dwell_after_manual_switch():
    """After a manual restore the automatic logic waits min_dwell before falling back again."""
    _, state = play(DEFAULT, "CC")
    state, _ = manual_restore(DEFAULT, state, reason="try again", actor="api", now=T0 + 2 * EVERY)
    seen, _ = play(DEFAULT, "CCC", state=state, start=3)
    assert seen == ["-", "min_dwell not reached (20m of 30m)", "fallback->v2"]


def test_state_of_another_model_is_rejected():
    """Passing one model's state with another model's spec is a programming error."""
    other = replace(initial_state(DEFAULT, T0), model="fraud")
    with pytest.raises(ValueError, match="fraud"):
        on_monitor_run(DEFAULT, other, outcome("C"), T0)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: SwitchRules(on=OK), id="on-ok"),
        pytest.param(lambda: SwitchRules(after_runs=0), id="after-runs-0"),
        pytest.param(lambda: SwitchRules(min_dwell=timedelta(seconds=-1)), id="negative-dwell"),
        pytest.param(lambda: SwitchRules(restore_after_runs=0), id="restore-0"),
        pytest.param(lambda: ModelSpec("m", "v1", ("v2", "v1"), SwitchRules()), id="duplicate-version"),
        pytest.param(lambda: ModelSpec("m", "", (), SwitchRules()), id="no-primary"),
    ],
)
def test_invalid_rules_and_specs_are_rejected(build):
    """Rules and specs refuse values that would make switching meaningless."""
    with pytest.raises(ValueError):
        build()


def test_versions_and_unconfigured_active():
    """versions is primary then fallbacks; a stale active version no longer configured falls back to the first."""
    assert DEFAULT.versions == ("v3", "v2", "rules")
    state = replace(initial_state(DEFAULT, T0), active="v1-retired")
    seen, state = play(DEFAULT, "CC", state=state)
    assert seen == ["-", "fallback->v2"] and state.active == "v2"


# --------------------------------------------------------------------------------------------------
# Persistence
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "script"),
    [
        pytest.param(DEFAULT, "", id="initial"),
        pytest.param(DEFAULT, ["C", "b:W", "C", "b:O"], id="switched-two-monitors"),
        pytest.param(spec_with(dry_run=True), "CC", id="dry-run"),
    ],
)
def test_state_round_trip_through_json(spec: ModelSpec, script: Sequence[str]):
    """to_dict is JSON-ready (ISO times) and from_dict restores an equal state."""
    _, state = play(spec, script)
    data = json.loads(json.dumps(state.to_dict()))
    assert data["since"] == state.since.isoformat()
    assert ModelState.from_dict(data) == state


def test_from_dict_tolerates_missing_optional_keys():
    """A stored state without the optional keys loads with their defaults."""
    data = initial_state(DEFAULT, T0).to_dict()
    for key in ("dry_run_active", "last_switch_at", "monitor_severity"):
        del data[key]
    assert ModelState.from_dict(data) == initial_state(DEFAULT, T0)


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

runs = st.tuples(st.sampled_from(["m", "b"]), st.booleans(), st.sampled_from([OK, W, C])).map(
    lambda t: ("run", MonitorOutcome(t[0], t[1], t[2], {"psi": 0.1}))
)
manual = st.one_of(
    st.tuples(st.just("switch"), st.sampled_from(["v3", "v2", "rules"]), st.booleans()),
    st.just(("restore",)),
    st.just(("unpin",)),
)
specs = st.builds(
    spec_with,
    dry_run=st.booleans(),
    on=st.sampled_from([W, C]),
    after_runs=st.integers(1, 3),
    min_dwell=st.sampled_from([timedelta(0), timedelta(minutes=15), timedelta(hours=1)]),
    restore_after_runs=st.sampled_from([None, 1, 2, 4]),
)


@settings(max_examples=300, deadline=None)
@given(
    spec=specs,
    actions=st.lists(st.one_of(runs, runs, runs, manual), max_size=40),
    gaps=st.lists(st.integers(0, 40), min_size=40, max_size=40),
)
def test_invariants_over_any_sequence(spec: ModelSpec, actions, gaps):
    """Active and decided stay configured versions, state_version never decreases, JSON reloads change nothing."""
    state = initial_state(spec, T0)
    now = T0
    for action, gap in zip(actions, gaps, strict=False):
        now += timedelta(minutes=gap)
        before = state.state_version
        if action[0] == "run":
            state, decisions = on_monitor_run(spec, state, action[1], now)
            assert len(decisions) <= 1
        elif action[0] == "switch":
            state, _ = manual_switch(spec, state, action[1], reason="r", pin=action[2], actor="api", now=now)
        elif action[0] == "restore":
            state, _ = manual_restore(spec, state, reason="r", actor="api", now=now)
        else:
            state, _ = manual_unpin(spec, state, actor="api", now=now)
        assert state.active in spec.versions and state.decided in spec.versions
        assert state.state_version >= before
        assert not spec.dry_run or state.active == spec.primary
        assert state.breaching_runs == 0 or state.clean_runs == 0
        assert ModelState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@settings(max_examples=300, deadline=None)
@given(spec=specs, outcomes=st.lists(runs, max_size=40), start=st.sampled_from(["v3", "v2", "rules"]))
def test_pinned_model_never_switches_automatically(spec: ModelSpec, outcomes, start):
    """With pinned=True no monitor run ever emits a Switch or moves the decided version."""
    state, _ = manual_switch(spec, initial_state(spec, T0), start, reason="pin", pin=True, actor="api", now=T0)
    decided = state.decided
    for i, (_, run) in enumerate(outcomes, start=1):
        state, decisions = on_monitor_run(spec, state, run, T0 + i * EVERY)
        assert not any(isinstance(d, Switch) for d in decisions)
        assert state.decided == decided and state.pinned
