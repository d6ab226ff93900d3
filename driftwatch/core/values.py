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


#: Python objects are hashed in chunks of this many values: hashing holds the GIL for a whole `factorize`
#: call, and short calls let the numeric features' threads (GIL-free sorts) go on between them.
OBJECT_CHUNK = 1 << 16


def category_counts(values: npt.ArrayLike) -> CategoryCounts:
    """Count the categories of a column (hash-based: `pandas.factorize` then `numpy.bincount`).

    Categories are named by `category_label`; values that factorize to one category, or whose labels
    coincide (1 and 1.0), are counted together. Unobserved levels of a pandas Categorical are not counted.
    Object columns (array or Series) longer than `OBJECT_CHUNK` are counted chunk by chunk and merged.
    """
    column = _column_of(values)
    if column.dtype != object or len(column) <= OBJECT_CHUNK:
        return _counts_of(column)
    rows = column.iloc if isinstance(column, pd.Series) else column
    return merge_category_counts([_counts_of(rows[i : i + OBJECT_CHUNK]) for i in range(0, len(column), OBJECT_CHUNK)])


def _column_of(values: npt.ArrayLike) -> pd.Series | npt.NDArray[np.generic]:
    """A Series as given; a numpy array of numbers or booleans flat (it factorizes natively, its uniques become
    Python scalars); anything else as flat Python objects, as given (a list is not coerced to one dtype, an
    object array is not inferred as strings before hashing)."""
    if isinstance(values, pd.Series):
        return values
    native = isinstance(values, np.ndarray) and values.dtype.kind in "biuf"
    return np.ravel(values) if native else np.ravel(np.asarray(values, dtype=object))


def _counts_of(column: pd.Series | npt.NDArray[np.generic]) -> CategoryCounts:
    """`category_counts` of one column or chunk of one."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    tallies = np.bincount(codes + 1, minlength=len(uniques) + 1)[1:]  # code -1 is missing
    merged: dict[str, int] = {}
    for key, count in zip(_python_scalars(uniques), tallies.tolist(), strict=True):
        if count == 0:
            continue
        label = category_label(key)
        merged[label] = merged.get(label, 0) + count
    counted = sum(merged.values())
    rows = len(column)
    return CategoryCounts(dict(sorted(merged.items())), rows, rows - counted)


def _python_scalars(uniques: object) -> list[object]:
    """The factorized uniques as Python objects (numpy scalars become int, float, bool or str)."""
    if isinstance(uniques, np.ndarray):
        return list(uniques.tolist())
    return [item.item() if isinstance(item, np.generic) else item for item in uniques]  # type: ignore[attr-defined]


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
