"""Every ``glsim_core`` name the notebooks import still imports from the path they use (modules moved in the
two-layer split answer at their old paths through ``glsim_core/_compat.py``)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _imports() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted(NOTEBOOKS.rglob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("glsim_core"):
                    found.update((node.module, alias.name) for alias in node.names)
                elif isinstance(node, ast.Import):
                    found.update((alias.name, "") for alias in node.names if alias.name.startswith("glsim_core"))
    return found


IMPORTS = sorted(_imports())


def test_the_notebooks_import_something():
    assert len(IMPORTS) > 50


@pytest.mark.parametrize("module, name", IMPORTS, ids=[f"{m}:{n}" for m, n in IMPORTS])
def test_a_notebook_import_resolves(module, name):
    imported = importlib.import_module(module)
    if name:
        assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}") is not None, (module, name)
