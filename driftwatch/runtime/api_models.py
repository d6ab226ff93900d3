"""HTTP routes of fallback switching: model routes for serving layers, history, and authenticated control."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.errors import ModelSwitchError
from driftwatch.runtime.http import DaemonControl, authorize
from driftwatch.runtime.models import Models


def model_routes(control: DaemonControl, models: Models) -> list[Route]:
    """GET /api/v1/models[/{name}[/history]], POST /api/v1/models/{name}/switch|restore|unpin."""

    def known(request: Request) -> str:
        name = str(request.path_params["name"])
        if name not in models.names():
            raise HTTPException(404, detail=f"unknown model {name!r}")
        return name

    def listing(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"models": [models.view(name) for name in models.names()]})

    def one(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse(models.view(known(request)))

    def history(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"model": (name := known(request)), "history": models.history(name)})

    async def switch(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        name, body = known(request), await _body(request, {"to", "reason", "pin", "actor"})
        if not isinstance(body.get("to"), str):
            raise HTTPException(400, detail="'to' (the version to switch to) is required")
        try:
            result = models.switch(name, body["to"], reason=str(body.get("reason", "manual switch")),
                                   pin=bool(body.get("pin", True)), actor=_actor(body), now=datetime.now(UTC))
        except ModelSwitchError as err:
            raise HTTPException(400, detail=str(err)) from err
        return JSONResponse(result)

    async def restore(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        name, body = known(request), await _body(request, {"reason", "actor"})
        return JSONResponse(models.restore(name, reason=str(body.get("reason", "manual restore")), actor=_actor(body),
                                           now=datetime.now(UTC)))

    async def unpin(request: Request) -> JSONResponse:
        authorize(request, control, mutating=True)
        name, body = known(request), await _body(request, {"actor"})
        return JSONResponse(models.unpin(name, actor=_actor(body), now=datetime.now(UTC)))

    return [
        Route("/api/v1/models", listing, methods=["GET"]),
        Route("/api/v1/models/{name}", one, methods=["GET"]),
        Route("/api/v1/models/{name}/history", history, methods=["GET"]),
        Route("/api/v1/models/{name}/switch", switch, methods=["POST"]),
        Route("/api/v1/models/{name}/restore", restore, methods=["POST"]),
        Route("/api/v1/models/{name}/unpin", unpin, methods=["POST"]),
    ]


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    """The JSON object body (empty allowed); 400 for anything else or an unknown key."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError as err:
        raise HTTPException(400, detail=f"invalid JSON: {err}") from err
    if not isinstance(body, dict):
        raise HTTPException(400, detail="expected a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPException(400, detail=f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    return body


def _actor(body: dict[str, Any]) -> str:
    """`cli` when the driftwatch CLI says so, else `api`."""
    return "cli" if body.get("actor") == "cli" else "api"
