"""Reading a config: YAML with 1.2 booleans, `${VAR}` expansion, validation, and one-line `ConfigError`s.

Before the YAML is built into Python objects, its event stream is checked (without recursion) for what would
otherwise crash or exhaust the loader: nesting deeper than `MAX_DEPTH`, an alias inside the node it refers to
(`x: &a [*a]`), and more than `MAX_VALUES` values once aliases are expanded ("billion laughs").
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from driftwatch.config.base import ProblemAt
from driftwatch.config.root import Config
from driftwatch.errors import ConfigError

#: The deepest nesting of mappings and lists a config may have (aliases expanded).
MAX_DEPTH = 64
#: The most values (scalars, mappings and lists) a config may hold once its aliases are expanded.
MAX_VALUES = 100_000

_VARIABLE = re.compile(r"\$\$|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")


class _YamlLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """`yaml.SafeLoader` with YAML 1.2 booleans: only true/false, so `switch: {on: critical}` keeps its `on` key."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the YAML file at `path` (`env` defaults to os.environ)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("cannot read: not UTF-8 text", file=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror or err}", file=str(path)) from None
    base_dir = Path(os.path.abspath(path)).parent
    return parse_config(text, file=str(path), base_dir=base_dir, env=os.environ if env is None else env)


def parse_config(text: str, *, file: str = "<string>", base_dir: Path, env: Mapping[str, str]) -> Config:
    """Validate YAML `text`; `file` names it in messages (and becomes `Config.file` unless `<...>`)."""
    try:
        _check_shape(text, file)
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {' '.join(str(err.problem).split())}", file=file) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML: {' '.join(str(err).split())}", file=file) from None
    except (ValueError, OverflowError) as err:  # a scalar the constructor cannot build, e.g. a 5,000-digit integer
        raise ConfigError(f"invalid YAML value: {' '.join(str(err).split())}", file=file) from None
    if not isinstance(data, dict):
        got = "an empty document" if data is None else type(data).__name__
        raise ConfigError(f"expected a mapping at the top level, got {got}", file=file)
    data = _expand(data, env, (), file)
    own_file = None if file.startswith("<") and file.endswith(">") else Path(file)
    try:
        return Config.model_validate(data, context={"base_dir": Path(base_dir), "file": own_file})
    except ValidationError as err:
        # A typo shows up as an unknown key AND a missing one: name the typo first.
        errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        path, problem = _describe(errors[0], data)
        more = f" (+{len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(_one_line(problem) + more, file=file, path=path) from None


def _check_shape(text: str, file: str) -> None:
    """Refuse YAML nested deeper than MAX_DEPTH, with a recursive alias, or over MAX_VALUES values expanded."""
    open_nodes: list[list[Any]] = []  # per open mapping or list: [anchor, values, depth of its deepest child]
    anchored: dict[str, tuple[int, int]] = {}  # anchor -> (values, depth) of the node it names

    def where(event: yaml.Event) -> str:
        return f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"

    def add(values: int, depth: int, event: yaml.Event) -> None:
        if len(open_nodes) + depth > MAX_DEPTH:
            through = f" (through alias *{event.anchor})" if isinstance(event, yaml.AliasEvent) else ""
            raise ConfigError(f"YAML nested deeper than {MAX_DEPTH} levels at {where(event)}{through}", file=file)
        if open_nodes:
            top = open_nodes[-1]
            top[1] += values
            top[2] = max(top[2], depth)
            values = top[1]
        if values > MAX_VALUES:
            raise ConfigError(
                f"YAML too large: more than {MAX_VALUES} values with aliases expanded, at {where(event)}", file=file
            )

    for event in yaml.parse(text, Loader=_YamlLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            add(0, 1, event)
            open_nodes.append([event.anchor, 1, 0])
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, values, depth = open_nodes.pop()
            if anchor is not None:
                anchored[anchor] = (values, depth + 1)
            add(values, depth + 1, event)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                anchored[event.anchor] = (1, 0)
            add(1, 0, event)
        elif isinstance(event, yaml.AliasEvent):
            if any(node[0] == event.anchor for node in open_nodes):
                raise ConfigError(
                    f"recursive YAML alias *{event.anchor} at {where(event)} (it refers to a node that contains it)",
                    file=file,
                )
            values, depth = anchored.get(event.anchor, (1, 0))  # an undefined anchor: the loader names it below
            add(values, depth, event)


def _expand(node: Any, env: Mapping[str, str], at: tuple[str | int, ...], file: str) -> Any:
    """`node` with `${VAR}`, `${VAR:-default}` and `$$` expanded in string values; keys become strings."""
    if isinstance(node, dict):
        return {str(key): _expand(value, env, (*at, str(key)), file) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand(value, env, (*at, i), file) for i, value in enumerate(node)]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, default = match.groups()
        if match.group() == "$$":
            return "$"
        if name is None:
            raise ConfigError(
                "invalid variable reference (use ${VAR} or ${VAR:-default}; $$ for a literal $)",
                file=file,
                path=_dotted(at),
            )
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            raise ConfigError(f"environment variable {name} is not set", file=file, path=_dotted(at))
        return value

    return _VARIABLE.sub(substitute, node)


# --- error messages ---------------------------------------------------------------------------------

_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "finite_number": "a finite number",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "path_type": "a path",
}  # fmt: skip
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _describe(error: Mapping[str, Any], data: Any) -> tuple[str, str]:
    """A pydantic error as (dotted path, short problem), with union tags dropped from the path."""
    kind, ctx = error["type"], error.get("ctx", {})
    loc = list(error["loc"])
    if isinstance(ctx.get("error"), ProblemAt):
        loc += ctx["error"].at
    parts = _locate(loc, data, keep_last=kind == "missing")
    hidden = bool(parts) and parts[-1] == "url"  # never echo a URL: it may hold a password
    got = "" if hidden else f", got {_show(error['input'])}"
    if kind == "extra_forbidden":
        return _dotted(parts[:-1]), f"unknown key {str(parts[-1])!r}"
    if kind == "missing":
        return _dotted(parts[:-1]), f"missing required key {str(parts[-1])!r}"
    if kind == "union_tag_not_found":
        return _dotted(parts), f"missing required key {ctx['discriminator']}"
    if kind == "union_tag_invalid":
        key = ctx["discriminator"].strip("'")
        return _dotted([*parts, key]), f"expected one of {ctx['expected_tags']}, got {ctx['tag']!r}"
    if kind in ("value_error", "assertion_error"):
        return _dotted(parts), str(ctx["error"])
    if kind in _EXPECTED:
        return _dotted(parts), f"expected {_EXPECTED[kind]}{got}"
    if kind == "literal_error":
        return _dotted(parts), f"expected {ctx['expected']}{got}"
    if kind == "string_pattern_mismatch":
        return _dotted(parts), f"invalid identifier {_show(error['input'])} (use letters, digits and '_')"
    if kind in _BOUNDS:
        return _dotted(parts), f"must be {_BOUNDS[kind]} {ctx[_BOUND_KEYS[kind]]}{got}"
    return _dotted(parts), str(error["msg"])


def _locate(loc: list[Any], data: Any, *, keep_last: bool) -> list[str | int]:
    """The parts of `loc` that address the input `data` (drops pydantic's union tags)."""
    parts: list[str | int] = []
    node = data
    for i, segment in enumerate(loc):
        if isinstance(node, dict):
            present = segment in node
        else:
            present = isinstance(node, list) and isinstance(segment, int) and 0 <= segment < len(node)
        if present:
            node = node[segment]
        elif not (keep_last and i == len(loc) - 1):
            continue
        parts.append(segment)
    return parts


def _dotted(parts: tuple[str | int, ...] | list[str | int]) -> str:
    """`a.b[0].c` from ("a", "b", 0, "c")."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return _one_line(text)


def _one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters escaped (`\\n`), so a message stays one line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
