"""What the daemon knows about each monitor between runs: immutable records, replaced after every run."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from driftwatch.core.health import Health
from driftwatch.core.report import Report

Outcome = Literal["never", "ok", "insufficient_data", "no_data", "error"]

#: Run duration histogram buckets in seconds (up to 15 minutes).
DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900)


@dataclass(frozen=True)
class DurationHistogram:
    """Cumulative-friendly counts of run durations: counts[i] runs took <= DURATION_BUCKETS[i] (non-cumulative)."""

    counts: tuple[int, ...] = (0,) * (len(DURATION_BUCKETS) + 1)
    total: float = 0.0

    def observe(self, seconds: float) -> DurationHistogram:
        """This histogram with one more observation."""
        index = next((i for i, bound in enumerate(DURATION_BUCKETS) if seconds <= bound), len(DURATION_BUCKETS))
        counts = list(self.counts)
        counts[index] += 1
        return DurationHistogram(tuple(counts), self.total + seconds)

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class MonitorStatus:
    """The latest state of one monitor. `report` is the last run's report, None unless that run produced one."""

    monitor: str
    schedule: str
    outcome: Outcome = "never"
    last_run: datetime | None = None
    last_success: datetime | None = None
    error: str | None = None
    report: Report | None = None
    reference_rows: int | None = None
    runs_total: int = 0
    failures_total: int = 0
    skipped_total: int = 0
    rows_read: int | None = None  # rows read so far by the pass of the run in progress (None: no run going)
    durations: DurationHistogram = field(default_factory=DurationHistogram)
    health: Health | None = None  # the data-health signals of the last run (None: not assessed)

    @property
    def up(self) -> bool:
        """True unless the last run failed (a run skipped for insufficient or no data is not a failure)."""
        return self.outcome in ("ok", "insufficient_data", "no_data")

    def after_run(
        self,
        outcome: Outcome,
        *,
        finished: datetime,
        seconds: float,
        report: Report | None = None,
        error: str | None = None,
        health: Health | None = None,
    ) -> MonitorStatus:
        """This status after a run that ended at `finished` with `outcome`."""
        return replace(
            self,
            outcome=outcome,
            last_run=finished,
            last_success=finished if outcome == "ok" else self.last_success,
            error=error,
            report=report if outcome == "ok" else None,
            reference_rows=report.reference_rows if report is not None else self.reference_rows,
            runs_total=self.runs_total + 1,
            failures_total=self.failures_total + (outcome == "error"),
            durations=self.durations.observe(seconds),
            rows_read=None,
            health=health,
        )

    def reading(self, rows: int) -> MonitorStatus:
        """This status while its run has read `rows` rows in its current pass."""
        return replace(self, rows_read=rows)

    def after_skip(self) -> MonitorStatus:
        """This status after a scheduled run was skipped because the previous one was still going."""
        return replace(self, skipped_total=self.skipped_total + 1)
