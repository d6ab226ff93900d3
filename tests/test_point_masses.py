"""Point-mass aware PSI binning: a value holding >= 1/(2 x bins) of the reference gets its own bin, so PSI and JS
see shifts that quantile edges all tied at one value would hide; cached profiles of the old layout are rebuilt."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from driftwatch import build_profile, compare
from driftwatch.core.profile import PROFILE_VERSION, ProfileSettings, bin_counts, point_masses
from driftwatch.core.report import Severity
from driftwatch.core.stats import js_distance, psi
from driftwatch.runtime.profiles import HEADER, cached_profile, load_profile


def _zeros_and_exponential(rng: np.random.Generator, rows: int, scale: float) -> np.ndarray:
    """90% zeros, the rest exponential with `scale`."""
    return np.where(rng.random(rows) < 0.9, 0.0, rng.exponential(scale, rows))


def test_point_masses_are_values_holding_a_twentieth_with_ten_bins():
    """With 10 bins a value is an atom from 5% of the reference on (ties counted exactly)."""
    values = np.sort(np.array([1.0] * 5 + [2.0] * 4 + list(np.arange(10.0, 101.0))))  # 100 values
    assert point_masses(values, 10).tolist() == [1.0]
    assert point_masses(np.full(7, 3.0), 10).tolist() == [3.0]
    assert point_masses(np.arange(100.0), 10).size == 0


def test_ninety_percent_zeros_whose_nonzero_part_shifts_moves_psi():
    """A 90%-zeros feature whose non-zero values grow fivefold: PSI and JS react (classic edges all sit at 0)."""
    rng = np.random.default_rng(7)
    reference = _zeros_and_exponential(rng, 20_000, 1.0)
    current = _zeros_and_exponential(rng, 5_000, 5.0)
    profile = build_profile({"x": reference}, numeric=["x"])
    feature = profile.features["x"]
    assert feature.edges[:2].tolist() == [0.0, np.nextafter(0.0, 1.0)]
    report = compare(profile, {"x": current})
    stats = report.feature("x").stats
    assert stats.psi is not None and stats.psi > 0.1  # past the warning threshold, while KS D stays below 0.1
    assert stats.ks_statistic is not None and stats.ks_statistic < 0.1
    assert stats.js_distance is not None and stats.js_distance > 0.1
    assert report.feature("x").breaches == {"psi": Severity.WARNING}
    assert report.feature("x").severity == Severity.WARNING
    # what the classic binning gave: eight of nine edges at 0, the non-zero values in one or two bins -> PSI ~ 0
    classic = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    assert classic.size <= 2 and classic[0] == 0.0
    old = psi(bin_counts(np.sort(reference), classic), bin_counts(np.sort(current), classic))
    assert old < 0.02
    # no shift: the same feature drawn again stays quiet
    quiet = compare(profile, {"x": _zeros_and_exponential(rng, 5_000, 1.0)}).feature("x")
    assert quiet.stats.psi is not None and quiet.stats.psi < 0.02 and quiet.severity == Severity.OK


@pytest.mark.parametrize("binning", [pytest.param("quantile", id="quantile"), pytest.param("uniform", id="uniform")])
def test_constant_reference_column_moves_psi_and_js(binning):
    """A constant reference column: a batch away from the constant gets PSI and JS far above 0 (KS D is 1)."""
    profile = build_profile({"k": np.full(1000, 5.0)}, numeric=["k"], settings=ProfileSettings(binning=binning))
    feature = profile.features["k"]
    assert feature.edges.tolist() == [5.0, np.nextafter(5.0, 6.0)] and feature.counts.tolist() == [0, 1000, 0]
    moved = compare(profile, {"k": np.full(300, 6.0)}).feature("k").stats
    assert moved.ks_statistic == 1.0
    assert moved.psi is not None and moved.psi > 5.0
    assert moved.js_distance == pytest.approx(js_distance([0, 1000, 0], [0, 0, 300]), rel=1e-12)
    assert moved.js_distance is not None and moved.js_distance > 0.9
    same = compare(profile, {"k": np.full(300, 5.0)}).feature("k").stats
    assert (same.psi, same.js_distance, same.ks_statistic) == (0.0, 0.0, 0.0)


def test_profile_cached_by_the_old_layout_is_rebuilt(tmp_path, caplog):
    """A cache written before point-mass binning (version 2, classic edges) is rebuilt with the atom's own bin."""
    rng = np.random.default_rng(3)
    reference = tmp_path / "ref.parquet"
    pd.DataFrame({"x": _zeros_and_exponential(rng, 2_000, 1.0)}).to_parquet(reference)
    cache = tmp_path / "profiles" / "m"

    def build():
        return cached_profile(reference, cache, numeric=["x"], categorical=[], settings=ProfileSettings())

    built = build()
    header = json.loads((cache / HEADER).read_text())
    generation = header["meta"]["generation"]
    # make it what version 2 wrote: the classic edge, its counts, the version number
    np.save(cache / f"{generation}.f0_edges.npy", np.array([0.0]))
    np.save(cache / f"{generation}.f0_counts.npy", np.array([0, 2_000], dtype=np.int64))
    header["version"] = 2
    (cache / HEADER).write_text(json.dumps(header))
    with caplog.at_level(logging.INFO, logger="driftwatch.profiles"):
        again = build()
    assert any("rebuilding reference profile" in r.getMessage() for r in caplog.records)
    assert again.features["x"].edges.tolist() == built.features["x"].edges.tolist()
    assert again.features["x"].edges[:2].tolist() == [0.0, np.nextafter(0.0, 1.0)]
    assert json.loads((cache / HEADER).read_text())["version"] == PROFILE_VERSION == 3
    assert load_profile(cache).features["x"].counts.tolist() == built.features["x"].counts.tolist()


def test_point_mass_bins_add_up_across_chunks():
    """The atom's bin is counted by the partials' pass 1 like any bin: chunks in any split give the whole report."""
    from driftwatch.core.partials import count_window

    rng = np.random.default_rng(11)
    profile = build_profile({"x": _zeros_and_exponential(rng, 5_000, 1.0)}, numeric=["x"])
    current = _zeros_and_exponential(rng, 3_001, 4.0)
    whole = compare(profile, {"x": current}).feature("x").stats
    chunks = [{"x": part} for part in np.array_split(current, 7)]
    split = count_window(profile, chunks).finish().feature("x").stats
    assert (split.psi, split.js_distance, split.ks_statistic) == (whole.psi, whole.js_distance, whole.ks_statistic)
