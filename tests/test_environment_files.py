"""environment.yml, binder/ and the constraints agree with pyproject.toml; CI calls the README's test command."""

import os
import re

import pytest
import tomllib
import yaml

# pip name -> acceptable conda-forge names
CONDA_NAMES = {"torch": {"pytorch", "pytorch-cpu", "pytorch-gpu"}, "huggingface-hub": {"huggingface_hub"}}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_name(req: str) -> str:
    return _norm(re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0])


def _runtime_deps(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return [_pip_name(r) for r in project["dependencies"]]


def _notebook_deps(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return [_pip_name(r) for r in project["optional-dependencies"]["notebooks"]]


def _floors(reqs):
    """{pip name: lower bound as a tuple of ints} of requirements written ``name>=X.Y``."""
    out = {}
    for req in reqs:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9.]+)", req)
        if m:
            out[_norm(m.group(1))] = tuple(int(x) for x in m.group(2).split("."))
    return out


def _conda_names(path):
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            names.add(_norm(re.split(r"[<>=!~ ]", dep, maxsplit=1)[0]))
    return env, names


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_environments_list_every_runtime_dependency(root, path):
    env, names = _conda_names(root / path)
    assert "conda-forge" in env["channels"]
    wanted = _runtime_deps(root) + _notebook_deps(root)  # conda users and Binder run the notebooks
    missing = [d for d in wanted if not ({d} | {_norm(n) for n in CONDA_NAMES.get(d, ())}) & names]
    assert not missing, f"{path} lacks {missing}"


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_environments_state_the_same_floors_as_pyproject(root, path):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    floors = _floors(project["dependencies"] + project["optional-dependencies"]["notebooks"])
    env = yaml.safe_load((root / path).read_text())
    conda = _floors([d for d in env["dependencies"] if isinstance(d, str)])
    to_conda = {pip: names for pip, names in CONDA_NAMES.items()}
    for dep, floor in floors.items():
        names = {dep} | {_norm(n) for n in to_conda.get(dep, ())}
        got = [conda[n] for n in names if n in conda]
        assert got and got[0] == floor, f"{path}: {dep} floor {got} != pyproject's {floor}"


#: APIs the code uses -> the oldest release that has them (the floors in pyproject must not be lower).
API_FLOORS = [
    (r"torch\.amp\.GradScaler", "torch", (2, 3)),
    (r"datasets\.List\(", "datasets", (4, 0)),
    (r"torch\.utils\.flop_counter", "torch", (2, 1)),
    (r"tv_tensors|transforms import v2", "torchvision", (0, 16)),
]


def test_dependency_floors_cover_the_apis_the_code_uses(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    floors = _floors(project["dependencies"])
    source = "\n".join(p.read_text() for p in (root / "glsim_core").rglob("*.py"))
    for pattern, package, version in API_FLOORS:
        if re.search(pattern, source):
            assert floors[package] >= version, f"the code uses {pattern!r}: {package} needs >= {version}"
    assert floors["torchvision"] >= (0, 18)  # torchvision 0.18 is torch 2.3's pair


def test_runtime_dependencies_leave_the_jupyter_stack_to_an_extra(root):
    """The Colab cell pip-installs the runtime list: it must not upgrade Colab's kernel stack."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    jupyter = {"jupyterlab", "ipykernel", "ipywidgets", "papermill", "notebook", "jupyter", "jupyter-client",
               "nbval", "nbclient", "nbformat", "ipython"}
    assert not jupyter & set(_runtime_deps(root))
    assert {"jupyterlab", "ipykernel", "ipywidgets", "papermill"} <= set(_notebook_deps(root))
    dev = project["optional-dependencies"]["dev"]
    assert "glsim-core[notebooks]" in dev  # `make install` (.[dev]) and CI still get the notebook stack
    assert project["name"] == "glsim-core"
    makefile = (root / "Makefile").read_text()
    assert '".[dev]"' in makefile


def test_binder_uses_cpu_pytorch_and_its_scripts_work(root):
    _, names = _conda_names(root / "binder/environment.yml")
    assert "pytorch-cpu" in names and "torchvision" in names
    for script in ("postBuild", "start"):
        path = root / "binder" / script
        assert path.is_file() and os.access(path, os.X_OK), f"binder/{script} must exist and be executable"
        assert path.read_text().startswith("#!/usr/bin/env bash")
    post = (root / "binder/postBuild").read_text()
    assert "pip install" in post and "-e ." in post and (root / "pyproject.toml").is_file()
    assert "glsim_core env" in post
    start = (root / "binder/start").read_text()
    assert "GLSIM_PROFILE=cpu" in start and 'exec "$@"' in start


def test_environment_yml_installs_this_package(root):
    env = yaml.safe_load((root / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(item.startswith("-e .") for item in pip_section)


def test_pyproject_has_lower_bounds_only_and_dev_extra(root):
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["dev"]:
        assert "==" not in req and "<" not in req, f"no exact pins or upper bounds in pyproject: {req}"
    required = {"torch", "torchvision", "timm", "datasets", "seaborn", "matplotlib", "tqdm", "numpy", "pandas",
                "scikit-image"}
    assert required <= set(_runtime_deps(root))
    dev = {_pip_name(r) for r in project["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval", "ruff"} <= dev
    assert "papermill" in set(_notebook_deps(root))


def test_constraints_pin_a_torch_torchvision_pair(root):
    pins = dict(line.split("==", 1) for line in (root / "requirements/constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    pins = {_norm(k): v for k, v in pins.items()}
    assert "torch" in pins and "torchvision" in pins
    assert not pins["torch"].startswith("2.13"), "2.13 would pick the local CPU wheel that registry torchvision rejects"
    for dep in _runtime_deps(root) + _notebook_deps(root):
        assert dep in pins, f"constraints lack {dep}: run `make lock`"


def test_ci_runs_exactly_the_readme_test_command(root):
    readme = (root / "README.md").read_text()
    ci = (root / ".ci/run").read_text()
    assert "make test" in readme and "make run" in readme
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert commands[-1] == "make test"
    assert os.access(root / ".ci/run", os.X_OK)
