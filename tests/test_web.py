"""The web view in a real headless Chromium (Debian `chromium`) against a real daemon subprocess: the rendered DOM
(worst feature first, its chart with one bar per bin and series, severities, the model's active version),
screenshots at desktop and phone widths, no request to any other host, a category named like an HTML tag shown as
text, `server.ui_token`, the `driftwatch report` file opened offline, `_repr_html_`, and the demo going critical.

The browser is driven over the DevTools protocol (tests/browser.py says why); see README "Web view and reports".
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from browser import Browser, Visit
from conftest import free_port, require_binary
from daemon_harness import DaemonProcess
from PIL import Image, ImageStat

pytestmark = pytest.mark.integration

PAYLOAD = "<img src=x onerror=alert(1)>"
UI_TOKEN = "ui-t0ken"
MONITOR, MODEL = "churn-inputs", "churn"
NUMERIC, CATEGORICAL = ["age", "income", "score"], ["plan"]
BINS = 8
DESKTOP, PHONE = (1280, 900), (390, 844)


def customers(rng: np.random.Generator, rows: int, age_shift: float, payload_share: float) -> pd.DataFrame:
    """Rows where only `age` moves (by `age_shift` years); `plan` holds the payload category at a small share."""
    plans = rng.choice(["basic", "standard", "premium"], rows, p=[0.5, 0.35, 0.15]).astype(object)
    plans[rng.random(rows) < payload_share] = PAYLOAD
    return pd.DataFrame(
        {
            "age": rng.normal(40 + age_shift, 12, rows).round(),
            "income": rng.lognormal(10.5, 0.5, rows),
            "score": rng.normal(0, 1, rows),
            "plan": plans,
        }
    )


def write_site(root: Path, port: int, *, state: str = "state/driftwatch.db", end: datetime | None = None) -> Path:
    """Reference, a drifted production file over the 30 minutes before `end`, and the config; returns its path."""
    end = end or datetime.now(UTC)
    (root / "prod").mkdir(parents=True, exist_ok=True)
    customers(np.random.default_rng(1), 4000, 0.0, 0.0).to_parquet(root / "reference.parquet", index=False)
    rng = np.random.default_rng(2)
    batch = customers(rng, 1500, 15.0, 0.01)
    offsets = np.sort(rng.uniform(60, 1800, len(batch)))
    batch.insert(0, "event_time", pd.to_datetime(end, utc=True) - pd.to_timedelta(offsets, unit="s"))
    batch.to_parquet(root / "prod" / "batch.parquet", index=False)
    config = root / "driftwatch.yaml"
    config.write_text(f"""
server: {{host: 127.0.0.1, port: {port}, ui_token: "{UI_TOKEN}"}}
state: {{path: {state}}}
sources:
  prod: {{kind: parquet, path: "prod/*.parquet", timestamp_column: event_time}}
monitors:
  {MONITOR}:
    model: {MODEL}
    reference: {{path: reference.parquet}}
    source: prod
    schedule: {{every: 1s}}
    window: 2h
    min_rows: 100
    psi: {{bins: {BINS}}}
    features: {{numeric: [{", ".join(NUMERIC)}], categorical: [{", ".join(CATEGORICAL)}]}}
models:
  {MODEL}:
    primary: churn-v3
    fallbacks: [churn-v2, churn-rules]
    switch: {{on: critical, after_runs: 2, min_dwell: 1h}}
alerting:
  sinks: {{console: {{kind: log}}}}
  defaults: {{for_runs: 1}}
""")
    return config


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Debian Chromium binary (skips without it; fails in CI)."""
    return require_binary("chromium", "chromium-browser")


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with Browser(chromium) as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """A daemon on the drifted data, after enough runs for a history and the model's switch to a fallback."""
    root = tmp_path_factory.mktemp("site")
    port = free_port()
    daemon = DaemonProcess(write_site(root, port), port)
    try:
        daemon.wait_ready()
        bearer = {"authorization": f"Bearer {UI_TOKEN}"}

        def switched() -> bool:
            request = urllib.request.Request(f"{daemon.base}/api/v1/models/{MODEL}", headers=bearer)
            with urllib.request.urlopen(request, timeout=5) as reply:
                return json.loads(reply.read())["active"] == "churn-v2" and runs(daemon) >= 4

        daemon.wait_for(switched, "the model's switch and 4 runs", timeout=60)
        yield daemon
    finally:
        daemon.stop()


def runs(daemon: DaemonProcess) -> int:
    return int(daemon.json(f"/api/v1/monitors/{MONITOR}")["runs_total"])


@pytest.fixture(scope="module")
def logged_in(browser: Browser) -> Browser:
    """The browser sending the UI token with every request."""
    browser.headers({"Authorization": f"Bearer {UI_TOKEN}"})
    return browser


def only_from(visit: Visit, base: str) -> None:
    """Every request the page made went to `base`'s host (or was inline data)."""
    host = urllib.parse.urlsplit(base).netloc
    foreign = [
        url for url in visit.requests if urllib.parse.urlsplit(url).netloc != host and not url.startswith("data:")
    ]
    assert visit.requests, "the page load was not recorded"
    assert foreign == []


def quiet(visit: Visit) -> None:
    """No console message, exception, dialog or browser log entry (a CSP violation would be one)."""
    assert (visit.console, visit.dialogs, visit.log) == ([], [], [])


def not_blank(png: bytes, size: tuple[int, int]) -> None:
    """The screenshot has the viewport's size and real content (pixel variance, several distinct colours)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == size
    assert ImageStat.Stat(image.convert("L")).var[0] > 200
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 20


def features_shown(browser: Browser) -> list[dict]:
    """The feature cards in page order: name, severity text, bars of the chart, table rows."""
    return browser.evaluate("""[...document.querySelectorAll('section.feature')].map(s => ({
        name: s.querySelector('.fname').textContent,
        severity: s.querySelector('h3 .sev').textContent.trim(),
        bars: s.querySelectorAll('svg.chart rect.bar').length,
        reference: s.querySelectorAll('svg.chart rect.bar.reference').length,
        rows: s.querySelectorAll('table.shares tbody tr').length,
        text: s.textContent}))""")


def test_monitor_page_shows_the_drifted_feature_first_with_its_chart(site: DaemonProcess, logged_in: Browser):
    """/monitors/NAME: `age` first and critical, one bar per bin and series, the gate, the rest ok; no other host."""
    visit = logged_in.open(f"{site.base}/monitors/{MONITOR}", *DESKTOP)
    only_from(visit, site.base)
    quiet(visit)
    shown = features_shown(logged_in)
    assert [f["name"] for f in shown][0] == "age"
    assert sorted(f["name"] for f in shown) == sorted(NUMERIC + CATEGORICAL)
    age = shown[0]
    assert age["severity"] == "critical"
    assert (age["bars"], age["reference"], age["rows"]) == (2 * BINS, BINS, BINS)
    assert re.search(r"Gate: significant \(adjusted p (=|<) [0-9.e+-]+\)", age["text"]), age["text"]
    assert "KS statistic D" in age["text"]
    assert [f["severity"] for f in shown[1:]] == ["ok"] * 3
    plan = next(f for f in shown if f["name"] == "plan")
    assert plan["bars"] == 2 * 4 and plan["rows"] == 4  # three plans and the new category
    title = logged_in.evaluate("document.querySelector('h1').textContent")
    assert MONITOR in title and "critical" in title
    history = logged_in.evaluate("document.querySelector('section.feature .spark polyline') !== null")
    assert history, "the PSI/KS history of recent runs is drawn"
    report = site.json(f"/api/v1/monitors/{MONITOR}/report")
    edges = report["features"]["age"]["distribution"]["edges"]
    assert len(edges) == BINS - 1


def test_category_named_like_a_tag_is_text(site: DaemonProcess, logged_in: Browser):
    """The payload category shows as text: no element injected, no script run, no dialog, nothing in the console."""
    visit = logged_in.open(f"{site.base}/monitors/{MONITOR}", *DESKTOP)
    quiet(visit)
    assert logged_in.evaluate("document.querySelectorAll('img, [onerror], script').length") == 0
    texts = logged_in.evaluate("[...document.querySelectorAll('.cat, th, text')].map(e => e.textContent)")
    assert PAYLOAD in texts
    assert logged_in.evaluate("document.body.textContent").count(PAYLOAD) >= 2  # new categories and the table
    status, body = site.get(f"/api/v1/monitors/{MONITOR}/report")
    assert status == 200 and PAYLOAD in json.loads(body)["features"]["plan"]["distribution"]["categories"]


def test_overview_and_model_pages(site: DaemonProcess, logged_in: Browser):
    """/ lists the monitor (critical, strip of runs), the model on its fallback and the firing alerts; /models/NAME
    shows the active version, why, and the audit trail."""
    visit = logged_in.open(f"{site.base}/", *DESKTOP)
    only_from(visit, site.base)
    quiet(visit)
    row = logged_in.evaluate(f"""(() => {{ const r = document.querySelector('tr[data-monitor="{MONITOR}"]');
        return {{sev: r.querySelector('.sev').textContent, strip: r.querySelectorAll('.strip span').length,
                 label: r.querySelector('.strip').getAttribute('aria-label'),
                 link: r.querySelector('a').getAttribute('href')}}; }})()""")
    assert row["sev"] == "critical" and row["strip"] >= 4 and "critical" in row["label"]
    model = logged_in.evaluate(f"document.querySelector('tr[data-model=\"{MODEL}\"] td.active').textContent")
    assert model.split()[0] == "churn-v2" and "fallback" in model
    alerts = logged_in.evaluate("[...document.querySelectorAll('table.alerts tbody tr')].map(r => r.textContent)")
    assert any("FeatureDrift" in a and "age" in a for a in alerts)

    logged_in.open(f"{site.base}/{row['link']}", *DESKTOP)  # the overview's link to the monitor page works
    assert logged_in.evaluate("document.querySelector('.fname').textContent") == "age"

    visit = logged_in.open(f"{site.base}/models/{MODEL}", *DESKTOP)
    only_from(visit, site.base)
    quiet(visit)
    assert logged_in.evaluate("document.querySelector('.active-version').textContent") == "churn-v2"
    active = logged_in.evaluate("[...document.querySelectorAll('table.versions tr.active th')].map(e => e.textContent)")
    assert active == ["churn-v2"]
    assert "2 consecutive runs at or above critical" in logged_in.evaluate(
        "document.querySelector('.reason').textContent"
    )
    audit = logged_in.evaluate("[...document.querySelectorAll('table.audit tbody tr')].map(r => r.textContent)")
    assert len(audit) == 1 and "churn-v3 -> churn-v2" in audit[0] and "age: critical" in audit[0]


@pytest.mark.parametrize(
    ("path", "size", "mobile"),
    [
        pytest.param("/", DESKTOP, False, id="overview-desktop"),
        pytest.param("/", PHONE, True, id="overview-phone"),
        pytest.param(f"/monitors/{MONITOR}", DESKTOP, False, id="monitor-desktop"),
        pytest.param(f"/monitors/{MONITOR}", PHONE, True, id="monitor-phone"),
        pytest.param(f"/models/{MODEL}", PHONE, True, id="model-phone"),
    ],
)
def test_screenshots_are_not_blank_and_pages_fit_a_phone(
    site: DaemonProcess, logged_in: Browser, path: str, size: tuple[int, int], mobile: bool
):
    """Screenshots at desktop and phone widths have content; the page never scrolls sideways (tables scroll
    inside their own box)."""
    logged_in.open(site.base + path, *size, mobile=mobile)
    not_blank(logged_in.screenshot(), size)
    width, viewport = logged_in.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= viewport


def test_ui_token_guards_the_pages_only(site: DaemonProcess):
    """With server.ui_token set, pages need it (Bearer, or Basic with it as the password); /metrics stays open."""

    def status(path: str, authorization: str | None = None) -> tuple[int, str]:
        request = urllib.request.Request(site.base + path, headers={"authorization": authorization or ""})
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, reply.headers.get("www-authenticate", "")
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("www-authenticate", "")

    basic = "Basic " + base64.b64encode(f"anyone:{UI_TOKEN}".encode()).decode()
    wrong = "Basic " + base64.b64encode(b"anyone:wrong").decode()
    for path in ("/", f"/monitors/{MONITOR}", f"/models/{MODEL}"):
        assert status(path) == (401, 'Basic realm="driftwatch", charset="UTF-8"')
        assert status(path, wrong)[0] == 401
        assert status(path, f"Bearer {UI_TOKEN}")[0] == 200
        assert status(path, basic)[0] == 200
    assert status("/metrics")[0] == 200
    assert status("/monitors/nope", f"Bearer {UI_TOKEN}")[0] == 404
    assert status(f"/monitors/{MONITOR}", "Bearer x")[0] == 401


def test_page_headers_forbid_scripts_and_framing(site: DaemonProcess):
    """Pages are sent with a CSP that allows inline CSS only, nosniff and no-referrer; `?refresh=N` (5 to 3600)
    makes a page reload itself."""
    request = urllib.request.Request(f"{site.base}/", headers={"authorization": f"Bearer {UI_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        headers = reply.headers
    assert headers["content-type"].startswith("text/html")
    assert headers["content-security-policy"].startswith("default-src 'none'; style-src 'unsafe-inline'")
    assert (headers["x-content-type-options"], headers["referrer-policy"]) == ("nosniff", "no-referrer")

    def page(query: str) -> str:
        request = urllib.request.Request(f"{site.base}/{query}", headers={"authorization": f"Bearer {UI_TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.read().decode()

    assert '<meta http-equiv="refresh" content="30">' in page("?refresh=30")
    assert 'http-equiv="refresh"' not in page("?refresh=1") + page("?refresh=x") + page("")


def test_report_file_opens_offline_and_matches_repr_html(tmp_path: Path, browser: Browser):
    """`driftwatch report` writes one HTML file that renders in Chromium without any request beyond itself; its
    body is `Report._repr_html_()` of the same run."""
    at = datetime.now(UTC).replace(microsecond=0)
    config = write_site(tmp_path, free_port(), state="fresh/state.db", end=at)
    out = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "driftwatch", "report", "-c", str(config), "--monitor", MONITOR, "--at", at.isoformat(),
         "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "critical" in run.stderr and str(out) in run.stderr
    page = out.read_text(encoding="utf-8")
    assert not (tmp_path / "fresh" / "state.db").exists()  # a report does not create the state database

    from driftwatch.config import load_config
    from driftwatch.runtime.monitor import open_sources, prepare_monitor, run_monitor

    loaded = load_config(config)
    monitor = prepare_monitor(MONITOR, loaded, tmp_path / "fresh" / "profiles", open_sources(loaded))
    report = run_monitor(monitor, at).report
    assert report is not None
    fragment = report._repr_html_()
    assert fragment.startswith('<div class="dw">') and fragment in page
    assert page.index("<body") < page.index(fragment)

    visit = browser.open(out.as_uri(), *DESKTOP)
    assert visit.requests == [out.as_uri()]
    quiet(visit)
    shown = features_shown(browser)
    assert shown[0]["name"] == "age" and shown[0]["severity"] == "critical" and shown[0]["bars"] == 2 * BINS
    outside = "a[href^='http'], link:not([href^='data:']), script, img, iframe, object"
    assert browser.evaluate(f'document.querySelectorAll("{outside}").length') == 0
    not_blank(browser.screenshot(), DESKTOP)


def test_demo_page_shows_age_critical(tmp_path: Path, browser: Browser):
    """`driftwatch demo` logs the web view's URL, and its monitor page shows `age` critical (drift sped up)."""
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "driftwatch", "demo", "--port", str(port), "--dir", str(tmp_path / "work"),
         "--drift-after", "0s", "--drift-speed", "10"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/monitors/{MONITOR}"
    started = time.monotonic()
    try:
        deadline, page = started + 90, ""
        while time.monotonic() < deadline and demo.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    page = reply.read().decode()
                if 'data-feature="age" data-severity="critical"' in page:
                    break
            except OSError:
                pass
            time.sleep(1)
        took = time.monotonic() - started
        output = (tmp_path / "demo.log").read_text(errors="replace")
        assert f"web view at http://127.0.0.1:{port}/" in output
        assert 'data-feature="age" data-severity="critical"' in page, output
        visit = browser.open(url, *DESKTOP)
        only_from(visit, url)
        shown = features_shown(browser)
        assert (shown[0]["name"], shown[0]["severity"]) == ("age", "critical")
        print(f"demo: age critical on the web view {took:.0f}s after start (drift sped up 10x)")
    finally:
        demo.terminate()
        demo.wait(40)
        log.close()
