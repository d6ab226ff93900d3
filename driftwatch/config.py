"""The daemon's YAML configuration: pydantic v2 models, `${VAR}` expansion and one-line errors.

Loading goes: read file -> `yaml.safe_load` (with YAML 1.2 booleans) -> expand `${VAR}` / `${VAR:-default}`
/ `$$` in string values -> validate. Relative paths resolve against the config file's directory (like
Prometheus) and are stored absolute; referenced files must exist at load time. Every failure is a
`ConfigError` whose message is one line, `FILE: dotted.path: problem`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    PlainSerializer,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from driftwatch.core.alerting import AlertRules
from driftwatch.core.policy import DEFAULT_THRESHOLDS, LOWER_IS_WORSE, Level, Policy, Significance, check_level
from driftwatch.core.profile import ProfileSettings
from driftwatch.core.report import Severity
from driftwatch.errors import ConfigError

__all__ = [
    "AlertDefaults",
    "AlertingConfig",
    "Config",
    "FeaturesConfig",
    "FileSourceConfig",
    "LevelConfig",
    "ModelConfig",
    "MonitorAlerts",
    "MonitorConfig",
    "PsiConfig",
    "ReferenceConfig",
    "ScheduleConfig",
    "ServerConfig",
    "SignificanceConfig",
    "SinkConfig",
    "SqlSourceConfig",
    "StateConfig",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
]

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_VARIABLE = re.compile(r"\$\$|\$\{(?:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\})?")
_GLOB_CHARS = re.compile(r"[*?\[]")


class _Problem(ValueError):
    """A validator's complaint about a sub-path (`at`) below the value being validated."""

    def __init__(self, message: str, *at: str) -> None:
        super().__init__(message)
        self.at = at


# --- durations --------------------------------------------------------------------------------------


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `1h`, `7d` or combinations in that order (`1h30m`) as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 5m, 1h, 7d)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(td: timedelta) -> str:
    """The shortest `1d2h3m4s`-style text for a non-negative whole number of seconds (`0s` for zero)."""
    if td < timedelta(0) or td.microseconds:
        raise ValueError(f"cannot format {td!r} as a duration: need a non-negative whole number of seconds")
    rest = int(td.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _positive_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        td = value
    elif isinstance(value, str):
        td = parse_duration(value)
    else:
        raise ValueError(f"invalid duration {value!r} (use e.g. 30s, 5m, 1h, 7d)")
    if td <= timedelta(0):
        raise ValueError(f"duration must be > 0, got {value!r}")
    return td


Duration = Annotated[timedelta, BeforeValidator(_positive_duration), PlainSerializer(format_duration, return_type=str)]


# --- paths ------------------------------------------------------------------------------------------


def _resolve(path: Path | str, info: ValidationInfo) -> Path:
    """`path` made absolute against the config file's directory (the working directory without one)."""
    base = (info.context or {}).get("base_dir") or Path.cwd()
    return Path(os.path.abspath(Path(base) / Path(path)))


def _columns(value: Any) -> Any:
    if value == "auto":
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of column names or 'auto', got {value!r}")
    for name in value:
        if not isinstance(name, str) or not COLUMN.match(name):
            raise ValueError(f"invalid identifier {name!r} (use letters, digits and '_')")
    if len(set(value)) < len(value):
        raise ValueError("duplicate column names")
    return tuple(value)


Columns = Annotated[Literal["auto"] | tuple[str, ...], BeforeValidator(_columns)]
Column = Annotated[str, Field(pattern=COLUMN.pattern)]


# --- models -----------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    """Where the HTTP API and /metrics listen (port 0 picks a free port), and the API's bearer tokens."""

    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    external_url: str | None = None  # how others reach the daemon, for links in notifications
    api_token: SecretStr | None = None  # required by mutating API endpoints
    read_token: SecretStr | None = None  # when set, required by read endpoints too (not /metrics, /healthz)

    @property
    def base_url(self) -> str:
        """`external_url`, or http://host:port."""
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")


class StateConfig(_Model):
    """The SQLite state file."""

    path: Path = Field(default=Path("var/driftwatch.db"), validate_default=True)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)


class FileSourceConfig(_Model):
    """Parquet or CSV files: one path or a glob."""

    kind: Literal["parquet", "csv"]
    path: Path
    timestamp_column: Column

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        if not _GLOB_CHARS.search(str(path)):
            if not path.exists():
                raise ValueError(f"file not found: {path}")
            return path
        fixed = Path(*itertools.takewhile(lambda part: not _GLOB_CHARS.search(part), path.parts))
        if not fixed.is_dir():
            raise ValueError(f"directory not found: {fixed}")
        return path


class SqlSourceConfig(_Model):
    """A SQLAlchemy database: a `table`, or a `query` bound to the window by `:start` and `:end`."""

    kind: Literal["sql"]
    url: str = Field(repr=False)
    table: Annotated[str, Field(pattern=TABLE.pattern)] | None = None
    query: str | None = None
    timestamp_column: Column

    @field_validator("url")
    @classmethod
    def _parse_url(cls, value: str, info: ValidationInfo) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("invalid SQLAlchemy URL (e.g. sqlite:///data/prod.db)") from None
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return value
        database = _resolve(url.database, info)
        if not database.is_file():
            raise ValueError(f"database file not found: {database}")
        return url.set(database=str(database)).render_as_string(hide_password=False)

    @field_validator("query")
    @classmethod
    def _bound_to_window(cls, value: str | None) -> str | None:
        missing = [name for name in (":start", ":end") if value is not None and not re.search(rf"{name}\b", value)]
        if missing:
            raise ValueError(f"query must use the bind parameters :start and :end (missing {' and '.join(missing)})")
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of 'table' or 'query'")
        return self

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked, safe for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)


SourceConfig = Annotated[FileSourceConfig | SqlSourceConfig, Field(discriminator="kind")]


class ReferenceConfig(_Model):
    """The training reference: a parquet (.parquet, .pq) or CSV (.csv) file."""

    path: Path

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = _resolve(value, info)
        if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise ValueError(f"unsupported reference file type {path.suffix!r} (use .parquet, .pq or .csv)")
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @property
    def format(self) -> Literal["parquet", "csv"]:
        """How to read the reference, by its suffix."""
        return "csv" if self.path.suffix.lower() == ".csv" else "parquet"


class ScheduleConfig(_Model):
    """When a monitor runs: exactly one of a fixed interval (`every`) or a UTC crontab (`cron`)."""

    every: Duration | None = None
    cron: str | None = None

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone=UTC)
            except ValueError as err:
                raise ValueError(f"invalid cron expression {value!r}: {err}") from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> ScheduleConfig:
        if (self.every is None) == (self.cron is None):
            raise ValueError("set exactly one of 'every' or 'cron'")
        return self

    def trigger(self) -> IntervalTrigger | CronTrigger:
        """The APScheduler trigger for this schedule (UTC)."""
        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=UTC)
        assert self.every is not None
        return IntervalTrigger(seconds=int(self.every.total_seconds()), timezone=UTC)

    def describe(self) -> str:
        """`every 5m` or `cron */5 * * * *`."""
        if self.cron is not None:
            return f"cron {self.cron}"
        assert self.every is not None
        return f"every {format_duration(self.every)}"


class FeaturesConfig(_Model):
    """Which columns to compare; `auto` takes them from the reference by dtype."""

    numeric: Columns = "auto"
    categorical: Columns = "auto"

    @model_validator(mode="after")
    def _disjoint(self) -> FeaturesConfig:
        if self.numeric != "auto" and self.categorical != "auto":
            both = sorted(set(self.numeric) & set(self.categorical))
            if both:
                raise ValueError(f"columns listed as both numeric and categorical: {', '.join(both)}")
        return self


class PsiConfig(_Model):
    """Binning of numeric features for PSI and Jensen-Shannon."""

    bins: int = Field(default=10, ge=2)
    binning: Literal["quantile", "uniform"] = "quantile"
    epsilon: float = Field(default=1e-4, gt=0, le=0.1)


class LevelConfig(_Model):
    """Warning and critical levels of one statistic."""

    warning: FiniteFloat
    critical: FiniteFloat

    def level(self) -> Level:
        """As the core's `Level`."""
        return Level(self.warning, self.critical)


class SignificanceConfig(_Model):
    """The significance gate: corrected p-value must be below `alpha`."""

    alpha: float = Field(default=0.01, gt=0, lt=1)
    correction: Literal["bh", "bonferroni", "none"] = "bh"


# --- alerting ---------------------------------------------------------------------------------------


class RetryConfig(_Model):
    """Delivery retries: exponential backoff from `initial` up to `max_interval`, dead letter after `max_age`."""

    initial: Duration = timedelta(seconds=2)
    max_interval: Duration = timedelta(minutes=10)
    max_age: Duration = timedelta(hours=24)


class _SinkConfig(_Model):
    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()


class WebhookSinkConfig(_SinkConfig):
    """A JSON webhook signed per Standard Webhooks when `secret` is set."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None


class SlackSinkConfig(_SinkConfig):
    """A Slack incoming webhook (its URL is a secret)."""

    kind: Literal["slack"]
    url: SecretStr


class PagerDutySinkConfig(_SinkConfig):
    """PagerDuty Events API v2."""

    kind: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"


class AlertmanagerSinkConfig(_SinkConfig):
    """Prometheus Alertmanager's API v2 (base URL, e.g. http://127.0.0.1:9093)."""

    kind: Literal["alertmanager"]
    url: str


class LogSinkConfig(_SinkConfig):
    """Write notifications to the daemon's log."""

    kind: Literal["log"]


SinkConfig = Annotated[
    WebhookSinkConfig | SlackSinkConfig | PagerDutySinkConfig | AlertmanagerSinkConfig | LogSinkConfig,
    Field(discriminator="kind"),
]


class AlertDefaults(_Model):
    """The alert lifecycle: fire after `for_runs` breaching runs, resolve after `resolve_after_runs` clean ones."""

    for_runs: int = Field(default=2, ge=1)
    resolve_after_runs: int = Field(default=2, ge=1)
    repeat_interval: Duration = timedelta(hours=4)
    min_severity: Literal["warning", "critical"] = "warning"


class MonitorAlerts(_Model):
    """Per-monitor alerting overrides; `sinks` defaults to every configured sink."""

    sinks: tuple[str, ...] | None = None
    for_runs: int | None = Field(default=None, ge=1)
    resolve_after_runs: int | None = Field(default=None, ge=1)
    repeat_interval: Duration | None = None
    min_severity: Literal["warning", "critical"] | None = None


class AlertingConfig(_Model):
    """Where alerts go, and the lifecycle defaults."""

    sinks: dict[str, SinkConfig] = {}
    defaults: AlertDefaults = AlertDefaults()


# --- models (fallback switching) --------------------------------------------------------------------


class SwitchConfig(_Model):
    """When to switch to the next fallback: `after_runs` consecutive runs at `on`, at most once per `min_dwell`."""

    on: Literal["warning", "critical"] = "critical"
    after_runs: int = Field(default=2, ge=1)
    min_dwell: Duration = timedelta(minutes=30)


class RestoreConfig(_Model):
    """When to switch back to the primary: after `after_runs` consecutive clean runs."""

    after_runs: int = Field(default=6, ge=1)


class FileActuatorConfig(_Model):
    """Write the model's route as JSON to `path` (atomically: temporary file, then rename)."""

    kind: Literal["file"]
    path: Path

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve(value, info)


class WebhookActuatorConfig(_Model):
    """POST the model's route as JSON, signed per Standard Webhooks when `secret` is set."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()


ActuatorConfig = Annotated[FileActuatorConfig | WebhookActuatorConfig, Field(discriminator="kind")]


def _restore(value: Any) -> Any:
    return None if value == "manual" else value


class ModelConfig(_Model):
    """A model with a primary version, fallbacks in order, switching rules and actuators."""

    primary: Annotated[str, Field(pattern=NAME.pattern)]
    fallbacks: tuple[Annotated[str, Field(pattern=NAME.pattern)], ...] = Field(min_length=1)
    switch: SwitchConfig = SwitchConfig()
    restore: Annotated[RestoreConfig | None, BeforeValidator(_restore)] = RestoreConfig()
    dry_run: bool = False
    actuators: tuple[ActuatorConfig, ...] = ()

    @model_validator(mode="after")
    def _distinct_versions(self) -> ModelConfig:
        versions = (self.primary, *self.fallbacks)
        if len(set(versions)) < len(versions):
            raise ValueError(f"primary and fallbacks must be distinct versions, got {', '.join(versions)}")
        return self

    @property
    def versions(self) -> tuple[str, ...]:
        """The primary, then the fallbacks in order."""
        return (self.primary, *self.fallbacks)


class MonitorConfig(_Model):
    """One monitor: compare `source` over the last `window` with `reference` on `schedule`."""

    model: str | None = None
    reference: ReferenceConfig
    source: str
    schedule: ScheduleConfig
    window: Duration
    min_rows: int = Field(default=200, ge=1)
    features: FeaturesConfig = FeaturesConfig()
    psi: PsiConfig = PsiConfig()
    thresholds: dict[str, LevelConfig | None] = {}
    drift_share: LevelConfig = LevelConfig(warning=0.3, critical=0.5)
    significance: SignificanceConfig | None = SignificanceConfig()
    timeout: Duration = timedelta(minutes=10)
    alerts: MonitorAlerts = MonitorAlerts()

    @field_validator("thresholds")
    @classmethod
    def _known_and_ordered(cls, value: dict[str, LevelConfig | None]) -> dict[str, LevelConfig | None]:
        for name, level in value.items():
            if name not in LOWER_IS_WORSE:
                raise ValueError(f"unknown statistic {name!r} (known: {', '.join(LOWER_IS_WORSE)})")
            if level is not None:
                try:
                    check_level(name, level.level())
                except ValueError as err:
                    raise _Problem(str(err), name) from None
        return value

    @field_validator("drift_share")
    @classmethod
    def _ordered(cls, value: LevelConfig) -> LevelConfig:
        check_level("drift_share", value.level())
        return value

    def policy(self) -> Policy:
        """The core policy: thresholds merged over the defaults (`null` removes one)."""
        merged = {**DEFAULT_THRESHOLDS, **{k: v.level() if v else None for k, v in self.thresholds.items()}}
        significance = self.significance
        return Policy(
            thresholds={k: v for k, v in merged.items() if v is not None},
            drift_share=self.drift_share.level(),
            significance=Significance(significance.alpha, significance.correction) if significance else None,
        )

    def profile_settings(self) -> ProfileSettings:
        """The core's reference-profile settings."""
        return ProfileSettings(bins=self.psi.bins, binning=self.psi.binning, epsilon=self.psi.epsilon)


class Config(_Model):
    """The whole configuration. `file` is where it was read from; `fingerprint` identifies its content."""

    server: ServerConfig = ServerConfig()
    state: StateConfig = Field(default_factory=dict, validate_default=True)
    sources: dict[str, SourceConfig] = {}
    monitors: dict[str, MonitorConfig] = {}
    alerting: AlertingConfig = AlertingConfig()
    models: dict[str, ModelConfig] = {}
    _file: Path | None = PrivateAttr(default=None)

    @field_validator("sources", "monitors", "models", mode="before")
    @classmethod
    def _valid_names(cls, value: Any) -> Any:
        for name in value if isinstance(value, dict) else ():
            if not NAME.match(name):
                raise _Problem(f"invalid name {name!r} (use letters, digits, '_', '.', '-')", name)
        return value

    @model_validator(mode="after")
    def _sources_defined(self) -> Config:
        for name, monitor in self.monitors.items():
            if monitor.source not in self.sources:
                defined = ", ".join(self.sources) or "none"
                raise _Problem(f"unknown source {monitor.source!r} (defined: {defined})", "monitors", name, "source")
        return self

    @model_validator(mode="after")
    def _sinks_defined(self) -> Config:
        for name, monitor in self.monitors.items():
            for sink in monitor.alerts.sinks or ():
                if sink not in self.alerting.sinks:
                    defined = ", ".join(self.alerting.sinks) or "none"
                    raise _Problem(f"unknown sink {sink!r} (defined: {defined})", "monitors", name, "alerts", "sinks")
        return self

    @model_validator(mode="after")
    def _models_fed(self) -> Config:
        fed = {monitor.model for monitor in self.monitors.values()}
        for name in self.models:
            if name not in fed:
                raise _Problem(f"no monitor feeds model {name!r} (set monitors.NAME.model: {name})", "models", name)
        return self

    def model_monitors(self, model: str) -> tuple[str, ...]:
        """The monitors that feed `model`."""
        return tuple(name for name, monitor in self.monitors.items() if monitor.model == model)

    def alert_rules(self, monitor: str) -> AlertRules:
        """The alert lifecycle rules of `monitor`: its overrides over `alerting.defaults`."""
        defaults, own = self.alerting.defaults, self.monitors[monitor].alerts
        return AlertRules(
            for_runs=own.for_runs or defaults.for_runs,
            resolve_after_runs=own.resolve_after_runs or defaults.resolve_after_runs,
            repeat_interval=own.repeat_interval or defaults.repeat_interval,
            min_severity=Severity.parse(own.min_severity or defaults.min_severity),
        )

    def alert_sinks(self, monitor: str) -> tuple[str, ...]:
        """The sinks `monitor` notifies: its own list, or every configured sink."""
        own = self.monitors[monitor].alerts.sinks
        return tuple(self.alerting.sinks) if own is None else own

    @model_validator(mode="after")
    def _remember_file(self, info: ValidationInfo) -> Config:
        self._file = (info.context or {}).get("file")
        return self

    @property
    def file(self) -> Path | None:
        """The file this configuration was loaded from, None if parsed from a string."""
        return self._file

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 hex of the canonical JSON of the validated configuration."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- loading ----------------------------------------------------------------------------------------


class _YamlLoader(yaml.SafeLoader):
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
        data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"invalid YAML{where}: {' '.join(str(err.problem).split())}", file=file) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"invalid YAML: {' '.join(str(err).split())}", file=file) from None
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
        raise ConfigError(problem + more, file=file, path=path) from None


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
    if isinstance(ctx.get("error"), _Problem):
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
    return text


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
