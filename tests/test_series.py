"""The notebook series: conventions, the generated index, the Colab cell."""

import json
import shutil
import sys
import types

import pytest
from IPython.core.inputtransformer2 import TransformerManager

import glsim_core
from glsim_core import series


def test_every_numbered_notebook_follows_the_conventions():
    notebooks = series.discover()
    assert [nb.name for nb in notebooks][:2] == ["00_index.ipynb", "00_quickstart.ipynb"]
    for nb in notebooks:
        assert series.check_conventions(nb.path) == [], nb.name
        assert nb.title and nb.summary, f"{nb.name}: first markdown cell needs '# Title' and a summary line"


def test_readme_and_index_tables_are_up_to_date(root, tmp_path):
    copy = tmp_path / "repo"
    (copy / "notebooks").mkdir(parents=True)
    shutil.copy(root / "README.md", copy / "README.md")
    for nb in series.discover():
        shutil.copy(nb.path, copy / "notebooks" / nb.name)
    assert series.update_index(copy) == [], "run `make index` and commit the result"
    readme = (root / "README.md").read_text()
    for nb in series.discover():
        assert f"(notebooks/{nb.name})" in readme
        assert series.colab_url(nb.name) in readme and series.binder_url(nb.name) in readme


def test_check_conventions_catches_problems(tmp_path, root):
    nb = json.loads((root / "notebooks" / "00_quickstart.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    code[0]["source"] = "print('no colab cell')"
    code[2]["metadata"]["tags"] = []
    code[3]["execution_count"] = None
    code[4]["outputs"].append({"output_type": "error", "ename": "E", "evalue": "", "traceback": []})
    bad = tmp_path / "7_Bad.ipynb"
    bad.write_text(json.dumps(nb))
    problems = " | ".join(series.check_conventions(bad))
    for expected in ("NN_topic", "Colab install cell", "parameters", "top-to-bottom", "error output"):
        assert expected in problems


def _run_colab_cell(monkeypatch, on_colab):
    calls = []
    fake_ip = types.SimpleNamespace(system=lambda cmd: calls.append(("!", cmd)),
                                    run_line_magic=lambda name, arg: calls.append((name, arg)))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    code = TransformerManager().transform_cell(series.colab_cell())
    exec(compile(code, "<colab-cell>", "exec"), {"get_ipython": lambda: fake_ip})
    return calls


def test_colab_cell_is_a_no_op_outside_colab(monkeypatch):
    assert _run_colab_cell(monkeypatch, on_colab=False) == []


def test_colab_cell_installs_this_repo_at_a_fixed_ref_on_colab(monkeypatch):
    calls = _run_colab_cell(monkeypatch, on_colab=True)
    assert calls[0][0] == "!" and f"--branch {glsim_core.COLAB_REF}" in calls[0][1]
    assert f"github.com/{glsim_core.REPO_SLUG}.git" in calls[0][1]
    assert calls[1] == ("pip", "install --quiet -e /content/glsim")
    assert calls[2] == ("cd", "/content/glsim/notebooks")


def test_colab_ref_is_the_release_tag_of_this_version(root):
    import tomllib

    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    assert glsim_core.__version__ == version
    assert glsim_core.COLAB_REF == f"v{version}"


@pytest.mark.parametrize("nb", series.discover(), ids=lambda nb: nb.stem)
def test_parameters_cell_has_the_standard_names(nb):
    params = series.parameters_of(nb.path)
    assert {"PROFILE", "SMOKE", "OUT_DIR"} <= set(params), params
    assert params["OUT_DIR"].strip("\"'") == f"../build/{nb.stem}"
