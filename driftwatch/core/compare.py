"""Compare a batch with a reference profile: every feature's statistics, then the policy's verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sized
from concurrent.futures import Executor
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
    executor: Executor | None = None,
) -> Report:
    """Drift report of `batch` (column name -> values) against `profile` under `policy`.

    With an `executor` (a thread pool owned by the caller), features run on it largest first: numpy's sort,
    searchsorted and most array operations release the GIL. Without one they run on the calling thread.
    Raises KeyError naming a profiled feature the batch lacks.
    """
    policy = policy or Policy()
    missing = [name for name in profile.features if name not in batch]
    if missing:
        raise KeyError(f"batch has no column {', '.join(map(repr, missing))}")
    features = sorted(profile.features.values(), key=lambda f: _work(f, batch[f.name]), reverse=True)
    epsilon = profile.settings.epsilon

    def stats_of(feature: FeatureProfile) -> FeatureStats:
        if isinstance(feature, NumericProfile):
            return numeric_stats(feature, batch[feature.name], epsilon)
        return categorical_stats(feature, batch[feature.name], epsilon)

    # largest work first, so that no big feature starts last on an otherwise idle pool
    computed = list(executor.map(stats_of, features)) if executor else [stats_of(f) for f in features]
    by_name = {s.name: s for s in computed}
    stats = [by_name[name] for name in profile.features]
    rows = max((s.rows for s in stats), default=0)
    report = summarise(evaluate(stats, policy), policy, reference_rows=profile.rows, current_rows=rows)
    start, end = window or (None, None)
    return Report(
        report.features,
        report.reference_rows,
        report.current_rows,
        report.status,
        report.severity,
        report.drift_share,
        monitor,
        start,
        end,
        report.reason,
    )


#: Categorical counting (object pointers hashed GIL-free, then the few distinct objects by value) costs about
#: half of a numeric feature's sort and merges per value, so categorical features fill the pool's gaps last.
CATEGORICAL_SHARE = 0.5


def _work(feature: FeatureProfile, values: npt.ArrayLike) -> float:
    """Rough cost of one feature, proportional to its batch size (the reference grid keeps the merge small)."""
    size = len(values) if isinstance(values, Sized) else 1
    return size if isinstance(feature, NumericProfile) else CATEGORICAL_SHARE * size
