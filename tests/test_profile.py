"""Reference profiles: edges and counts, settings, the round trip through `.npy` files, the fingerprint, and the
cache on disk (a folder of memory-mapped `.npy` files, built one column at a time)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from driftwatch.core import profile as core_profile
from driftwatch.core.partials import numeric_stats
from driftwatch.core.profile import (
    GRID_SIZE,
    PROFILE_VERSION,
    CategoricalProfile,
    Fingerprint,
    NumericProfile,
    Profile,
    ProfileSettings,
    build_profile,
    profile_arrays,
    profile_from_arrays,
    profile_header,
    reference_grid,
)
from driftwatch.errors import ProfileError
from driftwatch.runtime import profiles
from driftwatch.runtime.profiles import HEADER, cached_profile, load_profile, save_profile


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
    """profile_arrays written one `.npy` per array and read back memory-mapped, as the cache does."""
    arrays = profile_arrays(profile, meta)
    loaded = {"header": arrays.pop("header")}
    for name, array in arrays.items():
        np.save(tmp_path / f"{name}.npy", array)
        loaded[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r")
    return loaded


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


def test_round_trip_through_npy_files(tmp_path):
    """profile_arrays -> numpy.save -> numpy.load(mmap_mode="r") -> profile_from_arrays gives an identical profile."""
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
    assert loaded.features["k"].edges.tolist() == [2.0, np.nextafter(2.0, 3.0)]  # the constant's own bin
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
    arrays["header"] = json.dumps(header)
    with pytest.raises(ValueError, match="version"):
        profile_from_arrays(arrays)


def test_npz_of_arrays_still_loads(tmp_path):
    """profile_from_arrays takes any mapping of array-likes, e.g. a numpy.savez file (header as a 0-d string array)."""
    profile = _profile()
    path = tmp_path / "profile.npz"
    np.savez(path, **profile_arrays(profile))
    with np.load(path) as arrays:
        assert profile_from_arrays(arrays).fingerprint == profile.fingerprint


def test_loading_uses_memory_maps_without_copying(tmp_path):
    """Loaded float64 memory maps are the profile's sorted values (no copy), read-only, with std from the header."""
    profile = _profile()
    arrays = _saved(profile, tmp_path)
    loaded = profile_from_arrays(arrays)
    x = loaded.features["x"]
    assert isinstance(x, NumericProfile)
    assert isinstance(x.sorted_values.base, np.memmap)
    assert np.shares_memory(x.sorted_values, arrays["f0_values"])
    assert not x.sorted_values.flags.writeable
    assert "std" in vars(x), "taken from the header, not computed from the values"
    assert x.std == profile.features["x"].std
    assert "grid" in vars(x), "loaded, not derived from the values"
    assert isinstance(x.grid.points.base, np.memmap)
    derived = reference_grid(np.asarray(x.sorted_values), GRID_SIZE)
    for field in ("points", "upto", "below", "gap_sums"):
        np.testing.assert_array_equal(getattr(x.grid, field), getattr(derived, field), strict=True)


def test_saved_grid_of_another_size_is_derived_again():
    """A grid saved for another GRID_SIZE is ignored on load; the feature derives its own."""
    arrays = profile_arrays(_profile())
    header = profile_header(arrays)
    header["features"][0]["grid_size"] = GRID_SIZE * 2
    arrays["header"] = json.dumps(header)
    x = profile_from_arrays(arrays).features["x"]
    assert isinstance(x, NumericProfile) and "grid" not in vars(x)
    assert x.grid.points.size <= GRID_SIZE


@pytest.mark.parametrize(
    ("key", "array", "message"),
    [
        pytest.param("f0_values", np.zeros(3), "3 values, expected 490", id="values-size"),
        pytest.param("f0_counts", np.zeros(3, dtype=np.int64), "3 counts for 9 edges", id="numeric-counts"),
        pytest.param("f2_counts", np.zeros(1, dtype=np.int64), "1 counts for 3 categories", id="categorical-counts"),
        pytest.param("f0_edges", np.zeros((2, 2)), "1-d", id="shape"),
        pytest.param("f0_grid_upto", np.zeros(3, dtype=np.int64), "grid arrays", id="grid"),
    ],
)
def test_arrays_that_do_not_fit_the_header_raise_value_error(key, array, message):
    """An array whose size does not fit the header (a mixed-up or damaged cache) raises ValueError."""
    arrays = profile_arrays(_profile())
    arrays[key] = array
    with pytest.raises(ValueError, match=message):
        profile_from_arrays(arrays)


def test_fingerprint_is_the_same_hashed_in_chunks(monkeypatch):
    """Sorted values hashed a few at a time give the fingerprint of one piece (the chunk bounds only the copy)."""
    whole = _profile().fingerprint
    monkeypatch.setattr(core_profile, "_HASH_CHUNK", 7)
    assert _profile().fingerprint == whole


def test_fingerprint_takes_features_in_name_order():
    """Fingerprint.add of features one by one in name order equals build_profile's; another order raises."""
    profile = _profile()
    fingerprint = Fingerprint(profile.settings)
    for name in sorted(profile.features):
        fingerprint.add(profile.features[name])
    assert fingerprint.hexdigest() == profile.fingerprint
    with pytest.raises(ValueError, match="name order"):
        fingerprint.add(profile.features["c"])


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


def test_empty_numeric_reference_has_zero_std():
    """A reference column without finite values profiles to no values and a standard deviation of 0."""
    empty = build_profile({"x": np.array([np.nan])}, numeric=["x"]).features["x"]
    assert isinstance(empty, NumericProfile) and empty.sorted_values.size == 0 and empty.std == 0.0


# --- the cache on disk (driftwatch.runtime.profiles) ----------------------------------------------------------


def _cached(tmp_path, cache="m"):
    """cached_profile of a small parquet reference, caching to the folder tmp_path/cache/m."""
    reference = tmp_path / "ref.parquet"
    if not reference.exists():
        pd.DataFrame({"x": np.random.default_rng(0).normal(size=300), "c": ["a", "b", "c"] * 100}).to_parquet(reference)
    return cached_profile(
        reference, tmp_path / "cache" / cache, numeric=["x"], categorical=["c"], settings=ProfileSettings()
    )


#: The files of the cache of `_cached` (G: the generation).
FILES = [
    "G.f0_counts.npy",
    "G.f0_edges.npy",
    "G.f0_grid_below.npy",
    "G.f0_grid_gap_sums.npy",
    "G.f0_grid_points.npy",
    "G.f0_grid_upto.npy",
    "G.f0_values.npy",
    "G.f1_counts.npy",
    HEADER,
]


def _files(folder):
    """The names in a cache folder, with the generation replaced by `G`."""
    generation = json.loads((folder / HEADER).read_text())["meta"]["generation"]
    return sorted(p.name.replace(generation, "G") for p in folder.iterdir())


def test_cache_layout_and_memory_mapped_load(tmp_path):
    """The cache is a folder: header.json and one .npy per array; a load memory-maps the values and grid."""
    built = _cached(tmp_path)
    folder = tmp_path / "cache" / "m"
    assert _files(folder) == FILES
    header = json.loads((folder / HEADER).read_text())
    assert header["version"] == PROFILE_VERSION and header["fingerprint"] == built.fingerprint
    assert header["features"][0]["std"] == built.features["x"].std
    loaded = load_profile(folder)
    x = loaded.features["x"]
    assert isinstance(x, NumericProfile) and isinstance(x.sorted_values.base, np.memmap)
    assert "std" in vars(x) and x.std == built.features["x"].std
    assert "grid" in vars(x) and isinstance(x.grid.upto.base, np.memmap)
    batch = np.random.default_rng(9).normal(0.2, 1, 300)
    assert numeric_stats(x, batch) == numeric_stats(built.features["x"], batch)


def test_built_profile_is_memory_mapped_and_equals_whole_frame_build(tmp_path, monkeypatch):
    """cached_profile reads one column per call, keeps the written values memory-mapped, and gives
    build_profile's profile of the whole frame."""
    reads = []
    real = profiles.read_reference

    def spy(path, columns=None):
        reads.append(list(columns))
        return real(path, columns)

    monkeypatch.setattr(profiles, "read_reference", spy)
    built = _cached(tmp_path)
    assert sorted(reads) == [["c"], ["x"]]
    frame = pd.read_parquet(tmp_path / "ref.parquet")
    whole = build_profile({c: frame[c].to_numpy() for c in frame.columns}, numeric=["x"], categorical=["c"])
    assert built.fingerprint == whole.fingerprint
    assert list(built.features) == ["x", "c"] and built.rows == 300
    x = built.features["x"]
    assert isinstance(x, NumericProfile) and isinstance(x.sorted_values.base, np.memmap)
    np.testing.assert_array_equal(x.sorted_values, whole.features["x"].sorted_values)


def test_csv_reference_is_profiled_column_by_column(tmp_path):
    """A csv reference gives the same profile as the same data in parquet."""
    frame = pd.DataFrame({"x": np.random.default_rng(1).normal(size=200), "c": ["a", "b"] * 100})
    frame.to_csv(tmp_path / "ref.csv", index=False)
    frame.to_parquet(tmp_path / "ref.parquet")
    kwargs = {"numeric": ["x"], "categorical": ["c"], "settings": ProfileSettings()}
    from_csv = cached_profile(tmp_path / "ref.csv", tmp_path / "a", **kwargs)
    from_parquet = cached_profile(tmp_path / "ref.parquet", tmp_path / "b", **kwargs)
    assert from_csv.fingerprint == from_parquet.fingerprint


def test_save_and_load_empty_and_constant_features(tmp_path):
    """save_profile / load_profile keep all-missing (0 values) and constant numeric features."""
    profile = build_profile({"e": np.array([np.nan, np.nan]), "k": np.full(5, 2.0)}, numeric=["e", "k"])
    save_profile(profile, tmp_path / "p", key="k1")
    loaded = load_profile(tmp_path / "p", key="k1")
    assert loaded.fingerprint == profile.fingerprint
    assert loaded.features["e"].rows == 2 and loaded.features["k"].edges.tolist() == [2.0, np.nextafter(2.0, 3.0)]
    with pytest.raises(ProfileError, match="another reference"):
        load_profile(tmp_path / "p", key="k2")


def test_old_npz_cache_is_rebuilt_and_removed(tmp_path, caplog):
    """A layout-1 `m.npz` cache is not read: the folder `m` is built and the stale file removed."""
    stale = tmp_path / "cache" / "m.npz"
    stale.parent.mkdir()
    stale.write_bytes(b"PK\x03\x04 an old zip")
    with caplog.at_level(logging.INFO, logger="driftwatch.profiles"):
        built = _cached(tmp_path, "m.npz")
    assert not stale.exists()
    assert [p.name for p in stale.parent.iterdir()] == ["m"]
    assert load_profile(stale.parent / "m").fingerprint == built.fingerprint
    assert any("rebuilding reference profile" in r.getMessage() for r in caplog.records)


def _damage(path, how):
    whole = path.read_bytes()
    path.write_bytes({"0-byte": b"", "truncated": whole[: len(whole) // 2], "garbage": b"\x00garbage" * 10}[how])


@pytest.mark.parametrize(
    ("target", "how"),
    [
        *(
            pytest.param(target, how, id=f"{target}-{how}")
            for target in (HEADER, "G.f0_values.npy", "G.f0_edges.npy", "G.f0_grid_points.npy", "G.f1_counts.npy")
            for how in ("0-byte", "truncated", "garbage")
        ),
        pytest.param("missing", None, id="missing-values-file"),
    ],
)
def test_damaged_cache_is_rebuilt(tmp_path, caplog, target, how):
    """A 0-byte, truncated, garbage or missing file of the cache is rebuilt with a log line, not an error."""
    built = _cached(tmp_path)
    folder = tmp_path / "cache" / "m"
    generation = json.loads((folder / HEADER).read_text())["meta"]["generation"]
    if target == "missing":
        (folder / f"{generation}.f0_values.npy").unlink()
    else:
        _damage(folder / target.replace("G", generation), how)
    with pytest.raises(ProfileError, match="unusable"):
        load_profile(folder)
    with caplog.at_level(logging.INFO, logger="driftwatch.profiles"):
        again = _cached(tmp_path)
    assert again.fingerprint == built.fingerprint
    assert any(
        "rebuilding reference profile" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records
    )
    assert load_profile(folder).fingerprint == built.fingerprint
    assert json.loads((folder / HEADER).read_text())["meta"]["generation"] != generation
    assert _files(folder) == FILES


def test_other_inputs_rebuild_and_remove_the_old_generation(tmp_path, caplog):
    """A cache of another reference is rebuilt in place: the old generation's files are removed."""
    _cached(tmp_path)
    (tmp_path / "ref.parquet").unlink()
    pd.DataFrame({"x": np.arange(50.0), "c": ["z"] * 50}).to_parquet(tmp_path / "ref.parquet")
    with caplog.at_level(logging.INFO, logger="driftwatch.profiles"):
        built = _cached(tmp_path)
    assert built.rows == 50
    assert any("another reference" in r.getMessage() for r in caplog.records)
    folder = tmp_path / "cache" / "m"
    assert _files(folder) == FILES


def test_cache_is_mode_644_whatever_the_umask(tmp_path):
    """Every cache file is readable by others (`stat -c %a` gives 644) even under umask 077, no temp files left."""
    old = os.umask(0o077)
    try:
        _cached(tmp_path)
    finally:
        os.umask(old)
    folder = tmp_path / "cache" / "m"
    paths = sorted(str(p) for p in folder.iterdir())
    modes = subprocess.run(["stat", "-c", "%a", *paths], capture_output=True, text=True, check=True).stdout
    assert modes.split() == ["644"] * len(FILES)
    assert _files(folder) == FILES


def test_unwritable_cache_still_gives_the_profile(tmp_path, caplog, monkeypatch):
    """A cache that cannot be written is logged; the run still gets its profile, and no partial files remain."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(profiles, "write_durably", refuse)
    with caplog.at_level(logging.WARNING, logger="driftwatch.profiles"):
        profile = _cached(tmp_path)
    assert profile.rows == 300
    assert any("cannot save it" in r.getMessage() for r in caplog.records)
    assert list((tmp_path / "cache" / "m").iterdir()) == []


def test_cache_failing_midway_still_gives_the_profile(tmp_path, caplog, monkeypatch):
    """A write failing after some features were saved (disk full) leaves no files; the profile is complete."""
    calls = []
    real = profiles.write_durably

    def fill_up(path, *args, **kwargs):
        calls.append(path)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(profiles, "write_durably", fill_up)
    with caplog.at_level(logging.WARNING, logger="driftwatch.profiles"):
        profile = _cached(tmp_path)
    assert set(profile.features) == {"x", "c"} and profile.rows == 300
    assert any("No space left" in r.getMessage() for r in caplog.records)
    assert list((tmp_path / "cache" / "m").iterdir()) == []
    batch = np.random.default_rng(9).normal(0.2, 1, 300)
    assert numeric_stats(profile.features["x"], batch) is not None
