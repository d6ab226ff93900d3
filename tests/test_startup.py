"""Startup cost: `import driftwatch.cli` loads no heavy library, and each command loads only what it needs.

The checks are on module names in a fresh interpreter (deterministic), never on timings (the machine is noisy);
the measured `-X importtime` total is printed for the record (`pytest -s tests/test_startup.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import config_text, monitor_yaml, write_dataset

#: Libraries that take tens to hundreds of milliseconds to import; none belongs to parsing the command line.
HEAVY = {
    "numpy",
    "pandas",
    "scipy",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "yaml",
    "apscheduler",
    "starlette",
    "fastapi",
    "uvicorn",
    "anyio",
    "httpx",
    "prometheus_client",
    "jinja2",
}
#: What serves HTTP or talks to it: only `run`, `demo` and `models` need it.
WEB_STACK = {"starlette", "fastapi", "uvicorn", "anyio", "httpx", "prometheus_client", "jinja2"}
#: driftwatch layers below the cli that a command pulls in when it runs, not when the cli is imported.
LOWER_LAYERS = {"driftwatch.core", "driftwatch.config", "driftwatch.sources", "driftwatch.outputs"}


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`python [args] -c code` in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, *args, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


def import_tree(stderr: str, module: str) -> tuple[int, set[str]]:
    """From `-X importtime` output: the cumulative microseconds of the top-level import of `module`, and every
    module that import loaded (its own line and the lines nested under it, which importtime prints first)."""
    loaded: set[str] = set()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        loaded.add(name.strip())
        if name.strip() == module and not name.startswith("  "):
            return int(cumulative), loaded
        if not name.startswith("  "):
            loaded = set()
    raise AssertionError(f"{module} not found in the -X importtime output:\n{stderr}")


def tops(modules: set[str] | list[str]) -> set[str]:
    """Top-level package names: `pandas.core.frame` -> pandas."""
    return {name.split(".")[0] for name in modules}


def lower(modules: set[str] | list[str]) -> set[str]:
    """Which of the lower driftwatch layers `modules` include."""
    return {layer for layer in LOWER_LAYERS if any(m == layer or m.startswith(layer + ".") for m in modules)}


def modules_after(code: str, cwd: Path | None = None) -> list[str]:
    """`sys.modules` of a fresh interpreter after running `code` (its output goes to stderr)."""
    script = (
        "import contextlib, json, sys\n"
        f"with contextlib.redirect_stdout(sys.stderr):\n    {code}\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded: list[str] = json.loads(run_python(script, cwd=cwd).stdout)
    return loaded


def test_importing_the_cli_loads_no_heavy_library():
    """`import driftwatch.cli` (the `driftwatch` command before it parses) loads none of the heavy libraries."""
    done = run_python("import driftwatch.cli", "-X", "importtime")
    total_us, loaded = import_tree(done.stderr, "driftwatch.cli")
    print(f"python -X importtime -c 'import driftwatch.cli': {total_us / 1e6:.3f} s cumulative")
    assert "driftwatch" in loaded, "the tree parse missed the package root"
    assert tops(loaded) & HEAVY == set()
    assert lower(loaded) == set()


def test_help_and_version_load_no_heavy_library():
    """`driftwatch --help`, a subcommand's `--help` and `--version` parse without importing any heavy library."""
    for argv in (["--help"], ["check", "--help"], ["alerts", "silence", "--help"], ["--version"]):
        loaded = modules_after(f"from driftwatch.cli import main\n    try: main({argv!r})\n    except SystemExit: pass")
        assert tops(loaded) & HEAVY == set(), argv
        assert lower(loaded) == set(), argv


def test_package_root_is_lazy():
    """`import driftwatch` and `__version__` load nothing of core; the notebook names still import and list."""
    loaded = modules_after("import driftwatch\n    assert driftwatch.__version__")
    assert tops(loaded) & HEAVY == set()
    assert lower(loaded) == set()

    import driftwatch
    import driftwatch.core
    from driftwatch import Severity, build_profile, compare

    assert build_profile is driftwatch.core.build_profile
    assert Severity is driftwatch.core.Severity
    assert callable(compare)
    assert all(getattr(driftwatch, name) is not None for name in driftwatch.__all__)
    assert set(driftwatch.__all__) <= set(dir(driftwatch))
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = driftwatch.nope


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test dataset with the full config (one source per kind) and `files.yaml` (parquet and csv only)."""
    root = tmp_path_factory.mktemp("startup")
    write_dataset(root)
    (root / "driftwatch.yaml").write_text(config_text(9999))
    head = config_text(9999).split("  db: {kind: sql")[0]
    (root / "files.yaml").write_text(head + "monitors:\n" + monitor_yaml("from-files", "files") + "\n")
    return root


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["validate", "-c", "driftwatch.yaml"], id="validate"),
        pytest.param(["check", "-c", "files.yaml", "--format", "json"], id="check"),
        pytest.param(["alerts", "list", "-c", "files.yaml"], id="alerts-list"),
    ],
)
def test_commands_load_no_web_stack(workdir: Path, argv: list[str]):
    """`validate`, `check` and `alerts` run without importing the web stack (that is for run, demo and models)."""
    loaded = modules_after(f"from driftwatch.cli import main\n    main({argv!r})", cwd=workdir)
    assert "driftwatch.cli" in loaded
    assert tops(loaded) & WEB_STACK == set()
    if "files.yaml" in argv:  # and with no sql source, without sqlalchemy (or dask)
        assert tops(loaded) & {"sqlalchemy", "dask", "distributed"} == set()


def test_config_without_sql_source_loads_no_sqlalchemy(workdir: Path):
    """Loading a config whose sources are all files does not import sqlalchemy (a sql source's URL check does)."""
    loaded = modules_after("from driftwatch.config import load_config\n    load_config('files.yaml')", cwd=workdir)
    assert "sqlalchemy" not in tops(loaded)
    loaded = modules_after("from driftwatch.config import load_config\n    load_config('driftwatch.yaml')", cwd=workdir)
    assert "sqlalchemy" in tops(loaded)
