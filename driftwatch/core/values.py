"""Raw column values to what the statistics use: finite floats, or category counts. Missing never crashes.

Numeric: NaN, None, pandas NA and +/-inf are missing. Categorical: None, NaN and pandas NA are missing;
every other value is a category named by `category_label(value)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd


def finite_values(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """A fresh float64 array of the finite values, and the number of values given (missing included).

    Raises ValueError when a value is neither a number nor missing (a string in a numeric column).
    """
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        array = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        raw = np.asarray(values)
        if raw.dtype == object:
            array = pd.Series(raw).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = raw.astype(np.float64, copy=False)
    array = np.ravel(array)
    return array[np.isfinite(array)], int(array.size)


@dataclass(frozen=True)
class CategoryCounts:
    """Counts of each category (sorted by name), with the number of values and of missing ones."""

    counts: Mapping[str, int]
    rows: int
    missing: int


def category_counts(values: npt.ArrayLike) -> CategoryCounts:
    """Count the categories of a column (hash-based through pandas; categories named by `str`)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.ravel(np.asarray(values, dtype=object)))
    tallied = series.value_counts(dropna=True, sort=False)
    merged: dict[str, int] = {}
    for key, count in zip(tallied.index, tallied.to_numpy(), strict=True):
        if count == 0:  # unobserved levels of a pandas Categorical
            continue
        label = category_label(key)
        merged[label] = merged.get(label, 0) + int(count)
    counted = sum(merged.values())
    return CategoryCounts(dict(sorted(merged.items())), int(series.size), int(series.size) - counted)


def category_label(value: object) -> str:
    """The name of a category: `str(value)`, but whole floats as integers (1.0 -> "1": an integer code column
    becomes float when it has a missing value, and must not turn into new categories)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def merge_category_counts(parts: list[CategoryCounts]) -> CategoryCounts:
    """Counts of a batch read in chunks: the sum of the chunks' counts."""
    merged: dict[str, int] = {}
    for part in parts:
        for label, count in part.counts.items():
            merged[label] = merged.get(label, 0) + count
    return CategoryCounts(dict(sorted(merged.items())), sum(p.rows for p in parts), sum(p.missing for p in parts))
