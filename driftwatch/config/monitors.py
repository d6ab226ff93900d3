"""One monitor: its reference, schedule, features, binning, thresholds, significance gate and alert overrides."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, Literal

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import Field, FiniteFloat, ValidationInfo, field_validator, model_validator

from driftwatch.config.base import Column, Columns, ProblemAt, StrictModel, resolve_path
from driftwatch.config.durations import Duration, WindowDuration, format_duration
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
    """Which columns to compare; `auto` takes them from the reference by dtype.

    `features: auto` is `{numeric: auto, categorical: auto}`; `{auto: true, exclude: [...]}` is the same without
    the excluded columns (`exclude` applies to the `auto` kinds only). Under `auto`, id-like columns (near-unique
    values) are left out with a warning; list a column explicitly to monitor it anyway.
    """

    numeric: Columns = "auto"
    categorical: Columns = "auto"
    exclude: tuple[Column, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value == "auto":
            return {}
        if isinstance(value, dict) and "auto" in value:
            value = dict(value)
            auto = value.pop("auto")
            if auto is not True:
                raise ProblemAt("expected true (or leave out 'auto' and list numeric/categorical columns)", "auto")
            both = [key for key in ("numeric", "categorical") if value.get(key, "auto") != "auto"]
            if both:
                raise ProblemAt("'auto: true' takes every column; drop this list or 'auto'", both[0])
        elif not isinstance(value, dict):
            raise ValueError(f"expected 'auto' or a mapping (numeric, categorical, auto, exclude), got {value!r}")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> FeaturesConfig:
        if self.exclude and self.numeric != "auto" and self.categorical != "auto":
            raise ProblemAt("'exclude' applies to auto columns; here both lists are explicit", "exclude")
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
    """One monitor: compare `source` over the last `window` with `reference` on `schedule` (None: the daemon
    skips the monitor; `check` and `backfill` still run it)."""

    model: str | None = None
    reference: ReferenceConfig
    source: str
    schedule: ScheduleConfig | None = None
    window: WindowDuration
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
                    raise ProblemAt(str(err), name) from None
        return value

    @model_validator(mode="after")
    def _scheduled_if_feeding(self) -> MonitorConfig:
        if self.schedule is None and self.model is not None:
            raise ValueError(
                f"a monitor feeding model {self.model!r} needs a schedule (only the daemon switches models)"
            )
        return self

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
