"""Engines: where a file source's windows are counted when not in the daemon's process (a Dask cluster).

engines:
  lake: {kind: dask, address: "tcp://scheduler:8786"}   # or address: local (a LocalCluster the daemon owns)
sources:
  events: {kind: parquet, path: "s3://bucket/events/*.parquet", timestamp_column: ts, engine: lake}
"""

from __future__ import annotations

import importlib.util
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from driftwatch.config.base import StrictModel

#: What a dask engine needs installed, and the one line saying how to get it.
DASK_MODULES = ("dask", "distributed")
DASK_EXTRA = "dask engines need the optional dependency dask[distributed]: pip install 'driftwatch[dask]'"

_ADDRESS = re.compile(r"^(local|(tcp|tls|ws|wss|inproc|ucx)://\S+)$")


def dask_installed() -> bool:
    """Whether `dask` and `distributed` can be imported (found without importing them)."""
    for module in DASK_MODULES:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # a blocked or half-imported module
            return False
    return True


class DaskEngineConfig(StrictModel):
    """A Dask cluster: a scheduler `address` (`tcp://host:8786`), or `local` for a `distributed.LocalCluster` of
    `workers` processes started and owned by the daemon (closed on reload and stop)."""

    kind: Literal["dask"]
    address: str
    workers: Annotated[int, Field(ge=1, le=256)] = 2
    threads_per_worker: Annotated[int, Field(ge=1, le=256)] = 1

    @field_validator("kind")
    @classmethod
    def _installed(cls, value: str) -> str:
        if not dask_installed():
            raise ValueError(DASK_EXTRA)
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError(f"invalid address {value!r} (use local or a scheduler URL such as tcp://host:8786)")
        return value


EngineConfig = Annotated[DaskEngineConfig, Field(discriminator="kind")]
