"""The series runner's selection and summary (``make run`` -> build/summary.md), and the index's Time column."""

import json
from pathlib import Path

import papermill as pm

from glsim_core import series


def test_select_notebooks_lists_each_notebook_once_in_order():
    everything = series.select_notebooks()
    names = [nb.name for nb in everything]
    assert names == sorted(set(names)) == [nb.name for nb in series.discover()]
    # a notebook named by number, stem and file name at once is still run once
    chosen = series.select_notebooks(["05", "05_dfsm_cost", "05_dfsm_cost.ipynb", "09", "09", "00"])
    assert [nb.name for nb in chosen] == ["00_index.ipynb", "00_quickstart.ipynb", "05_dfsm_cost.ipynb",
                                          "09_efficiency.ipynb"]


def test_series_summary_lists_every_notebook_exactly_once(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(pm, "execute_notebook", lambda src, dst, **kw: ran.append(Path(src).name))
    rows = series.run_series(out=tmp_path, only=["05", "06", "07", "08", "09", "05_dfsm_cost", "09_efficiency"])
    expected = ["05_dfsm_cost.ipynb", "06_training_hf_datasets.ipynb", "07_ablations.ipynb",
                "08_attention_maps_and_localization.ipynb", "09_efficiency.ipynb"]
    assert ran == expected
    assert [r["notebook"] for r in rows] == expected
    assert [r["notebook"] for r in json.loads((tmp_path / "summary.json").read_text())] == expected
    table = [ln for ln in (tmp_path / "summary.md").read_text().splitlines() if ln.startswith("| 0")]
    assert [ln.split(" | ")[0].lstrip("| ") for ln in table] == expected


def test_format_summary_never_repeats_a_notebook(tmp_path):
    row = {"notebook": "05_dfsm_cost.ipynb", "status": "ok", "seconds": 1.0, "figures": 0, "results": {},
           "error": ""}
    text = series.format_summary([row, {**row, "seconds": 2.0}], profile="cpu", smoke=False, out=tmp_path)
    lines = [ln for ln in text.splitlines() if "05_dfsm_cost" in ln]
    assert len(lines) == 1 and "| 2.0 |" in lines[0]
    assert "1/1 notebooks ran" in text


def test_time_estimate_is_read_from_the_first_markdown_cell():
    nb = {"cells": [{"cell_type": "markdown", "source": "# T\n\nsummary\n\n**Time:** runs in about 30 s on a "
                                                          "2-core CPU (no training);\nabout 1 hour to study.\n\nmore"}]}
    assert series.time_estimate(nb) == "runs in about 30 s on a 2-core CPU; about 1 hour to study"
    assert series.time_estimate({"cells": [{"cell_type": "markdown", "source": "# T\n\nno time"}]}) == ""
    found = {nb.number: nb.time for nb in series.discover() if nb.number in {"01", "02", "03", "04", "05"}}
    assert all(found.values()), found  # notebooks 00-05 state their time at the top
    assert all(f"| {nb.time} |" in series.index_table() for nb in series.discover() if nb.time)
