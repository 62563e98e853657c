"""The exercise notebooks: generated from the solutions (one source of truth), in sync, following the series'
conventions; every solution passes its checks and every untouched student stub reports "not implemented" when
executed in a fresh kernel."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from glsim_core import series
from glsim_core.exercises import EXERCISES, NOTEBOOKS, STUB_MESSAGE, exercises_in
from glsim_core.exercises.catalog import notes_table, readme_table
from glsim_core.exercises.generate import (
    ANSWER_PLACEHOLDER,
    BEGIN_ANSWER,
    BEGIN_SOLUTION,
    END_SOLUTION,
    generate,
    out_of_sync,
    solution_paths,
    solutions_dir,
    student_notebook,
)
from glsim_core.exercises.grade import format_grades, grade

SOLUTIONS = solution_paths()


def _cell(kind, source, tags=None, **extra):
    cell = {"cell_type": kind, "metadata": {"tags": tags} if tags else {}, "source": source, **extra}
    if kind == "code":
        cell.setdefault("outputs", [{"output_type": "stream", "name": "stdout", "text": "secret answer 42\n"}])
        cell.setdefault("execution_count", 3)
    return cell


def _nb(*cells):
    params = _cell("code", 'SEED = 0\nOUT_DIR = "../../../build/exercises/solutions/99_x"\n', ["parameters"])
    return {"cells": [params, *cells], "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
            "nbformat_minor": 5}


def _src(cell):
    return "".join(cell["source"])


# ------------------------------------------------------------------------------------------------ the generator
def test_code_answers_become_an_indented_stub_and_outputs_are_cleared():
    code = ("def f(x):\n    \"\"\"doc\"\"\"\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n"
            "    ### END SOLUTION\n\n\nprint(f)")
    out = student_notebook(_nb(_cell("code", code)), "99_x")
    cell = out["cells"][1]
    assert _src(cell) == ('def f(x):\n    """doc"""\n    # your code here\n'
                          f'    raise NotImplementedError("{STUB_MESSAGE}")\n\n\nprint(f)')
    assert cell["outputs"] == [] and cell["execution_count"] is None
    assert "secret" not in json.dumps(out)


def test_written_answers_tags_out_dir_and_links():
    md = f"Predict:\n\n{BEGIN_ANSWER}\nThe model answer.\n<!-- END ANSWER -->\n\nSee [01](../../01_x.ipynb)."
    nb = _nb(_cell("markdown", md), _cell("code", "answer = 42", ["solution"]),
             _cell("markdown", "instructor only", ["solution-only"]), _cell("markdown", "whole answer", ["solution"]))
    out = student_notebook(nb, "99_x")
    cells = out["cells"]
    assert len(cells) == 4  # the solution-only cell is dropped
    assert _src(cells[0]).startswith('SEED = 0\nOUT_DIR = "../../build/exercises/99_x"')
    assert _src(cells[1]) == f"Predict:\n\n{ANSWER_PLACEHOLDER}\n\nSee [01](../01_x.ipynb)."
    assert _src(cells[2]) == f'# your code here\nraise NotImplementedError("{STUB_MESSAGE}")'
    assert _src(cells[3]) == ANSWER_PLACEHOLDER
    assert "tags" not in cells[2]["metadata"] and cells[0]["metadata"]["tags"] == ["parameters"]
    assert "model answer" not in json.dumps(out) and "instructor only" not in json.dumps(out)
    assert out["metadata"]["glsim_exercises"]["generated_from"] == "solutions/99_x.ipynb"


@pytest.mark.parametrize("source, message", [
    (f"{BEGIN_SOLUTION}\nx = 1\n", "never closed"),
    (f"x = 1\n{END_SOLUTION}\n", "without a matching"),
    (f"{BEGIN_SOLUTION}\n{BEGIN_SOLUTION}\n{END_SOLUTION}\n{END_SOLUTION}\n", "nested"),
    ("x = 1\n", "no answer to hide"),
])
def test_malformed_markers_are_errors_that_name_the_cell(source, message):
    with pytest.raises(ValueError, match=message) as info:
        student_notebook(_nb(_cell("code", source)), "99_x")
    if message != "no answer to hide":
        assert "cell 2" in str(info.value)


def test_a_parameters_cell_without_out_dir_is_an_error():
    nb = _nb(_cell("code", f"{BEGIN_SOLUTION}\nx = 1\n{END_SOLUTION}"))
    nb["cells"][0]["source"] = "SEED = 0\n"
    with pytest.raises(ValueError, match="OUT_DIR"):
        student_notebook(nb, "99_x")


# ------------------------------------------------------------------------------------------------ sync
def test_student_notebooks_and_tables_are_in_sync_with_the_solutions():
    assert out_of_sync() == [], "run `make exercises` (python -m glsim_core exercises generate) and commit"


def test_regenerating_into_a_tmp_dir_reproduces_the_committed_student_notebooks(tmp_path):
    written = generate(out=tmp_path)
    assert sorted(p.name for p in written) == sorted(p.name for p in SOLUTIONS)
    for path in SOLUTIONS:
        committed = solutions_dir().parent / path.name
        assert (tmp_path / path.name).read_bytes() == committed.read_bytes(), path.name


def test_out_of_sync_reports_edited_missing_and_orphaned_student_notebooks(tmp_path):
    generate(out=tmp_path)
    first, second = sorted(tmp_path.glob("*.ipynb"))[:2]
    first.write_text(first.read_text().replace("your code here", "edited by hand"))
    second.unlink()
    shutil.copy(first, tmp_path / "42_orphan.ipynb")
    problems = " | ".join(out_of_sync(students=tmp_path))
    assert f"{first.name}: differs" in problems
    assert f"{second.name}: missing" in problems
    assert "42_orphan.ipynb: no solution notebook" in problems


def test_cli_check_and_list(root):
    proc = subprocess.run([sys.executable, "-m", "glsim_core", "exercises", "check"], capture_output=True,
                          text=True, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(SOLUTIONS)} student notebooks in sync" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "glsim_core", "exercises", "grade", "missing.ipynb"],
                          capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == 2 and "no such notebook" in proc.stderr and "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------ structure
def test_every_exercise_notebook_has_a_solution_and_a_student_version():
    assert {p.stem for p in SOLUTIONS} == set(NOTEBOOKS)
    for stem in NOTEBOOKS:
        assert (solutions_dir().parent / f"{stem}.ipynb").is_file()
    assert sum(len(exercises_in(stem)) for stem in NOTEBOOKS) == len(EXERCISES)


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solution_notebooks_follow_the_series_conventions_and_check_their_exercises(path):
    assert series.check_conventions(path) == []
    nb = json.loads(path.read_text())
    code = "\n".join(_src(c) for c in nb["cells"] if c["cell_type"] == "code")
    names = [e.name for e in exercises_in(path.stem)]
    assert set(re.findall(r"\bcheck_(\w+)\(", code)) == set(names)
    assert f"scoreboard({names!r})".replace("'", '"') in code
    assert code.count(BEGIN_SOLUTION) >= len(names)
    for c in nb["cells"]:
        for out in c.get("outputs", []):
            text = "".join(out.get("text", ""))
            assert "not implemented" not in text and "❌" not in text  # committed with passing checks


@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_student_notebooks_are_clean(path):
    student = solutions_dir().parent / path.name
    nb = json.loads(student.read_text())
    text = json.dumps(nb)
    assert BEGIN_SOLUTION not in text and BEGIN_ANSWER not in text and "Instructor version" not in text
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    solution = json.loads(path.read_text())
    regions = sum(_src(c).count(BEGIN_SOLUTION) for c in solution["cells"] if c["cell_type"] == "code")
    assert sum(_src(c).count(f'raise NotImplementedError("{STUB_MESSAGE}")') for c in code) == regions
    answers = sum(_src(c).count(BEGIN_ANSWER) for c in solution["cells"])
    mentioned = sum(_src(c).count(ANSWER_PLACEHOLDER) for c in solution["cells"])  # e.g. in the instructions
    assert sum(_src(c).count(ANSWER_PLACEHOLDER) for c in nb["cells"]) == answers + mentioned
    problems = series.check_conventions(student)
    assert len(problems) == 1 and "top-to-bottom" in problems[0]  # everything else, as for the series


def test_readmes_and_series_notebooks_link_the_exercises(root):
    readme = (root / "README.md").read_text()
    assert readme_table() in readme
    notes = (root / "notebooks" / "exercises" / "README.md").read_text()
    assert notes_table() in notes
    for e in EXERCISES:
        assert f"`{e.check}`" in notes and f"{e.minutes} min" in notes
    for stem, (beside, _title) in NOTEBOOKS.items():
        assert f"(notebooks/exercises/{stem}.ipynb)" in readme
        assert series.colab_url(f"exercises/{stem}.ipynb") in readme
        text = (root / "notebooks" / f"{beside}.ipynb").read_text()
        assert f"(exercises/{stem}.ipynb)" in text, f"{beside} should link its exercises"


# ------------------------------------------------------------------------------------------------ execution
@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_solution_passes_its_checks_in_a_fresh_kernel(path, tmp_path):
    rows = grade([path], tmp_path / "graded")
    assert rows and all(r["error"] == "" for r in rows), format_grades(rows)
    assert {r["exercise"] for r in rows} == {e.name for e in exercises_in(path.stem)}
    assert all(r["status"] == "passed" and r["passed"] == r["cases"] > 0 for r in rows), format_grades(rows)


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_every_generated_student_notebook_runs_and_reports_its_stubs(path, tmp_path):
    generated = tmp_path / "students"
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    shutil.copy(path, solutions / path.name)
    generate(solutions, generated)
    rows = grade([generated / path.name], tmp_path / "graded")
    assert rows and all(r["error"] == "" for r in rows), format_grades(rows)  # ran without any error
    assert {r["exercise"] for r in rows} == {e.name for e in exercises_in(path.stem)}
    for r in rows:
        assert r["status"] == "not_implemented" and r["message"] == STUB_MESSAGE, format_grades(rows)
