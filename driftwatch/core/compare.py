"""Compare a batch with a reference profile: every feature's statistics, then the policy's verdict."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
from datetime import datetime

import numpy.typing as npt

from driftwatch.core.partials import count_window, prepare
from driftwatch.core.policy import Policy
from driftwatch.core.profile import Profile
from driftwatch.core.report import Report


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

    The batch is one chunk of the mergeable passes of `driftwatch.core.partials`: prepared once (numeric
    columns sorted, categorical ones counted), then counted pass by pass, so a window read in chunks gives
    exactly this report. With an `executor` (a thread pool owned by the caller) features run on it, largest
    first: numpy's sort, searchsorted and most array operations release the GIL. Without one they run on the
    calling thread. Raises KeyError naming a profiled feature the batch lacks.
    """
    chunk = prepare(profile, batch, executor)
    return count_window(profile, [chunk], executor).finish(policy, monitor=monitor, window=window)
