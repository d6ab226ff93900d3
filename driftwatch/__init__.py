"""driftwatch: watch production features for drift against a training reference.

From a notebook::

    from driftwatch import build_profile, compare
    profile = build_profile(train_df, numeric=["age", "income"], categorical=["plan"])
    report = compare(profile, prod_df)
    report.severity, report.to_dict()
"""

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
    compare,
)

__version__ = "0.1.0"

__all__ = [
    "FeatureResult", "FeatureStats", "Level", "Policy", "Profile", "ProfileSettings", "Report", "Severity",
    "Significance", "__version__", "build_profile", "compare",
]
