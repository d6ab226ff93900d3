"""Reference profiles on disk: build once, save as `.npz`, reuse after a restart while the inputs match.

The cache is disposable: a file that cannot be read whole (0 bytes, truncated, corrupt, another version, other
inputs) is rebuilt with a log line. It is written durably (fsync, rename, fsync of the folder) with mode 0644.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from driftwatch.core.profile import (
    PROFILE_VERSION,
    Profile,
    ProfileSettings,
    build_profile,
    profile_arrays,
    profile_from_arrays,
    profile_header,
)
from driftwatch.errors import ProfileError, SchemaMismatch
from driftwatch.outputs.files import write_durably
from driftwatch.sources import read_reference

log = logging.getLogger("driftwatch.profiles")


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


def save_profile(profile: Profile, path: Path, *, key: str = "") -> None:
    """Write `profile` to `path` durably (see `write_durably`: a crash leaves the old file or the new one)."""
    arrays = profile_arrays(profile, {"key": key})
    write_durably(path, lambda handle: np.savez(handle, **arrays))


def load_profile(path: Path, *, key: str | None = None) -> Profile:
    """The profile saved at `path`; ProfileError if unreadable, of another version, or built from other inputs."""
    try:
        # Our own handle: numpy leaks the file it opened when the zip is damaged.
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as arrays:
            header = profile_header(arrays)
            if key is not None and header.get("meta", {}).get("key") != key:
                raise ProfileError(f"profile {path} was built from another reference or settings")
            return profile_from_arrays(arrays)
    except ProfileError:
        raise
    except EOFError:  # what numpy says of a 0-byte file, e.g. after a power loss
        raise ProfileError(f"profile {path} is unusable: empty or truncated file") from None
    except Exception as err:  # the cache is disposable: whatever fails to read it, it is rebuilt
        raise ProfileError(f"profile {path} is unusable: {type(err).__name__}: {err}") from err


def cached_profile(
    reference: Path, cache: Path, *, numeric: Sequence[str], categorical: Sequence[str], settings: ProfileSettings
) -> Profile:
    """The profile of `reference`, loaded from `cache` when it matches, else built and saved there."""
    key = reference_key(reference, numeric, categorical, settings)
    if cache.exists():
        try:
            profile = load_profile(cache, key=key)
            log.info("loaded reference profile %s (%d rows)", cache, profile.rows)
            return profile
        except ProfileError as err:
            log.info("rebuilding reference profile: %s", err)
    started = time.perf_counter()
    frame = read_reference(reference, [*numeric, *categorical])
    log.info(
        "building reference profile of %s: %d rows, %d features", reference, len(frame), len(numeric) + len(categorical)
    )
    try:
        profile = build_profile(
            {c: frame[c].to_numpy() for c in frame.columns}, numeric=numeric, categorical=categorical, settings=settings
        )
    except ValueError as err:
        raise SchemaMismatch(f"reference {reference}: {err}") from err
    try:
        save_profile(profile, cache, key=key)
    except OSError as err:  # the run can go on without a cache; the next one tries again
        log.warning(
            "built reference profile in %.2fs, cannot save it to %s: %s",
            time.perf_counter() - started,
            cache,
            err.strerror or err,
        )
        return profile
    log.info("built reference profile in %.2fs, saved to %s", time.perf_counter() - started, cache)
    return profile
