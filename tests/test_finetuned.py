"""glsim_core.models.finetuned: shipped fine-tuned checkpoints, "load else train", the finetune command."""

from __future__ import annotations

import json

import pytest
import torch

from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark
from glsim_core.profiles import get_profile
from glsim_core.train import finetuned as ft
from glsim_core.weights.shipped import sha256

TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    spec = BenchmarkSpec(num_classes=3, train_size=32, test_size=16, seed=3)
    return generate_benchmark(spec, tmp_path_factory.mktemp("bench") / "b", workers=1, progress=False)


@pytest.fixture()
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GLSIM_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("GLSIM_CACHE", raising=False)
    return tmp_path / "data"


def tiny(bench, **kw):
    base = dict(dataset=str(bench), img_size=32, epochs=1, batch_size=16, model_kwargs=dict(TINY), pretrained=False,
                progress=False)
    base.update(kw)
    return base


def test_recipes_follow_the_profile():
    vit = ft.finetuned_config("vit", "cpu", quiet=True)
    simpool = ft.finetuned_config("simpool_vit", "cpu", quiet=True)
    glsim = ft.finetuned_config("glsim", "cpu", quiet=True)
    cpu = get_profile("cpu")
    assert vit.model == simpool.model == cpu.model and vit.pooling is None
    assert simpool.pooling == "simpool"
    assert glsim.model == cpu.glsim_model and glsim.model_kwargs == {"top_o": 8}
    assert vit.img_size == 64 and vit.epochs == get_profile("cpu").epochs
    scratch = ft.finetuned_config("vit_scratch", "cpu", quiet=True)
    assert scratch.model == vit.model and scratch.pretrained is False and scratch.pooling is None
    # notebook 02's CNN pair: the profile's ResNet (8x8 map at 64 px) with GAP and with SimPool, from its backbone
    resnet, simpool_resnet = (ft.finetuned_config(n, "cpu", quiet=True) for n in ("resnet", "simpool_resnet"))
    assert resnet.model == simpool_resnet.model == get_profile("cpu").cnn_model == "resnet_nano_64"
    assert resnet.pooling is None and simpool_resnet.pooling == "simpool" and resnet.img_size == 64
    assert ft.finetuned_config("resnet", "gpu", quiet=True).model == get_profile("gpu").cnn_model == "resnet50"
    with pytest.raises(ValueError, match="unknown fine-tuned model"):
        ft.finetuned_config("resnet50")
    with pytest.raises(ValueError, match="unknown training option"):
        ft.finetuned_config("vit", bogus=1)


def test_manifest_round_trip_and_load(bench, data_root):
    manifest = ft.finetune(["vit"], **tiny(bench))
    path = ft.finetuned_path("vit")
    assert path == data_root / "finetuned" / "vit.pth" and path.is_file()
    on_disk = json.loads((data_root / "finetuned" / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest, default=str))
    entry = on_disk["models"]["vit"]
    assert entry["sha256"] == sha256(path) and entry["bytes"] == path.stat().st_size
    assert entry["seed"] == 1 and entry["config"]["model_kwargs"] == TINY and entry["num_classes"] == 3
    assert 0 <= entry["metrics"]["top1"] <= 100 and entry["metrics"]["n_eval"] == 16
    assert entry["command"].startswith("python -m glsim_core finetune") and entry["wall_seconds"] >= 0
    blob = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())

    # a training-only override (epochs) does not stop the shipped checkpoint from loading
    model, info = ft.load_finetuned("vit", train_if_missing=False, return_info=True, **tiny(bench, epochs=5))
    assert info["source"] == "shipped" and info["top1"] == entry["metrics"]["top1"]
    sd = model.state_dict()
    for k, v in blob["state_dict"].items():
        assert torch.equal(sd[k], v.to(sd[k].dtype)), k
    assert not model.training and model.head.out_features == 3

    # another architecture does not fit the shipped file
    with pytest.raises(FileNotFoundError, match="trained as"):
        ft.load_finetuned("vit", train_if_missing=False, **tiny(bench, model_kwargs={**TINY, "embed_dim": 48}))
    with pytest.raises(FileNotFoundError, match="trained as"):  # another dataset, when asked for explicitly
        ft.load_finetuned("vit", train_if_missing=False, **tiny(bench, dataset=str(bench) + "_other"))


def test_missing_checkpoint_errors_or_trains_then_caches(bench, data_root):
    with pytest.raises(FileNotFoundError, match="python -m glsim_core finetune --names glsim"):
        ft.load_finetuned("glsim", train_if_missing=False, **tiny(bench, model_kwargs={**TINY, "img_size": 32}))
    kw = tiny(bench, model_kwargs={**TINY, "top_o": 4, "img_size": 32})  # GLSim has no pretrained cfg size
    model, info = ft.load_finetuned("glsim", return_info=True, **kw)
    assert info["source"] == "trained" and type(model).__name__ == "GLSim" and model.top_o == 4
    assert not (data_root / "finetuned" / "glsim.pth").exists()  # never written into the shipped folder
    again, info2 = ft.load_finetuned("glsim", train_if_missing=False, return_info=True, **kw)
    assert info2["source"] == "cache" and info2["path"] == info["path"] and info2["top1"] == info["top1"]
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(again(x), model.half().float()(x), rtol=0, atol=0)


def test_sha_mismatch_is_reported_and_retrains_or_errors(bench, data_root):
    ft.finetune(["simpool_vit"], **tiny(bench))
    path = ft.finetuned_path("simpool_vit")
    with open(path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(FileNotFoundError, match="sha256"):
        ft.load_finetuned("simpool_vit", train_if_missing=False, **tiny(bench))
    _, info = ft.load_finetuned("simpool_vit", return_info=True, cache=False, **tiny(bench))
    assert info["source"] == "trained" and "sha256" in info["reason"]


def test_cli_trains_into_a_folder_and_rejects_bad_names(bench, tmp_path, data_root, capsys):
    from glsim_core.cli import main

    assert main(["finetune", "--names", "bogus"]) == 2
    assert "unknown fine-tuned model" in capsys.readouterr().err
    out = tmp_path / "ft"
    assert main(["finetune", "--names", "vit", "--epochs", "1", "--max-train", "16", "--seed", "3",
                 "--dataset", str(bench), "--out", str(out), "--no-progress"]) == 0
    entry = json.loads((out / "manifest.json").read_text())["models"]["vit"]
    assert entry["seed"] == 3 and entry["config"]["max_train_samples"] == 16 and entry["config"]["epochs"] == 1
    assert "--max-train 16" in entry["command"] and entry["sha256"] == sha256(out / "vit.pth")


def test_a_finished_run_is_exported_instead_of_trained_again(bench, data_root, tmp_path):
    from glsim_core.train import fit

    run = tmp_path / "run"
    trained = fit(ft.finetuned_config("vit", "cpu", quiet=True, **tiny(bench, out_dir=str(run))))
    manifest = ft.finetune(["vit"], from_runs={"vit": run}, **tiny(bench))
    entry = manifest["models"]["vit"]
    assert entry["exported_from_run"] == str(run) and entry["metrics"]["top1"] == trained.top1
    model = ft.load_finetuned("vit", train_if_missing=False, **tiny(bench))
    for key, value in trained.model.state_dict().items():  # the run's weights, stored in fp16
        stored = value.half().float() if value.is_floating_point() else value  # integer buffers are kept as they are
        assert torch.equal(model.state_dict()[key], stored), key
    with pytest.raises(ValueError, match="not the 'simpool_vit' recipe"):
        ft.finetune(["simpool_vit"], from_runs={"simpool_vit": run}, **tiny(bench))
    with pytest.raises(FileNotFoundError, match="no finished run"):
        ft.finetune(["vit"], from_runs={"vit": tmp_path / "nothing"}, **tiny(bench))
