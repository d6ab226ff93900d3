"""Models with fallback versions: when to switch and restore, and the actuators that carry a switch out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationInfo, field_validator, model_validator

from driftwatch.config.alerting import RetryConfig
from driftwatch.config.base import NAME, StrictModel, resolve_path
from driftwatch.config.durations import Duration


class DataLossConfig(StrictModel):
    """Switch also after `after_runs` consecutive data-loss runs of a monitor (failed, no data, critical health)."""

    after_runs: int = Field(default=3, ge=1)


class SwitchConfig(StrictModel):
    """When to switch to the next fallback: `after_runs` consecutive runs at `on`, at most once per `min_dwell`;
    with `data_loss`, also after sustained loss of data."""

    on: Literal["warning", "critical"] = "critical"
    after_runs: int = Field(default=2, ge=1)
    min_dwell: Duration = timedelta(minutes=30)
    data_loss: DataLossConfig | None = None


class RestoreConfig(StrictModel):
    """When to switch back to the primary: after `after_runs` consecutive clean runs."""

    after_runs: int = Field(default=6, ge=1)


class FileActuatorConfig(StrictModel):
    """Write the model's route as JSON to `path` (atomically: temporary file, then rename)."""

    kind: Literal["file"]
    path: Path

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)


class WebhookActuatorConfig(StrictModel):
    """POST the model's route as JSON, signed per Standard Webhooks when `secret` is set."""

    kind: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    timeout: Duration = timedelta(seconds=10)
    retry: RetryConfig = RetryConfig()


ActuatorConfig = Annotated[FileActuatorConfig | WebhookActuatorConfig, Field(discriminator="kind")]


def _restore(value: Any) -> Any:
    return None if value == "manual" else value


class ModelConfig(StrictModel):
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
