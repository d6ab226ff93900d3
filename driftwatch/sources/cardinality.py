"""Id-like reference columns: near-unique values (order ids, tail numbers, user ids) make no feature.

A column picked by `features: auto` is id-like when it is text with more distinct values than half its non-null
values, or integers with distinct values for at least 95% of them (floats are left alone: measured values are
naturally all distinct). Both need at least `MIN_ROWS` non-null values, so a tiny reference excludes nothing.
Only the first `SAMPLE_ROWS` rows are read (an id is near-unique in any block of rows), so this costs a start-up
little even for a reference of millions of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from driftwatch.errors import SourceUnavailable
from driftwatch.sources.base import one_line

#: Share of distinct among non-null values above which a text column is id-like.
TEXT_SHARE = 0.5
#: Share of distinct among non-null values from which an integer column is id-like.
INTEGER_SHARE = 0.95
#: Fewer non-null values than this never make a column id-like.
MIN_ROWS = 20
#: Rows read from the start of the reference to judge its columns.
SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class IdLike:
    """A near-unique column: `distinct` values among `rows` non-null ones."""

    column: str
    distinct: int
    rows: int

    def describe(self) -> str:
        """`'flight' (9,912 distinct of 10,000 values)`."""
        return f"{self.column!r} ({self.distinct:,} distinct of {self.rows:,} values)"


def find_id_like(path: Path, columns: Sequence[str]) -> list[IdLike]:
    """The id-like columns among `columns` of the reference file at `path` (parquet or csv by suffix); reads
    only the text and integer columns among them, and only their first `SAMPLE_ROWS` rows."""
    path = Path(path)
    is_csv = path.suffix.lower() == ".csv"
    try:
        schema = _csv_schema(path) if is_csv else pq.read_schema(path)
        shares = {
            name: TEXT_SHARE if _is_text(schema.field(name).type) else INTEGER_SHARE
            for name in columns
            if name in schema.names
            and (_is_text(schema.field(name).type) or pa.types.is_integer(schema.field(name).type))
        }
        if not shares:
            return []
        table = _head(path, list(shares), is_csv)
    except (OSError, pa.ArrowException) as err:
        raise SourceUnavailable(f"reference {path}: cannot read ({one_line(err)})") from err
    found = []
    for name, share in shares.items():
        column = table.column(name)
        rows = len(column) - column.null_count
        if rows < MIN_ROWS:
            continue
        if pa.types.is_dictionary(column.type):  # count_distinct has no dictionary kernel
            column = column.cast(column.type.value_type)
        try:
            distinct = pc.count_distinct(column, mode="only_valid").as_py()
        except pa.ArrowNotImplementedError:  # a type this pyarrow cannot count: never id-like, never a failure
            continue
        if distinct > share * rows if share == TEXT_SHARE else distinct >= share * rows:
            found.append(IdLike(name, distinct, rows))
    return found


def _head(path: Path, columns: list[str], is_csv: bool) -> pa.Table:
    """The first `SAMPLE_ROWS` rows of `columns`."""
    if is_csv:
        with pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(include_columns=columns)) as reader:
            return _first_rows(reader, columns)
    with pq.ParquetFile(path) as file:
        return _first_rows(file.iter_batches(batch_size=SAMPLE_ROWS, columns=columns), columns)


def _first_rows(batches: Iterable[pa.RecordBatch], columns: list[str]) -> pa.Table:
    kept, rows = [], 0
    for batch in batches:
        kept.append(batch)
        rows += batch.num_rows
        if rows >= SAMPLE_ROWS:
            break
    return pa.Table.from_batches(kept).slice(0, SAMPLE_ROWS) if kept else pa.table({c: [] for c in columns})


def _is_text(arrow_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


def _csv_schema(path: Path) -> pa.Schema:
    with pacsv.open_csv(path) as reader:
        return reader.schema
