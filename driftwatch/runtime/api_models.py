"""HTTP routes of fallback switching: model routes for serving layers, history, and authenticated control."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.errors import ModelSwitchError
from driftwatch.runtime.http import DaemonControl, authorize, bool_field, parse_json_object, shown, text_field
from driftwatch.runtime.models import Models

MAX_VERSION_BYTES = 256
"""The longest version name `switch` accepts in `to`."""


def switch_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `Models.switch` (but the name and the time) from a request body; ValueError if invalid."""
    to = text_field(body, "to", max_bytes=MAX_VERSION_BYTES)
    if to is None:
        raise ValueError("'to' (the version to switch to) is required")
    return {
        "to": to,
        "reason": text_field(body, "reason", "manual switch"),
        "pin": bool_field(body, "pin", True),
        "actor": actor_field(body),
    }


def restore_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `Models.restore` from a request body; ValueError if invalid."""
    return {"reason": text_field(body, "reason", "manual restore"), "actor": actor_field(body)}


def unpin_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `Models.unpin` from a request body; ValueError if invalid."""
    return {"actor": actor_field(body)}


def actor_field(body: Mapping[str, Any]) -> str:
    """`cli` when the driftwatch CLI says so, else `api`; ValueError if `actor` is not a string."""
    return "cli" if text_field(body, "actor") == "cli" else "api"


def model_routes(control: DaemonControl, models: Models) -> list[Route]:
    """GET /api/v1/models[/{name}[/history]], POST /api/v1/models/{name}/switch|restore|unpin."""

    def known(name: str) -> str:
        if name not in models.names():
            raise HTTPException(404, detail=f"unknown model {shown(name)}")
        return name

    def listing(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"models": [models.view(name) for name in models.names()]})

    def one(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse(models.view(known(request.path_params["name"])))

    def history(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        return JSONResponse({"model": (name := known(request.path_params["name"])), "history": models.history(name)})

    def mutation(
        allowed: Collection[str],
        fields: Callable[[Mapping[str, Any]], dict[str, Any]],
        act: Callable[..., dict[str, Any]],
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        """An endpoint that reads a JSON body (empty allowed) and, in the thread pool, calls `act` with `fields`."""

        def apply(name: str, raw: bytes) -> JSONResponse:
            name = known(name)
            try:
                kwargs = fields(parse_json_object(raw, allowed, empty_ok=True))
            except ValueError as err:
                raise HTTPException(400, detail=str(err)) from err
            try:
                return JSONResponse(act(name, **kwargs, now=datetime.now(UTC)))
            except ModelSwitchError as err:
                raise HTTPException(400, detail=str(err)) from err

        async def endpoint(request: Request) -> JSONResponse:
            authorize(request, control, mutating=True)
            return await run_in_threadpool(apply, request.path_params["name"], await request.body())

        return endpoint

    return [
        Route("/api/v1/models", listing, methods=["GET"]),
        Route("/api/v1/models/{name}", one, methods=["GET"]),
        Route("/api/v1/models/{name}/history", history, methods=["GET"]),
        Route(
            "/api/v1/models/{name}/switch",
            mutation({"to", "reason", "pin", "actor"}, switch_fields, models.switch),
            methods=["POST"],
        ),
        Route(
            "/api/v1/models/{name}/restore",
            mutation({"reason", "actor"}, restore_fields, models.restore),
            methods=["POST"],
        ),
        Route("/api/v1/models/{name}/unpin", mutation({"actor"}, unpin_fields, models.unpin), methods=["POST"]),
    ]
