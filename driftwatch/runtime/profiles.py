"""Reference profiles on disk: built once, one column at a time, saved as `.npy` files and memory-mapped.

A cache is a folder, `profiles/<monitor>/`:

    header.json                   version, fingerprint, settings, rows, meta (key, generation), features (numeric
                                  ones with their `std`, categorical ones with their categories)
    <generation>.f<i>_<array>.npy one file per array of feature i: `values` (sorted, one per reference value),
                                  `edges`, `counts`, and the `ReferenceGrid`: `grid_points`, `grid_upto`,
                                  `grid_below`, `grid_gap_sums` (16,384 entries each at most)

Sorted values and grids are loaded with `numpy.load(mmap_mode="r")`: read-only memory maps, whose pages the kernel
shares between monitors and processes and evicts under memory pressure, so a large reference costs little resident
memory (and loading reads none of the values); edges and counts are small and read whole.

`header.json` is the manifest, written last: every array file is written durably first under a fresh random
generation (never rewritten), so a crash or a concurrent writer leaves the old profile or the new one, never a mix.
Files of older generations are then removed; the stale `<monitor>.npz` of layout version 1 too.

The cache is disposable: one that cannot be read whole (a file 0 bytes, truncated, corrupt or missing, another
version, other inputs) is rebuilt with a log line. Files are written with mode 0644.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwatch.core.profile import (
    PROFILE_VERSION,
    FeatureProfile,
    Fingerprint,
    NumericProfile,
    Profile,
    ProfileSettings,
    assemble_profile,
    feature_arrays,
    feature_from_arrays,
    feature_header,
    profile_arrays,
    profile_categorical,
    profile_from_arrays,
    profile_header,
    profile_numeric,
)
from driftwatch.errors import ProfileError, SchemaMismatch
from driftwatch.outputs.files import fsync_folder, write_bytes_durably, write_durably
from driftwatch.sources import read_reference

log = logging.getLogger("driftwatch.profiles")

#: The manifest of a cache folder.
HEADER = "header.json"

#: `<generation>.f<i>_<array>.npy`, an array file of a cache folder.
_ARRAY_FILE = re.compile(r"(?P<generation>[0-9a-f]+)\.(?P<key>f[0-9]+_[a-z_]+)\.npy")

#: Arrays loaded as memory maps (the reference's size, or up to `GRID_SIZE`); the others are small and read whole.
_MAPPED = ("values", "grid_points", "grid_upto", "grid_below", "grid_gap_sums")


def reference_key(path: Path, numeric: Sequence[str], categorical: Sequence[str], settings: ProfileSettings) -> str:
    """What a saved profile must have been built from: the file (path, size, mtime), features, settings."""
    stat = path.stat()
    inputs = {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "numeric": list(numeric),
        "categorical": list(categorical),
        "settings": asdict(settings),
        "version": PROFILE_VERSION,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def cache_folder(cache: Path) -> Path:
    """The cache folder meant by `cache`: itself, or for a `<name>.npz` path (layout version 1) the folder `<name>`."""
    return cache.with_suffix("") if cache.suffix == ".npz" else cache


class _CacheWriter:
    """Writes one generation of a cache folder: array files as features are built, then the header (`commit`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.generation = secrets.token_hex(8)
        self.started = time.time()
        folder.mkdir(parents=True, exist_ok=True)
        fsync_folder(folder.parent)

    def write_feature(self, index: int, feature: FeatureProfile) -> FeatureProfile:
        """Write `feature`'s arrays durably and give it back backed by the files (sorted values memory-mapped)."""
        loaded: dict[str, Any] = {}
        for name, array in feature_arrays(feature).items():
            path = self.folder / f"{self.generation}.f{index}_{name}.npy"
            write_durably(path, _npy_writer(array), sync_folder=False)
            loaded[name] = _load_array(path, name)
        return feature_from_arrays(feature_header(feature), loaded)

    def commit(self, profile: Profile, key: str) -> None:
        """Make the array files durable, then write the header naming them; remove files of older generations."""
        fsync_folder(self.folder)
        header = profile_arrays(profile, {"key": key, "generation": self.generation})["header"]
        write_bytes_durably(self.folder / HEADER, header.encode())
        for path in self.folder.iterdir():
            match = _ARRAY_FILE.fullmatch(path.name)
            # a concurrent build started after this one keeps its files; one that crashed before leaves them here
            if match and match["generation"] != self.generation and _mtime(path) < self.started:
                with contextlib.suppress(OSError):
                    path.unlink()
        stale = self.folder.parent / f"{self.folder.name}.npz"
        if stale.is_file():
            with contextlib.suppress(OSError):
                stale.unlink()

    def abort(self) -> None:
        """Remove this generation's files (memory maps of them stay valid)."""
        for path in self.folder.glob(f"{self.generation}.*.npy"):
            with contextlib.suppress(OSError):
                path.unlink()


def _npy_writer(array: npt.ArrayLike) -> Any:
    return lambda handle: np.save(handle, np.asarray(array), allow_pickle=False)


def release_mapped_pages(profile: Profile) -> None:
    """Drop the profile's memory-mapped pages from this process's resident set (they stay in the page cache, and
    the next access maps them again): a run touches parts of the sorted reference values, and 20 monitors would
    otherwise keep those pages counted in the daemon's RSS. Never raises."""
    for feature in profile.features.values():
        if not isinstance(feature, NumericProfile):
            continue
        grid = feature.grid
        for array in (feature.sorted_values, grid.points, grid.upto, grid.below, grid.gap_sums):
            mapped = _mapping_of(array)
            if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                with contextlib.suppress(OSError, ValueError):
                    mapped.madvise(mmap.MADV_DONTNEED)


def _mapping_of(array: Any) -> Any:
    """The `mmap.mmap` under a numpy array (a `numpy.memmap` or a view of one), else None."""
    while array is not None:
        mapped = getattr(array, "_mmap", None)
        if mapped is not None:
            return mapped
        array = getattr(array, "base", None)
    return None


def _load_array(path: Path, name: str) -> Any:
    return np.load(path, mmap_mode="r" if name in _MAPPED else None, allow_pickle=False)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")


def save_profile(profile: Profile, cache: Path, *, key: str = "") -> None:
    """Write `profile` to the cache folder `cache` durably (array files, then the header naming them)."""
    writer = _CacheWriter(cache_folder(cache))
    try:
        for index, feature in enumerate(profile.features.values()):
            writer.write_feature(index, feature)
        writer.commit(profile, key)
    except BaseException:
        writer.abort()
        raise


def load_profile(cache: Path, *, key: str | None = None) -> Profile:
    """The profile saved in the cache folder `cache`, sorted values memory-mapped read-only.

    ProfileError if a file is missing or unreadable, of another version, or built from other inputs.
    """
    folder = cache_folder(cache)
    try:
        text = (folder / HEADER).read_text(encoding="utf-8")
        header = profile_header({"header": text})
        if key is not None and header.get("meta", {}).get("key") != key:
            raise ProfileError(f"profile {folder} was built from another reference or settings")
        if header.get("version") != PROFILE_VERSION:
            raise ValueError(f"profile version {header.get('version')} is not {PROFILE_VERSION}")
        generation = header["meta"]["generation"]
        arrays: dict[str, Any] = {"header": text}
        for path in folder.glob(f"{generation}.f*.npy"):
            match = _ARRAY_FILE.fullmatch(path.name)
            if match:
                name = match["key"].split("_", 1)[1]
                arrays[match["key"]] = _load_array(path, name)
        return profile_from_arrays(arrays)
    except ProfileError:
        raise
    except EOFError:  # what numpy says of a 0-byte file, e.g. after a power loss
        raise ProfileError(f"profile {folder} is unusable: empty or truncated file") from None
    except Exception as err:  # the cache is disposable: whatever fails to read it, it is rebuilt
        raise ProfileError(f"profile {folder} is unusable: {type(err).__name__}: {err}") from err


def cached_profile(
    reference: Path, cache: Path, *, numeric: Sequence[str], categorical: Sequence[str], settings: ProfileSettings
) -> Profile:
    """The profile of `reference`, loaded from the cache folder `cache` when it matches, else built and saved there.

    Built one column at a time, so peak memory is about one column and its sorted copy, not the whole reference:
    each column is read alone (`read_reference(path, [column])`: parquet reads only that column; csv is parsed
    again per column, slower but as bounded), profiled, hashed into the fingerprint (columns go in name order for
    that), written to the cache and kept as a memory map of its file. When the cache cannot be written the run
    still gets its profile, held in memory, and the next run tries again.
    """
    folder = cache_folder(cache)
    key = reference_key(reference, numeric, categorical, settings)
    if folder.exists() or cache.exists():
        try:
            profile = load_profile(folder, key=key)
            log.info("loaded reference profile %s (%d rows)", folder, profile.rows)
            return profile
        except ProfileError as err:
            log.info("rebuilding reference profile: %s", err)
    started = time.perf_counter()
    kinds = {name: "numeric" for name in numeric} | {name: "categorical" for name in categorical}
    order = list(kinds)
    log.info("building reference profile of %s: %d features, one column at a time", reference, len(order))
    writer: _CacheWriter | None = None
    failure: OSError | None = None
    try:
        writer = _CacheWriter(folder)
    except OSError as err:
        failure = err
    fingerprint = Fingerprint(settings)
    features: dict[str, FeatureProfile] = {}
    for name in sorted(order):
        feature = _profile_column(reference, name, kinds[name], settings)
        fingerprint.add(feature)
        if writer is not None:
            try:
                feature = writer.write_feature(order.index(name), feature)
            except OSError as err:
                writer.abort()
                writer, failure = None, err
        features[name] = feature
    profile = assemble_profile({name: features[name] for name in order}, settings, fingerprint.hexdigest())
    if writer is not None:
        try:
            writer.commit(profile, key)
        except OSError as err:
            writer.abort()
            failure = err
    if failure is not None:  # the run can go on without a cache; the next one tries again
        log.warning(
            "built reference profile in %.2fs, cannot save it to %s: %s",
            time.perf_counter() - started,
            folder,
            failure.strerror or failure,
        )
        return profile
    log.info(
        "built reference profile of %d rows in %.2fs, saved to %s", profile.rows, time.perf_counter() - started, folder
    )
    return profile


def _profile_column(reference: Path, name: str, kind: str, settings: ProfileSettings) -> FeatureProfile:
    """The profile of one reference column, read alone."""
    values = read_reference(reference, [name])[name].to_numpy()
    try:
        if kind == "numeric":
            return profile_numeric(name, values, settings)
        return profile_categorical(name, values)
    except ValueError as err:
        raise SchemaMismatch(f"reference {reference}: column {name!r}: {err}") from err
