"""The functional core: pure statistics, profiles and policies (numpy, scipy and pandas only; no I/O)."""

from driftwatch.core.compare import compare
from driftwatch.core.policy import Level, Policy, Significance
from driftwatch.core.profile import Profile, ProfileSettings, build_profile
from driftwatch.core.report import FeatureResult, FeatureStats, Report, Severity

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
    "build_profile",
    "compare",
]
