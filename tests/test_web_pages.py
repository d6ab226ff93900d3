"""Chart data on reports and the pages that show it, without a browser: the shares against independent counts,
chunked == whole, `check --format json`, escaping of every name and value, reports with missing, broken or unknown
fields, the store's run history, and `driftwatch report`'s errors. (tests/test_web.py drives Chromium.)"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datasets import config_text, write_dataset
from test_cli import driftwatch

from driftwatch.core import Policy, build_profile, compare
from driftwatch.core.distribution import TOP_CATEGORIES, category_shares
from driftwatch.core.partials import count_window, prepare
from driftwatch.outputs.web import model_page, monitor_page, overview_page, report_document, report_html
from driftwatch.runtime.store import Store

PAYLOAD = "<img src=x onerror=alert(1)>"


def frames(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a shifted batch with missing values, many categories and new ones."""
    rng = np.random.default_rng(seed)
    cats = [f"c{i:02d}" for i in range(20)]
    reference = pd.DataFrame({"x": rng.normal(0, 1, 3000), "k": rng.choice(cats, 3000)})
    current = pd.DataFrame(
        {"x": rng.normal(0.4, 1.2, 1000), "k": rng.choice([*cats[:15], "new1", "new2"], 1000).astype(object)}
    )
    current.loc[::50, "x"] = np.nan
    current.loc[::70, "k"] = None
    return reference, current


def test_shares_equal_independent_counts():
    """Bin shares are the finite values per PSI bin (numpy's own searchsorted), category shares per category."""
    reference, current = frames()
    profile = build_profile(reference, numeric=["x"], categorical=["k"])
    report = compare(profile, current)
    numeric = report.feature("x").stats.distribution
    edges = np.asarray(numeric.edges)
    assert np.array_equal(edges, profile.features["x"].edges)
    for values, shares in ((reference["x"], numeric.reference), (current["x"], numeric.current)):
        finite = values.dropna().to_numpy()
        expected = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1) / finite.size
        assert np.allclose(shares, expected, rtol=0, atol=1e-15)
    categorical = report.feature("k").stats.distribution
    ref_share = reference["k"].value_counts(normalize=True)
    cur_share = current["k"].value_counts(normalize=True)  # None is dropped: missing values are not a category
    assert len(categorical.categories) == TOP_CATEGORIES
    for name, r, c, new in zip(
        categorical.categories, categorical.reference, categorical.current, categorical.new, strict=True
    ):
        assert r == pytest.approx(ref_share.get(name, 0.0), abs=1e-15)
        assert c == pytest.approx(cur_share.get(name, 0.0), abs=1e-15)
        assert new == (name not in ref_share.index)
    assert categorical.other_categories == len(set(ref_share.index) | set(cur_share.index)) - TOP_CATEGORIES
    assert sum(categorical.current) + categorical.other_current == pytest.approx(1.0)
    assert sum(categorical.reference) + categorical.other_reference == pytest.approx(1.0)
    assert categorical.other_new + sum(categorical.new) == 2


def test_shares_of_chunks_equal_the_whole():
    """Counted in chunks, in any order, the chart data is the same as in one batch (it is made of counts)."""
    reference, current = frames(5)
    profile = build_profile(reference, numeric=["x"], categorical=["k"])
    whole = compare(profile, current)
    chunks = [prepare(profile, {c: current[c].to_numpy()[i::3] for c in current}) for i in (2, 0, 1)]
    chunked = count_window(profile, chunks).finish(Policy())
    for name in ("x", "k"):
        assert chunked.feature(name).stats.distribution == whole.feature(name).stats.distribution


def test_category_shares_order_other_and_new():
    """The largest categories by either share, ties by name; the rest summed into other with its new ones."""
    reference = {"a": 50, "b": 30, "c": 20}
    current = {"a": 10, "b": 30, "d": 40, "e": 20}
    shares = category_shares(reference, current, top=3)
    assert shares.categories == ("a", "d", "b")
    assert shares.new == (False, True, False)
    assert (shares.other_categories, shares.other_new) == (2, 1)
    assert shares.other_reference == pytest.approx(0.2) and shares.other_current == pytest.approx(0.2)
    assert shares.to_dict()["other"] == {"categories": 2, "new": 1, "reference": 0.2, "current": 0.2}


def test_check_json_carries_the_chart_data(tmp_path: Path):
    """`check --format json` has per feature a `distribution`: bin edges with shares matching the data's own
    histogram over those edges, and category shares."""
    write_dataset(tmp_path)
    (tmp_path / "driftwatch.yaml").write_text(config_text(9999))
    done = driftwatch("check", "-c", "driftwatch.yaml", "--format", "json", "--monitor", "from-files", cwd=tmp_path)
    assert done.returncode in (0, 1), done.stderr
    features = json.loads(done.stdout)["monitors"][0]["features"]
    age = features["age"]["distribution"]
    assert age["kind"] == "bins" and len(age["edges"]) == 9 and len(age["current"]) == 10
    prod = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "prod").glob("*.parquet")))
    counts = np.bincount(np.searchsorted(age["edges"], prod["age"].to_numpy(), side="right"), minlength=10)
    assert np.allclose(age["current"], counts / counts.sum(), rtol=0, atol=1e-12)
    plan = features["plan"]["distribution"]
    assert plan["kind"] == "categories" and sorted(plan["categories"]) == ["basic", "plus", "premium"]
    assert dict(zip(plan["categories"], plan["current"], strict=True)) == pytest.approx(
        prod["plan"].value_counts(normalize=True).to_dict()
    )
    assert plan["other"]["categories"] == 0 and plan["new"] == [False, False, False]


def hostile_report() -> dict:
    """A report whose every name and text is markup."""
    reference, current = frames()
    current["k"] = current["k"].where(current.index % 3 != 0, PAYLOAD)
    reference = reference.rename(columns={"x": PAYLOAD + "x"})
    current = current.rename(columns={"x": PAYLOAD + "x"})
    profile = build_profile(reference, numeric=[PAYLOAD + "x"], categorical=["k"])
    report = compare(profile, current, monitor=PAYLOAD, window=(datetime(2026, 1, 1, tzinfo=UTC),) * 2).to_dict()
    report["reason"] = PAYLOAD
    return report


def test_pages_escape_every_name_and_value():
    """Monitor, feature and category names, reasons, versions and audit entries never reach a page as markup."""
    report = hostile_report()
    summary = {"monitor": PAYLOAD, "outcome": "error", "error": PAYLOAD, "last_run": PAYLOAD, "severity": PAYLOAD}
    history = [{"started_at": PAYLOAD, "outcome": PAYLOAD, "severity": PAYLOAD, "features": {PAYLOAD + "x": {}}}]
    model = {"model": PAYLOAD, "active": PAYLOAD, "primary": "v1", "fallbacks": [PAYLOAD], "reason": PAYLOAD,
             "actuation": {PAYLOAD: PAYLOAD}}  # fmt: skip
    trigger = {"monitor": PAYLOAD, "statistics": {"features": {PAYLOAD: {"breaches": {PAYLOAD: PAYLOAD}}}}}
    audit = [{"at": PAYLOAD, "actor": PAYLOAD, "kind": PAYLOAD, "from": PAYLOAD, "to": PAYLOAD, "reason": PAYLOAD,
              "details": trigger}]  # fmt: skip
    alert = {"phase": "firing", "alertname": PAYLOAD, "monitor": PAYLOAD, "subject": PAYLOAD, "severity": PAYLOAD}
    pages = [
        report_html(report, history),
        report_document(report),
        monitor_page(summary, report, history, model=PAYLOAD),
        monitor_page(summary, None, history),
        overview_page([(summary, history)], [model], [alert]),
        model_page(model, audit),
    ]
    for page in pages:
        assert "<img" not in page and "onerror=alert(1)>" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
        assert "<script" not in page
    assert 'href="../models/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"' in pages[2]


BROKEN_FEATURES = [
    pytest.param({}, id="empty"),
    pytest.param({"kind": 3, "status": None, "psi": "high", "severity": "purple", "breaches": [1]}, id="wrong-types"),
    pytest.param({"distribution": {"kind": "bins", "edges": [1.0], "reference": [1.0], "current": [1.0]}}, id="bins"),
    pytest.param({"distribution": {"kind": "bins", "edges": [], "reference": [1.0], "current": [1.0]}}, id="one-bin"),
    pytest.param(
        {"distribution": {"kind": "categories", "categories": ["a"], "reference": [1], "current": [1]}},
        id="categories-without-new",
    ),  # fmt: skip
    pytest.param({"distribution": {"kind": "point_masses", "reference": [1.0], "current": [1.0]}}, id="unknown-kind"),
    pytest.param(
        {"distribution": {"kind": "bins", "edges": [None], "reference": [0.5, None], "current": [1, 0]}}, id="nulls"
    ),  # fmt: skip
    pytest.param({"distribution": "a string"}, id="not-an-object"),
    pytest.param({"psi": float("nan"), "ks_pvalue": float("inf"), "rows": -1}, id="non-finite"),
]


@pytest.mark.parametrize("feature", BROKEN_FEATURES)
def test_pages_survive_missing_and_broken_fields(feature: dict):
    """A report with fields missing, null or of the wrong type renders (with '-' or a note), never raises."""
    report = {"monitor": "m", "status": "ok", "severity": "ok", "features": {"f": feature}, "window": "x", "rows": 5}
    page = report_document(report, [{"features": {"f": feature}}, {"features": None}, {}])
    assert 'data-feature="f"' in page


def test_unknown_fields_are_listed_with_the_statistics():
    """Scalar fields the page does not know (added by a later version) are shown under the feature's statistics."""
    report = {
        "status": "ok",
        "features": {"f": {"status": "ok", "zero_share": 0.25, "point_masses": 3, "health": {"constant": True}}},
        "data_health": "stale",
        "nested": {"a": [1, 2]},
    }
    page = report_html(report, [["not", "a", "run"], {"features": "x"}])
    for label, value in (("zero_share", "0.250"), ("point_masses", "3"), ("health", "constant=yes")):
        assert re.search(rf"<dt>{label}</dt><dd>{re.escape(value)}</dd>", page), label
    assert "<dt>data_health</dt><dd>stale</dd>" in page and "nested" not in page


def test_features_are_sorted_worst_first():
    """Critical before warning before ok before not judged; among equals significant first, then by PSI."""
    features = {
        "ok-low": {"status": "ok", "severity": "ok", "psi": 0.01, "significant": False},
        "skipped": {"status": "insufficient_data"},
        "warn": {"status": "ok", "severity": "warning", "psi": 0.12, "significant": True},
        "ok-high": {"status": "ok", "severity": "ok", "psi": 0.3, "significant": False},
        "crit-small": {"status": "ok", "severity": "critical", "psi": 0.3, "significant": True},
        "crit-big": {"status": "ok", "severity": "critical", "psi": 0.9, "significant": True},
    }
    page = report_html({"status": "ok", "severity": "critical", "features": features})
    order = re.findall(r'data-feature="([^"]+)"', page)
    assert order == ["crit-big", "crit-small", "warn", "ok-high", "ok-low", "skipped"]


def test_run_history_is_oldest_first_with_feature_statistics(tmp_path: Path):
    """`Store.run_history`: the newest runs, oldest first, failed runs without features, read by SQLite's JSON."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with Store(tmp_path / "state.db") as store:
        for i in range(6):
            report = {"features": {"a": {"psi": 0.1 * i, "ks_statistic": 0.01 * i, "severity": "ok", "other": [1]}}}
            store.record_run(
                "m",
                started=start + timedelta(minutes=i),
                finished=start + timedelta(minutes=i, seconds=1),
                outcome="error" if i == 4 else "ok",
                severity=None if i == 4 else "ok",
                error="boom" if i == 4 else None,
                report=None if i == 4 else report,
            )
        store.record_run("other", started=start, finished=start, outcome="ok", severity="ok", error=None, report={})
        runs = store.run_history("m", 3)
        bare = store.run_history("m", 3, features=False)
    assert [r["started_at"] for r in runs] == [start + timedelta(minutes=i) for i in (3, 4, 5)]
    assert [r["outcome"] for r in runs] == ["ok", "error", "ok"]
    assert runs[0]["features"] == {"a": {"psi": pytest.approx(0.3), "ks_statistic": 0.03, "severity": "ok"}}
    assert runs[1]["features"] == {}
    assert [r["features"] for r in bare] == [{}, {}, {}]


def test_report_command_errors_are_one_line(tmp_path: Path):
    """`driftwatch report` with an unknown monitor exits 2 with one line; with no data it writes the page."""
    write_dataset(tmp_path)
    (tmp_path / "driftwatch.yaml").write_text(config_text(9999))
    done = driftwatch("report", "-c", "driftwatch.yaml", "--monitor", "nope", "-o", "r.html", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "unknown monitor 'nope'" in done.stderr
    done = driftwatch(
        "report", "-c", "driftwatch.yaml", "--monitor", "from-files", "--at", "2001-01-01T00:00:00", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("<!doctype html>") and "no data" in done.stdout  # an empty window
    assert "no rows in the window" in done.stdout
    done = driftwatch(
        "report", "-c", "driftwatch.yaml", "--monitor", "from-files", "-o", "no/such/dir/r.html", cwd=tmp_path
    )
    assert done.returncode == 2 and "cannot write no/such/dir/r.html" in done.stderr


def test_report_file_history_reads_the_state_database_up_to_its_time(tmp_path: Path):
    """A report file's history: the stored runs started up to `--at`, then this run; no database, no history (and
    none is created)."""
    from driftwatch.runtime.reports import stored_history

    at = datetime(2026, 1, 1, 12, tzinfo=UTC)
    report = {"status": "ok", "severity": "critical", "features": {"a": {"psi": 0.5, "ks_statistic": 0.3, "x": 1}}}
    assert stored_history(tmp_path / "none.db", "m", at, report) == []
    assert not (tmp_path / "none.db").exists()
    with Store(tmp_path / "state.db") as store:
        for minutes in (-20, -10, 10):
            moment = at + timedelta(minutes=minutes)
            stored = {"features": {"a": {"psi": 0.01, "ks_statistic": 0.02, "severity": "ok"}}}
            store.record_run(
                "m", started=moment, finished=moment, outcome="ok", severity="ok", error=None, report=stored
            )
    history = stored_history(tmp_path / "state.db", "m", at, report)
    assert [run["started_at"] for run in history] == [at - timedelta(minutes=20), at - timedelta(minutes=10), at]
    assert history[-1]["features"] == {"a": {"psi": 0.5, "ks_statistic": 0.3, "severity": None}}
    page = report_document(report, history)
    assert "History of the last 3 runs" in page


def test_point_mass_bins_thresholds_and_baseline_are_shown():
    """A point-mass bin is labelled `= value`; the levels applied and what the reference was are on the page."""
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": np.where(rng.random(4000) < 0.6, 0.0, rng.exponential(3, 4000))})
    current = pd.DataFrame({"x": np.where(rng.random(1000) < 0.3, 0.0, rng.exponential(3, 1000))})
    report = compare(build_profile(reference, numeric=["x"]), current).to_dict()
    edges = report["features"]["x"]["distribution"]["edges"]
    assert 0.0 in edges and float(np.nextafter(0.0, 1.0)) in edges  # the zeros have a bin of their own
    report["baseline"] = {"kind": "window", "source": "prod", "start": "2026-01-01T00:00:00+00:00",
                          "end": "2026-01-29T00:00:00+00:00", "rows": 5000, "calibration": {"windows": 30}}  # fmt: skip
    page = report_html(report)
    assert '<th scope="row">= 0</th>' in page
    assert "psi 0.100 / 0.250" in page and "ks_statistic 0.100 / 0.200" in page
    assert "prod from 2026-01-01 00:00:00 UTC to 2026-01-29 00:00:00 UTC (5,000 rows)" in page
    assert "thresholds calibrated on 30 windows" in page
