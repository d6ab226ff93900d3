"""Compare a batch with a reference profile: every feature's statistics, then the policy's verdict."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy.typing as npt

from driftwatch.core.policy import Policy, evaluate, summarise
from driftwatch.core.profile import FeatureProfile, NumericProfile, Profile
from driftwatch.core.report import FeatureStats, Report
from driftwatch.core.stats import categorical_stats, numeric_stats


def compare(
    profile: Profile,
    batch: Mapping[str, npt.ArrayLike],
    policy: Policy | None = None,
    *,
    monitor: str | None = None,
    window: tuple[datetime, datetime] | None = None,
    workers: int | None = None,
) -> Report:
    """Drift report of `batch` (column name -> values) against `profile` under `policy`.

    Features run on a small thread pool (`workers`, default: the CPU count): numpy's sort and
    searchsorted release the GIL. Raises KeyError naming a profiled feature the batch lacks.
    """
    policy = policy or Policy()
    missing = [name for name in profile.features if name not in batch]
    if missing:
        raise KeyError(f"batch has no column {', '.join(map(repr, missing))}")
    features = list(profile.features.values())
    workers = max(1, min(workers or os.cpu_count() or 1, len(features)))
    epsilon = profile.settings.epsilon

    def stats_of(feature: FeatureProfile) -> FeatureStats:
        if isinstance(feature, NumericProfile):
            return numeric_stats(feature, batch[feature.name], epsilon)
        return categorical_stats(feature, batch[feature.name], epsilon)

    if workers == 1:
        stats = [stats_of(f) for f in features]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="driftwatch-stats") as pool:
            stats = list(pool.map(stats_of, features))
    rows = max((s.rows for s in stats), default=0)
    report = summarise(evaluate(stats, policy), policy, reference_rows=profile.rows, current_rows=rows)
    start, end = window or (None, None)
    return Report(report.features, report.reference_rows, report.current_rows, report.status,
                  report.severity, report.drift_share, monitor, start, end, report.reason)
