"""Memory of reference profiles, measured in fresh subprocesses: built one column at a time, loaded as memory maps.

Peaks come from /proc/self/status (VmHWM, VmRSS, RssAnon) inside the child, relative to its own figure after
imports; the bounds are generous (the measured ratios are far below them), so the tests are not flaky.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from driftwatch.core.profile import build_profile
from driftwatch.runtime.profiles import save_profile

COLUMNS = [f"x{i}" for i in range(6)]

_CHILD = """
import json, sys
from pathlib import Path
import numpy as np
from driftwatch.core.profile import ProfileSettings, build_profile
from driftwatch.runtime.profiles import cached_profile, load_profile, release_mapped_pages
from driftwatch.sources import read_reference, reference_columns

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {k: int(fields[k].split()[0]) * 1024 for k in ("VmHWM", "VmRSS", "RssAnon", "RssFile")}

mode, reference, cache = sys.argv[1:4]
columns = json.loads(sys.argv[4])
reference_columns(Path(reference))  # imports and opens what reading needs
before = status()
out = {}
if mode == "columns":
    profile = cached_profile(Path(reference), Path(cache), numeric=columns, categorical=[], settings=ProfileSettings())
elif mode == "frame":
    frame = read_reference(Path(reference), columns)
    profile = build_profile({c: frame[c].to_numpy() for c in columns}, numeric=columns)
    del frame
else:
    profile = load_profile(Path(cache))
    values = profile.features[columns[0]].sorted_values
    out["memmap"] = isinstance(values.base, np.memmap)
    loaded = status()
    out["touched_sum"] = float(values.sum())
    touched = status()
    out["load_rss"] = loaded["VmRSS"] - before["VmRSS"]
    out["load_anon"] = loaded["RssAnon"] - before["RssAnon"]
    out["touched_anon"] = touched["RssAnon"] - before["RssAnon"]
    out["touched_file"] = touched["RssFile"] - before["RssFile"]
    release_mapped_pages(profile)
    out["released_file"] = status()["RssFile"] - before["RssFile"]
    out["again_sum"] = float(values.sum())
after = status()
out["peak"] = after["VmHWM"] - before["VmHWM"]
print(json.dumps(out))
"""


def _child(mode: str, reference: Path, cache: Path, columns: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(reference), str(cache), json.dumps(columns)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, float] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def wide_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parquet reference of 3M rows x 6 float64 columns (144 MB of values)."""
    path = tmp_path_factory.mktemp("wide") / "ref.parquet"
    rng = np.random.default_rng(0)
    pd.DataFrame({c: rng.normal(size=3_000_000) for c in COLUMNS}).to_parquet(path)
    return path


def test_building_column_by_column_peaks_far_below_the_whole_frame(wide_reference: Path, tmp_path: Path) -> None:
    """Peak RSS growth of cached_profile (one column at a time) is < 0.6x that of reading the whole frame."""
    whole = _child("frame", wide_reference, tmp_path / "unused", COLUMNS)
    columns = _child("columns", wide_reference, tmp_path / "cache", COLUMNS)
    print(f"peak RSS growth, 3M rows x 6: whole frame {whole['peak'] / 2**20:.0f} MB, ", end="")
    print(f"column by column {columns['peak'] / 2**20:.0f} MB ({columns['peak'] / whole['peak']:.2f}x)")
    assert whole["peak"] > 200 * 2**20, "the whole frame (144 MB) and its sorted copies must show"
    assert columns["peak"] < 0.6 * whole["peak"]


def test_loaded_profile_is_memory_mapped_not_resident(tmp_path: Path) -> None:
    """Loading a cached profile of 2M values (16 MB) maps them: RSS grows by far less; touched pages are the file's
    and leave the resident set on `release_mapped_pages` (as the daemon does after each run)."""
    values = np.random.default_rng(1).normal(size=2_000_000)
    save_profile(build_profile({"x": values}, numeric=["x"]), tmp_path / "cache")
    reference = tmp_path / "ref.parquet"
    pd.DataFrame({"x": values[:10]}).to_parquet(reference)  # only for the child's imports
    loaded = _child("load", reference, tmp_path / "cache", ["x"])
    print(
        f"load of a 2M-value profile: RSS +{loaded['load_rss'] / 2**20:.1f} MB; after a full scan anon "
        f"+{loaded['touched_anon'] / 2**20:.1f} MB, file-backed +{loaded['touched_file'] / 2**20:.1f} MB"
    )
    assert loaded["memmap"]
    assert loaded["load_rss"] < 4 * 2**20
    assert loaded["touched_sum"] == pytest.approx(float(values.sum()))
    assert loaded["touched_anon"] < 4 * 2**20, "scanning the values reads shared file pages, not private memory"
    print(f"after release_mapped_pages: file-backed +{loaded['released_file'] / 2**20:.1f} MB")
    assert loaded["touched_file"] > 12 * 2**20 and loaded["released_file"] < 4 * 2**20
    assert loaded["again_sum"] == loaded["touched_sum"], "released pages map again on the next access"
