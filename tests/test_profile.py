"""Reference profiles: edges and counts, settings, the npz round trip, the fingerprint, and the cache on disk."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from driftwatch.core.profile import (
    PROFILE_VERSION,
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileSettings,
    build_profile,
    profile_arrays,
    profile_from_arrays,
    profile_header,
)
from driftwatch.core.stats import numeric_stats
from driftwatch.errors import ProfileError
from driftwatch.runtime import profiles
from driftwatch.runtime.profiles import cached_profile, load_profile


def _reference(seed: int = 0, rows: int = 500) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    x[::50] = np.nan
    return {
        "x": x,
        "n": rng.integers(0, 5, rows).astype(float),
        "c": rng.choice(np.array(["a", "b", "c", None], dtype=object), rows),
    }


def _profile(reference: dict[str, np.ndarray] | None = None, settings: ProfileSettings | None = None) -> Profile:
    return build_profile(reference or _reference(), numeric=["x", "n"], categorical=["c"], settings=settings)


def _saved(profile: Profile, tmp_path, meta=None):
    path = tmp_path / "profile.npz"
    np.savez(path, **profile_arrays(profile, meta))
    return np.load(path)


def test_build_profile_numeric_and_categorical():
    """build_profile keeps sorted finite values, edges, counts, rows and missing per feature."""
    reference = _reference()
    profile = _profile(reference)
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    finite = reference["x"][np.isfinite(reference["x"])]
    assert x.sorted_values.tolist() == sorted(finite.tolist())
    assert (x.rows, x.missing) == (500, 10)
    np.testing.assert_array_equal(x.edges, np.unique(np.quantile(finite, np.arange(1, 10) / 10)))
    assert int(x.counts.sum()) == finite.size
    c = profile.features["c"]
    assert isinstance(c, CategoricalProfile)
    values = [v for v in reference["c"] if v is not None]
    assert c.categories == tuple(sorted(set(values)))
    assert c.counts.tolist() == [values.count(k) for k in c.categories]
    assert (c.rows, c.missing) == (500, 500 - len(values))
    assert profile.rows == 500


def test_build_profile_missing_column_raises_key_error():
    """A profiled column absent from the reference raises KeyError naming it."""
    with pytest.raises(KeyError, match="absent"):
        build_profile({"x": np.ones(3)}, numeric=["x", "absent"])


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"bins": 1}, id="one-bin"),
        pytest.param({"binning": "log"}, id="unknown-binning"),
        pytest.param({"epsilon": 0.0}, id="zero-epsilon"),
        pytest.param({"epsilon": 1.0}, id="epsilon-one"),
    ],
)
def test_profile_settings_validation(kwargs):
    """Invalid settings raise ValueError."""
    with pytest.raises(ValueError):
        ProfileSettings(**kwargs)


def test_profile_arrays_are_read_only():
    """Profile arrays cannot be modified in place (a profile is shared between runs and threads)."""
    x = _profile().features["x"]
    assert isinstance(x, NumericProfile)
    for array in (x.sorted_values, x.edges, x.counts):
        with pytest.raises(ValueError):
            array[0] = 0


def test_round_trip_through_npz(tmp_path):
    """profile_arrays -> numpy.savez -> numpy.load -> profile_from_arrays gives an identical profile."""
    profile = _profile(settings=ProfileSettings(bins=7, binning="uniform", epsilon=1e-3))
    loaded = profile_from_arrays(_saved(profile, tmp_path, {"source": "train.parquet"}))
    assert loaded.settings == profile.settings
    assert loaded.fingerprint == profile.fingerprint
    assert loaded.rows == profile.rows
    assert list(loaded.features) == list(profile.features)
    for name, feature in profile.features.items():
        other = loaded.features[name]
        assert type(other) is type(feature)
        assert (other.name, other.rows, other.missing, other.kind) == (
            feature.name,
            feature.rows,
            feature.missing,
            feature.kind,
        )
        np.testing.assert_array_equal(other.counts, feature.counts, strict=True)
        if isinstance(feature, NumericProfile):
            assert isinstance(other, NumericProfile)
            np.testing.assert_array_equal(other.sorted_values, feature.sorted_values, strict=True)
            np.testing.assert_array_equal(other.edges, feature.edges, strict=True)
        else:
            assert isinstance(other, CategoricalProfile)
            assert other.categories == feature.categories


def test_round_trip_fingerprint_matches_data(tmp_path):
    """The loaded profile's data rebuild to the stored fingerprint, and give the same statistics."""
    reference = _reference()
    profile = _profile(reference)
    loaded = profile_from_arrays(_saved(profile, tmp_path))
    header = profile_header(_saved(profile, tmp_path))
    assert header["version"] == PROFILE_VERSION
    assert header["fingerprint"] == profile.fingerprint
    rebuilt = _profile({name: np.asarray(values) for name, values in reference.items()})
    assert rebuilt.fingerprint == loaded.fingerprint
    batch = np.random.default_rng(9).normal(0.2, 1, 300)
    assert numeric_stats(loaded.features["x"], batch) == numeric_stats(profile.features["x"], batch)


def test_round_trip_keeps_meta(tmp_path):
    """The meta mapping given to profile_arrays is stored in the header."""
    header = profile_header(_saved(_profile(), tmp_path, {"source": "s3://bucket/train"}))
    assert header["meta"] == {"source": "s3://bucket/train"}


def test_round_trip_empty_and_constant_features(tmp_path):
    """All-missing and constant numeric features survive the round trip."""
    profile = build_profile({"e": np.array([np.nan, np.nan]), "k": np.full(5, 2.0)}, numeric=["e", "k"])
    loaded = profile_from_arrays(_saved(profile, tmp_path))
    assert loaded.features["e"].counts.tolist() == profile.features["e"].counts.tolist()
    assert loaded.features["k"].edges.tolist() == [2.0]
    assert loaded.fingerprint == profile.fingerprint


@pytest.mark.parametrize(
    "version",
    [pytest.param(0, id="older"), pytest.param(PROFILE_VERSION + 1, id="newer"), pytest.param(None, id="absent")],
)
def test_other_version_raises_value_error(tmp_path, version):
    """A saved profile of another layout version is refused with ValueError, not misread."""
    arrays = profile_arrays(_profile())
    header = profile_header(arrays)
    if version is None:
        del header["version"]
    else:
        header["version"] = version
    arrays["header"] = np.array(json.dumps(header))
    path = tmp_path / "old.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="version"):
        profile_from_arrays(np.load(path))


def test_fingerprint_ignores_row_order():
    """Shuffling the reference rows leaves the fingerprint unchanged."""
    reference = _reference()
    order = np.random.default_rng(3).permutation(500)
    shuffled = {name: values[order] for name, values in reference.items()}
    assert _profile(shuffled).fingerprint == _profile(reference).fingerprint


def test_fingerprint_ignores_signed_zero_order():
    """0.0 and -0.0 in a different row order give the same fingerprint (they are equal values)."""
    first = build_profile({"x": np.array([0.0, -0.0, -0.0])}, numeric=["x"])
    second = build_profile({"x": np.array([-0.0, 0.0, -0.0])}, numeric=["x"])
    assert first.fingerprint == second.fingerprint


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: {**r, "x": np.where(np.arange(500) == 1, 42.0, r["x"])}, id="one-numeric-value"),
        pytest.param(lambda r: {**r, "x": np.where(np.arange(500) == 1, np.nan, r["x"])}, id="value-to-missing"),
        pytest.param(lambda r: {**r, "c": np.where(np.arange(500) == 1, "z", r["c"])}, id="one-category"),
        pytest.param(lambda r: {**r, "n": r["n"][:-1]}, id="one-row-fewer"),
        pytest.param(lambda r: {**r, "x": np.append(r["x"], np.nan)}, id="one-more-missing-row"),
    ],
)
def test_fingerprint_changes_with_data(change):
    """Any change of the reference data changes the fingerprint."""
    reference = _reference()
    assert _profile(change(reference)).fingerprint != _profile(reference).fingerprint


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(ProfileSettings(bins=11), id="bins"),
        pytest.param(ProfileSettings(binning="uniform"), id="binning"),
        pytest.param(ProfileSettings(epsilon=1e-3), id="epsilon"),
    ],
)
def test_fingerprint_changes_with_settings(settings):
    """Different settings give a different fingerprint; equal settings the same one."""
    assert _profile(settings=settings).fingerprint != _profile().fingerprint
    assert _profile(settings=replace(settings)).fingerprint == _profile(settings=settings).fingerprint


def test_fingerprint_distinguishes_feature_kinds_and_names():
    """Profiling a column as categorical instead of numeric, or under another name, changes the fingerprint."""
    values = np.array([1.0, 2.0, 2.0])
    numeric = build_profile({"a": values}, numeric=["a"]).fingerprint
    assert build_profile({"a": values}, categorical=["a"]).fingerprint != numeric
    assert build_profile({"b": values}, numeric=["b"]).fingerprint != numeric


def test_std_is_computed_once_and_survives_loading(tmp_path):
    """NumericProfile.std equals np.std of the values, is cached, and a loaded profile gives the same."""
    profile = _profile()
    loaded = profile_from_arrays(_saved(profile, tmp_path))
    for name in ("x", "n"):
        feature, other = profile.features[name], loaded.features[name]
        assert isinstance(feature, NumericProfile) and isinstance(other, NumericProfile)
        assert feature.std == float(np.std(feature.sorted_values))
        assert "std" in vars(feature), "computed at build, not on every comparison"
        assert other.std == feature.std
        assert feature.std is feature.std


def test_integral_prefix_sums_are_read_only_and_exact():
    """NumericProfile.integral[k] is n * the integral of the reference CDF up to value k (read-only)."""
    values = np.array([-3.0, -1.0, -1.0, 0.5, 2.0, 10.0])
    feature = build_profile({"x": values}, numeric=["x"]).features["x"]
    assert isinstance(feature, NumericProfile)
    expected = [0.0]
    for k in range(1, values.size):
        expected.append(expected[-1] + k * (values[k] - values[k - 1]))
    np.testing.assert_allclose(feature.integral, expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError):
        feature.integral[0] = 1.0
    empty = build_profile({"x": np.array([np.nan])}, numeric=["x"]).features["x"]
    assert isinstance(empty, NumericProfile) and empty.integral.size == 0 and empty.std == 0.0


# --- the cache on disk (driftwatch.runtime.profiles) ----------------------------------------------------------


def _cached(tmp_path):
    """cached_profile of a small parquet reference, caching to tmp_path/cache/m.npz."""
    reference = tmp_path / "ref.parquet"
    if not reference.exists():
        pd.DataFrame({"x": np.random.default_rng(0).normal(size=300), "c": ["a", "b", "c"] * 100}).to_parquet(reference)
    return cached_profile(
        reference, tmp_path / "cache" / "m.npz", numeric=["x"], categorical=["c"], settings=ProfileSettings()
    )


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(0, id="0-byte"),
        pytest.param(22, id="zip-header-only"),
        pytest.param(-100, id="truncated-end"),
        pytest.param(None, id="garbage"),
    ],
)
def test_damaged_cache_is_rebuilt(tmp_path, caplog, keep):
    """A 0-byte, truncated or garbage profile cache is rebuilt with a log line, not an EOFError."""
    built = _cached(tmp_path)
    cache = tmp_path / "cache" / "m.npz"
    whole = cache.read_bytes()
    cache.write_bytes(b"\x00garbage" * 10 if keep is None else whole[:keep])
    with pytest.raises(ProfileError, match="unusable"):
        load_profile(cache)
    with caplog.at_level(logging.INFO, logger="driftwatch.profiles"):
        again = _cached(tmp_path)
    assert again.fingerprint == built.fingerprint
    assert any(
        "rebuilding reference profile" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records
    )
    assert cache.read_bytes() == whole
    assert load_profile(cache).fingerprint == built.fingerprint


def test_cache_is_mode_644_whatever_the_umask(tmp_path):
    """The cache file is readable by others (`stat -c %a` gives 644) even under umask 077, with no temp files left."""
    old = os.umask(0o077)
    try:
        _cached(tmp_path)
    finally:
        os.umask(old)
    cache = tmp_path / "cache" / "m.npz"
    mode = subprocess.run(["stat", "-c", "%a", str(cache)], capture_output=True, text=True, check=True).stdout
    assert mode.strip() == "644"
    assert [p.name for p in cache.parent.iterdir()] == ["m.npz"]


def test_unwritable_cache_still_gives_the_profile(tmp_path, caplog, monkeypatch):
    """A cache that cannot be written is logged; the run still gets its profile."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(profiles, "write_durably", refuse)
    with caplog.at_level(logging.WARNING, logger="driftwatch.profiles"):
        profile = _cached(tmp_path)
    assert profile.rows == 300
    assert any("cannot save it" in r.getMessage() for r in caplog.records)
