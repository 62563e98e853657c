"""Notebooks run headless through papermill with injected parameters, and record what they measured."""

import json
import subprocess
import sys

import papermill as pm
import pytest

from glsim_core.notebook import load_results

pytestmark = pytest.mark.notebook


def test_quickstart_with_injected_parameters_records_them(root, tmp_path):
    out_dir = tmp_path / "quickstart"
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(
        str(root / "notebooks" / "00_quickstart.ipynb"), str(executed), cwd=str(root / "notebooks"),
        parameters={"SEED": 3, "IMAGE": "chelsea", "IMG_SIZE": 32, "OUT_DIR": str(out_dir)},
        kernel_name="python3", progress_bar=False,
    )
    results = load_results(out_dir)
    assert results["seed"] == 3
    assert results["image"] == "chelsea"
    assert results["img_size"] == 32
    assert results["num_patches"] == (32 // 8) ** 2  # the injected size reached the model
    assert 0 < results["attention_entropy"] <= results["max_entropy"] + 1e-6
    assert (out_dir / "figures" / "cls_attention.png").is_file()
    cells = json.loads(executed.read_text())["cells"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)


def test_series_runner_executes_and_summarises(root, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "glsim_core", "run", "--only", "00_quickstart", "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=root,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert [r["notebook"] for r in rows] == ["00_quickstart.ipynb"]
    assert rows[0]["status"] == "ok" and rows[0]["figures"] == 2  # glsim_crops, cls_attention
    assert rows[0]["results"]["profile"] == "cpu"
    assert (tmp_path / "notebooks" / "00_quickstart.ipynb").is_file()
    assert "1/1 notebooks ran" in proc.stdout
