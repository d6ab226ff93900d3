"""The web view's routes: `/` (overview), `/monitors/{name}` and `/models/{name}`, GET only, HTML.

Pages read the daemon's immutable snapshots (monitor statuses, model views, alert states) and the state store's
run history, and hand them to `driftwatch.outputs.web` to render. Without `server.ui_token` (or, when that is
unset, `server.read_token`) the pages are open; with one, a browser logs in with HTTP Basic (any user name, the
token as password) or sends `Authorization: Bearer TOKEN`. Every page carries a Content-Security-Policy that
allows inline CSS and nothing else: no script runs and nothing is fetched, whatever a name or value holds.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from html import escape
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from driftwatch.config import Config
from driftwatch.core.status import MonitorStatus
from driftwatch.outputs.web import CSP, model_page, monitor_page, overview_page
from driftwatch.runtime.alerts import Alerting
from driftwatch.runtime.http import monitor_summary, shown
from driftwatch.runtime.models import Models
from driftwatch.runtime.store import Store

log = logging.getLogger("driftwatch.web")

#: Runs in a monitor's severity strip on the overview, and in a feature's PSI/KS history on its page.
STRIP_RUNS = 24
HISTORY_RUNS = 30
#: Entries of a model's audit trail shown on its page.
AUDIT_ENTRIES = 50
#: Accepted `?refresh=N` (seconds between reloads of the page).
REFRESH_RANGE = (5, 3600)

HEADERS = {
    "content-security-policy": CSP + "; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class WebData(Protocol):
    """What the pages read from the running daemon."""

    config: Config
    store: Store
    models: Models
    alerting: Alerting

    def statuses(self) -> Mapping[str, MonitorStatus]: ...


def page_tokens(config: Config) -> list[str]:
    """The tokens that open the pages: none (open) unless `ui_token` or else `read_token` is set; the API token
    is accepted too then."""
    server = config.server
    guard = server.ui_token or server.read_token
    if guard is None:
        return []
    return [t.get_secret_value() for t in (guard, server.api_token) if t is not None]


def allowed(request: Request, tokens: list[str]) -> bool:
    """True when no token is needed or the request carries one (Bearer, or Basic with it as the password)."""
    if not tokens:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    given = value.strip()
    if scheme.lower() == "basic":
        try:
            given = base64.b64decode(given, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return any(hmac.compare_digest(given.encode(), t.encode()) for t in tokens)


def html(body: str, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={**HEADERS, **(headers or {})})


def refresh_of(request: Request) -> int | None:
    """`?refresh=N` when N is a whole number of seconds in `REFRESH_RANGE`, else None (ignored)."""
    raw = request.query_params.get("refresh", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5:
        return None
    seconds = int(raw)
    return seconds if REFRESH_RANGE[0] <= seconds <= REFRESH_RANGE[1] else None


def _not_found(what: str) -> HTMLResponse:
    return html(f"<!doctype html><title>not found</title><p>{escape(what)}</p><p><a href='/'>Overview</a></p>", 404)


def web_routes(daemon: WebData) -> list[Route]:
    """GET `/`, `/monitors/{name}`, `/models/{name}`."""

    def guarded(request: Request) -> Response | None:
        if allowed(request, page_tokens(daemon.config)):
            return None
        return Response(
            "driftwatch: this page needs server.ui_token (as the password, any user name)\n",
            status_code=401,
            media_type="text/plain",
            headers={"www-authenticate": 'Basic realm="driftwatch", charset="UTF-8"', **HEADERS},
        )

    def history(name: str, limit: int, *, features: bool) -> list[dict[str, Any]]:
        try:
            return daemon.store.run_history(name, limit, features=features)
        except Exception as err:  # sqlite3.Error of a locked or closed store: the page without history
            log.warning("web view: no run history of %s: %s", name, err)
            return []

    def overview(request: Request) -> Response:
        if (denied := guarded(request)) is not None:
            return denied
        statuses = daemon.statuses()
        monitors = [
            (monitor_summary(status), history(name, STRIP_RUNS, features=False)) for name, status in statuses.items()
        ]
        models = [daemon.models.view(name) for name in daemon.models.names()]
        alerts = [state.to_dict() for state in daemon.alerting.states().values()]
        return html(overview_page(monitors, models, alerts, refresh=refresh_of(request)))

    def monitor(request: Request) -> Response:
        if (denied := guarded(request)) is not None:
            return denied
        name = request.path_params["name"]
        status = daemon.statuses().get(name)
        if status is None:
            return _not_found(f"unknown monitor {shown(name)}")
        report = status.report.to_dict() if status.report is not None else last_stored_report(daemon.store, name)
        monitor_config = daemon.config.monitors.get(name)
        model = monitor_config.model if monitor_config is not None else None
        page = monitor_page(
            monitor_summary(status),
            report,
            history(name, HISTORY_RUNS, features=True),
            model=model if model in daemon.config.models else None,
            refresh=refresh_of(request),
        )
        return html(page)

    def model(request: Request) -> Response:
        if (denied := guarded(request)) is not None:
            return denied
        name = request.path_params["name"]
        if name not in daemon.models.names():
            return _not_found(f"unknown model {shown(name)}")
        try:
            view, audit = daemon.models.view(name), daemon.models.history(name, AUDIT_ENTRIES)
        except KeyError:  # removed by a reload meanwhile
            return _not_found(f"unknown model {shown(name)}")
        return html(model_page(view, audit, refresh=refresh_of(request)))

    return [
        Route("/", overview, methods=["GET"]),
        Route("/monitors/{name}", monitor, methods=["GET"]),
        Route("/models/{name}", model, methods=["GET"]),
    ]


def last_stored_report(store: Store, name: str, look_back: int = 5) -> dict[str, Any] | None:
    """The newest stored report among the last `look_back` runs of `name` (after a restart, before the first
    run), or None."""
    try:
        runs = store.runs(name, look_back)
    except Exception as err:  # sqlite3.Error, StoreError: the page says there is no report
        log.warning("web view: cannot read the last runs of %s: %s", name, err)
        return None
    return next((run.report for run in runs if run.report is not None), None)
