"""Give memory back after a run: a long-lived daemon must not keep the high-water mark of every window it read.

Arrow's memory pool (jemalloc or mimalloc) and glibc's malloc both keep freed pages for reuse; with a run
thread per monitor, each holding a few hundred MB at its peak, the kept pages add up across monitors. After
each run the daemon asks both to return what is unused. `RowBudget` bounds what runs keep in memory between
passes, across all runs at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
from collections.abc import Callable

log = logging.getLogger("driftwatch.memory")


def release_unused_memory() -> None:
    """Return freed memory to the operating system (arrow's pool, then glibc's heap); never raises."""
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except Exception as err:  # best effort: a pool that cannot release keeps its pages, nothing else happens
        log.debug("arrow memory pool: cannot release unused memory: %s", err)
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None on other C libraries."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class RowBudget:
    """Rows that runs may keep in memory between their passes, shared by all runs (thread-safe)."""

    def __init__(self, rows: int) -> None:
        self._left = rows
        self._lock = threading.Lock()

    def take(self, rows: int) -> bool:
        """Reserve `rows` if that many are left."""
        with self._lock:
            if rows > self._left:
                return False
            self._left -= rows
            return True

    def give(self, rows: int) -> None:
        """Return rows taken before."""
        with self._lock:
            self._left += rows
