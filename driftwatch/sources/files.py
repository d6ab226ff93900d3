"""Parquet and CSV sources over a glob of files, streamed with `pyarrow.dataset` (projection + window filter)."""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from driftwatch.errors import SchemaMismatch, SourceError, SourceUnavailable
from driftwatch.sources.base import DEFAULT_BATCH_ROWS, Window, as_utc, check_columns, checked_batch_rows, one_line
from driftwatch.sources.filesystems import Files, Stamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_TICK = {"s": 1_000_000, "ms": 1_000, "us": 1}
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
#: Batches a scan decodes ahead of the consumer: memory stays a few batches, not the window.
_BATCH_READAHEAD = 1
#: Parquet is read through a buffered stream of this many bytes, not a whole column chunk at a time.
_BUFFER_BYTES = 1 << 20


def timestamp_bound(moment: datetime, arrow_type: pa.TimestampType) -> pa.Scalar:
    """`moment` as a scalar of the column's type; rounded up so `>=` and `<` stay exact for coarse units."""
    micros = (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)
    unit = arrow_type.unit
    ticks = micros * 1_000 if unit == "ns" else -(-micros // _MICROS_PER_TICK[unit])
    return pa.scalar(ticks, type=arrow_type)


class _FileSource:
    """Shared read path: glob when a window is made, project and filter on the timestamp, one file at a time."""

    kind = "files"
    #: Whether a text timestamp column is parsed as ISO 8601 (see `_string_timestamp_type`).
    parses_string_timestamps = False

    def __init__(
        self, name: str, path_glob: str, timestamp_column: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> None:
        self.name = name
        self.path_glob = str(path_glob)
        self.locations = Files(self.path_glob, name)
        self.timestamp_column = timestamp_column
        self.batch_rows = checked_batch_rows(name, batch_rows)

    def describe(self) -> str:
        """One line naming the kind, glob and timestamp column."""
        return f"{self.kind} files {self.path_glob} (timestamp column {self.timestamp_column})"

    def close(self) -> None:
        """Nothing to release: every pass opens and closes its files."""

    def files(self) -> list[str]:
        """The files the glob (or URL glob) matches right now, sorted."""
        try:
            return self.locations.glob()
        except OSError as err:
            raise SourceUnavailable(f"cannot list {self.path_glob}: {one_line(err)}", source=self.name) from err

    def _format(self, files: list[str]) -> ds.FileFormat:
        raise NotImplementedError

    def _probe(self, path: str) -> None:
        """Raise if `path` alone cannot be opened (used to name a corrupt file)."""

    def _string_timestamp_type(self, files: list[str]) -> pa.TimestampType:
        """The timestamp type of a text timestamp column, from the first value of the first file that has one."""
        raise NotImplementedError

    def _read_file(self, window: FileWindow, path: str, projection: list[str]) -> Iterator[pa.RecordBatch]:
        """The window's rows of one file: a `pyarrow.dataset` scan with projection, filter and little read-ahead;
        the timestamps (which the filter reads anyway) are noted in `window.newest`."""
        ts = self.timestamp_column
        filesystem, where = self.locations.arrow(path)
        dataset = ds.dataset([where], format=window.format, schema=window.schema, filesystem=filesystem)
        scanner = dataset.scanner(
            columns=list(dict.fromkeys([*projection, ts])),
            filter=window.filter,
            batch_size=window.batch_rows,
            batch_readahead=_BATCH_READAHEAD,
            fragment_readahead=1,
        )
        with scanner.to_reader() as reader:
            for batch in reader:
                window._saw(batch.column(ts))
                yield batch if ts in projection else batch.select(projection)

    def _unavailable(self, err: Exception, files: Sequence[str]) -> SourceUnavailable:
        message = one_line(err)
        culprit = next((path for path in files if path in message), None)
        if culprit is None:
            for path in files:
                try:
                    self._probe(path)
                except (OSError, pa.ArrowException):
                    culprit = path
                    break
        where = culprit or self.path_glob
        return SourceUnavailable(f"cannot read {where}: {message}", source=self.name)

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Exactly `columns` for rows with start <= timestamp < end, from the files matching now."""
        return self.window(start, end, columns).to_frame()

    def window(
        self, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int | None = None
    ) -> FileWindow:
        """The window over the files matching now (frozen with their sizes and mtimes), read in batches."""
        return FileWindow(self, start, end, columns, batch_rows=self.batch_rows if batch_rows is None else batch_rows)


class FileWindow(Window):
    """A window over a frozen list of files, scanned file by file with bounded read-ahead.

    Each file is checked against its frozen size and mtime_ns just before a pass reads it; string columns come
    out as pandas categoricals (`read` keeps pandas' string columns).
    """

    def __init__(
        self, source: _FileSource, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int
    ) -> None:
        super().__init__(source.name, start, end, columns, batch_rows=batch_rows)
        self._source = source
        self.files = tuple(source.files())
        self._stamps = {path: _stamp(source, path) for path in self.files}
        self.projection = list(dict.fromkeys(self.columns))
        self.schema = pa.schema([])  # of the first file, as `pyarrow.dataset` unifies it; other files are cast to it
        self.format: ds.FileFormat = ds.ParquetFileFormat()
        self.filter: ds.Expression = ds.scalar(True)
        self.timestamps_from_text = False  # an ISO-8601 text column, parsed while reading (no row-group skipping)
        if self.files:
            self._prepare()

    def _prepare(self) -> None:
        source, files, ts = self._source, list(self.files), self._source.timestamp_column
        try:
            self.format = source._format(files)
            filesystem, paths = source.locations.arrow_all(files)
            self.schema = ds.dataset(paths, format=self.format, filesystem=filesystem).schema
        except (OSError, pa.ArrowException) as err:
            raise source._unavailable(err, files) from err
        check_columns(self.source, self.schema.names, [*self.columns, ts])
        ts_type = self.schema.field(ts).type
        if _is_string(ts_type) and source.parses_string_timestamps:
            try:
                ts_type = source._string_timestamp_type(files)
            except (OSError, pa.ArrowException) as err:
                raise source._unavailable(err, files) from err
            self.schema = self.schema.set(self.schema.get_field_index(ts), pa.field(ts, ts_type))
            self.timestamps_from_text = True
        if not pa.types.is_timestamp(ts_type):
            raise SchemaMismatch(
                f"timestamp column '{ts}' has type {ts_type}, expected a timestamp", source=self.source
            )
        self.bounds = timestamp_bound(self.start, ts_type), timestamp_bound(self.end, ts_type)
        self.filter = (ds.field(ts) >= self.bounds[0]) & (ds.field(ts) < self.bounds[1])

    def part(self, files: Sequence[str]) -> FileWindow:
        """This window over some of its frozen files, their frozen sizes and mtimes kept (what one worker reads)."""
        part = copy.copy(self)
        part.files = tuple(files)
        part._stamps = {path: self._stamps[path] for path in part.files}
        part.rows_read = 0
        return part

    def record_batches(self, projection: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """One pass as arrow record batches of at most `batch_rows` rows (possibly empty ones), file by file,
        holding `projection` (default: the window's columns)."""
        projection = self.projection if projection is None else projection
        for path in self.files:
            self._check_unchanged(path)
            batches = self._source._read_file(self, path, projection)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (OSError, pa.ArrowException) as err:
                    raise self._unreadable(path, err) from err
                yield batch

    def _scan(self) -> Iterator[pd.DataFrame]:
        """Frames of exactly `batch_rows` rows but the last: arrow's readers cut smaller pieces (a filter 32Ki
        rows, a CSV block ~1 MB), and many small batches would cost the counting per-batch overhead."""
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in self.record_batches(list(dict.fromkeys(self.pass_columns))):
            while batch.num_rows:
                take = min(batch.num_rows, self.batch_rows - held)
                pending.append(batch.slice(0, take))
                held += take
                batch = batch.slice(take)
                if held == self.batch_rows:
                    yield self._converted(pending)
                    pending, held = [], 0
        if pending:
            yield self._converted(pending)

    def _converted(self, batches: list[pa.RecordBatch]) -> pd.DataFrame:
        return pa.Table.from_batches(batches).to_pandas(strings_to_categorical=True)

    def to_frame(self) -> pd.DataFrame:
        """One pass as one frame, converted as a whole (string columns as pandas strings, like `read` always did)."""
        if not self.files:
            return self._empty()
        self.rows_read = 0
        schema = self._projected_schema()
        batches = list(self.record_batches())
        table = (pa.Table.from_batches(batches) if batches else schema.empty_table()).cast(schema)
        self.rows_read = table.num_rows
        return self._frame(table.to_pandas())

    def _projected_schema(self) -> pa.Schema:
        return pa.schema([self.schema.field(name) for name in self.projection])

    def _frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame if list(frame.columns) == list(self.columns) else frame[list(self.columns)]

    def _check_unchanged(self, path: str) -> None:
        try:
            now = self._source.locations.stamp(path)
        except FileNotFoundError:
            detail = "removed"
        except OSError as err:
            raise self._unreadable(path, err) from err
        else:
            size, change = self._stamps[path]
            if now == (size, change):
                return
            detail = f"size {size} -> {now[0]} bytes" if now[0] != size else "modified"
        raise SourceError(f"file {path} changed between passes ({detail})", source=self.source)

    def _unreadable(self, path: str, err: BaseException) -> SourceUnavailable:
        return SourceUnavailable(f"cannot read {path}: {one_line(err)}", source=self.source)


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` with `schema`'s columns in order: cast to its types, a column the file lacks as nulls."""
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _is_string(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _text_timestamp_type(first: str) -> pa.TimestampType:
    """UTC instants when the first ISO-8601 value carries an offset (`Z`, `+02:00`), else naive (= UTC)."""
    return pa.timestamp("us", tz="UTC" if _OFFSET.search(first.strip()[10:]) else None)


def _stamp(source: _FileSource, path: str) -> Stamp:
    """A file's (size, change token: mtime_ns locally), frozen with the window; SourceUnavailable if it cannot be
    stat'ed."""
    try:
        return source.locations.stamp(path)
    except OSError as err:
        raise SourceUnavailable(f"cannot read {path}: {one_line(err)}", source=source.name) from err


class ParquetSource(_FileSource):
    """Parquet files matching a glob; row groups outside the window are skipped by statistics."""

    kind = "parquet"
    parses_string_timestamps = True

    def _format(self, files: list[str]) -> ds.FileFormat:
        return ds.ParquetFileFormat()

    def _string_timestamp_type(self, files: list[str]) -> pa.TimestampType:
        """Like csv: an ISO-8601 text column whose first value has a UTC offset (`Z`, `+02:00`) is read as UTC
        instants, one without as naive = UTC; every value of the source must agree."""
        for path in files:
            filesystem, where = self.locations.arrow(path)
            with pq.ParquetFile(where, filesystem=filesystem) as file:
                if self.timestamp_column not in file.schema_arrow.names:
                    continue
                for batch in file.iter_batches(1024, columns=[self.timestamp_column]):
                    values = batch.column(0).drop_null()
                    if len(values):
                        return _text_timestamp_type(str(values[0].as_py()))
        return pa.timestamp("us")

    def _probe(self, path: str) -> None:
        filesystem, where = self.locations.arrow(path)
        pq.read_metadata(where, filesystem=filesystem)

    def _read_file(self, window: FileWindow, path: str, projection: list[str]) -> Iterator[pa.RecordBatch]:
        """The window's rows of one file, streamed page by page.

        A dataset scan decodes a whole row group at a time (a default pyarrow row group is 1Mi rows), so this
        picks the row groups the filter may match from their statistics and reads them with `iter_batches`
        through a buffered stream, string columns dictionary-encoded as stored (no Python strings). A row group
        whose statistics put every timestamp inside the window is read without its timestamp column or the
        filter (its newest timestamp, for `window.newest`, is its statistics' max); the others are cast to the
        window's schema and filtered batch by batch (their newest timestamp read from the filtered rows).
        """
        ts, text = self.timestamp_column, window.timestamps_from_text
        filesystem, where = self.locations.arrow(path)
        row_groups: list[int] | None = None  # text timestamps have no usable statistics: every row group, filtered
        if not text:
            fragment = window.format.make_fragment(where, filesystem)
            row_groups = [
                group.id
                for piece in fragment.split_by_row_group(window.filter, schema=window.schema)
                for group in piece.row_groups
            ]
            if not row_groups:
                return
        schema = pq.read_schema(where, filesystem=filesystem)
        strings = [name for name in _strings(schema) if not (text and name == ts)]  # text timestamps are parsed
        with pq.ParquetFile(
            where, pre_buffer=False, buffer_size=_BUFFER_BYTES, read_dictionary=strings, filesystem=filesystem
        ) as file:
            inside = (lambda group: False) if text else _inside_window(file.metadata, ts, window.bounds)
            groups = list(range(file.num_row_groups)) if row_groups is None else row_groups
            for whole, run in itertools.groupby(groups, key=inside):
                chosen = list(run)
                if whole:
                    window._saw(_newest_of(file.metadata, ts, chosen, window.bounds[0].type))
                needed = projection if whole else list(dict.fromkeys([*projection, ts]))
                target = pa.schema([_dictionary_of(window.schema.field(name)) for name in needed])
                present = [name for name in needed if name in file.schema_arrow.names]
                for batch in file.iter_batches(window.batch_rows, row_groups=chosen, columns=present):
                    try:
                        table = _conformed(pa.Table.from_batches([batch]), target)
                    except pa.ArrowInvalid as err:  # a text timestamp that is not ISO 8601
                        raise SchemaMismatch(
                            f"{path}: timestamp column '{ts}': {one_line(err)}", source=self.name
                        ) from err
                    if not whole:
                        table = table.filter(window.filter)
                        window._saw(table.column(ts))
                    yield from (table if whole else table.select(projection)).to_batches()


def _strings(schema: pa.Schema) -> list[str]:
    """The string columns of a parquet file's schema (read dictionary-encoded)."""
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _dictionary_of(field: pa.Field) -> pa.Field:
    """A string field as its dictionary-encoded form (how `_read_file` reads it); other fields unchanged."""
    if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
        return field.with_type(pa.dictionary(pa.int32(), field.type))
    return field


def _newest_of(metadata: pq.FileMetaData, ts: str, groups: list[int], ts_type: pa.DataType) -> pa.Array:
    """The max timestamps of row groups (from their statistics; `_inside_window` checked they have them)."""
    column = next(j for j in range(metadata.num_columns) if metadata.schema.column(j).path == ts)
    return pa.array([metadata.row_group(g).column(column).statistics.max for g in groups], type=ts_type)


def _inside_window(metadata: pq.FileMetaData, ts: str, bounds: tuple[pa.Scalar, pa.Scalar]) -> Callable[[int], bool]:
    """Whether a row group's statistics put every timestamp in [bounds[0], bounds[1]) (no nulls); False when
    unknown."""
    column = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == ts), None)

    def inside(group: int) -> bool:
        if column is None:
            return False
        stats = metadata.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max or not stats.has_null_count or stats.null_count != 0:
            return False
        try:
            low = pa.scalar(stats.min, type=bounds[0].type)
            high = pa.scalar(stats.max, type=bounds[0].type)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return False
        return bool(pc.greater_equal(low, bounds[0]).as_py() and pc.less(high, bounds[1]).as_py())

    return inside


class CsvSource(_FileSource):
    """CSV files with a header matching a glob; the timestamp column is parsed as ISO 8601.

    Whether timestamps carry a UTC offset is decided from the first value of the first file; all files of
    one source must agree (offsets, e.g. `+02:00` or `Z`, give a UTC column; none gives a naive = UTC one).
    """

    kind = "csv"

    def _timestamp_type(self, first_file: str) -> pa.TimestampType:
        options = pacsv.ConvertOptions(
            column_types={self.timestamp_column: pa.string()},
            include_columns=[self.timestamp_column],
            include_missing_columns=True,
        )
        filesystem, where = self.locations.arrow(first_file)
        with filesystem.open_input_stream(where) as stream, pacsv.open_csv(stream, convert_options=options) as reader:
            for batch in reader:
                values = batch.column(0).drop_null()
                if len(values):
                    return _text_timestamp_type(str(values[0].as_py()))
        return pa.timestamp("us")

    def _format(self, files: list[str]) -> ds.FileFormat:
        ts_type = self._timestamp_type(files[0])
        options = pacsv.ConvertOptions(column_types={self.timestamp_column: ts_type})
        return ds.CsvFileFormat(convert_options=options)
