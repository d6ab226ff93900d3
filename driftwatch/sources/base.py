"""The `DataSource` capability, reference file reading and the helpers every source shares."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from driftwatch.core.partials import Partial, Request
from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable

ColumnKind = Literal["numeric", "categorical", "timestamp", "other"]

_STRING_VIEW = pa.string_view() if hasattr(pa, "string_view") else None

#: Rows per batch of a streamed read unless a source's `batch_rows` says otherwise (config mirrors both bounds).
DEFAULT_BATCH_ROWS = 524_288
MAX_BATCH_ROWS = 16 * 1024 * 1024


class Window:
    """The rows of one source with start <= timestamp < end, read in batches of at most `batch_rows` rows.

    `batches()` yields frames holding exactly `columns` (in order, with a fresh 0-based index); an empty window
    yields no frames. Every call starts a new pass over the SAME data: file sources froze their file list and each
    file's size and mtime when the window was made (a file changed since raises SourceError naming it), SQL
    sources re-run the query. Errors are those of `read`: `window()` may raise them (file sources check the schema
    up front), and so may any pass. `rows_read` counts the rows the current (or last) pass has yielded so far;
    `newest` is the newest timestamp a pass has seen (aware UTC; None before a pass or for an empty window), for
    the freshness signal. Subclasses implement `_scan`, one pass of frames of any size (longer ones are cut here)
    holding at least `pass_columns`, and call `_saw` with each frame's timestamps.
    """

    def __init__(self, source: str, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int) -> None:
        self.source = source
        self.start = start
        self.end = end
        self.columns = tuple(columns)
        self.batch_rows = checked_batch_rows(source, batch_rows)
        self.rows_read = 0
        self.pass_columns = self.columns  # of the current pass (`batches(columns)`)
        self.newest: datetime | None = None

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pd.DataFrame]:
        """One pass: frames of 1 to `batch_rows` rows, in the same order on every pass; `columns` (a subset of
        the window's) narrows this pass to those columns (sources that can read less, do)."""
        self.rows_read = 0
        wanted = list(self.columns if columns is None else columns)
        unknown = [name for name in wanted if name not in self.columns]
        if unknown:
            raise ValueError(f"columns {unknown} are not in the window")
        self.pass_columns = tuple(wanted)
        for frame in self._scan():
            if list(frame.columns) != wanted:
                frame = frame[wanted]
            for offset in range(0, len(frame), self.batch_rows):
                part = frame if len(frame) <= self.batch_rows else frame.iloc[offset : offset + self.batch_rows]
                self.rows_read += len(part)
                yield part.reset_index(drop=True)

    def to_frame(self) -> pd.DataFrame:
        """One pass concatenated into a single frame (what `DataSource.read` returns)."""
        frames = list(self.batches())
        return pd.concat(frames, ignore_index=True) if frames else self._empty()

    def _scan(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def _saw(self, stamps: pd.Series | pa.Array | pa.ChunkedArray) -> None:
        """Note the newest of `stamps` (timestamps; naive = UTC; nulls ignored) in `newest`."""
        if isinstance(stamps, pa.Array | pa.ChunkedArray):
            top = pc.max(stamps) if len(stamps) else None
            value = (
                None
                if top is None or not top.is_valid
                else top.cast(pa.timestamp("us", top.type.tz), safe=False).as_py()
            )
        else:
            value = pd.to_datetime(stamps, utc=True, format="ISO8601").max() if len(stamps) else None
            value = None if value is None or pd.isna(value) else value.to_pydatetime()
        if value is not None:
            value = as_utc(value)
            self.newest = value if self.newest is None else max(self.newest, value)

    def _empty(self) -> pd.DataFrame:
        return empty_frame(self.columns)


@runtime_checkable
class CountingWindow(Protocol):
    """A window that counts where its data lives (SQL pushdown, Dask workers): only partials reach this process.

    `count(request)` is one pass of a `driftwatch.core.partials.Job` over the whole window: the partial of every
    row, or None for an empty window. Errors are SourceError (one line, naming the source); a window whose rows
    changed between passes is detected by the job itself (`WindowChanged`). `rows_read` counts the rows the last
    pass covered.
    """

    rows_read: int

    def count(self, request: Request) -> Partial | None:
        """The partial of this pass over every row of the window (None: no rows)."""
        ...


def checked_batch_rows(source: str, batch_rows: int) -> int:
    """`batch_rows` if it is an int in [1, MAX_BATCH_ROWS], else SourceError."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise SourceError(
            f"batch_rows must be an integer from 1 to {MAX_BATCH_ROWS} (got {batch_rows!r})", source=source
        )
    return batch_rows


@runtime_checkable
class DataSource(Protocol):
    """Something that yields the rows of a time window, whole (`read`) or in batches (`window`)."""

    name: str

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Exactly `columns`, in that order, for rows whose timestamp is in [start, end)."""
        ...

    def window(
        self, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int | None = None
    ) -> Window:
        """The rows `read` would return, as a re-iterable `Window` of batches (default: the source's batch_rows)."""
        ...

    def describe(self) -> str:
        """One line saying what this source reads (never a secret)."""
        ...

    def close(self) -> None:
        """Release what the source holds (connection pools); reads after close may reopen them."""
        ...


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def missing_columns_message(missing: Sequence[str], available: Iterable[str]) -> str:
    """`column 'x' not found (available: a, b)`; plural for several."""
    names = ", ".join(f"'{name}'" for name in missing)
    noun = "column" if len(missing) == 1 else "columns"
    return f"{noun} {names} not found (available: {', '.join(available)})"


def check_columns(source: str, available: Sequence[str], wanted: Iterable[str]) -> None:
    """Raise SchemaMismatch naming every wanted column that is not available."""
    present = set(available)
    missing = list(dict.fromkeys(name for name in wanted if name not in present))
    if missing:
        raise SchemaMismatch(missing_columns_message(missing, available), source=source)


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    """A frame with no rows and the given columns."""
    return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns}, columns=list(columns))


def window_mask(values: pd.Series, start: datetime, end: datetime) -> pd.Series:
    """Boolean mask of `values` (timestamps or ISO strings; naive = UTC) inside [start, end)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        stamps = values
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = values.dt.tz_localize("UTC")
    else:
        stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return (stamps >= pd.Timestamp(as_utc(start))) & (stamps < pd.Timestamp(as_utc(end)))


def select_window(
    source: str,
    frame: pd.DataFrame,
    timestamp_column: str,
    start: datetime,
    end: datetime,
    columns: Sequence[str],
) -> pd.DataFrame:
    """Rows of `frame` in [start, end) restricted to `columns`, with SchemaMismatch for missing ones."""
    check_columns(source, [str(name) for name in frame.columns], [*columns, timestamp_column])
    try:
        mask = window_mask(frame[timestamp_column], start, end)
    except (ValueError, TypeError) as err:
        raise SchemaMismatch(
            f"timestamp column '{timestamp_column}' cannot be read as timestamps ({one_line(err)})",
            source=source,
        ) from err
    return frame.loc[mask.to_numpy(), list(columns)].reset_index(drop=True)


def one_line(err: BaseException) -> str:
    """The first line of an exception's message (or its type name when empty)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def column_kind(arrow_type: pa.DataType) -> ColumnKind:
    """How driftwatch treats a column of this arrow type."""
    if pa.types.is_boolean(arrow_type) or pa.types.is_dictionary(arrow_type):
        return "categorical"
    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type):
        return "numeric"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or arrow_type == _STRING_VIEW:
        return "categorical"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "timestamp"
    return "other"


def _reference_format(path: Path) -> Literal["parquet", "csv"]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".csv":
        return "csv"
    raise SourceError(f"reference {path}: unsupported file type {suffix or '(none)'!r} (use .parquet, .pq or .csv)")


def _reference_schema(path: Path) -> pa.Schema:
    kind = _reference_format(path)
    try:
        if kind == "parquet":
            return pq.read_schema(path)
        with pacsv.open_csv(path) as reader:
            return reader.schema
    except (OSError, pa.ArrowException) as err:
        raise SourceUnavailable(f"reference {path}: cannot read ({one_line(err)})") from err


def reference_columns(path: Path) -> dict[str, ColumnKind]:
    """Every column of the reference file mapped to its kind, read from the schema only."""
    return {field.name: column_kind(field.type) for field in _reference_schema(Path(path))}


def read_reference(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The reference file (parquet or csv by suffix) as a frame, optionally only `columns` in that order."""
    path = Path(path)
    schema = _reference_schema(path)
    if columns is not None:
        present = set(schema.names)
        missing = list(dict.fromkeys(name for name in columns if name not in present))
        if missing:
            raise SchemaMismatch(f"reference {path}: {missing_columns_message(missing, schema.names)}")
    try:
        if _reference_format(path) == "parquet":
            table = pq.read_table(path, columns=list(columns) if columns is not None else None)
        else:
            options = pacsv.ConvertOptions(include_columns=list(columns) if columns is not None else [])
            table = pacsv.read_csv(path, convert_options=options)
    except (OSError, pa.ArrowException) as err:
        raise SourceUnavailable(f"reference {path}: cannot read ({one_line(err)})") from err
    frame = table.to_pandas()
    return frame[list(columns)] if columns is not None else frame


def batch_arrays(
    frame: pd.DataFrame, numeric: tuple[str, ...], categorical: tuple[str, ...], source: str
) -> dict[str, Any]:
    """Column arrays for the core; a numeric column holding text is a SchemaMismatch."""
    batch: dict[str, Any] = {}
    for column in numeric:
        values = frame[column]
        if not (pd.api.types.is_numeric_dtype(values) or values.isna().all()):
            sample = values.dropna().iloc[0] if values.notna().any() else None
            try:
                values = pd.to_numeric(values, errors="raise")
            except (ValueError, TypeError) as err:
                raise SchemaMismatch(
                    f"column {column!r} is not numeric (dtype {frame[column].dtype}, e.g. {sample!r})", source=source
                ) from err
        batch[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
    for column in categorical:
        batch[column] = frame[column]
    return batch
