"""The notebook series: conventions, the generated index, the Colab cell."""

import json
import shutil
import sys
import types
from pathlib import Path

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


def _run_colab_cell(monkeypatch, tmp_path, on_colab):
    """Run the Colab cell with a fake ``google.colab`` and a stubbed ``subprocess.run``: the stubbed pip
    "installs" a marker package named ``glsim_core`` into a site directory that is not on ``sys.path`` yet, and
    ``glsim_core`` is hidden from the test process, so the cell's final ``import glsim_core`` only succeeds if the
    cell makes a fresh, non-editable install importable in the same process."""
    import os
    import site
    import subprocess

    calls = []
    site_dir = tmp_path / "site-packages"

    def run(cmd, *args, **kwargs):
        assert kwargs.get("check") is True  # a failed clone or install stops the cell
        calls.append(list(cmd))
        if cmd[1:4] == ["-m", "pip", "install"]:
            pkg = site_dir / "glsim_core"
            pkg.mkdir(parents=True)
            (pkg / "__init__.py").write_text('__version__ = "installed-by-pip"\n')
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(site_dir)])
    monkeypatch.setattr(site, "getusersitepackages", lambda: str(tmp_path / "no-user-site"))
    monkeypatch.setattr(os, "chdir", lambda path: calls.append(["chdir", str(path)]))
    monkeypatch.setenv("GLSIM_ROOT", "set-by-the-test")  # so that teardown restores GLSIM_ROOT whatever the cell does
    monkeypatch.delenv("GLSIM_ROOT")
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    for name in [m for m in sys.modules if m == "glsim_core" or m.startswith("glsim_core.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", [p for p in sys.path
                                      if not (Path(p or ".").resolve() / "glsim_core").is_dir()])
    code = TransformerManager().transform_cell(series.colab_cell())
    namespace: dict = {}
    exec(compile(code, "<colab-cell>", "exec"), namespace)
    return calls, namespace, str(site_dir)


def test_colab_cell_is_a_no_op_outside_colab(monkeypatch, tmp_path):
    calls, namespace, _ = _run_colab_cell(monkeypatch, tmp_path, on_colab=False)
    assert calls == [] and "glsim_core" not in namespace


def test_colab_cell_installs_this_repo_non_editable_and_imports_it_in_the_same_process(monkeypatch, tmp_path):
    import os

    calls, namespace, site_dir = _run_colab_cell(monkeypatch, tmp_path, on_colab=True)
    clone, pip, chdir = calls
    assert clone == ["git", "clone", "--quiet", "--depth", "1", "--branch", glsim_core.COLAB_REF,
                     f"https://github.com/{glsim_core.REPO_SLUG}.git", series.COLAB_DEST]
    assert pip == [sys.executable, "-m", "pip", "install", "--quiet", series.COLAB_DEST]
    assert "-e" not in pip and "--editable" not in pip and "--upgrade" not in pip and "-U" not in pip
    assert not any(name in " ".join(pip) for name in ("jupyter", "ipykernel", "ipywidgets", "papermill", "nbval"))
    assert chdir == ["chdir", os.path.join(series.COLAB_DEST, "notebooks")]
    assert os.environ["GLSIM_ROOT"] == series.COLAB_DEST
    # the next cell's `import glsim_core` works without a restart: the fresh install, from the new site dir
    assert namespace["glsim_core"].__version__ == "installed-by-pip"
    assert namespace["glsim_core"].__file__.startswith(site_dir) and site_dir in sys.path


def test_colab_cell_uses_no_magics_and_the_configured_ref():
    cell = series.colab_cell()
    assert "!" not in cell.replace("!=", "") and "%pip" not in cell and "%cd" not in cell
    assert f'"{glsim_core.COLAB_REF}"' in cell and f"github.com/{glsim_core.REPO_SLUG}.git" in cell


def _git_ref_exists(root, ref):
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(root), "for-each-ref", "--format=%(refname)"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pytest.skip("git is not available")
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    refs = out.stdout.split()
    return any(r in (f"refs/heads/{ref}", f"refs/tags/{ref}") or (r.startswith("refs/remotes/")
               and r.endswith(f"/{ref}")) for r in refs)


def test_badges_use_the_configured_repository_at_a_ref_that_exists(root):
    import re

    assert _git_ref_exists(root, glsim_core.COLAB_REF), (
        f"COLAB_REF {glsim_core.COLAB_REF!r} is neither a branch nor a tag of this repository: badges and the "
        "Colab cell would not resolve")
    texts = [(root / "README.md").read_text(), (root / "notebooks" / "00_index.ipynb").read_text()]
    colab = [u for t in texts for u in re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"]+", t)]
    binder = [u for t in texts for u in re.findall(r"https://mybinder\.org/v2/gh/[^)\s\"]+", t)]
    assert len(colab) >= 10 and len(binder) == len(colab)
    for url in colab:
        assert url.startswith(f"https://colab.research.google.com/github/{glsim_core.REPO_SLUG}/blob/"
                              f"{glsim_core.COLAB_REF}/notebooks/"), url
    for url in binder:
        assert url.startswith(f"https://mybinder.org/v2/gh/{glsim_core.REPO_SLUG}/{glsim_core.COLAB_REF}?"), url


def test_repository_and_ref_are_set_in_one_place(root):
    import tomllib

    # only glsim_core/__init__.py names the repository; everything else is generated from it
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert glsim_core.__version__ == project["version"]
    for path in [root / "pyproject.toml", *(root / "glsim_core").rglob("*.py")]:
        if path.name != "__init__.py" or path.parent.name != "glsim_core":
            assert glsim_core.REPO_SLUG not in path.read_text(), f"{path} hard-codes the repository"


@pytest.mark.parametrize("nb", series.discover(), ids=lambda nb: nb.stem)
def test_parameters_cell_has_the_standard_names(nb):
    params = series.parameters_of(nb.path)
    assert {"PROFILE", "SMOKE", "OUT_DIR"} <= set(params), params
    assert params["OUT_DIR"].strip("\"'") == f"../build/{nb.stem}"
