"""driftwatch: watch production features for drift against a training reference.

From a notebook::

    from driftwatch import build_profile, compare
    profile = build_profile(train_df, numeric=["age", "income"], categorical=["plan"])
    report = compare(profile, prod_df)
    report.severity, report.to_dict()

The names are imported on first use (PEP 562), so `import driftwatch` (and the `driftwatch` command) stays cheap:
numpy, pandas and scipy load when a profile is built or compared, not when the package is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

#: Public names served from `driftwatch.core` on first access.
_FROM_CORE = frozenset(__all__) - {"__version__", "compare"}


def __getattr__(name: str) -> Any:
    """Import a public name from `driftwatch.core` when first asked for, and keep it (PEP 562)."""
    if name in _FROM_CORE:
        value = getattr(importlib.import_module("driftwatch.core"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def compare(profile: Profile, batch: Mapping[str, Any], policy: Policy | None = None, **options: Any) -> Report:
    """`driftwatch.core.compare` with features computed on the process's shared statistics pool."""
    from driftwatch.core import compare as core_compare
    from driftwatch.runtime.stats_pool import stats_executor

    options.setdefault("executor", stats_executor())
    return core_compare(profile, batch, policy, **options)
