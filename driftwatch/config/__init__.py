"""The daemon's YAML configuration: pydantic v2 models, `${VAR}` expansion and one-line errors.

Loading goes: read file -> `yaml.safe_load` (with YAML 1.2 booleans) -> expand `${VAR}` / `${VAR:-default}`
/ `$$` in string values -> validate. Relative paths resolve against the config file's directory (like
Prometheus) and are stored absolute; referenced files must exist at load time. Every failure is a
`ConfigError` whose message is one line, `FILE: dotted.path: problem`. Hostile input is refused the same way:
YAML nested deeper than 64 levels, recursive aliases, more than 100,000 values once aliases are expanded,
durations over 10 years (a window over 1 year), paths with NUL characters or names too long.

Modules:
    durations   `30s` / `1h30m` text <-> timedelta, and the bounded `Duration` / `WindowDuration` field types
    base        the strict frozen base model, sub-path problems, path resolution, name and column patterns
    daemon      server (HTTP API, tokens) and state (SQLite file) settings
    sources     file (parquet, CSV) and SQL data sources
    monitors    reference, schedule, features, PSI binning, levels, significance, alert overrides, MonitorConfig
    alerting    delivery retries, notification sinks, lifecycle defaults, AlertingConfig
    fallback    switch and restore rules, actuators, ModelConfig
    root        Config: the whole file, its cross-checks and per-monitor helpers
    loading     YAML loader, `${VAR}` expansion, load_config / parse_config, one-line error messages
"""

from driftwatch.config.alerting import AlertDefaults, AlertingConfig, SinkConfig
from driftwatch.config.alerting import AlertmanagerSinkConfig as AlertmanagerSinkConfig
from driftwatch.config.alerting import LogSinkConfig as LogSinkConfig
from driftwatch.config.alerting import PagerDutySinkConfig as PagerDutySinkConfig
from driftwatch.config.alerting import RetryConfig as RetryConfig
from driftwatch.config.alerting import SlackSinkConfig as SlackSinkConfig
from driftwatch.config.alerting import WebhookSinkConfig as WebhookSinkConfig
from driftwatch.config.base import COLUMN as COLUMN
from driftwatch.config.base import NAME as NAME
from driftwatch.config.base import TABLE as TABLE
from driftwatch.config.base import Column as Column
from driftwatch.config.base import Columns as Columns
from driftwatch.config.daemon import ServerConfig, StateConfig
from driftwatch.config.durations import MAX_DURATION as MAX_DURATION
from driftwatch.config.durations import MAX_WINDOW as MAX_WINDOW
from driftwatch.config.durations import Duration as Duration
from driftwatch.config.durations import WindowDuration as WindowDuration
from driftwatch.config.durations import format_duration, parse_duration
from driftwatch.config.fallback import ActuatorConfig as ActuatorConfig
from driftwatch.config.fallback import FileActuatorConfig as FileActuatorConfig
from driftwatch.config.fallback import ModelConfig
from driftwatch.config.fallback import RestoreConfig as RestoreConfig
from driftwatch.config.fallback import SwitchConfig as SwitchConfig
from driftwatch.config.fallback import WebhookActuatorConfig as WebhookActuatorConfig
from driftwatch.config.loading import load_config, parse_config
from driftwatch.config.monitors import (
    FeaturesConfig,
    LevelConfig,
    MonitorAlerts,
    MonitorConfig,
    PsiConfig,
    ReferenceConfig,
    ScheduleConfig,
    SignificanceConfig,
)
from driftwatch.config.root import Config
from driftwatch.config.sources import FileSourceConfig, SqlSourceConfig
from driftwatch.config.sources import SourceConfig as SourceConfig

# Unchanged from the single-module days; the `X as X` imports above are public too, just not in `import *`.
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
