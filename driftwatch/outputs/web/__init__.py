"""The web view and HTML reports: server-rendered pages with inline CSS and SVG charts (see `pages`)."""

from driftwatch.outputs.web.pages import (
    CSP,
    model_page,
    monitor_page,
    overview_page,
    report_document,
    report_html,
)

__all__ = ["CSP", "model_page", "monitor_page", "overview_page", "report_document", "report_html"]
