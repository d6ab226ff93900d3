"""One monitor: its reference, schedule, features, binning, thresholds, significance gate and alert overrides."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Literal

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import Field, FiniteFloat, ValidationInfo, field_validator, model_validator

from driftwatch.config.base import Columns, ProblemAt, StrictModel, resolve_path
from driftwatch.config.durations import Duration, WindowDuration, format_duration
from driftwatch.config.health import HealthConfig, disabled_health
from driftwatch.core.health import HealthPolicy
from driftwatch.core.policy import DEFAULT_THRESHOLDS, LOWER_IS_WORSE, Level, Policy, Significance, check_level
from driftwatch.core.profile import ProfileSettings


class ReferenceConfig(StrictModel):
    """The training reference: a parquet (.parquet, .pq) or CSV (.csv) file."""

    path: Path

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path, info: ValidationInfo) -> Path:
        path = resolve_path(value, info)
        if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise ValueError(f"unsupported reference file type {path.suffix!r} (use .parquet, .pq or .csv)")
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @property
    def format(self) -> Literal["parquet", "csv"]:
        """How to read the reference, by its suffix."""
        return "csv" if self.path.suffix.lower() == ".csv" else "parquet"


class ScheduleConfig(StrictModel):
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


class FeaturesConfig(StrictModel):
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


class PsiConfig(StrictModel):
    """Binning of numeric features for PSI and Jensen-Shannon."""

    bins: int = Field(default=10, ge=2, le=1000)
    binning: Literal["quantile", "uniform"] = "quantile"
    epsilon: float = Field(default=1e-4, gt=0, le=0.1)


class LevelConfig(StrictModel):
    """Warning and critical levels of one statistic."""

    warning: FiniteFloat
    critical: FiniteFloat

    def level(self) -> Level:
        """As the core's `Level`."""
        return Level(self.warning, self.critical)


class SignificanceConfig(StrictModel):
    """The significance gate: corrected p-value must be below `alpha`."""

    alpha: float = Field(default=0.01, gt=0, lt=1)
    correction: Literal["bh", "bonferroni", "none"] = "bh"


class MonitorAlerts(StrictModel):
    """Per-monitor alerting overrides; `sinks` defaults to every configured sink."""

    sinks: tuple[str, ...] | None = None
    for_runs: int | None = Field(default=None, ge=1)
    resolve_after_runs: int | None = Field(default=None, ge=1)
    repeat_interval: Duration | None = None
    min_severity: Literal["warning", "critical"] | None = None


class MonitorConfig(StrictModel):
    """One monitor: compare `source` over the last `window` with `reference` on `schedule`."""

    model: str | None = None
    reference: ReferenceConfig
    source: str
    schedule: ScheduleConfig
    window: WindowDuration
    min_rows: int = Field(default=200, ge=1)
    features: FeaturesConfig = FeaturesConfig()
    psi: PsiConfig = PsiConfig()
    thresholds: dict[str, LevelConfig | None] = {}
    drift_share: LevelConfig = LevelConfig(warning=0.3, critical=0.5)
    significance: SignificanceConfig | None = SignificanceConfig()
    timeout: Duration = timedelta(minutes=10)
    alerts: MonitorAlerts = MonitorAlerts()
    health: HealthConfig | None = HealthConfig()

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
                    raise ProblemAt(str(err), name) from None
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

    def health_policy(self) -> HealthPolicy:
        """The core's data-health policy (defaults, or the `health:` mapping)."""
        if self.health is None:
            return disabled_health()
        return self.health.policy(self.window, self.policy().significance)

    def profile_settings(self) -> ProfileSettings:
        """The core's reference-profile settings."""
        return ProfileSettings(bins=self.psi.bins, binning=self.psi.binning, epsilon=self.psi.epsilon)
