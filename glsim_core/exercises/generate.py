"""Student notebooks from the solution notebooks: one source of truth, and the ``exercises`` command.

The solution notebooks ``notebooks/exercises/solutions/NN_name.ipynb`` carry the answers; the student notebooks
``notebooks/exercises/NN_name.ipynb`` are generated from them and never edited by hand. The rules:

* **Code answers** sit between two marker lines in a code cell::

      def weighted_power_mean(v, a, alpha):
          \"\"\"...\"\"\"
          ### BEGIN SOLUTION
          ...
          ### END SOLUTION

  and become, at the BEGIN marker's indentation, ``# your code here`` and ``raise NotImplementedError("your code
  here")`` (so the student's function raises until it is written, and the check reports "not implemented yet").
* **Written answers** sit between ``<!-- BEGIN ANSWER -->`` and ``<!-- END ANSWER -->`` lines in a markdown cell
  and become ``*Your answer here.*``.
* A cell tagged ``solution`` is replaced as a whole (code: the stub; markdown: the answer placeholder); a cell
  tagged ``solution-only`` (e.g. instructor notes) is dropped.
* Every output is cleared and execution counts are reset: students start from a clean notebook. The parameters
  cell's ``OUT_DIR`` is pointed at ``build/exercises/<stem>`` (the solutions write to
  ``build/exercises/solutions/<stem>``), and markdown links to the series (``](../../NN_x.ipynb)`` from
  ``solutions/``) are rewritten for the student notebook's folder (``](../NN_x.ipynb)``).

:func:`generate` writes the student notebooks; :func:`out_of_sync` lists what differs from what is committed
(``python -m glsim_core exercises check``, and a test, fail on any difference).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from pathlib import Path

from ..paths import repo_root
from .catalog import TABLE_END, TABLE_START, notes_table, readme_table
from .grading import STUB_MESSAGE

__all__ = ["BEGIN_SOLUTION", "END_SOLUTION", "BEGIN_ANSWER", "END_ANSWER", "ANSWER_PLACEHOLDER", "stub_lines",
           "exercises_dir", "solutions_dir", "solution_paths", "student_notebook", "render", "generate",
           "out_of_sync"]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_ANSWER, END_ANSWER = "<!-- BEGIN ANSWER -->", "<!-- END ANSWER -->"
ANSWER_PLACEHOLDER = "*Your answer here.*"
TAG_SOLUTION, TAG_SOLUTION_ONLY = "solution", "solution-only"
_OUT_DIR_RE = re.compile(r'^OUT_DIR = "[^"\n]*"', re.MULTILINE)
_NAME_RE = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")


def stub_lines(indent: str = "") -> list[str]:
    """What replaces a code answer."""
    return [f"{indent}# your code here", f'{indent}raise NotImplementedError("{STUB_MESSAGE}")']


def exercises_dir(root: str | Path | None = None) -> Path:
    return (Path(root) if root else repo_root()) / "notebooks" / "exercises"


def solutions_dir(root: str | Path | None = None) -> Path:
    return exercises_dir(root) / "solutions"


def solution_paths(folder: str | Path | None = None) -> list[Path]:
    """The solution notebooks ``NN_name.ipynb``, sorted."""
    folder = Path(folder) if folder else solutions_dir()
    return sorted(p for p in folder.glob("*.ipynb") if _NAME_RE.match(p.name))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _strip_regions(text: str, begin: str, end: str, replacement, where: str) -> tuple[str, int]:
    """Replace every ``begin`` ... ``end`` line region; ``replacement(indent)`` gives the new lines."""
    out: list[str] = []
    inside, count, indent = False, 0, ""
    for line in text.split("\n"):
        marker = line.strip()
        if marker == begin:
            if inside:
                raise ValueError(f"{where}: nested '{begin}' (close the region above with '{end}' first)")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            count += 1
            out.extend(replacement(indent))
        elif marker == end:
            if not inside:
                raise ValueError(f"{where}: '{end}' without a matching '{begin}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: '{begin}' is never closed with '{end}'")
    return "\n".join(out), count


def _student_cell(cell: dict, where: str) -> tuple[dict | None, int]:
    """The student version of one cell and the number of answers it hides."""
    tags = cell.get("metadata", {}).get("tags", [])
    if TAG_SOLUTION_ONLY in tags:
        return None, 0
    new = copy.deepcopy(cell)
    meta = {k: v for k, v in new.get("metadata", {}).items() if k in ("tags", "jupyter", "editable", "deletable")}
    if "tags" in meta:
        meta["tags"] = [t for t in meta["tags"] if t != TAG_SOLUTION]
        if not meta["tags"]:
            meta.pop("tags")
    new["metadata"] = meta
    text = _source(cell)
    hidden = 0
    if cell["cell_type"] == "code":
        new["outputs"], new["execution_count"] = [], None
        if TAG_SOLUTION in tags:
            text, hidden = "\n".join(stub_lines()), 1
        else:
            text, hidden = _strip_regions(text, BEGIN_SOLUTION, END_SOLUTION, stub_lines, where)
        if BEGIN_ANSWER in text:
            raise ValueError(f"{where}: '{BEGIN_ANSWER}' belongs in a markdown cell")
    else:
        if TAG_SOLUTION in tags:
            text, hidden = ANSWER_PLACEHOLDER, 1
        else:
            text, hidden = _strip_regions(text, BEGIN_ANSWER, END_ANSWER, lambda _i: [ANSWER_PLACEHOLDER], where)
        if BEGIN_SOLUTION in text:
            raise ValueError(f"{where}: '{BEGIN_SOLUTION}' belongs in a code cell")
        text = text.replace("](../../", "](../")  # links to the series, from notebooks/exercises/
    _set_source(new, text)
    return new, hidden


def student_notebook(nb: dict, stem: str, where: str = "") -> dict:
    """The student version of a solution notebook (a new dict; ``nb`` is not modified)."""
    where = where or stem
    cells, hidden = [], 0
    for i, cell in enumerate(nb.get("cells", [])):
        new, n = _student_cell(cell, f"{where}, cell {i + 1}")
        hidden += n
        if new is None:
            continue
        if "parameters" in new.get("metadata", {}).get("tags", []):
            text = _source(new)
            if not _OUT_DIR_RE.search(text):
                raise ValueError(f"{where}: the parameters cell needs a line OUT_DIR = \"...\"")
            _set_source(new, _OUT_DIR_RE.sub(f'OUT_DIR = "../../build/exercises/{stem}"', text, count=1))
        cells.append(new)
    if hidden == 0:
        raise ValueError(f"{where}: no answer to hide (mark code answers with '{BEGIN_SOLUTION}' ... "
                         f"'{END_SOLUTION}', written answers with '{BEGIN_ANSWER}' ... '{END_ANSWER}')")
    meta = nb.get("metadata", {})
    metadata = {"kernelspec": meta.get("kernelspec", {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                                         "language": "python"}),
                "language_info": {"name": "python"},
                "glsim_exercises": {"generated_from": f"solutions/{stem}.ipynb",
                                    "note": "generated by `python -m glsim_core exercises generate`: edit the "
                                            "solution notebook, not this one"}}
    return {"cells": cells, "metadata": metadata, "nbformat": nb.get("nbformat", 4),
            "nbformat_minor": nb.get("nbformat_minor", 5)}


def render(nb: dict) -> str:
    """The exact text a notebook is written with (as ``glsim_core.series`` writes notebooks)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def _students(solutions: Iterable[Path]) -> dict[str, str]:
    out = {}
    for path in solutions:
        nb = json.loads(path.read_text())
        out[path.name] = render(student_notebook(nb, path.stem, where=str(path)))
    return out


def _tables(root: Path) -> dict[Path, str]:
    """The files that carry a generated exercise table, with their up-to-date text (those that exist)."""

    out = {}
    for path, table in ((root / "README.md", readme_table()),
                        (exercises_dir(root) / "README.md", notes_table())):
        if path.is_file():
            text = path.read_text()
            if TABLE_START in text and TABLE_END in text:
                out[path] = _replace_between_markers(text, table, TABLE_START, TABLE_END)
    return out


def _replace_between_markers(text: str, block: str, start: str, end: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def generate(solutions: str | Path | None = None, out: str | Path | None = None,
             tables: bool | None = None) -> list[Path]:
    """Write the student notebook of every solution notebook into ``out`` (default ``notebooks/exercises``);
    return the files that changed. ``tables`` (default: when ``out`` is the default) also refreshes the exercise
    tables of the README and of the instructor notes."""
    solutions = Path(solutions) if solutions else solutions_dir()
    tables = out is None if tables is None else tables
    out = Path(out) if out else solutions.parent
    paths = solution_paths(solutions)
    if not paths:
        raise ValueError(f"no solution notebooks (NN_name.ipynb) in {solutions}")
    out.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in _students(paths).items():
        target = out / name
        if not target.is_file() or target.read_text() != text:
            target.write_text(text)
            changed.append(target)
    if tables:
        for path, text in _tables(solutions.resolve().parents[2]).items():
            if path.read_text() != text:
                path.write_text(text)
                changed.append(path)
    return changed


def out_of_sync(solutions: str | Path | None = None, students: str | Path | None = None,
                tables: bool | None = None) -> list[str]:
    """Problems between the solution notebooks and the committed student notebooks, and stale exercise tables in
    the READMEs (``tables``, default: when checking the repository's own folders); empty: in sync."""
    tables = (solutions is None and students is None) if tables is None else tables
    solutions = Path(solutions) if solutions else solutions_dir()
    students = Path(students) if students else solutions.parent
    problems = []
    if tables:
        for path, text in _tables(solutions.resolve().parents[2]).items():
            if path.read_text() != text:
                problems.append(f"{path}: its exercise table is out of date (generate it)")
    expected = _students(solution_paths(solutions))
    for name, text in expected.items():
        path = students / name
        if not path.is_file():
            problems.append(f"{path}: missing (generate it)")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from what its solution notebook generates")
    for path in solution_paths(students):
        if path.name not in expected:
            problems.append(f"{path}: no solution notebook solutions/{path.name} (delete it or add the solution)")
    return problems


# ---------------------------------------------------------------------------------------------------- CLI
