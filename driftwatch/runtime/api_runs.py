"""HTTP route of run history: GET /api/v1/monitors/{name}/runs, newest first, in pages.

Paging is by cursor: a page holds `limit` runs (default 50, at most 500) and `next`, an opaque cursor naming its
last run, or null on the last page; `?before=CURSOR` asks for the page after it. Runs recorded meanwhile never
shift a page (the cursor is a position in (started_at, id) order, not an offset). `?origin=schedule|backfill`
keeps the daemon's runs or `driftwatch backfill`'s only.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from driftwatch.runtime.http import DaemonControl, authorize, shown
from driftwatch.runtime.store import RunRecord, Store

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ORIGINS = ("schedule", "backfill")


def encode_cursor(run: RunRecord) -> str:
    """The cursor naming `run` as the last of a page."""
    return base64.urlsafe_b64encode(f"{run.started_at.isoformat()}|{run.id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[datetime, int]:
    """(started_at, id) from a cursor; ValueError (one line) when it is not one this API made."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        started, _, ident = raw.partition("|")
        moment, number = datetime.fromisoformat(started), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:
        raise ValueError(f"invalid cursor {shown(text)} (use the 'next' of a previous page)") from err
    if moment.tzinfo is None or not 0 < number < 2**63:
        raise ValueError(f"invalid cursor {shown(text)} (use the 'next' of a previous page)")
    return moment, number


def parse_limit(text: str | None) -> int:
    """The page size from `?limit=` (default `DEFAULT_LIMIT`); ValueError outside 1..MAX_LIMIT."""
    if text is None:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_LIMIT):
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {shown(text)}")
    return int(text)


def run_routes(control: DaemonControl, store: Store) -> list[Route]:
    """GET /api/v1/monitors/{name}/runs."""

    def runs(request: Request) -> JSONResponse:
        authorize(request, control, mutating=False)
        name = request.path_params["name"]
        query = request.query_params
        unknown = sorted(set(query) - {"limit", "before", "origin"})
        try:
            if unknown:
                raise ValueError(f"unknown parameter {shown(unknown[0])} (allowed: before, limit, origin)")
            limit = parse_limit(query.get("limit"))
            before = decode_cursor(query["before"]) if "before" in query else None
            origin = query.get("origin")
            if origin is not None and origin not in ORIGINS:
                raise ValueError(f"origin must be one of {', '.join(ORIGINS)}, got {shown(origin)}")
        except ValueError as err:
            raise HTTPException(400, detail=str(err)) from err
        if name not in control.statuses() and not store.has_runs(name):
            raise HTTPException(404, detail=f"unknown monitor {shown(name)}")
        page = store.runs(name, limit + 1, before=before, origin=origin)
        more, page = len(page) > limit, page[:limit]
        return JSONResponse(
            {
                "monitor": name,
                "runs": [run.to_dict() for run in page],
                "next": encode_cursor(page[-1]) if more else None,
            }
        )

    return [Route("/api/v1/monitors/{name}/runs", runs, methods=["GET"])]
