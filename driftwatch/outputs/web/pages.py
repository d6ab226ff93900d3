"""The web view's pages, rendered with Jinja2 (autoescaping on: every name and value from config or data is
text, never markup). Each page is one HTML document with its CSS and SVG charts inline: no script, no request
for anything else, so a page also works saved to a file, and the monitor page is the standalone report.

Pages take the JSON the API serves (`Report.to_dict()`, monitor summaries, run histories, model views, audit
entries, alert states); `driftwatch.outputs.web.views` turns them into what the templates show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from driftwatch.outputs.web.views import (
    alert_rows,
    fmt_time,
    href,
    model_row,
    model_view,
    monitor_row,
    report_view,
    text,
)

#: The pages' Content-Security-Policy (also sent as a header by the daemon): inline CSS only, nothing fetched.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


@cache
def environment() -> Environment:
    """The template environment (templates compiled once per process)."""
    return Environment(
        loader=PackageLoader("driftwatch.outputs.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def document(title: str, body: str, refresh: int | None = None) -> str:
    """A whole HTML page around `body` (a rendered fragment)."""
    return _render("document.html", title=title, body=Markup(body), csp=CSP, refresh=refresh)


def report_html(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> str:
    """A report as one self-contained HTML fragment (its CSS inline): what `Report._repr_html_` returns and the
    body of `driftwatch report`'s file. `history`: recent runs (`Store.run_history`), oldest first."""
    return _render("report.html", r=report_view(report, history), status=None, nav=None)


def report_document(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> str:
    """`report_html` as a whole HTML file (`driftwatch report -o FILE`)."""
    title = f"driftwatch report: {text(report.get('monitor') or 'compare()', 120)}"
    return document(title, report_html(report, history))


@dataclass(frozen=True)
class RunStatus:
    """The last run of a monitor, shown above its report on the monitor page."""

    last_run: str
    outcome: str
    error: str
    model: str | None
    model_link: str


def monitor_page(
    summary: Mapping[str, Any],
    report: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
    *,
    model: str | None = None,
    refresh: int | None = None,
) -> str:
    """`/monitors/{name}`: the latest report with its features worst first, charts and history."""
    name = text(summary.get("monitor"), 120)
    status = RunStatus(
        last_run=fmt_time(summary.get("last_run")) if summary.get("last_run") else "never",
        outcome=text(summary.get("outcome"), 40).replace("_", " "),
        error=text(summary.get("error")) if summary.get("error") else "",
        model=model,
        model_link=href("..", "models", model) if model else "",
    )
    if report is None:
        body = _render("monitor_empty.html", name=name, status=status, nav="../")
    else:
        body = _render("report.html", r=report_view({**report, "monitor": name}, history), status=status, nav="../")
    return document(f"{name}: driftwatch", body, refresh)


def overview_page(
    monitors: Sequence[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]],
    models: Sequence[Mapping[str, Any]],
    alerts: Sequence[Mapping[str, Any]],
    *,
    refresh: int | None = None,
) -> str:
    """`/`: every monitor (summary and recent runs), every model (its API view), the firing alerts."""
    body = _render(
        "overview.html",
        monitors=[monitor_row(summary, history) for summary, history in monitors],
        models=[model_row(view) for view in models],
        alerts=alert_rows(alerts),
        nav=None,
    )
    return document("driftwatch", body, refresh)


def model_page(view: Mapping[str, Any], history: Sequence[Mapping[str, Any]], *, refresh: int | None = None) -> str:
    """`/models/{name}`: versions, the active one and why, the audit trail (newest first)."""
    model = model_view(view, history)
    return document(f"model {model.name}: driftwatch", _render("model.html", m=model, nav="../"), refresh)
