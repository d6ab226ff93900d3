"""The whole configuration: its sections, the checks across them, and per-monitor helpers."""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from driftwatch.config.alerting import AlertingConfig
from driftwatch.config.base import NAME, ProblemAt, StrictModel
from driftwatch.config.daemon import ServerConfig, StateConfig
from driftwatch.config.fallback import ModelConfig
from driftwatch.config.monitors import MonitorConfig
from driftwatch.config.sources import SourceConfig
from driftwatch.core.alerting import AlertRules
from driftwatch.core.report import Severity


class Config(StrictModel):
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
                raise ProblemAt(f"invalid name {name!r} (use letters, digits, '_', '.', '-')", name)
        return value

    @model_validator(mode="after")
    def _sources_defined(self) -> Config:
        for name, monitor in self.monitors.items():
            if monitor.source not in self.sources:
                defined = ", ".join(self.sources) or "none"
                raise ProblemAt(f"unknown source {monitor.source!r} (defined: {defined})", "monitors", name, "source")
            baseline = monitor.reference.source
            if baseline is not None and baseline not in self.sources:
                defined = ", ".join(self.sources) or "none"
                raise ProblemAt(
                    f"unknown source {baseline!r} (defined: {defined})", "monitors", name, "reference", "source"
                )
        return self

    @model_validator(mode="after")
    def _sinks_defined(self) -> Config:
        for name, monitor in self.monitors.items():
            for sink in monitor.alerts.sinks or ():
                if sink not in self.alerting.sinks:
                    defined = ", ".join(self.alerting.sinks) or "none"
                    raise ProblemAt(f"unknown sink {sink!r} (defined: {defined})", "monitors", name, "alerts", "sinks")
        return self

    @model_validator(mode="after")
    def _models_fed(self) -> Config:
        fed = {monitor.model for monitor in self.monitors.values()}
        for name in self.models:
            if name not in fed:
                raise ProblemAt(f"no monitor feeds model {name!r} (set monitors.NAME.model: {name})", "models", name)
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
