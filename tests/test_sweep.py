"""glsim_core.experiments.sweep: parsing, grid expansion, key validation, skip-done, failures, tidy table, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from glsim_core.cli import main
from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark
from glsim_core.experiments.sweep import (
    RUN_FILE,
    collect,
    expand_grid,
    parse_assignments,
    parse_grid,
    parse_seeds,
    parse_value,
    resolve_target,
    run_sweep,
)

TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    spec = BenchmarkSpec(num_classes=3, train_size=36, test_size=12, seed=5)
    return generate_benchmark(spec, tmp_path_factory.mktemp("bench") / "b", workers=1, progress=False)


def fixed(bench, **kw):
    out = {"dataset": str(bench), "img_size": 32, "epochs": 1, "batch_size": 16, "pretrained": False,
           "max_train_samples": 24, "model_kwargs": dict(TINY), "augreg": "minimal"}
    out.update(kw)
    return out


# ------------------------------------------------------------------------------------------------ parsing
@pytest.mark.parametrize("text, value", [("8", 8), ("-3", -3), ("0.5", 0.5), ("1e-3", 1e-3), ("true", True),
                                         ("False", False), ("none", None), ("null", None), ("cosine", "cosine"),
                                         ("[1, 2]", [1, 2]), ('{"a": 1}', {"a": 1}), ("vit_nano", "vit_nano")])
def test_parse_value(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_parse_grid_and_assignments():
    grid = parse_grid(["model_kwargs.top_o=4,8,16", "metric=l1,l2", "shape=[1,2],[3,4]"])
    assert grid == {"model_kwargs.top_o": [4, 8, 16], "metric": ["l1", "l2"], "shape": [[1, 2], [3, 4]]}
    assert parse_assignments(["epochs=1", "pretrained=false", "lr=0.003"]) == {
        "epochs": 1, "pretrained": False, "lr": 0.003}
    with pytest.raises(ValueError, match="given twice"):
        parse_grid(["lr=1", "lr=2"])
    with pytest.raises(ValueError, match="expected key=value"):
        parse_grid(["lr"])
    assert parse_seeds("1,10,100") == (1, 10, 100)
    with pytest.raises(ValueError, match="repeat"):
        parse_seeds("1,1")


def test_expand_grid_is_the_cartesian_product_in_order():
    points = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6
    assert points[0] == {"a": 1, "b": "x"} and points[1] == {"a": 1, "b": "y"} and points[-1] == {"a": 2, "b": "z"}
    assert expand_grid({}) == [{}]
    with pytest.raises(ValueError, match="empty"):
        expand_grid({"a": []})
    with pytest.raises(ValueError, match="list of values"):
        expand_grid({"a": "12"})


# ------------------------------------------------------------------------------------------------ validation
def test_unknown_train_keys_are_errors_listing_valid_names(tmp_path):
    with pytest.raises(ValueError, match=r"unknown TrainConfig field 'epoch'.*valid names:.*epochs"):
        run_sweep("train", {"epoch": [1, 2]}, seeds=[1], out=tmp_path / "o")
    with pytest.raises(ValueError, match="set by the sweep runner"):
        run_sweep("train", {"seed": [1, 2]}, seeds=[1], out=tmp_path / "o")
    with pytest.raises(ValueError, match="dotted sub-keys"):
        run_sweep("train", {"lr.x": [1]}, seeds=[1], out=tmp_path / "o")
    with pytest.raises(ValueError, match="both swept"):
        run_sweep("train", {"lr": [0.1]}, fixed={"lr": 0.2}, seeds=[1], out=tmp_path / "o")
    with pytest.raises(ValueError, match="augreg"):  # values are validated by TrainConfig before anything runs
        run_sweep("train", {"augreg": ["huge"]}, seeds=[1], out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="expected 'train'"):
        resolve_target("nonsense")


def test_config_file_target(tmp_path, bench):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(fixed(bench)))
    target = resolve_target(cfg)
    assert target.kind == "train" and target.base["dataset"] == str(bench) and target.base["epochs"] == 1
    yml = tmp_path / "cfg.yaml"
    yml.write_text("epochs: 2\nlr: 0.003\n")
    assert resolve_target(yml).base["lr"] == 0.003
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"epoch": 2}))
    with pytest.raises(ValueError, match="unknown training option"):
        resolve_target(bad)


# ------------------------------------------------------------------------------------------------ training runs
def test_train_sweep_table_skip_done_and_failures(tmp_path, bench, monkeypatch):
    out = tmp_path / "runs"
    # num_heads=3 does not divide embed_dim=32: that point fails inside timm, the sweep goes on
    grid = {"lr": [0.01, 0.003], "model_kwargs.num_heads": [2, 3]}
    df = run_sweep("train", grid, seeds=[1, 2], out=out, fixed=fixed(bench), progress=False)
    assert len(df) == 8
    assert set(df.loc[df["model_kwargs.num_heads"] == 2, "status"]) == {"ok"}
    assert set(df.loc[df["model_kwargs.num_heads"] == 3, "status"]) == {"failed"}
    assert len(df.attrs["failed"]) == 4 and all("divisible" in f["error"] or f["error"] for f in df.attrs["failed"])
    for col in ("lr", "model_kwargs.num_heads", "seed", "top1", "wall_s", "device", "status", "error", "run_dir"):
        assert col in df.columns, col
    cols = list(df.columns)
    assert cols.index("lr") < cols.index("seed") < cols.index("top1") < cols.index("status")
    ok = df[df["status"] == "ok"]
    for _, row in ok.iterrows():  # the table holds what fit() wrote
        metrics = json.loads((Path(row["run_dir"]) / "metrics.json").read_text())
        assert row["top1"] == pytest.approx(metrics["top1"])
        assert metrics["config"]["seed"] == row["seed"] and metrics["config"]["lr"] == row["lr"]
        assert row["device"] == "cpu" and row["wall_s"] > 0
    assert sorted(ok["seed"]) == [1, 1, 2, 2]
    # the whole folder as one table, on disk too
    table = collect(out)
    on_disk = pd.read_csv(out / "results.csv")
    assert len(table) == len(on_disk) == 8
    assert sorted(on_disk.loc[on_disk["status"] == "ok", "top1"]) == pytest.approx(sorted(ok["top1"]))

    # second invocation: ok runs are read back (fit is never called), failed ones are retried
    calls = []

    def fake_fit(config):
        calls.append(config.model_kwargs["num_heads"])
        raise RuntimeError("boom")

    monkeypatch.setattr("glsim_core.train.fit", fake_fit)
    again = run_sweep("train", grid, seeds=[1, 2], out=out, fixed=fixed(bench), progress=False)
    assert calls == [3, 3, 3, 3]
    merged = again.merge(df, on=["lr", "model_kwargs.num_heads", "seed"], suffixes=("", "_first"))
    okm = merged[merged["status"] == "ok"]
    assert len(okm) == 4 and (okm["top1"] == okm["top1_first"]).all() and (okm["wall_s"] == okm["wall_s_first"]).all()
    failed = again[again["status"] == "failed"]
    assert set(failed["error"]) == {"RuntimeError: boom"}
    run_json = json.loads((Path(failed.iloc[0]["run_dir"]) / RUN_FILE).read_text())
    assert run_json["status"] == "failed" and (Path(failed.iloc[0]["run_dir"]) / "error.txt").is_file()


def test_dry_run_lists_runs_and_marks_done(tmp_path, bench):
    out = tmp_path / "runs"
    plan = run_sweep("train", {"lr": [0.01, 0.003]}, seeds=[1], out=out, fixed=fixed(bench), dry_run=True)
    assert list(plan["status"]) == ["planned", "planned"] and not out.exists()
    run_sweep("train", {"lr": [0.01]}, seeds=[1], out=out, fixed=fixed(bench), progress=False)
    plan = run_sweep("train", {"lr": [0.01, 0.003]}, seeds=[1], out=out, fixed=fixed(bench), dry_run=True)
    assert list(plan["status"]) == ["ok", "planned"]


def test_isolated_run_in_a_subprocess(tmp_path, bench):
    df = run_sweep("train", {"lr": [0.01]}, seeds=[3], out=tmp_path / "iso", fixed=fixed(bench), isolate=True,
                   progress=False)
    assert list(df["status"]) == ["ok"], df["error"].tolist()
    metrics = json.loads((Path(df.iloc[0]["run_dir"]) / "metrics.json").read_text())
    assert df.iloc[0]["top1"] == pytest.approx(metrics["top1"]) and metrics["config"]["seed"] == 3


# ------------------------------------------------------------------------------------------------ notebooks
def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('X = 1\nSEED = 0\nOUT_DIR = "out"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params,
                nbformat.v4.new_code_cell("if X == 3:\n    raise RuntimeError('X=3 is not allowed')"),
                nbformat.v4.new_code_cell("from glsim_core.notebook import record\n"
                                          "record(OUT_DIR, y=2 * X + SEED, label=f'x{X}')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_notebook_sweep_injects_parameters_and_collects_records(tmp_path):
    nb = _notebook(tmp_path / "tiny.ipynb")
    with pytest.raises(ValueError, match=r"unknown notebook parameter 'Y'.*valid names: X"):
        run_sweep(nb, {"Y": [1]}, seeds=[1], out=tmp_path / "o")
    with pytest.raises(ValueError, match="set by the sweep runner"):
        run_sweep(nb, {"OUT_DIR": ["x"]}, seeds=[1], out=tmp_path / "o")
    out = tmp_path / "runs"
    df = run_sweep(nb, {"X": [1, 3]}, seeds=[7], out=out, progress=False)
    assert len(df) == 2
    good = df[df["X"] == 1].iloc[0]
    assert good["status"] == "ok" and good["y"] == 2 * 1 + 7 and good["label"] == "x1" and good["seed"] == 7
    assert (Path(good["run_dir"]) / "notebook.ipynb").is_file()
    bad = df[df["X"] == 3].iloc[0]
    assert bad["status"] == "failed" and "X=3 is not allowed" in bad["error"]
    assert len(pd.read_csv(out / "results.csv")) == 2


# ------------------------------------------------------------------------------------------------ CLI
def test_cli_exit_codes(tmp_path, bench, capsys):
    assert main(["sweep", "train", "--grid", "epoch=1,2", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "unknown TrainConfig field 'epoch'" in err and "epochs" in err and "Traceback" not in err
    sets = [f"--set={k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in fixed(bench).items()]
    assert main(["sweep", "train", "--grid", "lr=0.01", "--seeds", "1", "--out", str(tmp_path / "b"),
                 "--dry-run", *sets]) == 0
    assert "1 runs: 1 planned" in capsys.readouterr().out
    code = main(["sweep", "train", "--grid", "model_kwargs.num_heads=2,3", "--seeds", "1",
                 "--out", str(tmp_path / "c"), *sets])
    captured = capsys.readouterr()
    assert code == 1 and "1 ok" in captured.out and "1 failed" in captured.out
    assert (tmp_path / "c" / "results.csv").is_file()
