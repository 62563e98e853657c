"""Grade submitted exercise notebooks: execute each in a fresh kernel and collect what its checks recorded.

Every exercise notebook ends with ``record(OUT_DIR, checks=scoreboard([...]))``. :func:`grade` runs a notebook in
a fresh kernel (``OUT_DIR`` injected after its parameters cell, as papermill would), reads
``OUT_DIR/results.json`` and returns one row per exercise the notebook is expected to check (an exercise the
notebook never checked, or a notebook that failed to run, is reported as such).
``python -m glsim_core exercises grade submission.ipynb ...`` prints the table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .catalog import NOTEBOOKS, exercises_in

__all__ = ["grade", "format_grades"]


def _stem_of(path: Path) -> str:
    """The exercise notebook a submission belongs to: its own name, or (for renamed files) the name it was
    generated from (``glsim_exercises`` metadata)."""
    if path.stem in NOTEBOOKS:
        return path.stem
    meta = json.loads(path.read_text()).get("metadata", {}).get("glsim_exercises", {})
    origin = Path(meta.get("generated_from", "")).stem
    return origin if origin in NOTEBOOKS else path.stem


def _execute(path: Path, run_dir: Path, timeout: int) -> str:
    """Execute ``path`` in a fresh kernel (its folder as cwd) with ``OUT_DIR`` injected after its parameters cell
    (as papermill injects parameters); write the executed copy to ``run_dir``; return "" or the error."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), -1)
    cell = nbformat.v4.new_code_cell(f"# injected by `python -m glsim_core exercises grade`\n"
                                     f"OUT_DIR = {str(run_dir)!r}")
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", shutdown_kernel="immediate",
                                     resources={"metadata": {"path": str(path.parent.resolve())}})
    error = ""
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a dead kernel, a timeout...: report, grade the others
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1] if lines else ''}"
    finally:
        nbformat.write(nb, run_dir / path.name)
    return error


def grade(paths: Iterable[str | Path], out: str | Path, timeout: int = 600) -> list[dict[str, Any]]:
    """Execute each notebook (its folder as cwd) into ``out/<name>/`` and return one row per expected exercise:
    notebook, exercise, status ("passed", "failed", "not_implemented", "not checked", "notebook failed"),
    cases passed / total, the stub's message, the notebook's error (if any), seconds."""
    out = Path(out)
    rows = []
    for path in map(Path, paths):
        run_dir = (out / path.stem).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        results = run_dir / "results.json"
        results.unlink(missing_ok=True)
        start = time.perf_counter()
        error = _execute(path, run_dir, timeout)
        seconds = round(time.perf_counter() - start, 1)
        checks = json.loads(results.read_text()).get("checks", {}) if results.is_file() else {}
        expected = [e.name for e in exercises_in(_stem_of(path))] or list(checks)
        for name in dict.fromkeys([*expected, *checks]):
            c = checks.get(name)
            if c is None:
                status = "notebook failed" if error else "not checked"
            else:
                status = c["status"]
            cases = c["cases"] if c else []
            rows.append(dict(notebook=path.name, exercise=name, status=status,
                             passed=sum(x["status"] == "passed" for x in cases), cases=len(cases),
                             message=c.get("message", "") if c else "", error=error, seconds=seconds))
    return rows


def format_grades(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of :func:`grade`'s rows."""
    lines = [f"{'notebook':38s} {'exercise':20s} {'status':16s} cases"]
    for r in rows:
        lines.append(f"{r['notebook']:38s} {r['exercise']:20s} {r['status']:16s} {r['passed']}/{r['cases']}"
                     + (f"  ({r['error']})" if r["error"] else ""))
    return "\n".join(lines)
