"""A source over a pandas frame held in memory, for tests and the demo."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pandas as pd

from driftwatch.sources.base import DEFAULT_BATCH_ROWS, Window, checked_batch_rows, select_window


class InMemorySource:
    """Rows of `frame` in the requested window; `frame` may be replaced between reads."""

    def __init__(
        self, name: str, frame: pd.DataFrame, timestamp_column: str, *, batch_rows: int = DEFAULT_BATCH_ROWS
    ) -> None:
        self.name = name
        self.frame = frame
        self.timestamp_column = timestamp_column
        self.batch_rows = checked_batch_rows(name, batch_rows)

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Exactly `columns` for rows with start <= timestamp < end."""
        return select_window(self.name, self.frame, self.timestamp_column, start, end, columns)

    def window(
        self, start: datetime, end: datetime, columns: Sequence[str], *, batch_rows: int | None = None
    ) -> FrameWindow:
        """The window's rows (selected now, so a later replacement of `frame` does not change it) in slices."""
        rows = self.batch_rows if batch_rows is None else batch_rows
        ts = self.timestamp_column
        selected = self.read(start, end, list(dict.fromkeys([*columns, ts])))
        window = FrameWindow(self.name, start, end, columns, selected[list(columns)], batch_rows=rows)
        window._saw(selected[ts])  # selected now: the window's newest stamp is known before any pass
        return window

    def describe(self) -> str:
        """One line with the frame's size."""
        rows, cols = self.frame.shape
        return f"in-memory frame {rows} rows x {cols} columns (timestamp column {self.timestamp_column})"

    def close(self) -> None:
        """Nothing to release."""


class FrameWindow(Window):
    """A window over rows already selected into a frame: each pass slices it."""

    def __init__(
        self,
        source: str,
        start: datetime,
        end: datetime,
        columns: Sequence[str],
        rows: pd.DataFrame,
        *,
        batch_rows: int,
    ) -> None:
        super().__init__(source, start, end, columns, batch_rows=batch_rows)
        self._rows = rows

    def _scan(self) -> Iterator[pd.DataFrame]:
        if len(self._rows):
            yield self._rows

    def to_frame(self) -> pd.DataFrame:
        """The selected rows."""
        self.rows_read = len(self._rows)
        return self._rows
