"""What a chart of one feature needs: the reference's and the batch's shares per PSI bin or per category.

Both come from the counts the statistics already use (the PSI bins of a numeric feature, the category counts of
a categorical one), so they merge like everything else and cost nothing extra to compute. Shares are of the
usable values (missing ones excluded; `missing_share` reports those) and add up to 1 (0 without values).

    >>> shares = bin_shares([10.0, 20.0], [5, 10, 5], [0, 5, 15])
    >>> shares.current
    (0.0, 0.25, 0.75)
    >>> shares.to_dict()["edges"]
    [10.0, 20.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

#: Categories shown by name in a categorical feature's chart; the rest are summed into "other".
TOP_CATEGORIES = 12


@dataclass(frozen=True)
class BinShares:
    """A numeric feature's PSI bins: `edges` are the interior edges (strictly increasing), so bin 0 is
    (-inf, edges[0]), bin k is [edges[k - 1], edges[k]) and the last bin [edges[-1], inf); `reference` and
    `current` hold one share per bin (`len(edges) + 1`)."""

    edges: tuple[float, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    kind: Literal["bins"] = "bins"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `{"kind": "bins", "edges", "reference", "current"}`."""
        return {
            "kind": self.kind,
            "edges": [_finite(e) for e in self.edges],
            "reference": list(self.reference),
            "current": list(self.current),
        }


@dataclass(frozen=True)
class CategoryShares:
    """A categorical feature's largest categories (by the larger of their two shares, then by name) with their
    shares and whether each is new (absent from the reference); the remaining categories are summed into
    `other_reference` / `other_current` (`other_categories` of them, `other_new` of which are new)."""

    categories: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    new: tuple[bool, ...]
    other_reference: float = 0.0
    other_current: float = 0.0
    other_categories: int = 0
    other_new: int = 0
    kind: Literal["categories"] = "categories"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `{"kind": "categories", "categories", "reference", "current", "new", "other": {...}}`."""
        return {
            "kind": self.kind,
            "categories": list(self.categories),
            "reference": list(self.reference),
            "current": list(self.current),
            "new": list(self.new),
            "other": {
                "categories": self.other_categories,
                "new": self.other_new,
                "reference": self.other_reference,
                "current": self.other_current,
            },
        }


Distribution = BinShares | CategoryShares


def bin_shares(edges: npt.ArrayLike, reference: npt.ArrayLike, current: npt.ArrayLike) -> BinShares:
    """The shares of each PSI bin in the reference's and the batch's bin counts."""
    return BinShares(
        tuple(float(e) for e in np.asarray(edges, dtype=np.float64)),
        _shares(reference),
        _shares(current),
    )


def category_shares(
    reference: Mapping[str, int], current: Mapping[str, int], top: int = TOP_CATEGORIES
) -> CategoryShares:
    """The `top` categories of the union with the larger share in either count, the rest as "other"."""
    names = sorted(set(reference) | set(current))
    ref = _shares([reference.get(n, 0) for n in names])
    cur = _shares([current.get(n, 0) for n in names])
    order = sorted(range(len(names)), key=lambda i: (-max(ref[i], cur[i]), names[i]))
    shown, rest = order[:top], order[top:]
    return CategoryShares(
        tuple(names[i] for i in shown),
        tuple(ref[i] for i in shown),
        tuple(cur[i] for i in shown),
        tuple(names[i] not in reference for i in shown),
        float(math.fsum(ref[i] for i in rest)),
        float(math.fsum(cur[i] for i in rest)),
        len(rest),
        sum(1 for i in rest if names[i] not in reference),
    )


def _shares(counts: npt.ArrayLike | Sequence[int]) -> tuple[float, ...]:
    values = np.asarray(counts, dtype=np.float64)
    total = float(values.sum())
    return tuple(float(v) for v in (values / total if total > 0 else np.zeros_like(values)))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
