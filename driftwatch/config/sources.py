"""Data sources a monitor reads its windows from: parquet or CSV files, or a SQL database."""

from __future__ import annotations

import importlib.util
import itertools
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from driftwatch.config.base import NAME, TABLE, Column, StrictModel, resolve_path

_GLOB_CHARS = re.compile(r"[*?\[]")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

#: Rows per batch when a window is streamed (the same values as `driftwatch.sources.DEFAULT_BATCH_ROWS` and
#: `MAX_BATCH_ROWS`; config does not import sources, a test keeps them equal).
DEFAULT_BATCH_ROWS = 524_288
MAX_BATCH_ROWS = 16 * 1024 * 1024
BatchRows = Annotated[int, Field(ge=1, le=MAX_BATCH_ROWS)]

#: Databases a sql source can count in (`pushdown: true`; the same tuple as `driftwatch.sources.pushdown`'s).
PUSHDOWN_DIALECTS = ("postgresql", "sqlite")


class FileSourceConfig(StrictModel):
    """Parquet or CSV files: one path or a glob; `engine` names an `engines` entry that counts its windows."""

    kind: Literal["parquet", "csv"]
    path: Path | str  # str: a URL (`s3://bucket/events/*.parquet`) that fsspec reads, not checked here
    timestamp_column: Column
    batch_rows: BatchRows = DEFAULT_BATCH_ROWS
    engine: Annotated[str, Field(pattern=NAME.pattern)] | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _local_or_url(cls, value: object) -> object:
        if isinstance(value, str) and _URL.match(value):
            if importlib.util.find_spec("fsspec") is None:
                raise ValueError("URL paths need fsspec: pip install 'driftwatch[dask]'")
            return value
        return Path(value) if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _exists(cls, value: Path | str, info: ValidationInfo) -> Path | str:
        if isinstance(value, str):
            return value
        path = resolve_path(value, info)
        if not _GLOB_CHARS.search(str(path)):
            if not path.exists():
                raise ValueError(f"file not found: {path}")
            return path
        fixed = Path(*itertools.takewhile(lambda part: not _GLOB_CHARS.search(part), path.parts))
        if not fixed.is_dir():
            raise ValueError(f"directory not found: {fixed}")
        return path


class SqlSourceConfig(StrictModel):
    """A SQLAlchemy database: a `table`, or a `query` bound to the window by `:start` and `:end`; `pushdown`:
    the database counts each window (only counts cross the wire)."""

    kind: Literal["sql"]
    url: str = Field(repr=False)
    table: Annotated[str, Field(pattern=TABLE.pattern)] | None = None
    query: str | None = None
    timestamp_column: Column
    batch_rows: BatchRows = DEFAULT_BATCH_ROWS
    pushdown: bool = False

    @field_validator("url")
    @classmethod
    def _parse_url(cls, value: str, info: ValidationInfo) -> str:
        from sqlalchemy.engine import make_url  # only a config with a sql source pays for sqlalchemy
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("invalid SQLAlchemy URL (e.g. sqlite:///data/prod.db)") from None
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return value
        database = resolve_path(url.database, info)
        if not database.is_file():
            raise ValueError(f"database file not found: {database}")
        return url.set(database=str(database)).render_as_string(hide_password=False)

    @field_validator("query")
    @classmethod
    def _bound_to_window(cls, value: str | None) -> str | None:
        missing = [name for name in (":start", ":end") if value is not None and not re.search(rf"{name}\b", value)]
        if missing:
            raise ValueError(f"query must use the bind parameters :start and :end (missing {' and '.join(missing)})")
        return value

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of 'table' or 'query'")
        if self.pushdown:
            from sqlalchemy.engine import make_url

            backend = make_url(self.url).get_backend_name()
            if backend not in PUSHDOWN_DIALECTS:
                raise ValueError(f"pushdown supports {' and '.join(PUSHDOWN_DIALECTS)}, not {backend}")
        return self

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked, safe for logs and messages."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)


SourceConfig = Annotated[FileSourceConfig | SqlSourceConfig, Field(discriminator="kind")]
