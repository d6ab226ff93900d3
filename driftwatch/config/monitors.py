"""One monitor: its reference, schedule, features, binning, thresholds, significance gate and alert overrides."""

from __future__ import annotations

from datetime import UTC, timedelta
from pathlib import Path
from typing import Any, Literal

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import AliasPath, Field, FiniteFloat, ValidationInfo, field_serializer, field_validator, model_validator

from driftwatch.config.base import Column, Columns, ProblemAt, StrictModel, resolve_path
from driftwatch.config.durations import Duration, WindowDuration, format_duration
from driftwatch.config.health import HealthConfig, disabled_health
from driftwatch.core.calibration import CalibrationRule
from driftwatch.core.health import HealthPolicy
from driftwatch.core.policy import DEFAULT_THRESHOLDS, LOWER_IS_WORSE, Level, Policy, Significance, check_level
from driftwatch.core.profile import ProfileSettings


class ReferenceConfig(StrictModel):
    """The reference: a parquet (.parquet, .pq) or CSV (.csv) file (`path`), or a window of a source before each
    run's window (`source`, `window`, `offset`: the `window` ending `offset` before the run's window starts, its
    end rounded down to a multiple of `align`)."""

    path: Path | None = None
    source: str | None = None
    window: WindowDuration | None = None
    offset: Duration | None = None
    align: Duration | None = None
    min_rows: int | None = Field(default=None, ge=1)

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = resolve_path(value, info)
        if path.suffix.lower() not in (".parquet", ".pq", ".csv"):
            raise ValueError(f"unsupported reference file type {path.suffix!r} (use .parquet, .pq or .csv)")
        if not path.is_file():
            raise ValueError(f"file not found: {path}")
        return path

    @model_validator(mode="after")
    def _file_or_window(self) -> ReferenceConfig:
        if (self.path is None) == (self.source is None):
            raise ValueError("set exactly one of 'path' (a file) or 'source' (a window of a source)")
        if self.source is not None and self.window is None:
            raise ValueError("a source reference needs a window, e.g. {source: prod, window: 28d, offset: 7d}")
        if self.path is not None and (self.window, self.offset, self.align, self.min_rows) != (None,) * 4:
            raise ValueError("window, offset, align and min_rows apply to a source reference, not a file")
        return self

    @property
    def format(self) -> Literal["parquet", "csv"]:
        """How to read the reference, by its suffix."""
        return "csv" if self.path is not None and self.path.suffix.lower() == ".csv" else "parquet"

    @property
    def alignment(self) -> timedelta:
        """`align`, or by default 1 day for windows of 7 days or more and 1 hour below."""
        if self.align is not None:
            return self.align
        return timedelta(days=1) if self.window is not None and self.window >= timedelta(days=7) else timedelta(hours=1)


class CalibratedConfig(StrictModel):
    """`thresholds.calibrated`: thresholds from the baseline's own window-to-window variability (see the README)."""

    warning: float = Field(default=0.95, gt=0, le=1)
    critical: float = Field(default=1.0, gt=0, le=1)
    margin: float = Field(default=1.1, ge=0.5, le=10)
    windows: int = Field(default=30, ge=2, le=1000)
    min_windows: int = Field(default=10, ge=2, le=1000)
    rows: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> CalibratedConfig:
        if self.critical < self.warning:
            raise ValueError(f"critical quantile ({self.critical:g}) must be >= warning ({self.warning:g})")
        if self.min_windows > self.windows:
            raise ValueError(f"min_windows ({self.min_windows}) must be <= windows ({self.windows})")
        return self

    def rule(self) -> CalibrationRule:
        """As the core's `CalibrationRule`."""
        return CalibrationRule(self.warning, self.critical, self.margin, self.windows, self.min_windows)


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
    calibrated: CalibratedConfig | None = Field(
        default=None, validation_alias=AliasPath("thresholds", "calibrated"), exclude=True
    )
    drift_share: LevelConfig = LevelConfig(warning=0.3, critical=0.5)
    significance: SignificanceConfig | None = SignificanceConfig()
    timeout: Duration = timedelta(minutes=10)
    alerts: MonitorAlerts = MonitorAlerts()
    health: HealthConfig | None = HealthConfig()

    @model_validator(mode="before")
    @classmethod
    def _calibrated_shorthand(cls, data: Any) -> Any:
        """`thresholds: calibrated` is `thresholds: {calibrated: {}}`."""
        if isinstance(data, dict) and data.get("thresholds") == "calibrated":
            return {**data, "thresholds": {"calibrated": {}}}
        return data

    @field_validator("thresholds", mode="before")
    @classmethod
    def _without_calibrated(cls, value: Any) -> Any:
        """The `calibrated` entry is the `calibrated` field's (read through its alias), not a statistic."""
        if isinstance(value, dict) and "calibrated" in value:
            return {k: v for k, v in value.items() if k != "calibrated"}
        return value

    @field_serializer("thresholds")
    def _with_calibrated(self, value: dict[str, LevelConfig | None]) -> dict[str, Any]:
        """Dumped with the `calibrated` entry back in place (a dump validates again)."""
        dumped: dict[str, Any] = {k: v.model_dump() if v else None for k, v in value.items()}
        return dumped | ({"calibrated": self.calibrated.model_dump()} if self.calibrated is not None else {})

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

    def health_policy(self) -> HealthPolicy:
        """The core's data-health policy (defaults, or the `health:` mapping)."""
        if self.health is None:
            return disabled_health()
        return self.health.policy(self.window, self.policy().significance)

    def profile_settings(self) -> ProfileSettings:
        """The core's reference-profile settings."""
        return ProfileSettings(bins=self.psi.bins, binning=self.psi.binning, epsilon=self.psi.epsilon)
