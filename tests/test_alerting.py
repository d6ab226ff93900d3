"""The pure alert lifecycle: scripted runs on a fake clock, report observations, persistence and properties."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftwatch.core import build_profile, compare
from driftwatch.core.alerting import (
    AlertKey,
    AlertRules,
    AlertState,
    Notify,
    Observation,
    model_switched_rules,
    observe_report,
    step,
)
from driftwatch.core.report import Report, Severity

T0 = datetime(2024, 3, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
KEY = AlertKey("churn", "age", "FeatureDrift")
OK, W, C, H = Severity.OK, Severity.WARNING, Severity.CRITICAL, None  # H: the run did not observe the key

Script = Sequence[Severity | None]


def play(
    script: Script, rules: AlertRules, *, every: timedelta = HOUR, key: AlertKey = KEY
) -> tuple[list[str | None], dict[AlertKey, AlertState]]:
    """Run `script` (one severity per run, None = no observation) on a fake clock; the reason of each run."""
    states: dict[AlertKey, AlertState] = {}
    reasons: list[str | None] = []
    for i, severity in enumerate(script):
        now = T0 + i * every
        observations = [] if severity is None else [Observation(key, severity, {"run": i})]
        states, notifications = step(states, observations, now, rules)
        assert len(notifications) <= 1
        reasons.append(notifications[0].reason if notifications else None)
    return reasons, states


# --------------------------------------------------------------------------------------------------
# Scripted lifecycles
# --------------------------------------------------------------------------------------------------

DEFAULT = AlertRules()


@pytest.mark.parametrize(
    ("rules", "script", "expected"),
    [
        pytest.param(DEFAULT, [W, W, W], [None, "fired", "refresh"], id="pending-then-firing-after-for-runs"),
        pytest.param(AlertRules(for_runs=1), [W], ["fired"], id="for-runs-1-fires-at-once"),
        pytest.param(AlertRules(for_runs=3), [W, W, W], [None, None, "fired"], id="for-runs-3"),
        pytest.param(DEFAULT, [W, OK, W, OK, W, OK, W], [None] * 7, id="flapping-never-fires"),
        pytest.param(DEFAULT, [W, W, OK, OK], [None, "fired", "refresh", "resolved"], id="resolve-after-2-clean"),
        pytest.param(
            AlertRules(resolve_after_runs=3),
            [W, W, OK, OK, OK],
            [None, "fired", "refresh", "refresh", "resolved"],
            id="resolve-after-3-clean",
        ),
        pytest.param(
            DEFAULT,
            [W, W, OK, W, OK, OK],
            [None, "fired", "refresh", "refresh", "refresh", "resolved"],
            id="breach-resets-clean-count",
        ),
        pytest.param(
            DEFAULT,
            [W, W, OK, OK, W, W],
            [None, "fired", "refresh", "resolved", None, "fired"],
            id="fires-again-after-resolving",
        ),
        pytest.param(
            DEFAULT,
            [W] * 7,
            [None, "fired", "refresh", "refresh", "refresh", "repeat", "refresh"],
            id="repeat-after-interval-not-before",
        ),
        pytest.param(
            DEFAULT, [W, W, C, C, C], [None, "fired", "escalated", "refresh", "refresh"], id="escalation-notifies-once"
        ),
        pytest.param(
            DEFAULT,
            [C, C, W, W, C],
            [None, "fired", "refresh", "refresh", "refresh"],
            id="de-escalation-and-back-silent",
        ),
        pytest.param(AlertRules(min_severity=C), [W, W, W, W], [None] * 4, id="min-critical-ignores-warnings"),
        pytest.param(
            AlertRules(min_severity=C), [C, W, C, C], [None, None, None, "fired"], id="min-critical-warning-is-clean"
        ),
        pytest.param(DEFAULT, [W, H, W], [None, None, "fired"], id="pending-holds-when-unobserved"),
        pytest.param(
            DEFAULT,
            [W, W, H, H, OK, H, OK],
            [None, "fired", "refresh", "refresh", "refresh", "refresh", "resolved"],
            id="firing-holds-and-refreshes",
        ),
        pytest.param(
            AlertRules(repeat_interval=timedelta(0)),
            [W, W, W],
            [None, "fired", "repeat"],
            id="zero-repeat-interval-repeats-every-run",
        ),
    ],
)
def test_scripted_lifecycle(rules: AlertRules, script: Script, expected: list[str | None]):
    """Each run of the script yields the expected notification reason (hourly runs)."""
    reasons, _ = play(script, rules)
    assert reasons == expected


def test_repeat_exactly_at_interval_and_counted_from_last_notification():
    """With 90-minute runs and a 3h interval, repeats come 3h after the previous notification."""
    reasons, _ = play([W] * 8, AlertRules(repeat_interval=timedelta(hours=3)), every=timedelta(minutes=90))
    assert reasons == [None, "fired", "refresh", "repeat", "refresh", "repeat", "refresh", "repeat"]


def test_escalation_after_repeat_at_lower_severity():
    """A repeat sent at a de-escalated warning makes a later critical an escalation again."""
    rules = AlertRules(repeat_interval=2 * HOUR)
    reasons, _ = play([C, C, W, W, C], rules)
    assert reasons == [None, "fired", "refresh", "repeat", "escalated"]


def test_firing_state_fields():
    """A firing state records start, fire time, last notification, counts and the latest breaching details."""
    _, states = play([W, W, C, OK], DEFAULT)
    state = states[KEY]
    assert state.phase == "firing"
    assert (state.started_at, state.fired_at, state.last_notified_at) == (T0, T0 + HOUR, T0 + 2 * HOUR)
    assert (state.severity, state.notified_severity) == (C, C)
    assert (state.breaching_runs, state.clean_runs) == (0, 1)
    assert state.details == {"run": 2}


def test_notifications_carry_state_and_resolved_with():
    """Firing notifications carry the breaching details; resolved adds the clean details under resolved_with."""
    rules = AlertRules(for_runs=1, resolve_after_runs=1)
    states, fired = step({}, [Observation(KEY, C, {"psi": 0.4})], T0, rules)
    assert fired == (Notify(KEY, "firing", C, "fired", T0, T0, {"psi": 0.4}),)
    states, resolved = step(states, [Observation(KEY, OK, {"psi": 0.01})], T0 + HOUR, rules)
    assert states == {}
    assert resolved == (
        Notify(KEY, "resolved", C, "resolved", T0 + HOUR, T0, {"psi": 0.4, "resolved_with": {"psi": 0.01}}),
    )


def test_model_switched_fires_and_resolves_at_once_and_a_change_notifies_again():
    """ModelSwitched rules fire and resolve on one run; a `changed` observation repeats before the interval."""
    key = AlertKey("churn-inputs", "churn", "ModelSwitched")
    rules = model_switched_rules(AlertRules(for_runs=3, resolve_after_runs=4, repeat_interval=4 * HOUR, min_severity=C))
    assert (rules.for_runs, rules.resolve_after_runs, rules.repeat_interval, rules.min_severity) == (1, 1, 4 * HOUR, W)
    script = [(C, False), (C, False), (C, True), (C, False), (OK, False)]
    states: dict[AlertKey, AlertState] = {}
    reasons = []
    for i, (severity, changed) in enumerate(script):
        states, notifications = step(states, [Observation(key, severity, {"to": i}, changed)], T0 + i * HOUR, rules)
        reasons.append(notifications[0].reason if notifications else None)
    assert reasons == ["fired", "refresh", "repeat", "refresh", "resolved"]
    assert states == {}


def test_step_returns_fresh_dict_with_untouched_keys_and_sorted_notifications():
    """Unobserved keys are carried over; the input is not mutated; notifications are sorted by key."""
    rules = AlertRules(for_runs=1)
    keys = [
        AlertKey("b", "x", "FeatureDrift"),
        AlertKey("a", "dataset", "DatasetDrift"),
        AlertKey("a", "x", "FeatureDrift"),
    ]
    states, notifications = step({}, [Observation(k, W, {}) for k in keys], T0, rules)
    assert [n.key for n in notifications] == sorted(keys)
    before = dict(states)
    other = AlertKey("c", "monitor", "MonitorFailing")
    new_states, notifications = step(states, [Observation(other, OK, {})], T0 + HOUR, rules)
    assert new_states is not states and states == before
    assert new_states == states
    assert [(n.key, n.reason) for n in notifications] == [(k, "refresh") for k in sorted(keys)]


def test_step_rejects_duplicate_observations():
    """Two observations of one key in one run are a programming error."""
    with pytest.raises(ValueError, match="two observations"):
        step({}, [Observation(KEY, W, {}), Observation(KEY, OK, {})], T0, DEFAULT)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"for_runs": 0}, id="for-runs-0"),
        pytest.param({"resolve_after_runs": 0}, id="resolve-0"),
        pytest.param({"repeat_interval": timedelta(seconds=-1)}, id="negative-interval"),
        pytest.param({"min_severity": Severity.OK}, id="min-severity-ok"),
    ],
)
def test_rules_reject_invalid_values(kwargs):
    """AlertRules refuses values that would make the lifecycle meaningless."""
    with pytest.raises(ValueError):
        AlertRules(**kwargs)


# --------------------------------------------------------------------------------------------------
# observe_report on real reports, and runs that fail or lack data
# --------------------------------------------------------------------------------------------------

WINDOW = (T0, T0 + HOUR)


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(7)
    reference = {"x": rng.normal(0, 1, 1000), "y": rng.normal(0, 1, 1000), "c": rng.choice(["a", "b"], 1000)}
    return build_profile(reference, numeric=["x", "y"], categorical=["c"])


def _report(profile, *, shift: float, y_missing: bool = False, seed: int = 3) -> Report:
    rng = np.random.default_rng(seed)
    y = np.full(1000, np.nan) if y_missing else rng.normal(0, 1, 1000)
    batch = {"x": rng.normal(shift, 1, 1000), "y": y, "c": rng.choice(["a", "b"], 1000)}
    return compare(profile, batch, monitor="churn", window=WINDOW)


def test_observe_report_ok_run(profile):
    """An ok run observes each judged feature, the dataset, and a clean MonitorFailing; unjudged ones are listed."""
    report = _report(profile, shift=1.0, y_missing=True)
    observations = {o.key: o for o in observe_report("churn", report, "ok", None)}
    assert set(observations) == {
        AlertKey("churn", "x", "FeatureDrift"),
        AlertKey("churn", "c", "FeatureDrift"),
        AlertKey("churn", "dataset", "DatasetDrift"),
        AlertKey("churn", "monitor", "MonitorFailing"),
    }
    x = observations[AlertKey("churn", "x", "FeatureDrift")]
    assert x.severity == report.feature("x").severity == C
    assert set(x.details) == {
        "psi",
        "ks_statistic",
        "ks_pvalue",
        "chi2_pvalue",
        "js_distance",
        "wasserstein",
        "missing_share",
        "adjusted_pvalue",
        "breaches",
        "window",
    }
    assert x.details["psi"] == pytest.approx(report.feature("x").stats.psi)
    assert x.details["breaches"] == {"psi": "critical", "ks_statistic": "critical"}
    assert x.details["window"] == {"start": T0.isoformat(), "end": (T0 + HOUR).isoformat()}
    assert observations[AlertKey("churn", "c", "FeatureDrift")].severity == OK
    dataset = observations[AlertKey("churn", "dataset", "DatasetDrift")]
    assert dataset.severity == report.severity
    assert dataset.details["drift_share"] == pytest.approx(0.5)
    assert dataset.details["rows"] == {"reference": 1000, "current": 1000}
    assert dataset.details["drifted_features"] == ["x"]
    assert dataset.details["unjudged_features"] == ["y"]
    monitor = observations[AlertKey("churn", "monitor", "MonitorFailing")]
    assert monitor.severity == OK
    json.dumps([o.details for o in observations.values()])  # JSON-ready


@pytest.mark.parametrize(
    ("outcome", "severity", "details"),
    [
        pytest.param("error", C, {"error": "boom"}, id="error-critical"),
        pytest.param("insufficient_data", W, {"reason": "boom"}, id="insufficient-warning"),
    ],
)
def test_observe_report_failed_run_observes_only_monitor(outcome, severity, details):
    """A failed or data-less run observes MonitorFailing only."""
    observations = observe_report("churn", None, outcome, "boom")
    assert observations == (Observation(AlertKey("churn", "monitor", "MonitorFailing"), severity, details),)


def test_observe_report_rejects_unknown_outcome_and_missing_report():
    """An unknown outcome, or an ok outcome without a report, raises ValueError."""
    with pytest.raises(ValueError, match="outcome"):
        observe_report("churn", None, "never", None)
    with pytest.raises(ValueError, match="report"):
        observe_report("churn", None, "ok", None)


def _run(states, profile, outcome: str, i: int, rules: AlertRules, *, shift: float = 1.0, y_missing: bool = False):
    report = _report(profile, shift=shift, y_missing=y_missing, seed=i) if outcome == "ok" else None
    return step(states, observe_report("churn", report, outcome, "boom"), T0 + i * HOUR, rules)


def _reasons(notifications) -> dict[str, str]:
    return {f"{n.key.subject}/{n.key.alertname}": n.reason for n in notifications if n.reason != "refresh"}


def test_drift_alerts_hold_through_error_and_insufficient_runs(profile):
    """Error and no-data runs neither confirm nor clear drift; MonitorFailing counts them instead."""
    rules = AlertRules()
    states, notes = _run({}, profile, "ok", 0, rules)
    assert notes == () and states[AlertKey("churn", "x", "FeatureDrift")].phase == "pending"
    states, notes = _run(states, profile, "error", 1, rules)
    assert notes == ()
    states, notes = _run(states, profile, "insufficient_data", 2, rules)
    assert _reasons(notes) == {"monitor/MonitorFailing": "fired"}
    assert states[AlertKey("churn", "x", "FeatureDrift")].breaching_runs == 1
    states, notes = _run(states, profile, "ok", 3, rules)
    assert _reasons(notes) == {"x/FeatureDrift": "fired", "dataset/DatasetDrift": "fired"}
    states, notes = _run(states, profile, "error", 4, rules)
    assert {n.key.subject: n.reason for n in notes} == {"x": "refresh", "dataset": "refresh", "monitor": "escalated"}


def test_monitor_failing_fires_after_for_runs_and_resolves_after_clean_runs(profile):
    """MonitorFailing fires after for_runs failed runs and resolves after resolve_after_runs ok runs."""
    rules = AlertRules(for_runs=3, resolve_after_runs=2)
    key = AlertKey("churn", "monitor", "MonitorFailing")
    seen = []
    states: dict[AlertKey, AlertState] = {}
    for i, outcome in enumerate(["error", "error", "error", "error", "ok", "ok"]):
        states, notes = _run(states, profile, outcome, i, rules, shift=0.0)
        seen.append(next((n.reason for n in notes if n.key == key), None))
    assert seen == [None, None, "fired", "refresh", "refresh", "resolved"]
    assert key not in states


def test_removed_feature_resolves_but_unjudged_feature_holds(profile):
    """A firing feature missing from an ok report counts as clean; one in the report without usable data holds."""
    rules = AlertRules(for_runs=1, resolve_after_runs=2)
    gone = AlertKey("churn", "dropped", "FeatureDrift")
    y = AlertKey("churn", "y", "FeatureDrift")
    states, _ = step({}, [Observation(gone, C, {"psi": 0.5}), Observation(y, W, {"psi": 0.2})], T0, rules)
    reasons = []
    for i in (1, 2):
        states, notes = _run(states, profile, "ok", i, rules, shift=0.0, y_missing=True)
        reasons.append({n.key.subject: n.reason for n in notes if n.key in (gone, y)})
    assert reasons == [{"dropped": "refresh", "y": "refresh"}, {"dropped": "resolved", "y": "refresh"}]
    assert gone not in states and states[y].breaching_runs == 1
    resolved = next(n for n in notes if n.key == gone)
    assert resolved.details == {"psi": 0.5, "resolved_with": {"reason": "feature no longer monitored"}}


def test_removed_feature_only_under_its_own_monitor():
    """An ok run of another monitor does not clear this monitor's feature alerts."""
    rules = AlertRules(for_runs=1)
    states, _ = step({}, [Observation(KEY, W, {})], T0, rules)
    other = Observation(AlertKey("other", "dataset", "DatasetDrift"), OK, {"unjudged_features": []})
    states, notes = step(states, [other], T0 + HOUR, rules)
    assert states[KEY].clean_runs == 0 and [n.reason for n in notes] == ["refresh"]


# --------------------------------------------------------------------------------------------------
# Persistence and notification ids
# --------------------------------------------------------------------------------------------------


def test_alert_key_str_round_trip_and_malformed():
    """AlertKey survives to_str/from_str; malformed strings raise ValueError."""
    assert AlertKey.from_str(KEY.to_str()) == KEY
    assert KEY.to_str() == "churn/age/FeatureDrift"
    for bad in ["", "churn/age", "churn//FeatureDrift", "/age/FeatureDrift", "churn/age/NoSuchAlert"]:
        with pytest.raises(ValueError):
            AlertKey.from_str(bad)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param([W], id="pending"),
        pytest.param([W, C, OK], id="firing-escalated-one-clean"),
    ],
)
def test_state_round_trip_through_json(script):
    """to_dict is JSON-ready and from_dict restores an equal state."""
    rules = AlertRules()
    states: dict[AlertKey, AlertState] = {}
    for i, severity in enumerate(script):
        details = {
            "psi": 0.3,
            "breaches": {"psi": "warning"},
            "window": {"start": T0.isoformat()},
            "drifted": ("a", "b"),
            "rows": np.int64(10),
            "run": i,
        }
        states, _ = step(states, [Observation(KEY, severity, details)], T0 + i * HOUR, rules)
    state = states[KEY]
    data = json.loads(json.dumps(state.to_dict()))
    assert data["severity"] in ("warning", "critical") and data["started_at"] == T0.isoformat()
    assert AlertState.from_dict(data) == state


def test_state_from_dict_rejects_unknown_phase():
    """A stored state with an unknown phase raises ValueError."""
    _, states = play([W], DEFAULT)
    data = states[KEY].to_dict() | {"phase": "exploded"}
    with pytest.raises(ValueError, match="phase"):
        AlertState.from_dict(data)


def test_notification_id_deterministic_and_distinct():
    """The id is the documented sha256 prefix; equal notifications share it, repeats at other times do not."""
    one = Notify(KEY, "firing", W, "repeat", T0 + 5 * HOUR, T0, {"a": 1})
    same = Notify(KEY, "firing", W, "repeat", T0 + 5 * HOUR, T0, {"a": 2})
    later = Notify(KEY, "firing", W, "repeat", T0 + 9 * HOUR, T0, {"a": 1})
    text = f"churn/age/FeatureDrift|{T0.isoformat()}|firing|repeat|{(T0 + 5 * HOUR).isoformat()}"
    assert one.notification_id == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert len(one.notification_id) == 32
    assert one.notification_id == same.notification_id
    assert one.notification_id != later.notification_id


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

severities = st.sampled_from([OK, W, C, None])
rules_strategy = st.builds(
    AlertRules,
    for_runs=st.integers(1, 4),
    resolve_after_runs=st.integers(1, 4),
    repeat_interval=st.sampled_from([timedelta(0), HOUR, 3 * HOUR, timedelta(days=1)]),
    min_severity=st.sampled_from([W, C]),
)


@settings(max_examples=300, deadline=None)
@given(script=st.lists(severities, max_size=40), rules=rules_strategy)
def test_fired_and_resolved_alternate(script, rules):
    """For any severities, fired and resolved alternate (fired first); only a firing alert notifies at all."""
    states: dict[AlertKey, AlertState] = {}
    firing = False
    for i, severity in enumerate(script):
        observations = [] if severity is None else [Observation(KEY, severity, {"run": i})]
        states, notes = step(states, observations, T0 + i * HOUR, rules)
        reasons = [n.reason for n in notes]
        if "fired" in reasons:
            assert not firing
            firing = True
        elif "resolved" in reasons:
            assert firing
            firing = False
        else:
            assert bool(reasons) == firing  # while firing every run notifies (refresh at least); else nothing
        assert (KEY in states and states[KEY].phase == "firing") == firing


@settings(max_examples=200, deadline=None)
@given(script=st.lists(severities, max_size=30), rules=rules_strategy)
def test_restart_through_json_changes_nothing(script, rules):
    """Storing and reloading the states (JSON) between every run gives the same notifications."""
    plain: dict[AlertKey, AlertState] = {}
    stored: dict[AlertKey, AlertState] = {}
    for i, severity in enumerate(script):
        observations = [] if severity is None else [Observation(KEY, severity, {"run": i})]
        now = T0 + i * HOUR
        plain, expected = step(plain, observations, now, rules)
        stored, got = step(stored, observations, now, rules)
        stored = {
            AlertKey.from_str(k): AlertState.from_dict(json.loads(v))
            for k, v in {k.to_str(): json.dumps(s.to_dict()) for k, s in stored.items()}.items()
        }
        assert [n.notification_id for n in got] == [n.notification_id for n in expected]
        assert stored == plain
