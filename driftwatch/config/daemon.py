"""The daemon's own settings: where its HTTP API listens and where it keeps its state."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from driftwatch.config.base import StrictModel, resolve_path


class ServerConfig(StrictModel):
    """Where the HTTP API and /metrics listen (port 0 picks a free port), and the API's bearer tokens."""

    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    external_url: str | None = None  # how others reach the daemon, for links in notifications
    api_token: SecretStr | None = None  # required by mutating API endpoints
    read_token: SecretStr | None = None  # when set, required by read endpoints too (not /metrics, /healthz)

    @property
    def base_url(self) -> str:
        """`external_url`, or http://host:port."""
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")


class StateConfig(StrictModel):
    """The SQLite state file."""

    path: Path = Field(default=Path("var/driftwatch.db"), validate_default=True)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, info)
