"""driftwatch.core stays pure: no shell libraries imported, no I/O, clock, logging or printing in its source."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import driftwatch.core

CORE_DIR = Path(driftwatch.core.__file__).parent
FORBIDDEN_MODULES = [
    "yaml",
    "httpx",
    "prometheus_client",
    "apscheduler",
    "sqlalchemy",
    "fastapi",
    "starlette",
    "uvicorn",
]
FORBIDDEN_TEXT = ["open(", "logging", "time.time", "datetime.now", "print("]


def _core_sources() -> list[Path]:
    return sorted(CORE_DIR.rglob("*.py"))


def test_core_import_loads_no_shell_libraries():
    """Importing driftwatch.core in a fresh interpreter loads none of the shell's libraries."""
    code = "import driftwatch.core, sys; print(sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    loaded = set(ast.literal_eval(result.stdout))
    assert "driftwatch.core" in loaded
    offenders = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN_MODULES)
    assert offenders == []


def test_core_has_sources():
    """The scan below has files to scan."""
    names = {p.name for p in _core_sources()}
    assert {"profile.py", "values.py", "stats.py", "policy.py", "compare.py", "report.py"} <= names


@pytest.mark.parametrize("needle", FORBIDDEN_TEXT)
def test_core_source_has_no_io_clock_logging_or_print(needle):
    """No module file under driftwatch/core contains I/O, clock, logging or print calls."""
    # A call such as `print(` must not be preceded by a name character (`_fingerprint(` is not `print(`).
    pattern = re.compile(r"(?<![\w])" + re.escape(needle))
    hits = [
        f"{path.relative_to(CORE_DIR)}:{number}: {line.strip()}"
        for path in _core_sources()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert hits == []
