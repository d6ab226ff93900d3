"""What the pages show, computed from the JSON the API serves: reports (`Report.to_dict()`), monitor summaries,
run histories, model views and audit entries, alert states.

Everything here reads dicts defensively: a field that is missing, null or of an unexpected type is shown as
"-" or left out, never an error, so reports written by older or newer versions (and fields added later) still
render. Scalar fields this module does not know are listed under the feature's statistics as they are.
Formatting happens here; the templates only place text, and escape all of it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape

from driftwatch.outputs.web.charts import bars_svg, bin_axis, horizontal_bars, line, line_svg, vertical_bars

SEVERITY_RANK = {"critical": 2, "warning": 1, "ok": 0}
#: The statistics of a feature, in the order shown, with their labels and formats.
STATISTICS: tuple[tuple[str, str, str], ...] = (
    ("psi", "PSI", "num"),
    ("ks_statistic", "KS statistic D", "num"),
    ("ks_pvalue", "KS p-value", "p"),
    ("chi2_statistic", "chi-square", "num"),
    ("chi2_pvalue", "chi-square p-value", "p"),
    ("js_distance", "Jensen-Shannon distance", "num"),
    ("wasserstein", "Wasserstein (reference sd)", "num"),
    ("missing_share", "missing share", "pct"),
    ("adjusted_pvalue", "adjusted p-value", "p"),
)
#: Feature fields shown elsewhere on the page (not repeated among the unknown extras).
KNOWN_FEATURE_FIELDS = {s for s, _, _ in STATISTICS} | {
    "kind",
    "status",
    "rows",
    "new_categories",
    "significant",
    "breaches",
    "severity",
    "distribution",
    "thresholds",
}
EXTRA_TEXT_LIMIT = 200


# --------------------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    """`value` as a finite float, or None (strings, booleans, null, NaN are not numbers here)."""
    kind = type(value)  # the JSON types first, cheaply: this runs ~10,000 times per page
    if kind is not float and kind is not int and (isinstance(value, bool) or not isinstance(value, int | float)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def fmt_num(value: Any) -> str:
    """A statistic: 3 decimals, or 3 significant digits in scientific notation when small; "-" when absent."""
    v = number(value)
    if v is None:
        return "-"
    if v != 0 and abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.3f}"


def fmt_p(value: Any) -> str:
    """A p-value: scientific below 0.001."""
    v = number(value)
    if v is None:
        return "-"
    if v == 0:
        return "< 1e-300"  # below the smallest double: the test leaves no doubt
    return f"{v:.2e}" if v < 1e-3 else f"{v:.4f}"


def fmt_pct(value: Any) -> str:
    v = number(value)
    return "-" if v is None else f"{v:.1%}"


def fmt_int(value: Any) -> str:
    v = number(value)
    return "-" if v is None else f"{int(v):,}"


def fmt_edge(value: Any) -> str:
    """A bin edge: whole numbers with separators from 1,000 up, else 4 significant digits."""
    v = number(value)
    if v is None:
        return "?"
    if 1e3 <= abs(v) < 1e15:
        return f"{v:,.0f}"
    return f"{v:.4g}"


def fmt_time(value: Any) -> str:
    """An ISO time or datetime as `YYYY-MM-DD HH:MM:SS UTC` (text that is no time is shown as it is)."""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return text(value, 64)
    if isinstance(moment, datetime):
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment
        return utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "-"


def text(value: Any, limit: int = EXTRA_TEXT_LIMIT) -> str:
    """Any value as display text, cut to `limit` characters ("-" for null)."""
    if value is None:
        return "-"
    shown = value if isinstance(value, str) else str(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def href(*segments: str) -> str:
    """A relative link made of URL-quoted path segments (`../`-style prefixes are passed in as segments)."""
    return "/".join(s if s in ("..", ".") else quote(str(s), safe="") for s in segments)


def severity_of(value: Any) -> str:
    """A known severity label, or "unknown"."""
    return value if isinstance(value, str) and value in SEVERITY_RANK else "unknown"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


# --------------------------------------------------------------------------------------------------------------
# Features and reports
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareRow:
    """One row of a chart's table: bin or category, reference and current share, new category or not."""

    label: str
    reference: str
    current: str
    new: bool = False


@dataclass(frozen=True)
class Chart:
    """A distribution chart (SVG markup) and its text alternative (a table's markup)."""

    svg: Markup
    table: Markup
    rows: tuple[ShareRow, ...]
    caption: str
    bars: int


@dataclass(frozen=True)
class HistoryView:
    """PSI and KS of one feature over the recent runs (SVG markup, None without values) and their table."""

    psi: Markup | None
    ks: Markup | None
    psi_label: str
    ks_label: str
    table: Markup
    runs: int


@dataclass(frozen=True)
class FeatureView:
    name: str
    anchor: str
    kind: str
    status: str
    severity: str
    stats: tuple[tuple[str, str], ...]
    breaches: tuple[tuple[str, str], ...]
    gate: str
    significant: bool | None
    rows: str
    new_categories: tuple[tuple[str, str], ...]
    chart: Chart | None
    chart_note: str
    history: HistoryView | None
    extras: tuple[tuple[str, str], ...] = ()
    thresholds: tuple[tuple[str, str, str], ...] = ()  # statistic, warning, critical (the levels applied)

    @property
    def stats_map(self) -> dict[str, str]:
        """The formatted statistics by label."""
        return dict(self.stats)


def _sort_key(feature: FeatureView, psi: float | None) -> tuple[int, int, float, str]:
    rank = SEVERITY_RANK.get(feature.severity, 0) if feature.status == "ok" else -1
    return (-rank, 0 if feature.significant else 1, -(psi or 0.0), feature.name)


Runs = Sequence[tuple[str, Mapping[str, Any]]]  # (start time as escaped text, features) per run, oldest first


def runs_of(history: Sequence[Mapping[str, Any]]) -> Runs:
    """The runs of a history (`Store.run_history`) with their times formatted (and escaped) once."""
    return [
        (str(escape(fmt_time(run.get("started_at")))), _mapping(run.get("features")))
        for run in history
        if isinstance(run, Mapping)
    ]


def feature_views(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> list[FeatureView]:
    """The report's features, worst first: by severity, then significant ones, then by PSI."""
    keyed = []
    runs = runs_of(history)
    for index, (name, raw) in enumerate(_mapping(report.get("features")).items()):
        data = _mapping(raw)
        view = feature_view(str(name), data, runs, index)
        keyed.append((_sort_key(view, number(data.get("psi"))), view))
    keyed.sort(key=lambda pair: pair[0])
    return [view for _, view in keyed]


def feature_view(name: str, data: Mapping[str, Any], runs: Runs = (), index: int = 0) -> FeatureView:
    """One feature's card: statistics, gate, breaches, chart, history."""
    formats = {"num": fmt_num, "p": fmt_p, "pct": fmt_pct}
    stats = tuple(
        (label, formats[kind](data.get(key))) for key, label, kind in STATISTICS if number(data.get(key)) is not None
    )
    significant = data.get("significant")
    adjusted = number(data.get("adjusted_pvalue"))
    status = text(data.get("status"), 40)
    if status != "ok":
        gate = f"not judged ({status.replace('_', ' ')})"
    elif significant is True and adjusted is None:
        gate = "significance gate off: thresholds alone decide"
    elif significant is True:
        gate = f"significant ({_adjusted(adjusted)}): breaches count"
    elif significant is False:
        gate = f"not significant ({_adjusted(adjusted)}): held at ok whatever the thresholds say"
    else:
        gate = "-"
    breaches = tuple((text(k, 60), severity_of(v)) for k, v in _mapping(data.get("breaches")).items())
    new = tuple((text(k), fmt_pct(v)) for k, v in _mapping(data.get("new_categories")).items())
    chart, note = distribution_chart(data.get("distribution"), f"f{index}")
    extras = tuple(
        (text(k, 60), shown)
        for k, v in data.items()
        if k not in KNOWN_FEATURE_FIELDS and (shown := _extra(v)) is not None
    )
    return FeatureView(
        name=name,
        anchor=f"f{index}",
        kind=text(data.get("kind"), 40),
        status=status,
        severity=severity_of(data.get("severity")),
        stats=stats,
        breaches=breaches,
        gate=gate,
        significant=significant if isinstance(significant, bool) else None,
        rows=fmt_int(data.get("rows")),
        new_categories=new,
        chart=chart,
        chart_note=note,
        history=feature_history(name, runs),
        thresholds=tuple(
            (text(k, 60), fmt_num(_mapping(v).get("warning")), fmt_num(_mapping(v).get("critical")))
            for k, v in _mapping(data.get("thresholds")).items()
        ),
        extras=extras,
    )


def _adjusted(pvalue: float | None) -> str:
    """`adjusted p = 0.0123`, or `adjusted p < 1e-300`."""
    shown = fmt_p(pvalue)
    return f"adjusted p {shown}" if shown.startswith("<") else f"adjusted p = {shown}"


def _extra(value: Any) -> str | None:
    """A field this module does not know, as text: scalars as they are, a flat object as `k=v` pairs."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt_num(value) if isinstance(value, float) else fmt_int(value)
    if isinstance(value, str):
        return text(value)
    if isinstance(value, Mapping) and value and all(isinstance(v, str | int | float | bool) for v in value.values()):
        return text(", ".join(f"{k}={_extra(v)}" for k, v in value.items()))
    return None


def distribution_chart(raw: Any, anchor: str = "chart") -> tuple[Chart | None, str]:
    """The chart of a feature's `distribution` (None with a note when it is absent or not understood)."""
    data = _mapping(raw)
    kind = data.get("kind")
    if not data:
        return None, "no distribution in this report"
    reference = [number(v) for v in _sequence(data.get("reference"))]
    current = [number(v) for v in _sequence(data.get("current"))]
    if None in reference or None in current or len(reference) != len(current) or not reference:
        return None, "distribution not readable"
    ref = [float(v or 0.0) for v in reference]
    cur = [float(v or 0.0) for v in current]
    if kind == "bins":
        edges = [number(e) for e in _sequence(data.get("edges"))]
        if len(edges) != len(ref) - 1:
            return None, "distribution not readable"
        shown = [fmt_edge(e) for e in edges]
        labels = bin_labels([e if e is not None else math.nan for e in edges], shown)
        svg = vertical_bars(labels, ref, cur, bin_axis([e or 0.0 for e in edges], shown))
        rows = tuple(ShareRow(label, fmt_pct(r), fmt_pct(c)) for label, r, c in zip(labels, ref, cur, strict=True))
        caption = f"{len(labels)} PSI bins: share of reference and current values per bin"
        return Chart(bars_svg(svg, f"{anchor}-cap"), share_table("bin", rows), rows, caption, len(svg.bars)), ""
    if kind == "categories":
        names = [text(n, 120) for n in _sequence(data.get("categories"))]
        new = [bool(v) for v in _sequence(data.get("new"))]
        if len(names) != len(ref) or len(new) != len(ref):
            return None, "distribution not readable"
        other = _mapping(data.get("other"))
        count = int(number(other.get("categories")) or 0)
        if count > 0:
            fresh = int(number(other.get("new")) or 0)
            names.append(f"other ({count} categories{f', {fresh} new' if fresh else ''})")
            ref.append(number(other.get("reference")) or 0.0)
            cur.append(number(other.get("current")) or 0.0)
            new.append(False)
        svg = horizontal_bars(names, ref, cur, new)
        rows = tuple(ShareRow(n, fmt_pct(r), fmt_pct(c), f) for n, r, c, f in zip(names, ref, cur, new, strict=True))
        caption = f"{len(names)} categories: share of reference and current values"
        return Chart(bars_svg(svg, f"{anchor}-cap"), share_table("category", rows), rows, caption, len(svg.bars)), ""
    return None, f"no chart for a distribution of kind {text(kind, 40)!r}"


def bin_labels(edges: Sequence[float], shown: Sequence[str]) -> list[str]:
    """A label per PSI bin: `< a`, `a to b`, `>= z`; a point-mass bin [a, next float after a) is `= a`."""
    if not shown:
        return ["all values"]
    labels = [f"< {shown[0]}"]
    for k in range(1, len(shown)):
        low, high = edges[k - 1], edges[k]
        labels.append(f"= {shown[k - 1]}" if high == math.nextafter(low, math.inf) else f"{shown[k - 1]} to {shown[k]}")
    labels.append(f">= {shown[-1]}")
    return labels


def baseline_text(raw: Any) -> str:
    """What the reference was, in one line: `file PATH (N rows)` or `SOURCE from START to END (N rows)`, with the
    calibration when there was one; "" when the report does not say."""
    data = _mapping(raw)
    if not data:
        return ""
    rows = f" ({fmt_int(data.get('rows'))} rows)" if number(data.get("rows")) is not None else ""
    if data.get("kind") == "window":
        what = f"{text(data.get('source'), 120)} from {fmt_time(data.get('start'))} to {fmt_time(data.get('end'))}"
    elif data.get("kind") == "file":
        what = f"file {text(PurePath(str(data.get('path'))).name, 200)}"  # the name: the folder is the server's
    else:
        what = text(data.get("kind"), 60)
    calibration = _mapping(data.get("calibration"))
    windows = number(calibration.get("windows"))
    calibrated = f"; thresholds calibrated on {int(windows)} windows" if windows is not None else ""
    return what + rows + calibrated


def share_table(first: str, rows: Sequence[ShareRow]) -> Markup:
    """The numbers of a distribution chart as a table (its text alternative)."""
    body = "".join(
        f'<tr><th scope="row">{escape(r.label)}{NEW_TAG if r.new else ""}</th>'
        f'<td class="n">{escape(r.reference)}</td><td class="n">{escape(r.current)}</td></tr>'
        for r in rows
    )
    return Markup(
        f'<table class="shares"><thead><tr><th scope="col">{escape(first)}</th><th scope="col" class="n">reference'
        f'</th><th scope="col" class="n">current</th></tr></thead><tbody>{body}</tbody></table>'
    )


NEW_TAG = ' <span class="newcat">new</span>'


def feature_history(name: str, runs: Runs) -> HistoryView | None:
    """PSI and KS of feature `name` over the runs (oldest first) that judged it; None if none did."""
    points = [(at, stats) for at, features in runs if (stats := _mapping(features.get(name)))]
    if not points:
        return None
    psi = [number(s.get("psi")) for _, s in points]
    ks = [number(s.get("ks_statistic")) for _, s in points]
    body = "".join(
        f'<tr><td>{at}</td><td class="n">{fmt_num(s.get("psi"))}</td>'
        f'<td class="n">{fmt_num(s.get("ks_statistic"))}</td><td>{severity_of(s.get("severity"))}</td></tr>'
        for at, s in reversed(points)
    )
    table = Markup(
        '<table class="history"><thead><tr><th scope="col">run started</th><th scope="col" class="n">PSI</th>'
        f'<th scope="col" class="n">KS D</th><th scope="col">severity</th></tr></thead><tbody>{body}</tbody></table>'
    )
    psi_line, ks_line = line(psi), line(ks)
    return HistoryView(
        line_svg(psi_line, "PSI") if psi_line else None,
        line_svg(ks_line, "KS D") if ks_line else None,
        _trend("PSI", psi),
        _trend("KS D", ks),
        table,
        len(points),
    )


def _trend(label: str, values: Sequence[float | None]) -> str:
    """`PSI 0.412 now, scale 0 to 0.500`: a line chart's caption."""
    known = [v for v in values if v is not None]
    if not known:
        return f"{label}: no values"
    return f"{label} {fmt_num(known[-1])} now, scale 0 to {fmt_num(max(known))}"


@dataclass(frozen=True)
class ReportView:
    """A monitor's report page (also the standalone report and a notebook's view)."""

    monitor: str
    status: str
    severity: str
    drift_share: str
    reference_rows: str
    current_rows: str
    window: str
    reason: str
    features: tuple[FeatureView, ...]
    counts: tuple[tuple[str, int], ...]  # severity -> number of features
    runs: int
    extras: tuple[tuple[str, str], ...] = ()
    baseline: str = ""


#: Report fields shown in the page's head (the others, when scalar, are listed as they are).
KNOWN_REPORT_FIELDS = {
    "monitor",
    "window",
    "rows",
    "status",
    "reason",
    "severity",
    "drift_share",
    "features",
    "baseline",
}


def report_view(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> ReportView:
    """The view of one report dict (`Report.to_dict()` / the report API / a stored run)."""
    window = _mapping(report.get("window"))
    rows = _mapping(report.get("rows"))
    features = feature_views(report, history)
    counts = tuple(
        (label, n)
        for label in ("critical", "warning", "ok")
        if (n := sum(1 for f in features if f.status == "ok" and f.severity == label))
    )
    skipped = sum(1 for f in features if f.status != "ok")
    status = text(report.get("status"), 40)
    return ReportView(
        monitor=text(report.get("monitor") or "compare()", 120),
        status=status,
        severity=severity_of(report.get("severity")) if status == "ok" else "unknown",
        drift_share=fmt_pct(report.get("drift_share")),
        reference_rows=fmt_int(rows.get("reference")),
        current_rows=fmt_int(rows.get("current")),
        window=f"{fmt_time(window.get('start'))} to {fmt_time(window.get('end'))}" if window.get("end") else "-",
        reason=text(report.get("reason")) if report.get("reason") else "",
        features=tuple(features),
        counts=counts + ((("not judged", skipped),) if skipped else ()),
        runs=sum(1 for run in history if isinstance(run, Mapping) and _mapping(run.get("features"))),
        baseline=baseline_text(report.get("baseline")),
        extras=tuple(
            (text(k, 60), shown)
            for k, v in report.items()
            if k not in KNOWN_REPORT_FIELDS and (shown := _extra(v)) is not None
        ),
    )


# --------------------------------------------------------------------------------------------------------------
# Overview and models
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StripCell:
    state: str  # ok | warning | critical | insufficient_data | error
    title: str


@dataclass(frozen=True)
class MonitorRow:
    name: str
    link: str
    severity: str
    outcome: str
    drift_share: str
    rows: str
    last_run: str
    error: str
    strip: tuple[StripCell, ...]
    strip_label: str


def strip(history: Sequence[Mapping[str, Any]]) -> tuple[tuple[StripCell, ...], str]:
    """The severity strip of recent runs (oldest first) and its text alternative."""
    cells = []
    for run in history:
        outcome = text(run.get("outcome"), 40)
        state = severity_of(run.get("severity")) if outcome == "ok" else outcome
        cells.append(StripCell(state, f"{fmt_time(run.get('started_at'))}: {state.replace('_', ' ')}"))
    tally: dict[str, int] = {}
    for cell in cells:
        tally[cell.state] = tally.get(cell.state, 0) + 1
    summary = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in tally.items())
    return tuple(cells), f"last {len(cells)} runs, oldest first: {summary}" if cells else "no runs yet"


def monitor_row(summary: Mapping[str, Any], history: Sequence[Mapping[str, Any]], prefix: str = ".") -> MonitorRow:
    """One monitor on the overview, from its API summary (`monitor_summary`) and its recent runs."""
    name = text(summary.get("monitor"), 120)
    cells, label = strip(history)
    outcome = text(summary.get("outcome"), 40)
    return MonitorRow(
        name=name,
        link=href(prefix, "monitors", name),
        severity=severity_of(summary.get("severity")) if summary.get("severity") else "unknown",
        outcome=outcome.replace("_", " "),
        drift_share=fmt_pct(summary.get("drift_share")),
        rows=fmt_int(summary.get("rows")),
        last_run=fmt_time(summary.get("last_run")) if summary.get("last_run") else "never",
        error=text(summary.get("error")) if summary.get("error") else "",
        strip=cells,
        strip_label=label,
    )


@dataclass(frozen=True)
class ModelRow:
    name: str
    link: str
    active: str
    primary: str
    on_fallback: bool
    pinned: bool
    since: str
    reason: str


def model_row(view: Mapping[str, Any], prefix: str = ".") -> ModelRow:
    """One model on the overview, from its API view."""
    name = text(view.get("model"), 120)
    active, primary = text(view.get("active"), 120), text(view.get("primary"), 120)
    return ModelRow(
        name=name,
        link=href(prefix, "models", name),
        active=active,
        primary=primary,
        on_fallback=active != primary,
        pinned=view.get("pinned") is True,
        since=fmt_time(view.get("since")),
        reason=text(view.get("reason")),
    )


@dataclass(frozen=True)
class AlertRow:
    alertname: str
    monitor: str
    subject: str
    severity: str
    since: str


def alert_rows(states: Sequence[Mapping[str, Any]]) -> tuple[AlertRow, ...]:
    """The firing alerts, worst first."""
    firing = [s for s in states if s.get("phase") == "firing"]
    firing.sort(key=lambda s: (-SEVERITY_RANK.get(str(s.get("severity")), 0), str(s.get("monitor"))))
    return tuple(
        AlertRow(
            text(s.get("alertname"), 60),
            text(s.get("monitor"), 120),
            text(s.get("subject"), 120),
            severity_of(s.get("severity")),
            fmt_time(s.get("fired_at") or s.get("started_at")),
        )
        for s in firing
    )


@dataclass(frozen=True)
class VersionRow:
    name: str
    role: str
    active: bool


@dataclass(frozen=True)
class AuditRow:
    at: str
    actor: str
    kind: str
    change: str
    reason: str
    flags: str
    details: str


@dataclass(frozen=True)
class ModelView:
    name: str
    active: str
    primary: str
    versions: tuple[VersionRow, ...]
    pinned: bool
    since: str
    reason: str
    actor: str
    dry_run: bool
    counts: str
    actuation: tuple[tuple[str, str], ...]
    audit: tuple[AuditRow, ...] = field(default_factory=tuple)


def model_view(view: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> ModelView:
    """A model's page: its versions (the active one marked), why it serves it, and the audit trail (newest first)."""
    primary = text(view.get("primary"), 120)
    active = text(view.get("active"), 120)
    fallbacks = [text(f, 120) for f in _sequence(view.get("fallbacks"))]
    versions = (VersionRow(primary, "primary", active == primary),) + tuple(
        VersionRow(f, f"fallback {i}", active == f) for i, f in enumerate(fallbacks, 1)
    )
    audit = tuple(
        AuditRow(
            at=fmt_time(e.get("at")),
            actor=text(e.get("actor"), 40),
            kind=text(e.get("kind"), 40).replace("_", " "),
            change=f"{text(e.get('from'), 120)} -> {text(e.get('to'), 120)}",
            reason=text(e.get("reason")),
            flags=", ".join(
                flag for flag, on in (("dry run", e.get("dry_run") is True), ("pinned", e.get("pinned") is True)) if on
            ),
            details=_details(e.get("details")),
        )
        for e in history
        if isinstance(e, Mapping)
    )
    return ModelView(
        name=text(view.get("model"), 120),
        active=active,
        primary=primary,
        versions=versions,
        pinned=view.get("pinned") is True,
        since=fmt_time(view.get("since")),
        reason=text(view.get("reason")),
        actor=text(view.get("actor"), 40),
        dry_run=view.get("dry_run") is True,
        counts=(
            f"{fmt_int(view.get('breaching_runs'))} breaching / {fmt_int(view.get('clean_runs'))} clean runs in a row"
        ),
        actuation=tuple((text(k, 120), text(v, 40)) for k, v in _mapping(view.get("actuation")).items()),
        audit=audit,
    )


def _details(raw: Any) -> str:
    """The trigger of an audit entry in one line: drift share and the breaching features."""
    details = _mapping(raw)
    data = _mapping(details.get("statistics")) or details
    parts = [f"monitor {text(details.get('monitor'), 120)}"] if details.get("monitor") else []
    if number(data.get("drift_share")) is not None:
        parts.append(f"drift share {fmt_pct(data.get('drift_share'))}")
    for name, feature in _mapping(data.get("features")).items():
        breaches = _mapping(_mapping(feature).get("breaches"))
        what = " ".join(f"{k} {v}" for k, v in breaches.items())
        parts.append(f"{name}: {severity_of(_mapping(feature).get('severity'))}" + (f" ({what})" if what else ""))
    return text("; ".join(parts), 400) if parts else ""
