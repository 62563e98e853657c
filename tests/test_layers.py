"""The package's two layers, read from the source (``ast``), not from what happens to be imported at run time.

* The **methods layer** (``pooling`` <- ``selection`` <- ``models``) imports only the standard library, torch, timm,
  numpy and itself, downwards: ``pooling`` nothing of the package, ``selection`` ``pooling``, ``models`` both
  (pandas only inside a function that returns a table). Inside functions it imports nothing of the package (a
  function-level import would only hide a dependency).
* **No cycles** between the package's units (a subpackage, or a module at the top of the package), whether the
  import is at module level or inside a function.
* Inside functions, package modules are imported only where ``LAZY`` says why (nothing, today).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "glsim_core"
METHODS = ("pooling", "selection", "models")  # in order: each may import the ones before it
THIRD_PARTY_OK = {"torch", "timm", "numpy"}
#: Optional libraries the methods layer may import inside a function, to present a result (``pooling.table1``).
OPTIONAL_INSIDE = {"pandas"}
#: Function-level imports of the package allowed, with the reason (none: keep it that way).
LAZY: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[str, bool, int]]:
    """``(imported module, inside a function?, line)`` for every import statement of a file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((alias.name, inside, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                for alias in child.names:  # `from . import x` imports the module x
                    sub = f"{target}.{alias.name}"
                    out.append((sub if _is_module(sub) else target, inside, child.lineno))
            visit(child, inside)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


FILES = sorted(PACKAGE.rglob("*.py"))
IMPORTS = {_module_name(p): _imports(p) for p in FILES}


def _unit(module: str) -> str:
    """The subpackage a module belongs to, or the module itself at the package's top level."""
    parts = module.split(".")
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2 and not (PACKAGE / parts[1]).is_dir():
        return module  # glsim_core.runtime, glsim_core.cli, ...
    return ".".join(parts[:2])


def _methods_rank(module: str) -> int | None:
    parts = module.split(".")
    return METHODS.index(parts[1]) if len(parts) > 1 and parts[1] in METHODS else None


def _layer_problems(imports: dict[str, list[tuple[str, bool, int]]]) -> list[str]:
    problems = []
    for module, found in imports.items():
        rank = _methods_rank(module)
        if rank is None:
            continue
        for target, inside, line in found:
            top = target.split(".")[0]
            where = f"{module}:{line} imports {target}"
            if top == "glsim_core":
                target_rank = _methods_rank(target)
                if target_rank is None:
                    problems.append(f"{where}: above the methods layer")
                elif target_rank > rank:
                    problems.append(f"{where}: upwards inside the methods layer ({' <- '.join(METHODS)})")
                elif inside:
                    problems.append(f"{where} inside a function: import it at the top of the module")
            elif inside and top in OPTIONAL_INSIDE:
                continue
            elif top not in THIRD_PARTY_OK and top not in sys.stdlib_module_names and top != "__future__":
                problems.append(f"{where}: the methods layer uses only {sorted(THIRD_PARTY_OK)} and the standard "
                                "library")
    return problems


def test_the_methods_layer_imports_only_torch_timm_numpy_and_itself_downwards():
    problems = _layer_problems(IMPORTS)
    assert not problems, "\n".join(problems)


def test_no_function_level_imports_of_the_package_to_dodge_cycles():
    found = [f"{module}:{line} imports {target} inside a function"
             for module, imports in IMPORTS.items() for target, inside, line in imports
             if inside and target.split(".")[0] == "glsim_core" and (module, target) not in LAZY]
    assert not found, "\n".join(found)


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, imports in IMPORTS.items():
        src = _unit(module)
        graph.setdefault(src, set())
        for target, _inside, _line in imports:
            if target.split(".")[0] == "glsim_core" and _unit(target) != src:
                graph[src].add(_unit(target))
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_no_import_cycles_between_subpackages():
    cycles = _cycles(_unit_graph())
    assert not cycles, "import cycles between units (module- or function-level imports):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_checker_sees_what_it_must():
    """The reader resolves relative and function-level imports, and the cycle finder finds a cycle."""
    imports = dict(((t, inside) for t, inside, _ in IMPORTS["glsim_core.models.glsim"]))
    assert imports.get("glsim_core.selection.gls") is False
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _unit("glsim_core.analysis.cost") == "glsim_core.analysis"
    assert _unit("glsim_core.runtime") == "glsim_core.runtime"
    fake = {"glsim_core.pooling.x": [("glsim_core.models.glsim", False, 1), ("glsim_core.train", True, 2),
                                     ("pandas", False, 3), ("torch", False, 4)],
            "glsim_core.models.y": [("glsim_core.pooling", True, 5), ("glsim_core.selection.gls", False, 6)]}
    problems = _layer_problems(fake)
    assert len(problems) == 4 and "upwards" in problems[0] and "above" in problems[1] and "pandas" in problems[2]
    assert "inside a function" in problems[3]


@pytest.mark.parametrize("package", METHODS)
def test_methods_packages_hold_no_module_of_the_upper_layers(package):
    """What is not one of the papers' methods lives above (cost, probes, weights, demos): see glsim_core/_compat.py
    for the old paths that still import."""
    names = sorted(p.stem for p in (PACKAGE / package).glob("*.py"))
    for moved in ("flops", "probe", "cost", "demo", "shipped", "finetuned", "pretrained"):
        assert moved not in names, f"glsim_core/{package}/{moved}.py belongs above the methods layer"


def test_old_import_paths_still_resolve():
    import glsim_core.selection.flops as flops
    from glsim_core.selection.flops import dfsm_flops as old

    import glsim_core.analysis.cost as cost
    from glsim_core import _compat
    from glsim_core.selection import dfsm_flops, token_scores  # noqa: F401

    assert flops is cost and old is cost.dfsm_flops
    for old_path, homes in _compat.MOVED_MODULES.items():
        module = __import__(old_path, fromlist=["_"])
        assert module is not None, old_path
        for home in homes:
            assert _is_module(home), home
    for package, names in _compat.MOVED_NAMES.items():
        module = __import__(package, fromlist=["_"])
        for name, home in names.items():
            assert getattr(module, name) is getattr(__import__(home, fromlist=["_"]), name), (package, name)
