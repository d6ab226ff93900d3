"""The daemon's HTTP API: metrics, health and readiness probes, monitor statuses and reports, config reload.

Endpoints are plain functions, so Starlette runs them in its thread pool and blocking work (a reload, a
scrape) never stalls the event loop; the few async ones (they read a request body) hand their work to that pool
with `run_in_threadpool`. Every body is JSON except /metrics; error texts pass `redact` first.

Input rules shared by every endpoint: request bodies over 1 MiB are refused with 413 (`BodyLimit`), a body is a
JSON object with known keys (`parse_json_object`), and fields are typed (`text_field`, `bool_field`); a key set
to null is the same as a key left out. Anything else is a 4xx with a one-line JSON error, never a 500.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from collections.abc import Collection, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwatch.core.status import MonitorStatus
from driftwatch.errors import ConfigError

_URL_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^/\s@]*@")

MAX_BODY_BYTES = 1024 * 1024
"""The largest request body any endpoint accepts (413 above it)."""
MAX_TEXT_BYTES = 1024
"""The longest free-text field (a comment, a reason), in UTF-8 bytes."""


class DaemonControl(Protocol):
    """What the HTTP API needs from the running daemon."""

    registry: CollectorRegistry

    def statuses(self) -> Mapping[str, MonitorStatus]:
        """The latest status of every monitor, by name."""
        ...

    def problems(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        ...

    def reload(self) -> None:
        """Reload the configuration; raises ConfigError when the new one is invalid."""
        ...

    def tokens(self) -> tuple[str | None, str | None]:
        """The API token (mutating endpoints) and the read token (read endpoints), each None when unset."""
        ...


def authorize(request: Request, control: DaemonControl, *, mutating: bool) -> None:
    """Raise 401/403 unless the request carries the bearer token this endpoint needs.

    Mutating endpoints need `server.api_token` (and are refused while it is unset); read endpoints need
    `server.read_token` or the API token when a read token is set, and are open otherwise.
    """
    api_token, read_token = control.tokens()
    accepted = [api_token] if mutating else [read_token, api_token]
    if not mutating and read_token is None:
        return
    if mutating and api_token is None:
        raise HTTPException(403, detail="mutating API calls are disabled: set server.api_token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(t and hmac.compare_digest(given.encode(), t.encode()) for t in accepted):
        raise HTTPException(401, detail="missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def create_app(control: DaemonControl, extra_routes: Sequence[Route] = ()) -> Starlette:
    """The Starlette app serving `control`, plus `extra_routes` (alerts, models)."""

    def metrics(request: Request) -> Response:
        return Response(generate_latest(control.registry), media_type=CONTENT_TYPE_LATEST)

    def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> JSONResponse:
        problems = [redact(problem) for problem in control.problems()]
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    def monitors(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"monitors": [monitor_summary(s) for s in control.statuses().values()]})

    def monitor(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse(monitor_summary(_status(control, request.path_params["name"])))

    def report(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        name = request.path_params["name"]
        status = _status(control, name)
        if status.report is None:
            message = f"monitor {name!r} has no report yet (last outcome: {status.outcome})"
            raise HTTPException(404, detail=message)
        return JSONResponse({**status.report.to_dict(), "monitor": name})

    def reload(request: Request) -> JSONResponse:
        if control.tokens()[0] is not None:  # like Prometheus's /-/reload: open unless an API token is set
            authorize(request, control, mutating=True)
        try:
            control.reload()
        except ConfigError as err:
            return JSONResponse({"error": redact(_one_line(str(err)))}, status_code=400)
        return JSONResponse({"status": "reloaded"})

    routes = [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/api/v1/monitors", monitors, methods=["GET"]),
        Route("/api/v1/monitors/{name}", monitor, methods=["GET"]),
        Route("/api/v1/monitors/{name}/report", report, methods=["GET"]),
        Route("/-/reload", reload, methods=["POST"]),
        *extra_routes,
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimit)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )


class BodyLimit:
    """ASGI middleware: 413 for a request body over `limit` bytes, by its Content-Length before the app runs, and
    while the app reads it (a chunked body has no Content-Length)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit
        self.message = f"request body over the limit of {limit} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "").strip()
        if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > self.limit):
            await JSONResponse({"error": self.message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # raised inside the endpoint: the app's HTTPException handler answers
                    raise HTTPException(413, detail=self.message)
            return message

        await self.app(scope, limited_receive, send)


def parse_json_object(raw: bytes, allowed: Collection[str], *, empty_ok: bool = False) -> dict[str, Any]:
    """`raw` as a JSON object with only `allowed` keys ({} for an empty body if `empty_ok`); ValueError (one line)
    for invalid or too deeply nested JSON, another JSON type, or an unknown key."""
    if not raw.strip():
        if empty_ok:
            return {}
        raise ValueError("expected a JSON object, got an empty body")
    try:
        body = json.loads(raw)
    except RecursionError as err:
        raise ValueError("invalid JSON: nested too deeply") from err
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, an integer of over 4300 digits
        raise ValueError(f"invalid JSON: {_one_line(str(err))[:200]}") from err
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {_json_type(body)}")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key {shown(unknown[0])} (allowed: {', '.join(sorted(allowed))})")
    return body


def text_field(
    body: Mapping[str, Any], key: str, default: str | None = None, *, max_bytes: int = MAX_TEXT_BYTES
) -> str | None:
    """The string at `key` (`default` when absent or null); ValueError for another type, more than `max_bytes`
    of UTF-8, or text that is not valid Unicode (a lone surrogate from a `\\ud800` escape)."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValueError(f"{key!r} must be a string, got {_json_type(value)}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise ValueError(f"{key!r} is not valid Unicode text") from err
    if size > max_bytes:
        raise ValueError(f"{key!r} is longer than {max_bytes} bytes")
    return value


def bool_field(body: Mapping[str, Any], key: str, default: bool) -> bool:
    """The boolean at `key` (`default` when absent or null); ValueError for anything but true/false."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} must be true or false, got {_json_type(value)}")
    return value


def monitor_summary(status: MonitorStatus) -> dict[str, Any]:
    """JSON-ready summary of one monitor (an item of GET /api/v1/monitors)."""
    report = status.report
    return {
        "monitor": status.monitor,
        "schedule": status.schedule,
        "outcome": status.outcome,
        "last_run": status.last_run.isoformat() if status.last_run else None,
        "last_success": status.last_success.isoformat() if status.last_success else None,
        "severity": report.severity.label if report else None,
        "drift_share": _finite(report.drift_share) if report else None,
        "rows": report.current_rows if report else None,
        "error": redact(status.error) if status.error is not None else None,
        "runs_total": status.runs_total,
        "failures_total": status.failures_total,
        "health": status.health.severity.label if status.health is not None else None,
    }


def redact(text: str) -> str:
    """`text` with passwords in URLs (`scheme://user:secret@host`) replaced by `***`."""
    return _URL_PASSWORD.sub(r"\g<prefix>***@", text)


def shown(text: str, limit: int = 64) -> str:
    """`text` quoted for an error message, cut to `limit` characters."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}..."


def _status(control: DaemonControl, name: str) -> MonitorStatus:
    status = control.statuses().get(name)
    if status is None:
        raise HTTPException(404, detail=f"unknown monitor {shown(name)}")
    return status


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (`a string`, `an array` ...), never the value (it may be huge)."""
    names = {
        bool: "a boolean",
        str: "a string",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


async def _http_error(request: Request, exc: Exception) -> Response:
    """JSON body for HTTP errors: our own detail, or the lower-case reason phrase (`not found`)."""
    assert isinstance(exc, HTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    message = phrase.lower() if exc.detail == phrase else exc.detail
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    """JSON 500 that reveals nothing about the failure (the server logs it)."""
    return JSONResponse({"error": "internal server error"}, status_code=500)
