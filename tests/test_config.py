"""Tests for driftwatch.config: loading, defaults, expansion, path resolution and one-line errors."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from driftwatch.config import (
    Config,
    FileSourceConfig,
    SqlSourceConfig,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)
from driftwatch.core.policy import DEFAULT_THRESHOLDS, Level, Policy, Significance
from driftwatch.core.profile import ProfileSettings
from driftwatch.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
DROP = object()  # in a patch: remove this key from the base config

BASE: dict[str, Any] = {
    "sources": {
        "files": {"kind": "parquet", "path": "data/prod/*.parquet", "timestamp_column": "event_time"},
        "db": {"kind": "sql", "url": "sqlite:///data/prod.db", "table": "features", "timestamp_column": "ts"},
    },
    "monitors": {
        "m": {
            "reference": {"path": "data/ref.parquet"},
            "source": "files",
            "schedule": {"every": "5m"},
            "window": "1h",
        }
    },
}


def make_files(root: Path) -> None:
    """Create the (empty) files and directories the configs below refer to."""
    for name in ("data/ref.parquet", "data/prod.db", "data/reference/train.parquet", "data/reference/train.csv"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    (root / "data/prod").mkdir(exist_ok=True)


def patched(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`base` with `patch` merged in recursively (DROP removes a key)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is DROP:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = patched(out[key], value)
        else:
            out[key] = value
    return out


def write(root: Path, data: dict[str, Any] | str, name: str = "driftwatch.yaml") -> Path:
    """Write `data` (a mapping or raw YAML text) as a config file under `root`."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def config_error(path: Path, env: dict[str, str] | None = None) -> str:
    """The message of the ConfigError that loading `path` raises; checks it is one line."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_full_example_config_loads(tmp_path: Path) -> None:
    """config/example.yaml validates once the files it names exist next to it."""
    make_files(tmp_path)
    config = parse_config(EXAMPLE.read_text(), file=str(EXAMPLE), base_dir=tmp_path, env={})
    assert config.file == EXAMPLE
    assert set(config.sources) == {"prod_files", "prod_csv", "prod_db", "prod_q"}
    churn = config.monitors["churn-inputs"]
    assert churn.model == "churn"
    assert churn.reference.path == tmp_path / "data/reference/train.parquet"
    assert churn.reference.format == "parquet"
    assert churn.window == timedelta(hours=1)
    assert churn.features.numeric == ("age", "income")
    assert churn.features.categorical == ("plan",)
    assert churn.policy() == Policy(
        thresholds={"psi": Level(0.1, 0.25), "ks_statistic": Level(0.1, 0.2), "ks_pvalue": Level(0.01, 0.001)},
        drift_share=Level(0.3, 0.5),
        significance=Significance(0.01, "bh"),
    )
    assert churn.profile_settings() == ProfileSettings(bins=10, binning="quantile", epsilon=1e-4)
    assert isinstance(churn.schedule.trigger(), IntervalTrigger)
    assert churn.schedule.describe() == "every 5m"
    nightly = config.monitors["churn-nightly"]
    assert isinstance(nightly.schedule.trigger(), CronTrigger)
    assert nightly.schedule.describe() == "cron 0 2 * * *"
    assert nightly.reference.format == "csv"
    prod_q = config.sources["prod_q"]
    assert isinstance(prod_q, SqlSourceConfig)
    assert prod_q.redacted_url == "postgresql+psycopg://driftwatch:***@127.0.0.1/features"
    assert "secret" not in repr(config)


def test_defaults(tmp_path: Path) -> None:
    """Omitted keys take the documented defaults; the state file sits next to the config."""
    make_files(tmp_path)
    config = load_config(write(tmp_path, BASE), env={})
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9108)
    assert config.state.path == tmp_path / "var/driftwatch.db"
    monitor = config.monitors["m"]
    assert monitor.model is None
    assert monitor.min_rows == 200
    assert monitor.timeout == timedelta(minutes=10)
    assert (monitor.features.numeric, monitor.features.categorical) == ("auto", "auto")
    assert monitor.profile_settings() == ProfileSettings()
    assert monitor.policy() == Policy()
    assert dict(monitor.policy().thresholds) == dict(DEFAULT_THRESHOLDS)


def test_thresholds_merge_over_defaults_and_null_removes(tmp_path: Path) -> None:
    """Thresholds override defaults per statistic; `null` drops one; `significance: null` turns the gate off."""
    make_files(tmp_path)
    data = patched(BASE, {"monitors": {"m": {
        "thresholds": {"ks_statistic": None, "js_distance": {"warning": 0.1, "critical": 0.2}},
        "significance": None,
    }}})  # fmt: skip
    policy = load_config(write(tmp_path, data), env={}).monitors["m"].policy()
    assert dict(policy.thresholds) == {"psi": Level(0.1, 0.25), "js_distance": Level(0.1, 0.2)}
    assert policy.significance is None


def test_env_expansion_with_default_and_dollar_escape(tmp_path: Path) -> None:
    """${VAR} takes the environment, ${VAR:-x} falls back to x, $$ is a literal $; keys stay as written."""
    make_files(tmp_path)
    data = patched(BASE, {
        "server": {"host": "${DW_HOST}", "port": "${DW_PORT:-9200}"},
        "state": {"path": "${DW_STATE:-var/dw.db}"},
        "monitors": {"m": {"model": "price$$5-${DW_HOST}"}},
    })  # fmt: skip
    config = load_config(write(tmp_path, data), env={"DW_HOST": "0.0.0.0"})
    assert config.server.host == "0.0.0.0"
    assert config.server.port == 9200
    assert config.state.path == tmp_path / "var/dw.db"
    assert config.monitors["m"].model == "price$5-0.0.0.0"


def test_paths_resolve_against_config_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths and sqlite files are resolved against the config file's directory, not the cwd."""
    make_files(tmp_path)
    data = patched(BASE, {
        "sources": {"files": {"path": "../data/prod/*.parquet"}, "db": {"url": "sqlite:///../data/prod.db"}},
        "monitors": {"m": {"reference": {"path": "../data/ref.parquet"}}},
    })  # fmt: skip
    path = write(tmp_path, data, "conf/driftwatch.yaml")
    monkeypatch.chdir(tmp_path / "data")
    config = load_config(Path("../conf/driftwatch.yaml"), env={})
    assert config.file == Path("../conf/driftwatch.yaml")
    assert config.monitors["m"].reference.path == tmp_path / "data/ref.parquet"
    files, db = config.sources["files"], config.sources["db"]
    assert isinstance(files, FileSourceConfig) and isinstance(db, SqlSourceConfig)
    assert files.path == tmp_path / "data/prod/*.parquet"
    assert db.url == f"sqlite:///{tmp_path}/data/prod.db"
    assert config.state.path == path.parent / "var/driftwatch.db"


def test_fingerprint_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    """The fingerprint is a sha256 hex that repeats for the same content and changes with it."""
    make_files(tmp_path)
    first = load_config(write(tmp_path, BASE), env={}).fingerprint
    assert len(first) == 64 and int(first, 16) >= 0
    assert load_config(write(tmp_path, BASE), env={}).fingerprint == first
    changed = patched(BASE, {"monitors": {"m": {"window": "2h"}}})
    assert load_config(write(tmp_path, changed), env={}).fingerprint != first


def test_dumped_config_validates_again(tmp_path: Path) -> None:
    """A JSON dump of a loaded config validates back to the same content (durations dump as text)."""
    make_files(tmp_path)
    config = load_config(write(tmp_path, BASE), env={})
    dumped = config.model_dump(mode="json")
    assert dumped["monitors"]["m"]["window"] == "1h"
    again = Config.model_validate(dumped)
    assert again.fingerprint == config.fingerprint
    assert again.file is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("30s", timedelta(seconds=30), id="seconds"),
        pytest.param("5m", timedelta(minutes=5), id="minutes"),
        pytest.param("1h30m", timedelta(hours=1, minutes=30), id="combined"),
        pytest.param("7d", timedelta(days=7), id="days"),
    ],
)
def test_durations_round_trip(text: str, expected: timedelta) -> None:
    """parse_duration and format_duration are inverses on canonical text."""
    assert parse_duration(text) == expected
    assert format_duration(expected) == text


@pytest.mark.parametrize("text", [pytest.param(t, id=t or "empty") for t in ["", "5", "5 minutes", "1m1h", "-5m"]])
def test_parse_duration_rejects(text: str) -> None:
    """Text that is not `<n>d<n>h<n>m<n>s` in that order is a ValueError."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param("99999999999d", "3650d", id="days-overflow"),
        pytest.param("3651d", "3650d", id="just-over"),
        pytest.param("87601h", "3650d", id="hours"),
        pytest.param("9" * 5000 + "s", "3650d", id="5000-digits"),
        pytest.param("1d" + "9" * 30 + "s", "3650d", id="long-seconds"),
    ],
)
def test_parse_duration_bounded(text: str, limit: str) -> None:
    """A duration over the limit is a ValueError naming the limit, never an OverflowError."""
    with pytest.raises(ValueError, match=f"duration must be at most {limit}, got"):
        parse_duration(text)


def test_parse_duration_limits() -> None:
    """The limit itself parses, leading zeros do not count, and a custom limit applies."""
    assert parse_duration("3650d") == timedelta(days=3650)
    assert parse_duration("0" * 40 + "1s") == timedelta(seconds=1)
    assert parse_duration("365d", at_most=timedelta(days=365)) == timedelta(days=365)
    with pytest.raises(ValueError, match="duration must be at most 1h, got '61m'"):
        parse_duration("61m", at_most=timedelta(hours=1))


def test_missing_file(tmp_path: Path) -> None:
    """A missing config file is a one-line error naming the file."""
    path = tmp_path / "nope.yaml"
    assert config_error(path) == f"{path}: file not found"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("server:\n  host: a\n  port: 1: 2\n",
                     "invalid YAML at line 3, column 10: mapping values are not allowed here", id="yaml-syntax"),
        pytest.param("- a\n- b\n", "expected a mapping at the top level, got list", id="top-level-list"),
        pytest.param("", "expected a mapping at the top level, got an empty document", id="empty"),
        pytest.param("x: &a [*a]\n",
                     "recursive YAML alias *a at line 1, column 8 (it refers to a node that contains it)",
                     id="alias-recursive-list"),
        pytest.param("sources: &a {x: *a}\n",
                     "recursive YAML alias *a at line 1, column 17 (it refers to a node that contains it)",
                     id="alias-recursive-mapping"),
        pytest.param("x: &a {y: [1, {z: *a}]}\n",
                     "recursive YAML alias *a at line 1, column 19 (it refers to a node that contains it)",
                     id="alias-recursive-deeper"),
        pytest.param("x: " + "[" * 2000 + "]" * 2000 + "\n", "YAML nested deeper than 64 levels at line 1, column 67",
                     id="nested-2000-lists"),
        pytest.param("x: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n",
                     "YAML nested deeper than 64 levels at line 1, column 256", id="nested-2000-mappings"),
        pytest.param("a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 40 + "*a" + "]" * 40 + "\n",
                     "YAML nested deeper than 64 levels at line 2, column 44 (through alias *a)", id="nested-by-alias"),
        pytest.param("".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 10)}]\n" for i in range(6)),
                     "YAML too large: more than 100000 values with aliases expanded, at line 5, column 55",
                     id="billion-laughs"),
        pytest.param("server: {port: " + "9" * 5000 + "}\n",
                     "invalid YAML value: Exceeds the limit (4300 digits) for integer string conversion",
                     id="5000-digit-integer"),
        pytest.param("server: {host: 2001-02-30}\n", "invalid YAML value: day is out of range for month",
                     id="impossible-date"),
        pytest.param("server: {host: '${A'}\n",
                     "server.host: invalid variable reference (use ${VAR} or ${VAR:-default}; $$ for a literal $)",
                     id="bad-variable-syntax"),
    ],
)  # fmt: skip
def test_unparseable_text(tmp_path: Path, text: str, expected: str) -> None:
    """YAML that cannot be read as a config mapping (or is hostile) gives a one-line error with the file name."""
    path = write(tmp_path, text)
    assert config_error(path).startswith(f"{path}: {expected}")


def test_aliases_within_limits_load(tmp_path: Path) -> None:
    """Ordinary anchors and aliases (shared, not recursive) still load."""
    make_files(tmp_path)
    text = yaml.safe_dump(BASE, sort_keys=False).replace("schedule:\n", "schedule: &every\n", 1)
    text += "  n:\n    reference: {path: data/ref.parquet}\n    source: files\n    schedule: *every\n    window: 2h\n"
    config = load_config(write(tmp_path, text.replace("monitors:\n", "monitors: \n")), env={})
    assert config.monitors["n"].schedule == config.monitors["m"].schedule


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        pytest.param({"monitors": {"m": {"scheduel": {"every": "5m"}}}}, "monitors.m: unknown key 'scheduel'",
                     id="unknown-key"),
        pytest.param({"monitors": {"m": {"window": DROP}}}, "monitors.m: missing required key 'window'",
                     id="missing-key"),
        pytest.param({"monitors": {"m": {"min_rows": "abc"}}},
                     "monitors.m.min_rows: expected an integer, got 'abc'", id="wrong-type-int"),
        pytest.param({"monitors": {"m": {"thresholds": {"psi": {"warning": "abc", "critical": 0.2}}}}},
                     "monitors.m.thresholds.psi.warning: expected a number, got 'abc'", id="wrong-type-float"),
        pytest.param({"monitors": {"m": {"psi": {"bins": "abc", "epsilon": 0}}}},
                     "monitors.m.psi.bins: expected an integer, got 'abc' (+1 more problem)", id="two-problems"),
        pytest.param({"monitors": {"m": {"psi": {"binning": "log"}}}},
                     "monitors.m.psi.binning: expected 'quantile' or 'uniform', got 'log'", id="bad-choice"),
        pytest.param({"server": {"port": 70000}}, "server.port: must be <= 65535, got 70000", id="port-range"),
        pytest.param({"monitors": {"m": {"window": "999999999d"}}},
                     "monitors.m.window: duration must be at most 365d, got '999999999d'", id="window-huge"),
        pytest.param({"monitors": {"m": {"window": "366d"}}},
                     "monitors.m.window: duration must be at most 365d, got '366d'", id="window-over-a-year"),
        pytest.param({"monitors": {"m": {"schedule": {"every": "999999999d"}}}},
                     "monitors.m.schedule.every: duration must be at most 3650d, got '999999999d'", id="every-huge"),
        pytest.param({"monitors": {"m": {"timeout": "999999999d"}}},
                     "monitors.m.timeout: duration must be at most 3650d, got '999999999d'", id="timeout-huge"),
        pytest.param({"alerting": {"defaults": {"repeat_interval": "99999999999d"}}},
                     "alerting.defaults.repeat_interval: duration must be at most 3650d, got '99999999999d'",
                     id="repeat-interval-overflow"),
        pytest.param({"alerting": {"sinks": {"s": {"kind": "log", "retry": {"max_age": "3651d"}}}}},
                     "alerting.sinks.s.retry.max_age: duration must be at most 3650d, got '3651d'", id="retry-huge"),
        pytest.param({"monitors": {"m": {"psi": {"bins": 10**12}}}},
                     "monitors.m.psi.bins: must be <= 1000, got 1000000000000", id="bins-huge"),
        pytest.param({"sources": {"files": {"path": "data/\0x"}}},
                     "sources.files.path: invalid path: it contains a NUL character", id="path-nul"),
        pytest.param({"sources": {"files": {"path": "/missing\nfile.parquet"}}},
                     "sources.files.path: file not found: /missing\\nfile.parquet", id="newline-in-path"),
        pytest.param({"monitors": {"m\u2028n": {}}},
                     "monitors.m\\u2028n: invalid name 'm\\u2028n' (use letters, digits, '_', '.', '-')",
                     id="line-separator-in-name"),
        pytest.param({"sources": {"files": {"path": "/" + "a" * 5000}}},
                     "sources.files.path: invalid path: name too long (5001 characters)", id="path-too-long"),
        pytest.param({"monitors": {"m": {"window": "5 minutes"}}},
                     "monitors.m.window: invalid duration '5 minutes' (use e.g. 30s, 5m, 1h, 7d)", id="bad-duration"),
        pytest.param({"monitors": {"m": {"timeout": "0s"}}}, "monitors.m.timeout: duration must be > 0, got '0s'",
                     id="zero-duration"),
        pytest.param({"monitors": {"m": {"schedule": {"every": DROP, "cron": "*/5 * * *"}}}},
                     "monitors.m.schedule.cron: invalid cron expression '*/5 * * *': "
                     "Wrong number of fields; got 4, expected 5", id="cron-syntax"),
        pytest.param({"monitors": {"m": {"schedule": {"cron": "*/5 * * * *"}}}},
                     "monitors.m.schedule: set exactly one of 'every' or 'cron'", id="every-and-cron"),
        pytest.param({"sources": {"db": {"table": "${DRIFT_TABLE}"}}},
                     "sources.db.table: environment variable DRIFT_TABLE is not set", id="unset-env-var"),
        pytest.param({"monitors": {"m": {"thresholds": {"psi": {"warning": 0.1, "critical": 0.05}}}}},
                     "monitors.m.thresholds.psi: critical (0.05) must be >= warning (0.1)", id="threshold-order"),
        pytest.param({"monitors": {"m": {"thresholds": {"ks_pvalue": {"warning": 0.01, "critical": 0.05}}}}},
                     "monitors.m.thresholds.ks_pvalue: critical (0.05) must be <= warning (0.01)",
                     id="pvalue-threshold-order"),
        pytest.param({"monitors": {"m": {"drift_share": {"warning": 0.5, "critical": 0.3}}}},
                     "monitors.m.drift_share: critical (0.3) must be >= warning (0.5)", id="drift-share-order"),
        pytest.param({"monitors": {"m": {"thresholds": {"psy": {"warning": 0.1, "critical": 0.2}}}}},
                     "monitors.m.thresholds: unknown statistic 'psy' (known: psi, ks_statistic, ks_pvalue, "
                     "chi2_pvalue, js_distance, wasserstein, missing_share)", id="unknown-statistic"),
        pytest.param({"monitors": {"m": {"source": "nope"}}},
                     "monitors.m.source: unknown source 'nope' (defined: files, db)", id="unknown-source"),
        pytest.param({"monitors": {"bad name": {}}},
                     "monitors.bad name: invalid name 'bad name' (use letters, digits, '_', '.', '-')",
                     id="bad-monitor-name"),
        pytest.param({"monitors": {"m": {"features": {"numeric": ["age", "first name"]}}}},
                     "monitors.m.features.numeric: invalid identifier 'first name' (use letters, digits and '_')",
                     id="bad-column"),
        pytest.param({"sources": {"db": {"table": "features; drop table x"}}},
                     "sources.db.table: invalid identifier 'features; drop table x' (use letters, digits and '_')",
                     id="bad-table"),
        pytest.param({"monitors": {"m": {"reference": {"path": "data/missing.parquet"}}}},
                     "monitors.m.reference.path: file not found: {tmp}/data/missing.parquet", id="missing-reference"),
        pytest.param({"sources": {"files": {"path": "data/nope/*.parquet"}}},
                     "sources.files.path: directory not found: {tmp}/data/nope", id="missing-glob-directory"),
        pytest.param({"sources": {"files": {"path": "data/prod/one.parquet"}}},
                     "sources.files.path: file not found: {tmp}/data/prod/one.parquet", id="missing-source-file"),
        pytest.param({"sources": {"files": {"kind": "excel"}}},
                     "sources.files.kind: expected one of 'parquet', 'csv', 'sql', got 'excel'", id="unknown-kind"),
        pytest.param({"sources": {"db": {"query": "select * from f where ts >= :start and ts < :end"}}},
                     "sources.db: set exactly one of 'table' or 'query'", id="sql-table-and-query"),
        pytest.param({"sources": {"db": {"table": DROP, "query": "select * from f where ts < :end"}}},
                     "sources.db.query: query must use the bind parameters :start and :end (missing :start)",
                     id="query-without-start"),
        pytest.param({"sources": {"db": {"url": "sqlite:///data/none.db"}}},
                     "sources.db.url: database file not found: {tmp}/data/none.db", id="missing-sqlite-file"),
        pytest.param({"sources": {"db": {"url": "hunter2 is no url"}}},
                     "sources.db.url: invalid SQLAlchemy URL (e.g. sqlite:///data/prod.db)", id="url-not-echoed"),
    ],
)  # fmt: skip
def test_invalid_config(tmp_path: Path, patch: dict[str, Any], expected: str) -> None:
    """Each invalid config gives exactly one one-line message: FILE: dotted.path: problem."""
    make_files(tmp_path)
    path = write(tmp_path, patched(BASE, patch))
    assert config_error(path) == f"{path}: {expected.replace('{tmp}', str(tmp_path))}"
