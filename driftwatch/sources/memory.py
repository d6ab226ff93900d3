"""A source over a pandas frame held in memory, for tests and the demo."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from driftwatch.sources.base import select_window


class InMemorySource:
    """Rows of `frame` in the requested window; `frame` may be replaced between reads."""

    def __init__(self, name: str, frame: pd.DataFrame, timestamp_column: str) -> None:
        self.name = name
        self.frame = frame
        self.timestamp_column = timestamp_column

    def read(self, start: datetime, end: datetime, columns: Sequence[str]) -> pd.DataFrame:
        """Exactly `columns` for rows with start <= timestamp < end."""
        return select_window(self.name, self.frame, self.timestamp_column, start, end, columns)

    def describe(self) -> str:
        """One line with the frame's size."""
        rows, cols = self.frame.shape
        return f"in-memory frame {rows} rows x {cols} columns (timestamp column {self.timestamp_column})"

    def close(self) -> None:
        """Nothing to release."""
