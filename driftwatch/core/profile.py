"""Reference profiles: what the training data looked like, built once and reused for every batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Binning = Literal["quantile", "uniform"]


@dataclass(frozen=True)
class ProfileSettings:
    """How numeric features are binned for PSI and Jensen-Shannon."""

    bins: int = 10
    binning: Binning = "quantile"
    epsilon: float = 1e-4
