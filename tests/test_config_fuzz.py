"""Fuzzed configs through `driftwatch validate` in-process: only exit 0 or 2, and a failure is one line."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from datasets import config_text, write_dataset
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from driftwatch.cli import main

EXTRA = """
alerting:
  sinks:
    log: {kind: log}
    hook:
      {kind: webhook, url: "http://127.0.0.1:9/hook", timeout: 3s, retry: {initial: 1s, max_interval: 1m, max_age: 1h}}
  defaults: {for_runs: 2, resolve_after_runs: 2, repeat_interval: 4h, min_severity: warning}
models:
  churn:
    primary: v1
    fallbacks: [v2]
    switch: {"on": critical, after_runs: 2, min_dwell: 30m}
    restore: {after_runs: 6}
    actuators: [{kind: file, path: routes/churn.json}, {kind: webhook, url: "http://127.0.0.1:9/route", timeout: 5s}]
"""

# Keys that exist somewhere in a config, so that mutations reach deep into validation and not just "unknown key".
KEYS = [
    "server",
    "host",
    "port",
    "state",
    "path",
    "sources",
    "kind",
    "url",
    "table",
    "query",
    "timestamp_column",
    "monitors",
    "model",
    "reference",
    "source",
    "schedule",
    "every",
    "cron",
    "window",
    "min_rows",
    "features",
    "numeric",
    "categorical",
    "psi",
    "bins",
    "binning",
    "epsilon",
    "thresholds",
    "psi",
    "ks_pvalue",
    "warning",
    "critical",
    "drift_share",
    "significance",
    "alpha",
    "correction",
    "timeout",
    "alerts",
    "sinks",
    "for_runs",
    "resolve_after_runs",
    "repeat_interval",
    "min_severity",
    "alerting",
    "defaults",
    "retry",
    "initial",
    "max_interval",
    "max_age",
    "models",
    "primary",
    "fallbacks",
    "switch",
    "on",
    "after_runs",
    "min_dwell",
    "restore",
    "dry_run",
    "actuators",
    "api_token",
    "secret",
    "external_url",
]
WEIRD_TEXT = [
    "99999999999d",
    "999999999d",
    "3650d",
    "3651d",
    "365d",
    "366d",
    "87601h",
    "0s",
    "-5m",
    "1h30m",
    "9" * 30 + "s",
    "0" * 40 + "1s",
    "${DW_FUZZ_UNSET}",
    "${DW_FUZZ_UNSET:-5m}",
    "$$",
    "${",
    "\0",
    "auto",
    "a" * 5000,
    "../../../etc/passwd",
    "prod/*.parquet",
    "reference/train.parquet",
    "sqlite:///:memory:",
    "sqlite:///prod.db",
    "postgresql://u:p@127.0.0.1:99999999/x",
    "0 0 31 2 *",
    "*/0 * * * *",
    "log",
    "parquet",
    "sql",
    "csv",
    "webhook",
    "critical",
    "nan",
    "inf",
    "1e999",
    "from-files",
    "churn",
    "v1",
    "",
    "a\nb",
    "prod/x\n.parquet",
    "reference/\u2028.parquet",
    "sqlite:///a\rb.db",
    "x\x85y",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 10**4000, -1, 0, 1, 65536]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(WEIRD_TEXT),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _addresses(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every (container path, key) in `node`, as tuples."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*at, key)
            yield from _addresses(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*at, i)
            yield from _addresses(value, (*at, i))


def _containers(node: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths of every mapping in `node` (the root is `()`)."""
    if isinstance(node, dict):
        yield at
        for key, value in node.items():
            yield from _containers(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _containers(value, (*at, i))


def _get(node: Any, at: tuple[Any, ...]) -> Any:
    for part in at:
        node = node[part]
    return node


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` after 1 to 4 replacements, insertions or deletions of values."""
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "replace", "insert", "delete"]))
        if op == "insert":
            container = _get(data, draw(st.sampled_from(list(_containers(data)))))
            container[draw(st.sampled_from(KEYS))] = draw(values)
            continue
        addresses = list(_addresses(data))
        if not addresses:
            break
        address = draw(st.sampled_from(addresses))
        parent = _get(data, address[:-1])
        if op == "delete":
            del parent[address[-1]]
        else:
            parent[address[-1]] = draw(values)
    return data


def _nest(depth: int, inner: str) -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def documents(draw: st.DrawFn, base: dict[str, Any]) -> str:
    """YAML text: a mutated config, then maybe a text-level attack (aliases, nesting, stray characters)."""
    text = yaml.safe_dump(draw(mutated(base)), sort_keys=False, allow_unicode=True, width=10**6)
    lines = text.splitlines(keepends=True)
    attack = draw(st.sampled_from(["none", "none", "recursive", "nested", "laughs", "alias", "char", "cut"]))
    if attack == "recursive":
        key = draw(st.sampled_from(["x", "sources", "monitors", "alerting"]))
        form = draw(st.sampled_from(["&a [*a]", "&a {x: *a}", "&a [[1, *a]]", "&a {y: [*a]}"]))
        text = f"{key}: {form}\n" + text if key == "x" else text.replace(f"{key}:", f"{key}: {form}\n_old_{key}:", 1)
    elif attack == "nested":
        depth = draw(st.sampled_from([1, 10, 63, 64, 65, 100, 2000, 5000]))
        text += f"{draw(st.sampled_from(KEYS))}: {_nest(depth, draw(st.sampled_from(['', '1', '{a: 1}'])))}\n"
    elif attack == "laughs":
        width, levels = draw(st.integers(2, 12)), draw(st.integers(1, 9))
        bomb = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
        bomb += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
        text = "\n".join(bomb) + "\n" + text
    elif attack == "alias" and lines:
        i = draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[:i]) + lines[i].replace(": ", ": &v ", 1) + "".join(lines[i + 1 :])
        text += f"{draw(st.sampled_from(KEYS))}: *v\n"
    elif attack == "char":
        i = draw(st.integers(0, len(text)))
        text = (
            text[:i]
            + draw(
                st.sampled_from(
                    [
                        "\t",
                        "&",
                        "*",
                        "!",
                        "!!binary ",
                        "!!set ",
                        "?",
                        "{",
                        "[",
                        "'",
                        '"',
                        "\x01",
                        "---\n",
                        "%YAML 1.1\n",
                        "<<: ",
                    ]
                )
            )
            + text[i:]
        )
    elif attack == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the test dataset."""
    root = tmp_path_factory.mktemp("fuzz")
    write_dataset(root)
    return root


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    """A valid config using every section, as a mapping."""
    data = yaml.safe_load(config_text(0) + EXTRA)
    data["monitors"]["from-files"]["model"] = "churn"
    data["monitors"]["from-files"]["alerts"] = {"sinks": ["log"], "for_runs": 3, "repeat_interval": "1d"}
    data["monitors"]["from-db"]["timeout"] = "5m"
    data["monitors"]["from-db"]["psi"] = {"bins": 20, "binning": "uniform", "epsilon": 0.001}
    data["monitors"]["from-db"]["thresholds"] = {"psi": {"warning": 0.1, "critical": 0.2}, "js_distance": None}
    data["monitors"]["from-table"]["schedule"] = {"cron": "*/5 * * * *"}
    return data


def validate(workdir: Path, text: str) -> tuple[int, str]:
    """`driftwatch validate -c FILE` in this process: (exit code, stderr); the root logger is put back after."""
    path = workdir / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["validate", "-c", str(path)])
    finally:
        root.handlers[:], root.level = handlers, level
    return code, stderr.getvalue()


def assert_clean(code: int, stderr: str, text: str) -> None:
    """Exit 0 with nothing on stderr, or exit 2 with one `driftwatch: error:` line."""
    if code == 0:
        assert stderr == "", (stderr, text[:2000])
        return
    assert code == 2, (code, stderr, text[:2000])
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), (stderr, text[:2000])
    assert lines[0].startswith("driftwatch: error: "), (stderr, text[:2000])
    assert "Traceback" not in stderr


def test_base_config_is_valid(workdir: Path, base: dict[str, Any]) -> None:
    """The config the fuzzer mutates validates with exit 0, so mutations start from a valid point."""
    code, stderr = validate(workdir, yaml.safe_dump(base, sort_keys=False))
    assert (code, stderr) == (0, "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("x: &a [*a]\n", "recursive YAML alias *a at line 1, column 8", id="recursive-list"),
        pytest.param("sources: &a {x: *a}\n", "recursive YAML alias *a at line 1, column 17", id="recursive-map"),
        pytest.param("x: " + _nest(2000, "") + "\n", "YAML nested deeper than 64 levels", id="nested-2000"),
        pytest.param("\n".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 10)}]" for i in range(9)),
                     "YAML too large: more than 100000 values with aliases expanded", id="billion-laughs"),
    ],
)  # fmt: skip
def test_hostile_yaml_in_process(workdir: Path, text: str, expected: str) -> None:
    """Hostile YAML gives exit 2 and one line naming the problem (in-process, like the fuzzer)."""
    code, stderr = validate(workdir, text)
    assert_clean(code, stderr, text)
    assert code == 2 and expected in stderr


@settings(
    max_examples=520,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzzed_configs_exit_0_or_2_with_one_line(workdir: Path, base: dict[str, Any], data: st.DataObject) -> None:
    """520 mutated configs (wrong types, huge numbers, odd strings, aliases, deep nesting): exit 0/2, one line."""
    text = data.draw(documents(base), label="config")
    code, stderr = validate(workdir, text)
    event(f"exit {code}")
    assert_clean(code, stderr, text)


def test_largest_durations_validate(workdir: Path, base: dict[str, Any]) -> None:
    """Durations up to the limits (window 365d, others 3650d) validate with exit 0."""
    rng = random.Random(0)
    for _ in range(5):
        data = copy.deepcopy(base)
        data["monitors"]["from-files"]["window"] = rng.choice(["1h", "365d", "1d12h"])
        data["monitors"]["from-files"]["schedule"] = {"every": rng.choice(["1s", "3650d", "5m"])}
        data["monitors"]["from-files"]["timeout"] = "3650d"
        data["alerting"]["defaults"]["repeat_interval"] = "3650d"
        code, stderr = validate(workdir, yaml.safe_dump(data, sort_keys=False))
        assert (code, stderr) == (0, "")
