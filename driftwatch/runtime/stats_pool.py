"""The process's one thread pool for feature statistics: the shell owns threads, the core takes an executor."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def stats_executor() -> ThreadPoolExecutor:
    """The shared pool (one thread per CPU), created on first use; its threads only compute, never wait on I/O."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="driftwatch-stats")
        return _pool
