"""Mergeable partials: any split of a window, counted in any order and merged in any tree, gives the in-memory report.

The in-memory `compare` is count + finish of one prepared chunk; here the same rows are cut into chunks (empty ones,
all-missing ones, categories only some chunks hold), each pass counts them in a random order and merges the partials
in a random tree, and the finished report must equal `compare`'s statistic for statistic: bit-equal, except
Wasserstein (a float sum whose order changes with the split) within 1e-12 relative. Then the same through real
files and a database, streamed in small batches by the sources.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hypothesis import event, given, settings
from hypothesis import strategies as st

from driftwatch.core import partials
from driftwatch.core.compare import compare
from driftwatch.core.partials import Job, Partial, WindowChanged, count_window, merge, prepare
from driftwatch.core.policy import Level, Policy, Significance
from driftwatch.core.profile import NumericProfile, Profile, build_profile, reference_grid
from driftwatch.core.values import CategoryCounts
from driftwatch.runtime.monitor import batch_arrays
from driftwatch.sources import CsvSource, DataSource, ParquetSource, SqlSource, Window

WASSERSTEIN_RTOL = 1e-12

#: Thresholds on every statistic, no significance gate: breaches and severities depend on every value.
EVERY_THRESHOLD = Policy(
    thresholds={
        "psi": Level(0.05, 0.2),
        "ks_statistic": Level(0.05, 0.15),
        "ks_pvalue": Level(0.2, 0.01),
        "chi2_pvalue": Level(0.2, 0.01),
        "js_distance": Level(0.05, 0.1),
        "wasserstein": Level(0.05, 0.3),
        "missing_share": Level(0.1, 0.4),
    },
    significance=None,
)
POLICIES = [Policy(), EVERY_THRESHOLD, Policy(significance=Significance(0.05, "bonferroni"))]


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def assert_same_report(got: Any, want: Any, where: str = "report") -> None:
    """`got == want` field by field (a report's `to_dict()`); only `wasserstein` may differ, by 1e-12 relative."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: {got!r} != {want!r}"
        for key in want:
            assert_same_report(got[key], want[key], f"{where}.{key}")
    elif where.endswith(".wasserstein") and isinstance(got, float) and isinstance(want, float):
        assert math.isclose(got, want, rel_tol=WASSERSTEIN_RTOL, abs_tol=0.0), f"{where}: {got!r} != {want!r}"
    else:
        assert type(got) is type(want) and got == want, f"{where}: {got!r} != {want!r}"


def merged_in_tree(partials: Sequence[Partial], rnd: random.Random) -> Partial | None:
    """The partials merged pairwise in a random tree (random pairs, random operand order)."""
    items = list(partials)
    if not items:
        return None
    while len(items) > 1:
        i, j = rnd.sample(range(len(items)), 2)
        combined = items[i].merge(items[j])
        items = [item for k, item in enumerate(items) if k not in (i, j)]
        items.insert(rnd.randrange(len(items) + 1), combined)
    return items[0]


def run_passes(profile: Profile, chunks: Sequence[Mapping[str, Any]], rnd: random.Random) -> tuple[Job, list[int]]:
    """Every pass of a job over `chunks`, each pass in its own random chunk order and merge tree; and the passes."""
    job, stages = Job.start(profile), []
    while job.request is not None:
        order = list(chunks)
        rnd.shuffle(order)
        stages.append(job.request.stage)
        job = job.absorb(merged_in_tree([job.request.count(chunk) for chunk in order], rnd))
    return job, stages


def assert_same_partial(a: Partial, b: Partial) -> None:
    """Two partials hold the same counts (arrays equal element by element)."""
    assert a.stage == b.stage and a.features.keys() == b.features.keys()
    for name, part in a.features.items():
        other = b.features[name]
        assert type(part) is type(other)
        if isinstance(part, CategoryCounts):
            assert part == other, name
            continue
        for field in fields(part):
            x, y = getattr(part, field.name), getattr(other, field.name)
            assert np.array_equal(x, y), f"{name}.{field.name}: {x!r} != {y!r}"


def small_grid(feature: NumericProfile, size: int) -> None:
    """Preset the feature's cached `grid` with `size` points (small grids: passes 2 and 3 refine a lot)."""
    if feature.sorted_values.size:
        feature.__dict__["grid"] = reference_grid(feature.sorted_values, size)


def job_state(job: Job) -> tuple[bool, bool]:
    """Whether some numeric feature of a finished job was refined in pass 2, and in pass 3."""
    states = list(job.numeric.values())
    return any(s.cells is not None for s in states), any(s.crossings is not None for s in states)


# --------------------------------------------------------------------------------------------------------------
# The property: any split, any order, any merge tree == the whole batch
# --------------------------------------------------------------------------------------------------------------

SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0]
TIES = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 3.0]
OFFSETS = [0.0, 0.0, 1e6, -3e9, 1e15]
CATEGORIES = ["a", "b", "c", "d"]


def numeric_values(offset: float) -> st.SearchStrategy[float]:
    """Values around `offset` with many ties, and NaN, +-inf, -0.0 and 0.0."""
    return st.one_of(
        st.sampled_from(TIES).map(lambda v: offset + v),
        st.floats(-10, 10, allow_nan=False, allow_subnormal=False).map(lambda v: offset + v),
        st.sampled_from(SPECIALS),
    )


@dataclass
class Case:
    """A reference, a batch cut into chunks (each column: values and the container it is passed in)."""

    reference: dict[str, np.ndarray]
    numeric: list[str]
    categorical: list[str]
    chunks: list[dict[str, Any]]
    grids: dict[str, int | None]

    def batch(self) -> dict[str, np.ndarray]:
        """The chunks' rows as one batch, in chunk order."""
        out: dict[str, np.ndarray] = {}
        for name in self.numeric:
            out[name] = np.concatenate([np.empty(0), *(np.asarray(c[name], dtype=float) for c in self.chunks)])
        for name in self.categorical:
            parts = [np.asarray(pd.Series(c[name]).astype(object), dtype=object) for c in self.chunks]
            out[name] = np.concatenate([np.empty(0, dtype=object), *parts])
        return out

    def profile(self, *, grids: bool = True) -> Profile:
        """The reference profile; with `grids`, the drawn small grids preset."""
        profile = build_profile(self.reference, numeric=self.numeric, categorical=self.categorical)
        for name, size in self.grids.items():
            feature = profile.features[name]
            if grids and size is not None and isinstance(feature, NumericProfile):
                small_grid(feature, size)
        return profile


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """1-3 numeric and 1-2 categorical features; 0-8 chunks: normal, empty or all-missing; categories only some
    chunks hold; each column given as an array, a Series or (categorical) a pandas Categorical."""
    numeric = [f"x{i}" for i in range(draw(st.integers(1, 3)))]
    categorical = [f"c{i}" for i in range(draw(st.integers(1, 2)))]
    offsets = {name: draw(st.sampled_from(OFFSETS)) for name in numeric}
    ref_rows = draw(st.integers(0, 60))
    reference: dict[str, np.ndarray] = {}
    for name in numeric:
        values = draw(st.lists(numeric_values(offsets[name]), min_size=ref_rows, max_size=ref_rows))
        reference[name] = np.array(values, dtype=float)
    for name in categorical:
        labels = draw(st.lists(st.sampled_from([*CATEGORIES, None]), min_size=ref_rows, max_size=ref_rows))
        reference[name] = np.array(labels, dtype=object)
    chunks = []
    for index in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["normal", "normal", "normal", "empty", "missing"]))
        rows = 0 if kind == "empty" else draw(st.integers(1, 30))
        chunk: dict[str, Any] = {}
        for name in numeric:
            element = st.sampled_from([np.nan, np.inf, -np.inf]) if kind == "missing" else numeric_values(offsets[name])
            values = np.array(draw(st.lists(element, min_size=rows, max_size=rows)), dtype=float)
            chunk[name] = pd.Series(values) if draw(st.booleans()) else values
        for name in categorical:
            pool = [None, np.nan] if kind == "missing" else ["a", "b", "c", "e", f"only{index}", None, np.nan]
            labels = np.array(draw(st.lists(st.sampled_from(pool), min_size=rows, max_size=rows)), dtype=object)
            form = draw(st.sampled_from(["array", "series", "categorical"]))
            chunk[name] = (
                labels if form == "array" else pd.Series(labels, dtype=object if form == "series" else "category")
            )
        chunks.append(chunk)
    grids = {name: draw(st.sampled_from([None, 2, 3, 5, 8])) for name in numeric}
    return Case(reference, numeric, categorical, chunks, grids)


@settings(max_examples=150, deadline=None)
@given(case=cases(), policy=st.sampled_from(POLICIES), rnd=st.randoms(use_true_random=False), data=st.data())
def test_property_any_split_order_and_merge_tree_gives_the_whole_batch_report(
    case: Case, policy: Policy, rnd: random.Random, data: st.DataObject
) -> None:
    """Every pass over the chunks in random orders and merge trees == `compare` of the whole batch (also with the
    default grid); raw and `prepare`d chunks give identical partials."""
    profile = case.profile()
    prepared = [data.draw(st.booleans()) for _ in case.chunks]
    chunks = [prepare(profile, c) if p else c for c, p in zip(case.chunks, prepared, strict=True)]
    job, stages = run_passes(profile, chunks, rnd)
    event(f"passes {stages}")
    want = compare(profile, case.batch(), policy).to_dict()
    assert_same_report(job.finish(policy).to_dict(), want)
    # the grid is only where counting is done: the default grid gives the same report (Wasserstein to 1e-12)
    default = compare(case.profile(grids=False), case.batch(), policy).to_dict()
    assert_same_report(default, want)
    # raw and prepared chunks count alike in every pass
    check = Job.start(profile)
    while check.request is not None:
        request = check.request
        for chunk in case.chunks:
            assert_same_partial(request.count(chunk), request.count(prepare(profile, chunk)))
        check = check.absorb(merge(request.count(chunk) for chunk in case.chunks))


def test_wasserstein_does_not_depend_on_the_grid() -> None:
    """Wasserstein is within 1e-12 of the exact value on any grid (here F_R = F_C on the wide piece (0, 999990)).

    With the grid [0, 999990.68..., 999998] the interval (0, 999990.68...) is not refined (one sign). Its integral
    was once taken as (gap_sums + upto * width) * m - (sums + upto * width) * n, two products near 4e6 whose
    difference is 0.69 (7.6e-12 relative off); the counts are now subtracted first, exactly.
    """
    reference = np.array([0.0, 999990.0, 999990.6857669671, 999998.0, 999998.0])
    current = np.array([0.0, 999998.0, 999998.0, 999998.0, 999998.0])
    # exact: |F_R - F_C| is 1/5 on (999990, 999990.6857669671) and 2/5 on (999990.6857669671, 999998), else 0
    first, second = reference[2] - reference[1], reference[3] - reference[2]  # exact (Sterbenz)
    exact = (first / 5 + 2 * second / 5) / float(np.std(reference))
    profile = build_profile({"x": reference}, numeric=["x"])
    default = compare(profile, {"x": current}).features[0].stats.wasserstein
    assert default is not None and math.isclose(default, exact, rel_tol=1e-12)
    feature = profile.features["x"]
    assert isinstance(feature, NumericProfile)
    small_grid(feature, 3)
    coarse = compare(profile, {"x": current}).features[0].stats.wasserstein
    assert coarse is not None and math.isclose(coarse, exact, rel_tol=WASSERSTEIN_RTOL), (coarse, exact)


def _refining_case(seed: int, parts: int) -> tuple[Profile, list[dict[str, Any]], dict[str, np.ndarray]]:
    """A drifted batch against a reference with 4-point grids, cut into `parts` chunks (some empty)."""
    rng = np.random.default_rng(seed)
    reference = {
        "x": np.round(rng.normal(0.0, 1.0, 400), 1),
        "big": 1e12 + np.round(rng.normal(0.0, 5.0, 400)),
        "c": rng.choice(np.array(["a", "b", "c", None], dtype=object), 400),
    }
    batch = {
        "x": np.where(rng.random(700) < 0.5, np.round(rng.normal(0.15, 1.1, 700), 1), rng.normal(0.15, 1.1, 700)),
        "big": 1e12 + np.round(rng.normal(0.5, 5.0, 700)),
        "c": rng.choice(np.array(["a", "b", "d", None], dtype=object), 700),
    }
    batch["x"][::50], batch["big"][3] = np.nan, -np.inf
    profile = build_profile(reference, numeric=["x", "big"], categorical=["c"])
    for name in ("x", "big"):
        feature = profile.features[name]
        assert isinstance(feature, NumericProfile)
        small_grid(feature, 4)
    cuts = np.sort(rng.integers(0, 701, parts - 1))
    chunks = [{k: v[a:b] for k, v in batch.items()} for a, b in zip([0, *cuts], [*cuts, 700], strict=True)]
    return profile, chunks, batch


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in (0, 1, 3, 4)])
@pytest.mark.parametrize(
    ("limit", "passes"),
    [pytest.param(partials.FINE_VALUES_LIMIT, [1, 2], id="values-kept"), pytest.param(0, [1, 2, 3], id="folded")],
)
def test_passes_two_and_three_refine_and_stay_equal(
    seed: int, limit: int, passes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With small grids the fine cells and crossing values are really counted (by pass 3, or from the values pass
    2 kept) and the report is still the whole batch's."""
    monkeypatch.setattr(partials, "FINE_VALUES_LIMIT", limit)
    profile, chunks, batch = _refining_case(seed, parts=7)
    job, stages = run_passes(profile, chunks, random.Random(seed))
    assert stages == passes
    assert job_state(job) == (True, True)
    assert_same_report(job.finish(EVERY_THRESHOLD).to_dict(), compare(profile, batch, EVERY_THRESHOLD).to_dict())


def test_partials_of_different_passes_do_not_merge() -> None:
    """`Partial.merge` refuses a partial of another pass, or of other features."""
    profile, chunks, _ = _refining_case(0, parts=3)
    job = Job.start(profile)
    first = job.request.count(chunks[0]) if job.request else None
    assert first is not None
    job = job.absorb(merge(job.request.count(c) for c in chunks) if job.request else None)
    assert job.request is not None and job.request.stage == 2
    second = job.request.count(chunks[0])
    with pytest.raises(ValueError, match="different passes"):
        first.merge(second)
    with pytest.raises(ValueError, match="different passes"):
        second.merge(first)
    with pytest.raises(ValueError, match="features"):
        first.merge(Partial(1, {"x": first.features["x"]}))


def test_absorb_refuses_a_partial_of_the_wrong_pass() -> None:
    """`Job.absorb` takes only its current pass's partial, and nothing once finished."""
    profile, chunks, _ = _refining_case(1, parts=3)
    start = Job.start(profile)
    assert start.request is not None
    first = merge(start.request.count(c) for c in chunks)
    job = start.absorb(first)
    with pytest.raises(ValueError, match="expected a partial of pass 2, got pass 1"):
        job.absorb(first)
    done = count_window(profile, chunks)
    with pytest.raises(ValueError, match="finished"):
        done.absorb(first)


def _job_at(profile: Profile, chunks: list[dict[str, Any]], stage: int) -> Job:
    job = Job.start(profile)
    while job.request is not None and job.request.stage < stage:
        job = job.absorb(merge(job.request.count(c) for c in chunks))
    assert job.request is not None and job.request.stage == stage
    return job


@pytest.mark.parametrize(
    "stage, change",
    [
        pytest.param(2, "fewer", id="pass2-rows-lost"),
        pytest.param(2, "shifted", id="pass2-values-moved"),
        pytest.param(2, "none", id="pass2-no-chunks"),
        pytest.param(3, "fewer", id="pass3-rows-lost"),
        pytest.param(3, "shifted", id="pass3-values-moved"),
    ],
)
def test_a_window_that_changed_between_passes_is_detected(
    stage: int, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later pass whose counts per refined interval (pass 2) or crossing cell (pass 3, run when pass 2's values
    are not kept) disagree with the pass before raises WindowChanged, a ValueError with a one-line message."""
    if stage == 3:
        monkeypatch.setattr(partials, "FINE_VALUES_LIMIT", 0)
    profile, chunks, _ = _refining_case(3, parts=4)
    job = _job_at(profile, chunks, stage)
    assert job.request is not None
    if change == "none":
        partial = None
    elif change == "fewer":
        partial = merge(job.request.count(c) for c in chunks[1:])
    else:
        moved = [{k: v + 0.05 if k == "x" else v for k, v in c.items()} for c in chunks]
        partial = merge(job.request.count(c) for c in moved)
    with pytest.raises(WindowChanged, match=r"^the window changed between passes: [^\n]+$"):
        job.absorb(partial)
    assert issubclass(WindowChanged, ValueError)


def test_the_same_window_split_otherwise_in_a_later_pass_is_accepted() -> None:
    """Passes may split the window differently: only the counts must agree, not the chunks."""
    profile, chunks, batch = _refining_case(4, parts=5)
    job = _job_at(profile, chunks, 2)
    whole = [batch]
    while job.request is not None:
        job = job.absorb(merge(job.request.count(c) for c in whole))
    assert_same_report(job.finish().to_dict(), compare(profile, batch).to_dict())


# --------------------------------------------------------------------------------------------------------------
# Streamed from real files and a database == in-memory
# --------------------------------------------------------------------------------------------------------------

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FILE_ROWS = [150, 97, 240, 1, 130, 194, 97, 160, 210, 98, 75, 180]  # 12 files; row groups of 64 rows
START, END = T0 + timedelta(seconds=40), T0 + timedelta(seconds=sum(FILE_ROWS) - 55)
BATCH_ROWS = 97
NUMERIC = ("x", "big", "count")
CATEGORICAL = ("plan", "region")
ALL_MISSING_FILE = 4  # x is all missing there; region too


def reference_frame() -> dict[str, np.ndarray]:
    """The reference: rounded normals (ties), a large offset, small integers, categories with missing values."""
    rng = np.random.default_rng(11)
    n = 1_500
    x = np.round(rng.normal(0.0, 1.0, n), 1)
    x[::40] = np.nan
    return {
        "x": x,
        "big": 1e9 + np.round(rng.normal(0.0, 20.0, n)) * 0.5,
        "count": rng.integers(0, 25, n).astype(float),
        "plan": rng.choice(np.array(["p0", "p1", "p2", "p3", None], dtype=object), n),
        "region": rng.choice(np.array(["north", "south", "east"], dtype=object), n),
    }


def window_frames() -> list[pd.DataFrame]:
    """The window's rows as 12 files' frames, one second apart: ties split by batch and file boundaries, late
    categories, an all-missing file, infinities."""
    rng = np.random.default_rng(12)
    total = sum(FILE_ROWS)
    x = np.round(rng.normal(0.2, 1.15, total), 1)
    big = 1e9 + np.round(rng.normal(2.0, 22.0, total)) * 0.5
    count = rng.integers(0, 28, total)
    plan = rng.choice(np.array(["p0", "p1", "p2", None], dtype=object), total)
    region = rng.choice(np.array(["north", "south", "east", None], dtype=object), total)
    starts = np.cumsum([0, *FILE_ROWS])
    # ties across every batch boundary inside a file and across every file boundary (pairs of equal values)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        for cut in [*range(a + BATCH_ROWS, b, BATCH_ROWS), b]:
            if a < cut < total:
                x[cut - 1] = x[cut] = 0.3
                big[cut - 1] = big[cut] = big[a]
                count[cut - 1] = count[cut] = 7
    late = starts[8]
    plan[late::9] = "late"  # only in the last files
    plan[starts[11] :: 5] = "last"  # only in the last file
    x[[17, 600, 1_400]] = [np.inf, -np.inf, np.inf]
    big[[5, 900]] = [-np.inf, np.inf]
    frame = pd.DataFrame(
        {
            "x": x,
            "big": big,
            "count": count,
            "plan": plan,
            "region": region,
            "event_time": pd.date_range(T0.replace(tzinfo=None), periods=total, freq="s"),
        }
    )
    frames = [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(starts[:-1], starts[1:], strict=True)]
    frames[ALL_MISSING_FILE] = frames[ALL_MISSING_FILE].assign(x=np.nan, region=None)
    return frames


def write_parquet(directory: Path, frames: list[pd.DataFrame]) -> str:
    directory.mkdir()
    for index, frame in enumerate(frames):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, directory / f"part-{index:02d}.parquet", row_group_size=64)
    return str(directory / "*.parquet")


def write_csv(directory: Path, frames: list[pd.DataFrame]) -> str:
    directory.mkdir()
    for index, frame in enumerate(frames):
        out = frame.assign(event_time=frame["event_time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        out.to_csv(directory / f"part-{index:02d}.csv", index=False)
    return str(directory / "*.csv")


def write_sqlite(path: Path, frames: list[pd.DataFrame]) -> str:
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    for frame in frames:
        frame.to_sql("events", engine, index=False, if_exists="append")
    engine.dispose()
    return url


class Batches:
    """A window's batches as core chunks, re-read on every iteration (every pass)."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.sizes: list[int] = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.sizes = []
        for frame in self.window.batches():
            self.sizes.append(len(frame))
            yield batch_arrays(frame, NUMERIC, CATEGORICAL, self.window.source)


def profile_with_grids(grid: int | None) -> Profile:
    profile = build_profile(reference_frame(), numeric=NUMERIC, categorical=CATEGORICAL)
    for name in NUMERIC:
        feature = profile.features[name]
        if grid is not None and isinstance(feature, NumericProfile):
            small_grid(feature, grid)
    return profile


@pytest.fixture
def open_source(tmp_path: Path) -> Iterator[Any]:
    """A factory of the window's rows behind a parquet, csv or SQLite source with batch_rows 97."""
    opened: list[DataSource] = []

    def make(kind: str) -> DataSource:
        frames = window_frames()
        source: DataSource
        if kind == "parquet":
            source = ParquetSource("w", write_parquet(tmp_path / "pq", frames), "event_time", batch_rows=BATCH_ROWS)
        elif kind == "csv":
            source = CsvSource("w", write_csv(tmp_path / "csv", frames), "event_time", batch_rows=BATCH_ROWS)
        else:
            url = write_sqlite(tmp_path / "db.sqlite", frames)
            source = SqlSource("w", url, table="events", timestamp_column="event_time", batch_rows=BATCH_ROWS)
        opened.append(source)
        return source

    yield make
    for source in opened:
        source.close()


@pytest.mark.parametrize("grid", [pytest.param(None, id="default-grid"), pytest.param(6, id="grid6")])
@pytest.mark.parametrize("kind", [pytest.param(k, id=k) for k in ("parquet", "csv", "sqlite")])
def test_streamed_window_equals_in_memory_report(
    open_source: Any, kind: str, grid: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pass over a many-file window in 97-row batches gives the in-memory report of `read`'s rows (with
    small grids all three passes read the window: pass 2's values are not kept)."""
    if grid is not None:
        monkeypatch.setattr(partials, "FINE_VALUES_LIMIT", 0)
    source = open_source(kind)
    profile = profile_with_grids(grid)
    columns = [*NUMERIC, *CATEGORICAL]
    batches = Batches(source.window(START, END, columns))
    job, stages = Job.start(profile), []
    while job.request is not None:
        request = job.request
        stages.append(request.stage)
        job = job.absorb(merge(request.count(chunk) for chunk in batches))
        assert len(batches.sizes) > len(FILE_ROWS) and max(batches.sizes) <= BATCH_ROWS
    frame = source.read(START, END, columns)
    assert sum(batches.sizes) == len(frame) == END.timestamp() - START.timestamp()
    for policy in POLICIES:
        want = compare(profile, batch_arrays(frame, NUMERIC, CATEGORICAL, source.name), policy).to_dict()
        assert_same_report(job.finish(policy).to_dict(), want)
    if grid is not None:
        assert stages == [1, 2, 3] and job_state(job) == (True, True)
    report = job.finish()
    assert report.feature("x").stats.missing_share not in (None, 0.0)
    assert "last" in report.feature("plan").stats.new_categories
