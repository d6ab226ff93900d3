"""What a run is judged against: the reference profile, its policy (calibrated or not) and what to report of it.

A file reference (`reference: {path: ...}`) is profiled once (`driftwatch.runtime.profiles.cached_profile`). A
source window (`reference: {source: prod, window: 28d, offset: 7d}`) is the `window` of rows ending `offset`
before the run's window starts, its end rounded down to a multiple of `align`; it is streamed like any window
(`DataSource.window(...).batches()`) when it moves, and its profile is cached by window in the monitor's profile
folder (a restart within the same window loads it). With `thresholds: calibrated` the thresholds come from the
baseline's own windows (`driftwatch.core.calibration`), computed once per baseline and saved beside the profile as
`calibration.json` (keyed by the profile it belongs to and the rule).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from driftwatch.config import MonitorConfig
from driftwatch.config.durations import format_duration
from driftwatch.core.calibration import Calibration, calibrate, spans
from driftwatch.core.policy import Policy
from driftwatch.core.profile import (
    FeatureProfile,
    Fingerprint,
    Profile,
    ProfileSettings,
    assemble_profile,
    build_profile,
    profile_categorical,
    profile_numeric,
)
from driftwatch.errors import ProfileError, SchemaMismatch, SourceError
from driftwatch.outputs.files import write_bytes_durably
from driftwatch.runtime.profiles import HEADER, cache_folder, cached_profile, load_profile, reference_key, save_profile
from driftwatch.runtime.stats_pool import stats_executor
from driftwatch.sources import DataSource, read_reference, reference_columns

log = logging.getLogger("driftwatch.baselines")

#: The calibration saved in a monitor's profile folder.
CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class Judged:
    """A baseline ready for runs: its profile and policy, and `info` for the report; `problem` makes runs
    insufficient_data (too few rows, too few windows to calibrate)."""

    profile: Profile
    policy: Policy
    info: Mapping[str, Any]
    calibration: Calibration | None = None
    problem: str | None = None


class Baseline(Protocol):
    """Something that gives the baseline of the run whose window starts at `start`."""

    def at(self, start: datetime) -> Judged:
        """The baseline for a run window starting at `start` (SourceError when it cannot be read)."""
        ...


@dataclass(frozen=True)
class FileBaseline:
    """A reference file: the same baseline for every run."""

    judged: Judged

    def at(self, start: datetime) -> Judged:
        return self.judged


def prepare_file_baseline(
    name: str,
    config: MonitorConfig,
    folder: Path,
    numeric: Sequence[str],
    categorical: Sequence[str],
    timestamp_column: str | None,
) -> FileBaseline:
    """The profile of the monitor's reference file (cached), calibrated when the config says so."""
    path = Path(str(config.reference.path))
    settings = config.profile_settings()
    profile = cached_profile(path, folder, numeric=numeric, categorical=categorical, settings=settings)
    info: dict[str, Any] = {"kind": "file", "path": str(path), "rows": profile.rows}
    policy, calibration = config.policy(), None
    if config.calibrated is not None:
        key = reference_key(path, numeric, categorical, settings)
        calibration = _cached_calibration(
            folder, key, config, lambda: _calibrate_file(config, profile, timestamp_column)
        )
        policy = calibration.apply(policy)
    return FileBaseline(_judged(profile, policy, info, calibration))


def _judged(profile: Profile, policy: Policy, info: dict[str, Any], calibration: Calibration | None) -> Judged:
    problem = calibration.problem if calibration is not None else None
    if calibration is not None:
        info["calibration"] = {"windows": calibration.windows, "rule": calibration.to_dict()["rule"]}
    return Judged(profile, policy, info, calibration, problem)


def _calibrate_file(config: MonitorConfig, profile: Profile, timestamp_column: str | None) -> Calibration:
    """Calibrate from the reference file: windows by its timestamp column when it has one, else row blocks."""
    path = Path(str(config.reference.path))
    has_time = timestamp_column is not None and timestamp_column in reference_columns(path)
    columns = [*profile.features, *([timestamp_column] if has_time and timestamp_column else [])]
    frame = read_reference(path, list(dict.fromkeys(columns)))
    chunk = _chunk(frame, profile)
    if has_time and timestamp_column:
        keys = timestamp_keys(frame[timestamp_column], f"reference {path}")
        valid = keys[keys != _NAT]
        bounds = (int(valid.min()), int(valid.max()) + 1) if valid.size else (0, 0)
    else:
        keys = np.arange(len(frame), dtype=np.int64)
        bounds = (0, len(frame))
    return _calibrate(config, profile, chunk, keys, bounds, timestamped=has_time)


def _calibrate(
    config: MonitorConfig,
    profile: Profile,
    chunk: Mapping[str, Any],
    keys: np.ndarray,
    bounds: tuple[int, int],
    *,
    timestamped: bool,
) -> Calibration:
    calibrated = config.calibrated
    assert calibrated is not None
    rule = calibrated.rule()
    if timestamped:
        length = int(config.window.total_seconds() * 1e9)
    else:
        length = calibrated.rows or max(config.min_rows, (bounds[1] - bounds[0]) // 10)
    windows = spans(bounds[0], bounds[1], length, rule.windows)
    floors = config.policy().thresholds
    started = time.perf_counter()
    calibration = calibrate(
        profile, [(chunk, keys)], windows, floors, rule, min_rows=config.min_rows, executor=stats_executor()
    )
    log.info(
        "calibrated thresholds from %d of %d baseline windows in %.2fs%s",
        calibration.windows,
        len(windows),
        time.perf_counter() - started,
        f": {calibration.problem}" if calibration.problem else "",
    )
    return calibration


def _cached_calibration(folder: Path, key: str, config: MonitorConfig, compute: Any) -> Calibration:
    """The calibration saved in `folder` for profile `key` and this rule, else `compute()` saved there."""
    calibrated = config.calibrated
    assert calibrated is not None
    wanted = hashlib.sha256(
        json.dumps(
            {
                "profile": key,
                "rule": calibrated.model_dump(),
                "window": config.window.total_seconds(),
                "min_rows": config.min_rows,
                "floors": {k: [v.warning, v.critical] for k, v in config.policy().thresholds.items()},
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    path = cache_folder(folder) / CALIBRATION
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == wanted:
            return Calibration.from_dict(saved["calibration"])
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.info("recalibrating: %s is unusable (%s)", path, err)
    calibration: Calibration = compute()
    try:
        body = json.dumps({"key": wanted, "calibration": calibration.to_dict()}, sort_keys=True)
        write_bytes_durably(path, body.encode())
    except OSError as err:
        log.warning("cannot save the calibration to %s: %s", path, err.strerror or err)
    return calibration


class WindowBaseline:
    """A window of a source before each run's window, rebuilt when it moves (see the module docstring)."""

    def __init__(
        self,
        name: str,
        config: MonitorConfig,
        source: DataSource,
        folder: Path,
        numeric: Sequence[str],
        categorical: Sequence[str],
        timestamp_column: str | None,
    ) -> None:
        self.name, self.config, self.source, self.folder = name, config, source, cache_folder(folder)
        self.numeric, self.categorical, self.timestamp_column = tuple(numeric), tuple(categorical), timestamp_column
        self._lock = threading.Lock()
        self._last: tuple[tuple[datetime, datetime], Judged] | None = None

    def window_for(self, start: datetime) -> tuple[datetime, datetime]:
        """The baseline window of a run window starting at `start`."""
        reference = self.config.reference
        assert reference.window is not None
        end = start - (reference.offset or timedelta(0))
        step = reference.alignment.total_seconds()
        seconds = end.astimezone(UTC).timestamp()
        end = datetime.fromtimestamp(seconds - seconds % step, UTC)
        return end - reference.window, end

    def at(self, start: datetime) -> Judged:
        window = self.window_for(start)
        with self._lock:  # one build per window, even when runs overlap
            if self._last is not None and self._last[0] == window:
                return self._last[1]
            judged = self._build(*window)
            self._last = (window, judged)
            return judged

    def _key(self, start: datetime, end: datetime) -> str:
        inputs = {
            "source": self.source.describe(),
            "start": start.isoformat(),
            "end": end.isoformat(),
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "settings": self.config.profile_settings().__dict__,
            "header": HEADER,
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()

    def _build(self, start: datetime, end: datetime) -> Judged:
        config, reference = self.config, self.config.reference
        info: dict[str, Any] = {
            "kind": "window",
            "source": reference.source,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "window": format_duration(reference.window) if reference.window else None,
            "offset": format_duration(reference.offset) if reference.offset else None,
        }
        key = self._key(start, end)
        calibrating = config.calibrated is not None
        read: list[pd.DataFrame] = []

        def frame() -> pd.DataFrame:  # read at most once, only when the cache lacks something
            if not read:
                read.append(self._read(start, end, [*self.numeric, *self.categorical], with_time=calibrating))
            return read[0]

        try:
            profile = load_profile(self.folder, key=key)
            log.info("monitor %s: loaded baseline profile of %s", self.name, _span(start, end))
        except ProfileError:
            profile = profile_frame(frame(), self.numeric, self.categorical, config.profile_settings())
            try:
                save_profile(profile, self.folder, key=key)
            except OSError as err:
                log.warning("monitor %s: cannot save the baseline profile: %s", self.name, err.strerror or err)
        info["rows"] = profile.rows
        minimum = reference.min_rows or config.min_rows
        if profile.rows < minimum:
            problem = (
                f"baseline window {_span(start, end)} of source {reference.source} has {profile.rows} rows, "
                f"fewer than min_rows {minimum}"
            )
            return Judged(profile, config.policy(), info, problem=problem)
        policy, calibration = config.policy(), None
        if calibrating:
            judged_profile = profile
            calibration = _cached_calibration(
                self.folder, key, config, lambda: self._calibrate(judged_profile, frame(), start, end)
            )
            policy = calibration.apply(policy)
        return _judged(profile, policy, info, calibration)

    def _calibrate(self, profile: Profile, frame: pd.DataFrame, start: datetime, end: datetime) -> Calibration:
        chunk = _chunk(frame, profile)
        if self.timestamp_column is not None and self.timestamp_column in frame.columns:
            keys = timestamp_keys(frame[self.timestamp_column], f"source {self.config.reference.source}")
            return _calibrate(self.config, profile, chunk, keys, (_nanos(start), _nanos(end)), timestamped=True)
        keys = np.arange(len(frame), dtype=np.int64)
        return _calibrate(self.config, profile, chunk, keys, (0, len(frame)), timestamped=False)

    def _read(self, start: datetime, end: datetime, features: Sequence[str], *, with_time: bool) -> pd.DataFrame:
        """The baseline window's rows, streamed in batches and put together (the profile needs every value)."""
        columns = list(features)
        if with_time and self.timestamp_column is not None and self.timestamp_column not in columns:
            columns.append(self.timestamp_column)
        began = time.perf_counter()
        window = self.source.window(start, end, columns)
        frames = list(window.batches())
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})
        log.info(
            "monitor %s: read baseline %s of source %s: %d rows in %.2fs",
            self.name,
            _span(start, end),
            self.config.reference.source,
            len(frame),
            time.perf_counter() - began,
        )
        return frame


def profile_frame(
    frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str], settings: ProfileSettings
) -> Profile:
    """The profile of a frame's columns, built like `build_profile` (the same fingerprint)."""
    kinds = {name: "numeric" for name in numeric} | {name: "categorical" for name in categorical}
    fingerprint = Fingerprint(settings)
    features: dict[str, FeatureProfile] = {}
    for name in sorted(kinds):
        values = frame[name]
        try:
            if kinds[name] == "numeric":
                features[name] = profile_numeric(name, _numeric(values, name), settings)
            else:
                features[name] = profile_categorical(name, values.to_numpy(dtype=object))
        except ValueError as err:
            raise SchemaMismatch(f"baseline column {name!r}: {err}") from err
        fingerprint.add(features[name])
    return assemble_profile({name: features[name] for name in kinds}, settings, fingerprint.hexdigest())


def empty_profile(numeric: Sequence[str], categorical: Sequence[str], settings: ProfileSettings) -> Profile:
    """A profile without rows: what a monitor holds before its moving baseline is first built."""
    columns = {name: np.empty(0) for name in numeric} | {name: np.empty(0, dtype=object) for name in categorical}
    return build_profile(columns, numeric=numeric, categorical=categorical, settings=settings)


def _numeric(values: pd.Series, name: str) -> np.ndarray:
    if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
        try:
            values = pd.to_numeric(values, errors="raise")
        except (ValueError, TypeError) as err:
            raise SchemaMismatch(f"baseline column {name!r} is not numeric (dtype {values.dtype})") from err
    array: np.ndarray = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return array


def _chunk(frame: pd.DataFrame, profile: Profile) -> dict[str, Any]:
    """The profiled columns of `frame` as arrays for the core."""
    chunk: dict[str, Any] = {}
    for name, feature in profile.features.items():
        values = frame[name]
        chunk[name] = _numeric(values, name) if feature.kind == "numeric" else values.to_numpy(dtype=object)
    return chunk


#: The key of a row without a timestamp (numpy's NaT as int64): outside every window.
_NAT = np.iinfo(np.int64).min


def timestamp_keys(values: pd.Series, where: str) -> np.ndarray:
    """Unix nanoseconds of timestamps (datetime or ISO 8601 text; naive = UTC); missing ones get `_NAT`."""
    try:
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            stamps = values.dt.tz_convert("UTC")
        elif pd.api.types.is_datetime64_dtype(values.dtype):
            stamps = values.dt.tz_localize("UTC")
        else:
            stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise SourceError(f"{where}: timestamps cannot be read ({err})") from err
    nanos = stamps.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    return np.where(stamps.isna().to_numpy(), _NAT, nanos)


def _nanos(moment: datetime) -> int:
    return int(pd.Timestamp(moment).as_unit("ns").value)


def _span(start: datetime, end: datetime) -> str:
    return f"[{start.isoformat()}, {end.isoformat()})"
