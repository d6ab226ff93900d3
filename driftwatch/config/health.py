"""A monitor's data-health thresholds (`monitors.<name>.health`): missing share, volume, freshness, schema.

Every signal is on by default; `null` switches one off (`health: null` switches them all off, `no_data` stays a
run status). See `driftwatch.core.health` for what each signal measures.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ConfigDict, Field, model_validator

from driftwatch.config.base import StrictModel
from driftwatch.config.durations import Duration
from driftwatch.core.health import (
    DEFAULT_FRESHNESS_SHARE,
    DEFAULT_MISSING_ALPHA,
    DEFAULT_MISSING_SHARE,
    DEFAULT_VOLUME,
    HealthPolicy,
)
from driftwatch.core.policy import Level, Significance


class MissingShareConfig(StrictModel):
    """Levels of the missing share's increase over the reference (shares), and the alpha of its significance gate
    (`null`: no gate), corrected across features like the monitor's drift gate."""

    warning: float = Field(default=DEFAULT_MISSING_SHARE.warning, ge=0, le=1)
    critical: float = Field(default=DEFAULT_MISSING_SHARE.critical, ge=0, le=1)
    alpha: float | None = Field(default=DEFAULT_MISSING_ALPHA, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> MissingShareConfig:
        if self.critical < self.warning:
            raise ValueError(f"critical ({self.critical:g}) must be >= warning ({self.warning:g})")
        return self


class VolumeConfig(StrictModel):
    """Rows against the median of the last `runs` successful runs: a drop of `warning`/`critical` (shares)."""

    warning: float = Field(default=DEFAULT_VOLUME.warning, ge=0, le=1)
    critical: float = Field(default=DEFAULT_VOLUME.critical, ge=0, le=1)
    runs: int = Field(default=10, ge=1, le=1000)
    min_runs: int = Field(default=3, ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> VolumeConfig:
        if self.critical < self.warning:
            raise ValueError(f"critical ({self.critical:g}) must be >= warning ({self.warning:g})")
        if self.min_runs > self.runs:
            raise ValueError(f"min_runs ({self.min_runs}) must be <= runs ({self.runs})")
        return self


class FreshnessConfig(StrictModel):
    """Age of the newest row at the window's end; each level defaults to a share of the window (50%, 90%)."""

    warning: Duration | None = None
    critical: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FreshnessConfig:
        if self.warning is not None and self.critical is not None and self.critical < self.warning:
            raise ValueError("critical must be >= warning")
        return self

    def level(self, window: timedelta) -> Level:
        """The levels in seconds, defaults taken from `window`."""
        seconds = window.total_seconds()
        warning = self.warning.total_seconds() if self.warning else DEFAULT_FRESHNESS_SHARE.warning * seconds
        critical = self.critical.total_seconds() if self.critical else DEFAULT_FRESHNESS_SHARE.critical * seconds
        return Level(warning, max(warning, critical))


class HealthConfig(StrictModel):
    """The data-health signals of one monitor and their thresholds (`null` switches one off)."""

    model_config = ConfigDict(extra="forbid", frozen=True, serialize_by_alias=True)  # `schema` is the key

    missing_share: MissingShareConfig | None = MissingShareConfig()
    volume: VolumeConfig | None = VolumeConfig()
    freshness: FreshnessConfig | None = FreshnessConfig()
    schema_: bool = Field(default=True, alias="schema")

    def policy(self, window: timedelta, significance: Significance | None) -> HealthPolicy:
        """The core's health policy for a monitor reading `window` whose drift gate is `significance` (its
        correction, BH without one, also corrects the missing-share gate)."""
        volume, missing = self.volume, self.missing_share
        correction = significance.correction if significance is not None else "bh"
        gate = Significance(missing.alpha, correction) if missing is not None and missing.alpha is not None else None
        return HealthPolicy(
            missing_share=Level(missing.warning, missing.critical) if missing else None,
            volume=Level(volume.warning, volume.critical) if volume else None,
            volume_runs=volume.runs if volume else 10,
            volume_min_runs=volume.min_runs if volume else 3,
            freshness=self.freshness.level(window) if self.freshness else None,
            schema=self.schema_,
            significance=gate,
        )


def disabled_health() -> HealthPolicy:
    """The policy of `health: null`: no signal but no_data."""
    return HealthPolicy(missing_share=None, volume=None, freshness=None, schema=False, significance=None)
