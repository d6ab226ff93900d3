"""What every config model shares: the strict frozen base model, sub-path problems, paths and names."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class ProblemAt(ValueError):
    """A validator's complaint about a sub-path (`at`) below the value being validated."""

    def __init__(self, message: str, *at: str) -> None:
        super().__init__(message)
        self.at = at


class StrictModel(BaseModel):
    """The base of every config model: unknown keys are errors and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(path: Path | str, info: ValidationInfo) -> Path:
    """`path` made absolute against the config file's directory (the working directory without one).

    A path with a NUL character, a name too long, or behind a folder that cannot be searched is a ValueError.
    """
    if "\0" in str(path):
        raise ValueError("invalid path: it contains a NUL character")
    base = (info.context or {}).get("base_dir") or Path.cwd()
    resolved = Path(os.path.abspath(Path(base) / Path(path)))
    try:
        os.stat(resolved)
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise ValueError(f"invalid path: name too long ({len(str(resolved))} characters)") from None
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):  # missing is for the caller to judge
            raise ValueError(f"cannot access {resolved}: {err.strerror}") from None
    except ValueError as err:  # e.g. a lone surrogate, which has no file-system encoding
        raise ValueError(f"invalid path: {err}") from None
    return resolved


def _columns(value: Any) -> Any:
    if value == "auto":
        return value
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list of column names or 'auto', got {value!r}")
    for name in value:
        if not isinstance(name, str) or not COLUMN.match(name):
            raise ValueError(f"invalid identifier {name!r} (use letters, digits and '_')")
    if len(set(value)) < len(value):
        raise ValueError("duplicate column names")
    return tuple(value)


Columns = Annotated[Literal["auto"] | tuple[str, ...], BeforeValidator(_columns)]
Column = Annotated[str, Field(pattern=COLUMN.pattern)]
