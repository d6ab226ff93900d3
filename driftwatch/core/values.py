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


def sorted_finite_values(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """The finite values in ascending order (a slice of a fresh sorted copy), and the number of values given.

    The count includes missing values. One sort does the filtering too: numpy orders -inf first and NaN after
    +inf, so the finite values are one slice of the sorted copy. Raises ValueError when a value is neither a
    number nor missing (a string in a numeric column).
    """
    array = float_values(values)
    ordered = np.sort(array)
    first = int(np.searchsorted(ordered, -np.inf, side="right"))
    end = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[first:end], int(array.size)


def float_values(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The values as a flat float64 array (no copy when they are one), missing values as NaN.

    Raises ValueError when a value is neither a number nor missing (a string in a numeric column).
    """
    array: npt.NDArray[np.float64]
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        array = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
        return array
    raw = np.asarray(values)
    if raw.dtype == object:
        array = pd.Series(raw.ravel()).to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        array = raw.astype(np.float64, copy=False).ravel()
    return array


@dataclass(frozen=True)
class CategoryCounts:
    """Counts of each category (sorted by name), with the number of values and of missing ones."""

    counts: Mapping[str, int]
    rows: int
    missing: int


#: Distinct objects are hashed in chunks of this many: hashing holds the GIL for a whole `factorize` call, and
#: short calls let the numeric features' threads (GIL-free sorts) go on between them.
OBJECT_CHUNK = 1 << 16


def category_counts(values: npt.ArrayLike) -> CategoryCounts:
    """Count the categories of a column (hash-based: `pandas.factorize` then `numpy.bincount`).

    Categories are named by `category_label`; values that factorize to one category, or whose labels
    coincide (1 and 1.0), are counted together. Unobserved levels of a pandas Categorical are not counted.
    Object columns are first counted by object identity (`_distinct_objects`), then only their distinct
    objects are hashed by value, `OBJECT_CHUNK` at a time.
    """
    column = _column_of(values)
    if column.dtype != object:
        return _counts_of(column)
    objects, weights = _distinct_objects(np.asarray(column))
    chunks = range(0, len(objects), OBJECT_CHUNK)
    parts = [_counts_of(objects[i : i + OBJECT_CHUNK], weights[i : i + OBJECT_CHUNK]) for i in chunks]
    return merge_category_counts(parts)


def _distinct_objects(
    column: npt.NDArray[np.object_],
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64]]:
    """The distinct objects (by identity) of an object array, and how often each occurs in it.

    The array's object pointers are factorized as integers: no Python call per value and no GIL held. Columns
    read from parquet (pyarrow deduplicates strings) or csv (pandas' parser too) repeat few objects, so the
    hashing by value that follows is short; equal objects that are not identical are merged there.
    """
    addresses = np.frombuffer(np.ascontiguousarray(column), dtype=np.intp)
    codes, uniques = pd.factorize(addresses)
    positions = np.empty(len(uniques), dtype=np.intp)
    positions[codes] = np.arange(codes.size)  # any position of an address holds that same object
    return column[positions], np.bincount(codes, minlength=len(uniques))


def _column_of(values: npt.ArrayLike) -> pd.Series | npt.NDArray[np.generic]:
    """A Series as given; a numpy array of numbers or booleans flat (it factorizes natively, its uniques become
    Python scalars); anything else as flat Python objects, as given (a list is not coerced to one dtype, an
    object array is not inferred as strings before hashing)."""
    if isinstance(values, pd.Series):
        return values
    native = isinstance(values, np.ndarray) and values.dtype.kind in "biuf"
    return np.ravel(values) if native else np.ravel(np.asarray(values, dtype=object))


def _counts_of(
    column: pd.Series | npt.NDArray[np.generic], weights: npt.NDArray[np.int64] | None = None
) -> CategoryCounts:
    """`category_counts` of one column or chunk of one, each value counted `weights` times (default once)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    # code -1 is missing; weighted tallies come back as floats, exact integers below 2**53
    tallies = np.bincount(codes + 1, weights, minlength=len(uniques) + 1)[1:].astype(np.int64)
    rows = len(column) if weights is None else int(weights.sum())
    merged: dict[str, int] = {}
    for key, count in zip(_python_scalars(uniques), tallies.tolist(), strict=True):
        if count == 0:
            continue
        label = category_label(key)
        merged[label] = merged.get(label, 0) + count
    return CategoryCounts(dict(sorted(merged.items())), rows, rows - sum(merged.values()))


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
