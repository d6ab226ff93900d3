"""driftwatch: watch production features for drift against a training reference.

From a notebook::

    from driftwatch import build_profile, compare
    profile = build_profile(train_df, numeric=["age", "income"], categorical=["plan"])
    report = compare(profile, prod_df)
    report.severity, report.to_dict()
"""

from collections.abc import Mapping
from typing import Any

from driftwatch.core import (
    FeatureResult,
    FeatureStats,
    Level,
    Policy,
    Profile,
    ProfileSettings,
    Report,
    Severity,
    Significance,
    build_profile,
)
from driftwatch.core import compare as _compare
from driftwatch.runtime.stats_pool import stats_executor

__version__ = "0.1.0"

__all__ = [
    "FeatureResult",
    "FeatureStats",
    "Level",
    "Policy",
    "Profile",
    "ProfileSettings",
    "Report",
    "Severity",
    "Significance",
    "__version__",
    "build_profile",
    "compare",
]


def compare(profile: Profile, batch: Mapping[str, Any], policy: Policy | None = None, **options: Any) -> Report:
    """`driftwatch.core.compare` with features computed on the process's shared statistics pool."""
    options.setdefault("executor", stats_executor())
    return _compare(profile, batch, policy, **options)
