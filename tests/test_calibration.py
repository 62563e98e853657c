"""The cpu profile's calibration: its models, its result file, and a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark
from glsim_core.train import calibration
from glsim_core.train.calibration import calibrate, calibration_models, load_calibration, localization_frame


def test_models_are_the_papers_comparison():
    specs = {m["name"]: m for m in calibration_models("cpu")}
    assert list(specs) == ["ViT", "SimPool-ViT", "GLSim", "GLSim-random"]
    assert specs["SimPool-ViT"]["pooling"] == "simpool"
    assert specs["GLSim-random"]["model_kwargs"]["selector"] == "random"
    assert specs["GLSim"]["model"] == specs["GLSim-random"]["model"] != specs["ViT"]["model"]
    with pytest.raises(ValueError, match="unknown calibration model.*'Swin'"):
        calibrate("cpu", models=["Swin"])


def test_load_calibration_prefers_a_fresh_run(tmp_path, monkeypatch):
    import glsim_core.paths as paths

    monkeypatch.setattr(paths, "build_dir", lambda: tmp_path / "build")
    monkeypatch.setattr(paths, "data_dir", lambda: tmp_path / "data")
    assert load_calibration() is None
    with pytest.raises(FileNotFoundError, match="calibrate"):
        load_calibration(tmp_path / "nope.json")
    shipped = tmp_path / "data" / calibration.SHIPPED_CALIBRATION
    shipped.parent.mkdir(parents=True)
    shipped.write_text(json.dumps({"tag": "shipped"}))
    assert load_calibration()["source"] == str(shipped)
    fresh = tmp_path / "build" / "calibration" / "calibration.json"
    fresh.parent.mkdir(parents=True)
    fresh.write_text(json.dumps({"tag": "fresh"}))
    assert load_calibration()["tag"] == "fresh"


def test_tiny_calibration_end_to_end(tmp_path):
    bench = generate_benchmark(BenchmarkSpec(num_classes=3, train_size=24, test_size=10, seed=3), tmp_path / "b",
                               workers=1, progress=False)
    res = calibrate("cpu", seeds=(1,), out_root=tmp_path / "cal", max_samples=10, progress=False, dataset=str(bench),
                    epochs=1, batch_size=12, max_train_samples=12)
    assert json.loads((tmp_path / "cal" / "calibration.json").read_text())["seeds"] == [1]
    acc = {row["label"]: row for row in res["accuracy"]}
    assert set(acc) == {"ViT", "SimPool-ViT", "GLSim", "GLSim-random"} and acc["ViT"]["rel_error"] == 0
    loc = localization_frame(res)
    assert set(loc["model"]) == {"ViT, random init", "ViT, shipped pretrained backbone", "ViT, fine-tuned (seed 1)",
                                 "SimPool-ViT, fine-tuned (seed 1)", "GLSim, fine-tuned (seed 1)"}
    assert set(loc[loc["model"].str.startswith("SimPool")]["map"]) == {"simpool"}  # no CLS token to compare with
    for col in ("top1", "top8", "bottom1", "bottom8", "chance"):
        assert loc[col].between(0, 1).all()
    # chance depends on the boxes only: the same for every model and map
    assert loc["chance"].nunique() == 1 and (loc["n"] == 10).all()
