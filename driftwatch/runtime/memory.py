"""Give memory back after a run: a long-lived daemon must not keep the high-water mark of every window it read.

Arrow's memory pool (jemalloc or mimalloc) and glibc's malloc both keep freed pages for reuse; with a run
thread per monitor, each holding a few hundred MB at its peak, the kept pages add up across monitors. After
each run the daemon asks both to return what is unused. `RowBudget` bounds what runs keep in memory between
passes, across all runs at once; `RunSlots` bounds how many runs read and count at the same time.
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


class RunSlot:
    """A run's hold on one of the `RunSlots`; `release` is idempotent (the run's end and its deadline both call
    it)."""

    def __init__(self, slots: RunSlots) -> None:
        self._slots = slots
        self._held = True
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the slot back (once)."""
        with self._lock:
            held, self._held = self._held, False
        if held:
            self._slots._give()


class RunSlots:
    """At most `size` runs read and count at once (thread-safe): each run's peak memory is a few hundred MB, and
    counting is CPU-bound, so more concurrent runs only add memory. A run waits for a slot up to its deadline;
    a run past its deadline gives its slot back even if its thread is still blocked, so a hung source holds a
    slot no longer than its monitor's `timeout`."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("RunSlots needs at least one slot")
        self.size = size
        self._free = size
        self._changed = threading.Condition()

    def acquire(self, timeout: float) -> RunSlot | None:
        """A slot, or None if none came free within `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._free > 0, timeout=max(timeout, 0.0)):
                return None
            self._free -= 1
        return RunSlot(self)

    @property
    def busy(self) -> int:
        """Slots held now."""
        with self._changed:
            return self.size - self._free

    def _give(self) -> None:
        with self._changed:
            self._free += 1
            self._changed.notify()
