"""HTTP routes of alerting: active alerts, and silences (matchers on monitor/feature/alertname, until a time)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.config import format_duration, parse_duration
from driftwatch.runtime.alerts import Alerting
from driftwatch.runtime.http import DaemonControl, authorize, parse_json_object, shown, text_field
from driftwatch.runtime.store import Silence, Store

MATCHERS = ("monitor", "feature", "alertname")
SILENCE_KEYS = ("matchers", "until", "duration", "comment")
MAX_SILENCE = timedelta(days=365)
"""The longest silence the API creates."""
_DIGITS = re.compile(r"[0-9]{1,19}")


def silence_dict(silence: Silence) -> dict[str, Any]:
    """JSON of one silence."""
    return {
        "id": silence.id,
        "matchers": {name: getattr(silence, name) for name in MATCHERS if getattr(silence, name) is not None},
        "until": silence.until.isoformat(),
        "comment": silence.comment,
        "created_at": silence.created_at.isoformat(),
    }


def parse_silence(body: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Keyword arguments of `Store.add_silence` from a parsed request body; ValueError with one line if invalid.

    A silence lasts at most `MAX_SILENCE` (1 year), whether given as `until` or as `duration`.
    """
    matchers = body.get("matchers")
    matchers = {} if matchers is None else matchers
    if not isinstance(matchers, dict) or set(matchers) - set(MATCHERS):
        raise ValueError(f"matchers must be an object with at least one of {', '.join(MATCHERS)}")
    values = {name: text_field(matchers, name) for name in MATCHERS}
    if all(value is None for value in values.values()):
        raise ValueError(f"matchers must be an object with at least one of {', '.join(MATCHERS)}")
    until_text, duration = text_field(body, "until", max_bytes=64), text_field(body, "duration", max_bytes=64)
    if (until_text is None) == (duration is None):
        raise ValueError("set exactly one of 'until' (ISO time) or 'duration' (e.g. 2h)")
    too_long = f"a silence lasts at most {format_duration(MAX_SILENCE)} (1 year)"
    if until_text is not None:
        try:
            until = datetime.fromisoformat(until_text)
            until = until.astimezone(UTC) if until.tzinfo else until.replace(tzinfo=UTC)
        except (ValueError, OverflowError) as err:
            raise ValueError(f"until {until_text!r} is not an ISO-8601 time in range") from err
        if until - now > MAX_SILENCE:
            raise ValueError(f"until {until.isoformat()} is too far ahead: {too_long}")
    else:
        try:  # ValueError over the limit: "duration must be at most 365d, got '9999999d'"
            until = now + parse_duration(str(duration), at_most=MAX_SILENCE)
        except OverflowError as err:  # not raised by parse_duration today; the API answers 400 whatever it does
            raise ValueError(f"duration {duration!r} is too long: {too_long}") from err
    if until <= now:
        raise ValueError(f"until ({until.isoformat()}) is not in the future")
    return {
        "until": until,
        "comment": text_field(body, "comment", ""),
        **{name: value for name, value in values.items() if value is not None},
    }


def parse_silence_id(text: str) -> int | None:
    """The silence id in a URL path, or None if `text` cannot be one (ids are SQLite integers: 1 to 2**63 - 1)."""
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number < 2**63 else None


def alert_routes(control: DaemonControl, alerting: Alerting, store: Store) -> list[Route]:
    """GET /api/v1/alerts, GET/POST /api/v1/silences, DELETE /api/v1/silences/{id}."""

    def alerts(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        states = sorted(alerting.states().values(), key=lambda s: s.key)
        return JSONResponse({"alerts": [state.to_dict() for state in states]})

    def silences(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"silences": [silence_dict(s) for s in store.active_silences(datetime.now(UTC))]})

    async def add_silence(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        return await run_in_threadpool(store_silence, await request.body())

    def store_silence(raw: bytes) -> JSONResponse:
        now = datetime.now(UTC)
        try:
            fields = parse_silence(parse_json_object(raw, SILENCE_KEYS), now)
        except ValueError as err:
            raise HTTPException(400, detail=f"invalid silence: {err}") from err
        silence_id = store.add_silence(now=now, **fields)
        created = next(s for s in store.active_silences(now) if s.id == silence_id)
        return JSONResponse(silence_dict(created), status_code=201)

    def delete_silence(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        silence_id = parse_silence_id(request.path_params["id"])
        if silence_id is None or not store.delete_silence(silence_id):
            raise HTTPException(404, detail=f"no silence {shown(request.path_params['id'])}")
        return JSONResponse({"status": "deleted"})

    return [
        Route("/api/v1/alerts", alerts, methods=["GET"]),
        Route("/api/v1/silences", silences, methods=["GET"]),
        Route("/api/v1/silences", add_silence, methods=["POST"]),
        Route("/api/v1/silences/{id}", delete_silence, methods=["DELETE"]),
    ]
