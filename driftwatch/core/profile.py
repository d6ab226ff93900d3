"""Reference profiles: what the training data looked like, built once and reused for every batch.

A numeric feature keeps its sorted finite reference values (exact KS and Wasserstein against any batch
cost one sort of the batch) and its PSI bin edges and counts; a categorical feature keeps its category
counts. Derived on first use: the reference's standard deviation and a coarse `ReferenceGrid` (what the
mergeable counts of `driftwatch.core.partials` are taken on); both are saved with the profile, so a loaded
profile need not scan its values for them.
`profile_arrays` / `profile_from_arrays` turn a profile into a JSON header and flat numpy arrays and back
(`feature_arrays` / `feature_from_arrays` one feature at a time), so the shell can store a `.npy` file per array
and hand back read-only memory maps, which are used as given, never copied. The fingerprint hashes the data
and settings it came from (`Fingerprint` takes the features one at a time, for a profile built column by column).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from driftwatch.core.values import category_counts, sorted_finite_values

Binning = Literal["quantile", "uniform"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Points of a numeric reference's `ReferenceGrid` (at most; fewer where reference values repeat).
GRID_SIZE = 16_384

#: Version of the saved profile layout; a file of another version is rebuilt, not misread.
PROFILE_VERSION = 3  # 3: point masses get their own PSI bins


@dataclass(frozen=True)
class ProfileSettings:
    """How numeric features are binned for PSI and Jensen-Shannon."""

    bins: int = 10
    binning: Binning = "quantile"
    epsilon: float = 1e-4

    def __post_init__(self) -> None:
        if self.bins < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        if self.binning not in ("quantile", "uniform"):
            raise ValueError(f"binning must be quantile or uniform, got {self.binning!r}")
        if not 0 < self.epsilon < 1:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """A numeric reference feature: sorted finite values, interior PSI edges and per-bin counts."""

    name: str
    sorted_values: FloatArray
    edges: FloatArray
    counts: IntArray
    rows: int
    missing: int

    kind: Literal["numeric"] = "numeric"

    @cached_property
    def std(self) -> float:
        """Population standard deviation of the finite reference values (0.0 when fewer than 2).

        Computed once per profile (at build, or on first use after loading) and then reused.
        """
        return float(np.std(self.sorted_values)) if self.sorted_values.size > 1 else 0.0

    @cached_property
    def grid(self) -> ReferenceGrid:
        """The reference's `ReferenceGrid` of `GRID_SIZE` points; derived on first use, or saved with the profile."""
        return reference_grid(self.sorted_values, GRID_SIZE)


@dataclass(frozen=True, eq=False)
class ReferenceGrid:
    """A coarse grid over a sorted reference: what a large batch's KS and Wasserstein need of it.

    `points` are the distinct reference values at `size` evenly spaced ranks (minimum and maximum
    included); `upto[k]` and `below[k]` count the reference values <= and < `points[k]`; `gap_sums[k]`
    is the sum of `points[k + 1] - x` over the reference values x strictly between `points[k]` and
    `points[k + 1]` (n times the integral of the reference CDF's rise over that open interval).
    """

    points: FloatArray
    upto: IntArray
    below: IntArray
    gap_sums: FloatArray


def reference_grid(sorted_values: FloatArray, size: int) -> ReferenceGrid:
    """The `ReferenceGrid` of at most `size` (>= 2) points over sorted, finite, non-empty values.

    Gap sums are accumulated in extended precision where the platform has it, from differences to
    the interval's right end (no cancellation against the values' offset). Arrays are read-only.
    """
    n = sorted_values.size
    ranks = np.unique(np.linspace(0, n - 1, min(max(size, 2), n)).round().astype(np.int64))
    points = np.unique(sorted_values[ranks])
    upto = np.searchsorted(sorted_values, points, side="right").astype(np.int64)
    below = np.searchsorted(sorted_values, points, side="left").astype(np.int64)
    tail = sorted_values[upto[0] :]  # values above the first point, each in (points[k], points[k + 1]]
    gaps = np.repeat(points[1:], np.diff(upto)) - tail
    sums = np.concatenate(([0], np.cumsum(gaps, dtype=np.longdouble)))
    gap_sums = (sums[upto[1:] - upto[0]] - sums[upto[:-1] - upto[0]]).astype(np.float64)
    for array in (points, upto, below, gap_sums):
        array.setflags(write=False)
    return ReferenceGrid(points, upto, below, gap_sums)


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """A categorical reference feature: its categories and their counts."""

    name: str
    categories: tuple[str, ...]
    counts: IntArray
    rows: int
    missing: int

    kind: Literal["categorical"] = "categorical"


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, eq=False)
class Profile:
    """The reference profile of a monitor: one entry per feature, the settings, and a fingerprint."""

    features: Mapping[str, FeatureProfile]
    settings: ProfileSettings
    rows: int
    fingerprint: str


def bin_edges(sorted_values: FloatArray, settings: ProfileSettings) -> FloatArray:
    """Interior bin edges (strictly increasing) for PSI: point masses get their own bins, the rest is binned by
    quantiles (or equal widths).

    An atom is a single value holding at least 1 / (2 B) of the reference (B = `settings.bins`); it gets the
    bin [atom, next float up), which holds it alone. Quantile binning cuts the other values at their quantiles
    k / B' (B' = B minus the atoms, at least 1); uniform binning cuts the reference range into B equal widths.
    Without atoms this is the classic binning, so a feature that is 90% zeros or a constant reference still gets
    bins that a shift of the other values (or away from the constant) moves mass between.

    >>> bin_edges(np.array([0.0] * 6 + [1.0, 2.0, 3.0, 4.0]), ProfileSettings(bins=4)).tolist()
    [0.0, 5e-324, 2.0, 3.0]
    """
    if sorted_values.size == 0:
        return np.empty(0)
    atoms = point_masses(sorted_values, settings.bins)
    if settings.binning == "quantile":
        rest = sorted_values[~np.isin(sorted_values, atoms)] if atoms.size else sorted_values
        parts = max(settings.bins - atoms.size, 1)
        cuts = np.quantile(rest, np.arange(1, parts) / parts) if rest.size else np.empty(0)
    else:
        cuts = np.linspace(sorted_values[0], sorted_values[-1], settings.bins + 1)[1:-1]
    edges = np.concatenate((cuts, atoms, np.nextafter(atoms, np.inf)))
    return np.unique(edges)


def point_masses(sorted_values: FloatArray, bins: int) -> FloatArray:
    """The distinct values holding at least 1 / (2 `bins`) of the sorted values (ascending)."""
    n = sorted_values.size
    if n == 0:
        return np.empty(0)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    sizes = np.diff(np.append(starts, n))
    heavy: FloatArray = sorted_values[starts[sizes * 2 * bins >= n]]
    return heavy


def bin_counts(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts per bin of sorted values; bins are (-inf, e1), [e1, e2), ..., [ek, inf)."""
    inner = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], inner, [sorted_values.size]))).astype(np.int64)


def profile_numeric(name: str, values: npt.ArrayLike, settings: ProfileSettings) -> NumericProfile:
    """Profile one numeric reference column (NaN, None and inf count as missing)."""
    finite, rows = sorted_finite_values(values)
    finite.setflags(write=False)
    edges = bin_edges(finite, settings)
    edges.setflags(write=False)
    counts = bin_counts(finite, edges)
    counts.setflags(write=False)
    profile = NumericProfile(name, finite, edges, counts, rows, rows - finite.size)
    _ = profile.std  # computed once here, not on every comparison
    return profile


def profile_categorical(name: str, values: npt.ArrayLike) -> CategoricalProfile:
    """Profile one categorical reference column (None and NaN count as missing)."""
    counted = category_counts(values)
    counts = np.array(list(counted.counts.values()), dtype=np.int64)
    counts.setflags(write=False)
    return CategoricalProfile(name, tuple(counted.counts), counts, counted.rows, counted.missing)


def build_profile(
    reference: Mapping[str, npt.ArrayLike],
    *,
    numeric: Iterable[str] = (),
    categorical: Iterable[str] = (),
    settings: ProfileSettings | None = None,
) -> Profile:
    """Profile the named `numeric` and `categorical` columns of `reference` (a mapping of column arrays).

    Raises KeyError naming a column that `reference` lacks.
    """
    settings = settings or ProfileSettings()
    features: dict[str, FeatureProfile] = {}
    for name in numeric:
        features[name] = profile_numeric(name, _column(reference, name), settings)
    for name in categorical:
        features[name] = profile_categorical(name, _column(reference, name))
    return assemble_profile(features, settings, _fingerprint(features, settings))


def assemble_profile(features: Mapping[str, FeatureProfile], settings: ProfileSettings, fingerprint: str) -> Profile:
    """The profile of already profiled `features` (in report order); its rows are the longest feature's."""
    rows = max((f.rows for f in features.values()), default=0)
    return Profile(MappingProxyType(dict(features)), settings, rows, fingerprint)


def _column(frame: Mapping[str, npt.ArrayLike], name: str) -> npt.ArrayLike:
    if name not in frame:
        raise KeyError(f"reference has no column {name!r}")
    return frame[name]


#: Values hashed per `update` by `Fingerprint` (bounds the temporary copy, not the digest).
_HASH_CHUNK = 1 << 20


class Fingerprint:
    """sha256 of the settings and of every feature's sorted values or category counts (row order free).

    Features are added one at a time in name order (`add` raises ValueError otherwise), so a profile built
    column by column gets the same fingerprint as `build_profile` of the whole frame.
    """

    def __init__(self, settings: ProfileSettings) -> None:
        self._digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode())
        self._last: str | None = None

    def add(self, feature: FeatureProfile) -> None:
        """Hash `feature`, whose name must sort after the previous one's."""
        if self._last is not None and feature.name <= self._last:
            raise ValueError(f"feature {feature.name!r} added after {self._last!r}: add features in name order")
        self._last = feature.name
        self._digest.update(f"\0{feature.kind}\0{feature.name}\0{feature.rows}\0{feature.missing}\0".encode())
        if isinstance(feature, NumericProfile):
            values = feature.sorted_values
            for start in range(0, values.size, _HASH_CHUNK):
                chunk = values[start : start + _HASH_CHUNK] + 0.0  # -0.0 -> 0.0
                self._digest.update(np.ascontiguousarray(chunk).tobytes())
        else:
            counted = dict(zip(feature.categories, feature.counts.tolist(), strict=True))
            self._digest.update(json.dumps(counted, sort_keys=True).encode())

    def hexdigest(self) -> str:
        """The fingerprint of the features added so far."""
        return self._digest.hexdigest()


def _fingerprint(features: Mapping[str, FeatureProfile], settings: ProfileSettings) -> str:
    """The `Fingerprint` of `features` (any order) and `settings`."""
    fingerprint = Fingerprint(settings)
    for name in sorted(features):
        fingerprint.add(features[name])
    return fingerprint.hexdigest()


def feature_header(feature: FeatureProfile) -> dict[str, Any]:
    """What the header stores of a feature: name, kind, rows, missing, and `std` and `grid_size` (0: no grid
    saved) or `categories`."""
    item: dict[str, Any] = {
        "name": feature.name,
        "kind": feature.kind,
        "rows": feature.rows,
        "missing": feature.missing,
    }
    if isinstance(feature, NumericProfile):
        item["std"] = feature.std
        item["grid_size"] = GRID_SIZE if feature.sorted_values.size else 0
    else:
        item["categories"] = list(feature.categories)
    return item


def feature_arrays(feature: FeatureProfile) -> dict[str, Any]:
    """The arrays of a feature: `counts`, and for a numeric one `values` (sorted, sized like the reference),
    `edges` and, unless it has no values, its `ReferenceGrid` (`grid_points`, `grid_upto`, `grid_below`,
    `grid_gap_sums`; derived here if not yet)."""
    if not isinstance(feature, NumericProfile):
        return {"counts": feature.counts}
    arrays = {"values": feature.sorted_values, "edges": feature.edges, "counts": feature.counts}
    if feature.sorted_values.size:
        grid = feature.grid
        arrays |= {
            "grid_points": grid.points,
            "grid_upto": grid.upto,
            "grid_below": grid.below,
            "grid_gap_sums": grid.gap_sums,
        }
    return arrays


def feature_from_arrays(item: Mapping[str, Any], arrays: Mapping[str, Any]) -> FeatureProfile:
    """The feature stored as `feature_header` and `feature_arrays`; ValueError if the arrays do not fit it.

    Arrays of the right dtype are used as given, not copied (a read-only float64 memory map stays mapped);
    others are converted. A header `std`, and a saved grid of `GRID_SIZE` points, are taken as they are, not
    derived again from the values.
    """
    name, rows, missing = str(item["name"]), int(item["rows"]), int(item["missing"])
    counts = _read_only(arrays["counts"], np.int64)
    if item["kind"] == "categorical":
        categories = tuple(str(c) for c in item["categories"])
        if counts.shape != (len(categories),):
            raise ValueError(f"feature {name!r}: {counts.size} counts for {len(categories)} categories")
        return CategoricalProfile(name, categories, counts, rows, missing)
    values = _read_only(arrays["values"], np.float64)
    if values.shape != (rows - missing,):
        raise ValueError(f"feature {name!r}: {values.size} values, expected {rows - missing}")
    edges = _read_only(arrays["edges"], np.float64)
    if counts.shape != (edges.size + 1,):
        raise ValueError(f"feature {name!r}: {counts.size} counts for {edges.size} edges")
    feature = NumericProfile(name, values, edges, counts, rows, missing)
    if "std" in item:
        vars(feature)["std"] = float(item["std"])  # the cached_property's slot: no scan of the values
    if item.get("grid_size") == GRID_SIZE and values.size:
        points = _read_only(arrays["grid_points"], np.float64)
        upto, below = _read_only(arrays["grid_upto"], np.int64), _read_only(arrays["grid_below"], np.int64)
        gap_sums = _read_only(arrays["grid_gap_sums"], np.float64)
        if not points.size == upto.size == below.size == gap_sums.size + 1 or upto[-1] != values.size:
            raise ValueError(f"feature {name!r}: grid arrays do not fit together")
        vars(feature)["grid"] = ReferenceGrid(points, upto, below, gap_sums)
    return feature


def _read_only(array: Any, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """`array` as a read-only 1-d ndarray of `dtype`: a view when it already is one (no copy), else converted."""
    out: npt.NDArray[Any] = np.asarray(array, dtype=dtype)
    if out.ndim != 1:
        raise ValueError(f"expected a 1-d array, got shape {out.shape}")
    if out.flags.writeable:
        out = out.view()
        out.setflags(write=False)
    return out


def profile_arrays(profile: Profile, meta: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The profile as a JSON header (key `header`) and flat numpy arrays `f<i>_<array>` (see `feature_arrays`).

    `meta` is stored in the header. The arrays are the profile's own (read-only), not copies.
    """
    header = {
        "version": PROFILE_VERSION,
        "fingerprint": profile.fingerprint,
        "settings": asdict(profile.settings),
        "rows": profile.rows,
        "meta": dict(meta or {}),
        "features": [feature_header(f) for f in profile.features.values()],
    }
    arrays: dict[str, Any] = {"header": json.dumps(header)}
    for i, feature in enumerate(profile.features.values()):
        for key, array in feature_arrays(feature).items():
            arrays[f"f{i}_{key}"] = array
    return arrays


def profile_header(arrays: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON header of saved profile arrays (version, fingerprint, settings, rows, meta, features).

    The header may be given as JSON text or as a 0-d numpy string array (what `numpy.load` gives of a str).
    """
    raw = arrays["header"]
    header: dict[str, Any] = json.loads(raw if isinstance(raw, str) else str(np.asarray(raw)[()]))
    return header


def profile_from_arrays(arrays: Mapping[str, Any]) -> Profile:
    """The profile stored by `profile_arrays`; ValueError if its version is not `PROFILE_VERSION` or an array
    does not fit the header. Arrays are used as given where their dtype fits (see `feature_from_arrays`)."""
    header = profile_header(arrays)
    if header.get("version") != PROFILE_VERSION:
        raise ValueError(f"profile version {header.get('version')} is not {PROFILE_VERSION}")
    settings = ProfileSettings(**header["settings"])
    features: dict[str, FeatureProfile] = {}
    for i, item in enumerate(header["features"]):
        prefix = f"f{i}_"
        own = {key[len(prefix) :]: arrays[key] for key in arrays if key.startswith(prefix)}
        features[item["name"]] = feature_from_arrays(item, own)
    return Profile(MappingProxyType(features), settings, header["rows"], header["fingerprint"])
