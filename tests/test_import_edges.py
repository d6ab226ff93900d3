"""The layer order is a rule, not a drawing: cli -> runtime -> {config, sources, engines, outputs} -> core.

Every module may import `driftwatch.errors`; the package root and `__main__` are entry points like the cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import driftwatch

PACKAGE_DIR = Path(driftwatch.__file__).parent
#: Which layers each layer may import (besides itself and errors).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "config": {"core"},
    "sources": {"core"},
    "engines": {"core", "sources"},
    "outputs": {"core"},
    "runtime": {"config", "sources", "engines", "outputs", "core", "__init__"},  # the root: `__version__`
    "cli": {"runtime", "config", "sources", "engines", "outputs", "core", "__init__"},
}
ENTRY_POINTS = {"__init__", "__main__"}
#: Deliberate upward imports, each made inside one method when it is called: (file, imported module).
EXCEPTIONS = {
    ("core/report.py", "driftwatch.outputs.web"),  # Report._repr_html_: a notebook asks for the web view's page
}


def layer_of(module: str) -> str:
    """`driftwatch.outputs.outbox` -> outputs; `driftwatch.cli` -> cli."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported_layers(source: str, package: str) -> list[tuple[int, str, str]]:
    """(line, imported module, its layer) for every driftwatch import in `source` of `package`, relative resolved."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).rstrip(".")
            names = [base]
        else:
            continue
        found += [(node.lineno, name, layer_of(name)) for name in names if name.split(".")[0] == "driftwatch"]
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_every_layer_is_known():
    """Every file of the package belongs to a layer of the table (a new package must be placed in it)."""
    layers = {layer_of(".".join(("driftwatch", *p.relative_to(PACKAGE_DIR).with_suffix("").parts))) for p in modules()}
    assert layers - set(ALLOWED) - ENTRY_POINTS - {"errors"} == set()


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE_DIR)))
def test_imports_follow_the_layer_order(path: Path):
    """A module imports only its own layer, errors, and the layers below it."""
    own = layer_of(".".join(("driftwatch", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)))
    if own in ENTRY_POINTS:
        return
    allowed = {own, "errors"} | ALLOWED.get(own, set())
    package = ".".join(("driftwatch", *path.relative_to(PACKAGE_DIR).with_suffix("").parts[:-1]))
    imports = imported_layers(path.read_text(encoding="utf-8"), package)
    relative = path.relative_to(PACKAGE_DIR).as_posix()
    wrong = [
        f"line {line}: {name}"
        for line, name, layer in imports
        if layer not in allowed and (relative, name) not in EXCEPTIONS
    ]
    assert wrong == [], f"{own} may import only {sorted(allowed)}"


def test_the_scan_sees_absolute_and_relative_imports():
    """The scan finds `from driftwatch.runtime...` and resolves `from ..runtime import x` (a pass means something)."""
    source = "import numpy\nfrom driftwatch.runtime.store import Store\nfrom ..runtime import daemon\nfrom . import x\n"
    assert [(name, layer) for _, name, layer in imported_layers(source, "driftwatch.outputs")] == [
        ("driftwatch.runtime.store", "runtime"),
        ("driftwatch.runtime", "runtime"),
        ("driftwatch.outputs", "outputs"),
    ]
