"""The driftwatch error hierarchy.

    DriftwatchError
    ├── ConfigError            (ValueError)   a config file or value is wrong; message names the YAML path
    ├── SourceError            (RuntimeError) reading a batch or reference failed
    │   ├── SourceUnavailable                 the file, glob or database cannot be reached or read
    │   └── SchemaMismatch                    a configured column is missing or has the wrong type
    ├── InsufficientData                      too few rows to judge drift (a run is skipped, not failed)
    ├── ProfileError           (ValueError)   a saved profile is unreadable, of another version or stale
    ├── StoreError                            the state database cannot be opened, read or written
    ├── DeliveryError                         a notification or actuation could not be delivered (`retryable`)
    │   ├── SinkUnavailable                   unreachable, timed out, or 408/429/5xx: retry later (`retry_after`)
    │   └── SinkRejected                      refused (3xx, other 4xx): retrying the same request cannot help
    └── ModelSwitchError                      a model switch request is invalid

Every message is one line that says what is wrong and where; data travels as attributes.
"""

from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every error driftwatch raises on purpose."""


class ConfigError(DriftwatchError, ValueError):
    """A configuration file or value is invalid; `path` is the dotted YAML path (may be empty)."""

    def __init__(self, message: str, *, file: str | None = None, path: str = "") -> None:
        self.file = file
        self.path = path
        self.problem = message
        where = ": ".join(part for part in (file, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class SourceError(DriftwatchError, RuntimeError):
    """Reading data from a source failed."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"source {source}: {message}" if source else message)


class SourceUnavailable(SourceError):
    """The source's files or database cannot be reached or read."""


class SchemaMismatch(SourceError):
    """A configured column is missing from the data or has an unusable type."""


class InsufficientData(DriftwatchError):
    """Too few rows to judge drift; the run is skipped with this reason."""

    def __init__(self, message: str, *, rows: int = 0, min_rows: int = 0) -> None:
        self.rows = rows
        self.min_rows = min_rows
        super().__init__(message)


class ProfileError(DriftwatchError, ValueError):
    """A saved reference profile cannot be used (unreadable, other version, other settings)."""


class StoreError(DriftwatchError):
    """The state database cannot be opened, read or written."""


class DeliveryError(DriftwatchError):
    """A notification or actuation could not be delivered; the outbox retries it later only when `retryable`.

    `sink` is the sink's safe description, `status` the HTTP status (None when there was no answer) and
    `retry_after` the seconds the sink asked to wait (`Retry-After`), if any.
    """

    retryable: bool = False
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        sink: str | None = None,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.sink = sink
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class SinkUnavailable(DeliveryError):
    """The sink could not be reached, timed out, or answered 408, 429 or 5xx: retry later."""

    def __init__(
        self,
        message: str,
        *,
        sink: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, sink=sink, retryable=True, status=status, retry_after=retry_after)


class SinkRejected(DeliveryError):
    """The sink refused the request (3xx or 4xx other than 408/429): retrying the same request cannot help."""

    def __init__(self, message: str, *, sink: str | None = None, status: int | None = None) -> None:
        super().__init__(message, sink=sink, retryable=False, status=status)


class ModelSwitchError(DriftwatchError):
    """A model switch request is invalid."""
