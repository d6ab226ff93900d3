"""Files that others read and that must survive a power loss: written whole, or not at all.

`write_durably` writes a temporary file in the target's folder, fsyncs it, renames it over the target and
fsyncs the folder, so after a crash the path holds either the old or the new content, never a truncated one.
The file gets `mode` (default 0644: a serving layer running as another user may read a route file).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: Mode of the files driftwatch writes for others to read (route files, profile caches).
READABLE_MODE = 0o644


def write_durably(
    path: Path, write: Callable[[BinaryIO], object], *, mode: int = READABLE_MODE, sync_folder: bool = True
) -> None:
    """Replace `path` with what `write(file)` writes: temporary file, fsync, rename, fsync of the folder.

    With `sync_folder=False` the caller fsyncs the folder itself (`fsync_folder`), once after several files.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync_folder:
        fsync_folder(path.parent)


def write_bytes_durably(path: Path, data: bytes, *, mode: int = READABLE_MODE) -> None:
    """Replace `path` with `data` durably (see `write_durably`)."""
    write_durably(path, lambda handle: handle.write(data), mode=mode)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
