"""Parquet and CSV sources over a glob of files, read with `pyarrow.dataset` (projection + window filter)."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from driftwatch.errors import SchemaMismatch, SourceUnavailable
from driftwatch.sources.base import as_utc, check_columns, empty_frame, one_line

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_TICK = {"s": 1_000_000, "ms": 1_000, "us": 1}
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


def timestamp_bound(moment: datetime, arrow_type: pa.TimestampType) -> pa.Scalar:
    """`moment` as a scalar of the column's type; rounded up so `>=` and `<` stay exact for coarse units."""
    micros = (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)
    unit = arrow_type.unit
    ticks = micros * 1_000 if unit == "ns" else -(-micros // _MICROS_PER_TICK[unit])
    return pa.scalar(ticks, type=arrow_type)


class _FileSource:
    """Shared read path: glob at read time, build a dataset, project and filter on the timestamp."""

    kind = "files"

    def __init__(self, name: str, path_glob: str, timestamp_column: str) -> None:
        self.name = name
        self.path_glob = path_glob
        self.timestamp_column = timestamp_column

    def describe(self) -> str:
        """One line naming the kind, glob and timestamp column."""
        return f"{self.kind} files {self.path_glob} (timestamp column {self.timestamp_column})"

    def close(self) -> None:
        """Nothing to release: every read opens and closes its files."""

    def files(self) -> list[str]:
        """The files the glob matches right now, sorted."""
        matches = glob.glob(os.path.expanduser(self.path_glob), recursive=True)
        return sorted(path for path in matches if os.path.isfile(path))

    def _format(self, files: list[str]) -> ds.FileFormat:
        raise NotImplementedError

    def _probe(self, path: str) -> None:
        """Raise if `path` alone cannot be opened (used to name a corrupt file)."""

    def _unavailable(self, err: Exception, files: list[str]) -> SourceUnavailable:
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
        files = self.files()
        if not files:
            return empty_frame(columns)
        ts = self.timestamp_column
        try:
            dataset = ds.dataset(files, format=self._format(files))
        except (OSError, pa.ArrowException) as err:
            raise self._unavailable(err, files) from err
        check_columns(self.name, dataset.schema.names, [*columns, ts])
        ts_type = dataset.schema.field(ts).type
        if not pa.types.is_timestamp(ts_type):
            raise SchemaMismatch(f"timestamp column '{ts}' has type {ts_type}, expected a timestamp", source=self.name)
        window = (ds.field(ts) >= timestamp_bound(start, ts_type)) & (ds.field(ts) < timestamp_bound(end, ts_type))
        try:
            table = dataset.to_table(columns=list(dict.fromkeys(columns)), filter=window)
        except (OSError, pa.ArrowException) as err:
            raise self._unavailable(err, files) from err
        return table.to_pandas()[list(columns)]


class ParquetSource(_FileSource):
    """Parquet files matching a glob; row groups outside the window are skipped by statistics."""

    kind = "parquet"

    def _format(self, files: list[str]) -> ds.FileFormat:
        return ds.ParquetFileFormat()

    def _probe(self, path: str) -> None:
        pq.read_metadata(path)


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
        with pacsv.open_csv(first_file, convert_options=options) as reader:
            for batch in reader:
                values = batch.column(0).drop_null()
                if len(values):
                    text = str(values[0].as_py()).strip()
                    return pa.timestamp("us", tz="UTC" if _OFFSET.search(text[10:]) else None)
        return pa.timestamp("us")

    def _format(self, files: list[str]) -> ds.FileFormat:
        ts_type = self._timestamp_type(files[0])
        options = pacsv.ConvertOptions(column_types={self.timestamp_column: ts_type})
        return ds.CsvFileFormat(convert_options=options)
