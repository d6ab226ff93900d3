"""Where a file source's files are: the local disk, or any fsspec URL (`s3://`, `gs://`, `abfs://`, `file://` ...).

A `Files` lists a glob, stamps each file (size and a change token: mtime in ns locally, the store's modification
time or ETag elsewhere) and hands pyarrow a filesystem and path to read it. It pickles as its URL prefix only, so a
window cut for a Dask worker reopens the filesystem there with the worker's own credentials. fsspec comes with
the `dask` extra; a URL without it is a SourceUnavailable saying so.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
from datetime import datetime
from typing import Any

import pyarrow.fs as pafs

from driftwatch.errors import SourceUnavailable

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LOCAL = pafs.LocalFileSystem()
#: fsspec `info` keys that say when an object last changed, in the order tried.
_CHANGE_KEYS = ("mtime", "LastModified", "last_modified", "updated", "ETag", "etag", "md5Hash", "created")

Stamp = tuple[int, int | str]  # size in bytes, change token


def is_url(path: str) -> bool:
    """Whether `path` is a URL (`scheme://...`) rather than a local path or glob."""
    return bool(_URL.match(path))


class Files:
    """The files of one glob: local (`glob`, `os.stat`) or through fsspec for a URL."""

    def __init__(self, pattern: str, source: str) -> None:
        self.pattern = pattern
        self.source = source
        self.url = is_url(pattern)
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "source": self.source, "url": self.url, "_fs": None}

    def glob(self) -> list[str]:
        """The files matching now, sorted (full URLs for a URL pattern)."""
        if not self.url:
            matches = glob.glob(os.path.expanduser(self.pattern), recursive=True)
            return sorted(path for path in matches if os.path.isfile(path))
        fs = self._fsspec()
        found = fs.glob(fs._strip_protocol(self.pattern), detail=True)
        return sorted(fs.unstrip_protocol(path) for path, info in found.items() if info.get("type") == "file")

    def stamp(self, path: str) -> Stamp:
        """`path`'s size and change token; OSError (FileNotFoundError when gone) if it cannot be stat'ed."""
        if not self.url:
            stat = os.stat(path)
            return stat.st_size, stat.st_mtime_ns
        fs = self._fsspec()
        try:
            info = fs.info(fs._strip_protocol(path))
        except FileNotFoundError:
            raise
        except Exception as err:  # stores raise their own errors (permissions, network)
            raise OSError(str(err)) from err
        change = next((info[key] for key in _CHANGE_KEYS if info.get(key) is not None), "")
        token: int | str = int(change.timestamp() * 1e9) if isinstance(change, datetime) else str(change)
        return int(info.get("size") or 0), token

    def arrow(self, path: str) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the path in it to read `path`."""
        if not self.url:
            return _LOCAL, os.path.abspath(path)
        fs = self._fsspec()
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), fs._strip_protocol(path)

    def arrow_all(self, paths: list[str]) -> tuple[pafs.FileSystem, list[str]]:
        """One pyarrow filesystem and the paths in it for several files of this glob."""
        if not paths:
            return _LOCAL, []
        filesystem, _ = self.arrow(paths[0])
        return filesystem, [self.arrow(path)[1] for path in paths]

    def _fsspec(self) -> Any:
        if self._fs is None:
            try:
                core = importlib.import_module("fsspec.core")
            except ImportError:
                raise SourceUnavailable(
                    f"{self.pattern}: URL paths need fsspec: pip install 'driftwatch[dask]'", source=self.source
                ) from None
            try:
                self._fs, _ = core.url_to_fs(self.pattern)
            except (ImportError, ValueError) as err:  # an unknown protocol, or its package missing
                raise SourceUnavailable(f"{self.pattern}: {err}", source=self.source) from err
        return self._fs
