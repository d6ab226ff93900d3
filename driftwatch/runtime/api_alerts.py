"""HTTP routes of alerting: active alerts, and silences (matchers on monitor/feature/alertname, until a time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.config import parse_duration
from driftwatch.runtime.alerts import Alerting
from driftwatch.runtime.http import DaemonControl, authorize
from driftwatch.runtime.store import Silence, Store

MATCHERS = ("monitor", "feature", "alertname")


def silence_dict(silence: Silence) -> dict[str, Any]:
    """JSON of one silence."""
    return {
        "id": silence.id,
        "matchers": {name: getattr(silence, name) for name in MATCHERS if getattr(silence, name) is not None},
        "until": silence.until.isoformat(),
        "comment": silence.comment,
        "created_at": silence.created_at.isoformat(),
    }


def parse_silence(body: Any, now: datetime) -> dict[str, Any]:
    """Keyword arguments of `Store.add_silence` from a request body; ValueError with one line if invalid."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = set(body) - {"matchers", "until", "duration", "comment"}
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
    matchers = body.get("matchers") or {}
    if not isinstance(matchers, dict) or set(matchers) - set(MATCHERS) or not matchers:
        raise ValueError(f"matchers must be an object with at least one of {', '.join(MATCHERS)}")
    if ("until" in body) == ("duration" in body):
        raise ValueError("set exactly one of 'until' (ISO time) or 'duration' (e.g. 2h)")
    if "until" in body:
        until = datetime.fromisoformat(str(body["until"]))
        until = until if until.tzinfo else until.replace(tzinfo=UTC)
    else:
        until = now + parse_duration(str(body["duration"]))
    if until <= now:
        raise ValueError(f"until ({until.isoformat()}) is not in the future")
    return {"until": until, "comment": str(body.get("comment", "")),
            **{name: str(matchers[name]) for name in MATCHERS if matchers.get(name) is not None}}


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
        now = datetime.now(UTC)
        try:
            fields = parse_silence(json.loads(await request.body() or b"null"), now)
        except (ValueError, TypeError) as err:
            raise HTTPException(400, detail=f"invalid silence: {err}") from err
        silence_id = store.add_silence(now=now, **fields)
        created = next(s for s in store.active_silences(now) if s.id == silence_id)
        return JSONResponse(silence_dict(created), status_code=201)

    def delete_silence(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        if not store.delete_silence(int(request.path_params["id"])):
            raise HTTPException(404, detail=f"no silence {request.path_params['id']}")
        return JSONResponse({"status": "deleted"})

    return [
        Route("/api/v1/alerts", alerts, methods=["GET"]),
        Route("/api/v1/silences", silences, methods=["GET"]),
        Route("/api/v1/silences", add_silence, methods=["POST"]),
        Route("/api/v1/silences/{id:int}", delete_silence, methods=["DELETE"]),
    ]
