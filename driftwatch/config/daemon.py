"""The daemon's own settings: where its HTTP API listens and where it keeps its state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from driftwatch.config.base import StrictModel, resolve_path
from driftwatch.config.durations import Duration


class ServerConfig(StrictModel):
    """Where the HTTP API and /metrics listen (port 0 picks a free port), and the API's bearer tokens."""

    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    external_url: str | None = None  # how others reach the daemon, for links in notifications
    api_token: SecretStr | None = None  # required by mutating API endpoints
    read_token: SecretStr | None = None  # when set, required by read endpoints too (not /metrics, /healthz)
    ui_token: SecretStr | None = None  # when set, required by the web view's pages (else read_token, if set)
    shutdown_timeout: Duration = timedelta(seconds=30)  # longest wait for running monitors on SIGTERM
    max_concurrent_runs: Annotated[int, Field(ge=1, le=1024)] | None = (
        None  # runs reading at once (at start); None: the CPUs
    )

    @property
    def base_url(self) -> str:
        """`external_url`, or http://host:port."""
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")


class StateConfig(StrictModel):
    """The SQLite state file and how long its history is kept (`audit_retention` None: model audit kept forever)."""

    path: Path = Field(default=Path("var/driftwatch.db"), validate_default=True)
    retention: Duration = timedelta(days=30)  # runs, finished outbox rows, ended silences
    audit_retention: Duration | None = None  # model switch history (the governance record)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)
