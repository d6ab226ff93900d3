"""Calibrated thresholds: a feature's warning and critical levels from its baseline's own window-to-window variability.

Fixed thresholds assume the rows of a window are independent draws. Hourly or daily data are not: a week of
hourly temperatures differs from the month around it far more than i.i.d. sampling allows, so fixed thresholds
(KS D >= 0.2) call ordinary weeks critical. Calibration measures that ordinary variation instead:

1. the baseline is cut into windows of the monitor's length (`spans`: `CalibrationRule.windows` windows evenly
   spaced over it, overlapping when the baseline holds fewer; by timestamp, or contiguous row blocks when the
   baseline has no timestamp);
2. each window with at least `min_rows` rows is compared with the whole baseline by the same mergeable passes
   as any window (`driftwatch.core.partials`), giving one value per window of every statistic;
3. per feature and per higher-is-worse statistic that has a fixed threshold (its `floors`):

       warning  = max(floor.warning,  margin x quantile(values, rule.warning))
       critical = max(floor.critical, margin x quantile(values, rule.critical), warning)

   (numpy's linear quantile; defaults 0.95, 1.0 = the largest window, margin 1.1). The fixed thresholds stay a
   lower bound: calibration only ever makes a statistic harder to breach, never easier than its materiality floor.
   P-value thresholds and the significance gate are not calibrated.

Fewer than `rule.min_windows` judged windows is a `Calibration` with a `problem` (the shell reports runs as
insufficient_data with it); a feature with fewer values (e.g. all missing) keeps the fixed thresholds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwatch.core.partials import Chunk, Job, Partial
from driftwatch.core.policy import LOWER_IS_WORSE, Level, Policy
from driftwatch.core.profile import Profile

IntArray = npt.NDArray[np.int64]

#: Version of the saved calibration (`Calibration.to_dict`); another version is computed again.
CALIBRATION_VERSION = 1


@dataclass(frozen=True)
class CalibrationRule:
    """How thresholds are set from the baseline windows' statistics (see the module docstring)."""

    warning: float = 0.95
    critical: float = 1.0
    margin: float = 1.1
    windows: int = 30
    min_windows: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.warning <= self.critical <= 1:
            raise ValueError(f"need 0 < warning <= critical <= 1, got {self.warning} and {self.critical}")
        if not self.margin > 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if not 2 <= self.min_windows <= self.windows:
            raise ValueError(f"need 2 <= min_windows <= windows, got {self.min_windows} and {self.windows}")


@dataclass(frozen=True)
class Calibration:
    """Calibrated thresholds per feature and statistic, from `windows` judged baseline windows.

    `spread` keeps, per feature and statistic, the median and largest value over the windows (for the report).
    """

    rule: CalibrationRule
    windows: int
    thresholds: Mapping[str, Mapping[str, Level]] = field(default_factory=dict)
    spread: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    problem: str | None = None

    def apply(self, policy: Policy) -> Policy:
        """`policy` with these thresholds for the features they cover."""
        return replace(policy, feature_thresholds=self.thresholds)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: version, rule, windows, problem, and per feature and statistic its levels and spread."""
        features: dict[str, Any] = {}
        for name, levels in self.thresholds.items():
            features[name] = {
                stat: {
                    "warning": level.warning,
                    "critical": level.critical,
                    "median": self.spread[name][stat][0],
                    "max": self.spread[name][stat][1],
                }
                for stat, level in levels.items()
            }
        return {
            "version": CALIBRATION_VERSION,
            "rule": asdict(self.rule),
            "windows": self.windows,
            "problem": self.problem,
            "features": features,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """What `to_dict` wrote (ValueError or KeyError if it is of another version or malformed)."""
        if data.get("version") != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {data.get('version')} is not {CALIBRATION_VERSION}")
        thresholds: dict[str, dict[str, Level]] = {}
        spread: dict[str, dict[str, tuple[float, float]]] = {}
        for name, stats in data["features"].items():
            thresholds[name] = {s: Level(float(v["warning"]), float(v["critical"])) for s, v in stats.items()}
            spread[name] = {s: (float(v["median"]), float(v["max"])) for s, v in stats.items()}
        return cls(CalibrationRule(**data["rule"]), int(data["windows"]), thresholds, spread, data.get("problem"))


def spans(start: int, end: int, length: int, count: int) -> tuple[tuple[int, int], ...]:
    """Up to `count` windows [s, s + length) evenly spaced from `start` to `end - length` (integer keys: unix
    nanoseconds or row numbers); fewer when fewer distinct starts fit, none when [start, end) is shorter.

    >>> spans(0, 28, 7, 4)
    ((0, 7), (7, 14), (14, 21), (21, 28))
    >>> spans(0, 10, 7, 30)
    ((0, 7), (1, 8), (2, 9), (3, 10))
    """
    last = end - length
    if length <= 0 or count < 1 or last < start:
        return ()
    if count == 1:
        return ((start, start + length),)
    starts = sorted({start + (last - start) * k // (count - 1) for k in range(count)})
    return tuple((s, s + length) for s in starts)


def calibrate(
    profile: Profile,
    chunks: Iterable[tuple[Chunk, IntArray]],
    windows: Sequence[tuple[int, int]],
    floors: Mapping[str, Level],
    rule: CalibrationRule,
    *,
    min_rows: int,
    executor: Executor | None = None,
) -> Calibration:
    """Thresholds from the baseline windows `windows` (key ranges [lo, hi)) compared with `profile` (the whole
    baseline). `chunks` gives (chunk, keys) pairs, keys being each row's key, and must give the same pairs on every
    iteration (a list, or an object that re-reads the baseline): every window's job advances one pass per iteration.
    """
    jobs = [Job.start(profile) for _ in windows]
    while any(job.request is not None for job in jobs):
        totals: list[Partial | None] = [None] * len(jobs)
        for chunk, keys in chunks:
            keys = np.asarray(keys)
            for i, (lo, hi) in enumerate(windows):
                request = jobs[i].request
                if request is None:
                    continue
                inside = (keys >= lo) & (keys < hi)
                if not inside.any():
                    continue
                part = request.count({name: _take(values, inside) for name, values in chunk.items()}, executor)
                total = totals[i]
                totals[i] = part if total is None else total.merge(part)
        jobs = [job.absorb(total) if job.request is not None else job for job, total in zip(jobs, totals, strict=True)]
    return thresholds_of(profile, jobs, floors, rule, min_rows=min_rows)


def thresholds_of(
    profile: Profile, jobs: Sequence[Job], floors: Mapping[str, Level], rule: CalibrationRule, *, min_rows: int
) -> Calibration:
    """The calibration of finished window jobs (see the module docstring)."""
    calibrated = [name for name in floors if not LOWER_IS_WORSE[name]]
    bare = Policy(thresholds={}, significance=None)
    values: dict[tuple[str, str], list[float]] = {}
    judged = 0
    for job in jobs:
        if job.rows < min_rows:
            continue
        report = job.finish(bare)
        judged += 1
        for result in report.features:
            if result.stats.status != "ok":
                continue
            for stat in calibrated:
                value = getattr(result.stats, stat)
                if value is not None and np.isfinite(value):
                    values.setdefault((result.name, stat), []).append(float(value))
    if judged < rule.min_windows:
        problem = (
            f"calibration needs at least {rule.min_windows} baseline windows with >= {min_rows} rows, "
            f"found {judged} of {len(jobs)}"
        )
        return Calibration(rule, judged, problem=problem)
    thresholds: dict[str, dict[str, Level]] = {}
    spread: dict[str, dict[str, tuple[float, float]]] = {}
    for name in profile.features:
        for stat in calibrated:
            seen = values.get((name, stat), [])
            if len(seen) < rule.min_windows:
                continue
            array = np.asarray(seen)
            floor = floors[stat]
            warning = max(floor.warning, rule.margin * float(np.quantile(array, rule.warning)))
            critical = max(floor.critical, rule.margin * float(np.quantile(array, rule.critical)), warning)
            thresholds.setdefault(name, {})[stat] = Level(warning, critical)
            spread.setdefault(name, {})[stat] = (float(np.median(array)), float(np.max(array)))
    return Calibration(rule, judged, thresholds, spread)


def _take(values: Any, inside: npt.NDArray[np.bool_]) -> Any:
    """The rows of one column where `inside` holds (numpy arrays stay arrays; other columns become arrays)."""
    return (values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object))[inside]
