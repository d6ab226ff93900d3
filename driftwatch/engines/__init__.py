"""Engines: where a source's windows are counted when not in this process (a Dask cluster).

An engine wraps a file source (`engine.source(file_source, timeout=...)`): the wrapped source's windows are
`CountingWindow`s whose passes run on the engine, and only partials come back. `close()` releases what the
engine holds (a client, a cluster it started); a closed engine refuses work.
"""

from __future__ import annotations

from driftwatch.engines.dask import DaskEngine, DaskSource, DaskWindow
from driftwatch.errors import SourceError

__all__ = ["DaskEngine", "DaskSource", "DaskWindow", "open_engine"]

KINDS = ("dask",)


def open_engine(name: str, kind: str, *, address: str, workers: int = 2, threads_per_worker: int = 1) -> DaskEngine:
    """An engine of `kind`; nothing is started or connected until its first window is counted."""
    if kind == "dask":
        return DaskEngine(name, address, workers=workers, threads_per_worker=threads_per_worker)
    raise SourceError(f"unknown engine kind {kind!r} (expected one of {', '.join(KINDS)})")
