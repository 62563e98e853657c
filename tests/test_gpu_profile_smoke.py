"""The gpu profile at the paper's scale, on CPU: the real GLSim ViT-B/16 (random weights) at 224 and 448 px.

Built through ``TrainConfig.from_profile("gpu", ...)`` as a Colab user does, on a tiny local dataset with CUB's
schema (image, label, bbox): one optimiser step and one evaluation with ``fit``, then the ``eval`` command on the
checkpoint. Checks what the config resolves (normalisation, input size, O, drop-path rates, the backbone weights
tag) and that ``fit``'s evaluation and the ``eval`` command feed the model identical inputs.
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers_data import make_disk_dataset

from glsim_core.profiles import get_profile
from glsim_core.train import TrainConfig, fit
from glsim_core.train import engine as engine_mod


@pytest.fixture(scope="module")
def cub_like(tmp_path_factory):
    path = tmp_path_factory.mktemp("cub_like") / "ds"
    return make_disk_dataset(path, {"train": 2, "test": 1}, num_classes=2, bbox=True)


def _capture_eval_inputs(monkeypatch) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    original = engine_mod.evaluate

    def evaluate(model, loader, *args, **kwargs):
        batches = list(loader)
        seen.extend(b["image"].clone() for b in batches)
        return original(model, batches, *args, **kwargs)

    monkeypatch.setattr(engine_mod, "evaluate", evaluate)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("img_size, top_o", [(224, 8), (448, 16)])
def test_gpu_profile_glsim_vit_b16_one_step_and_eval(cub_like, tmp_path, monkeypatch, img_size, top_o):
    import datasets

    from glsim_core.cli import main
    from glsim_core.data.transforms import build_transform, normalization_for

    gpu = get_profile("gpu")
    batch = 2 if img_size == 224 else 1  # ViT-B at 448 px is heavy on one CPU core
    config = TrainConfig.from_profile(
        "gpu", model=gpu.glsim_model, dataset=str(cub_like), img_size=img_size, pretrained=False, epochs=1,
        batch_size=batch, max_train_samples=batch, num_workers=0, device="cpu", progress=False,
        out_dir=str(tmp_path / "run"))
    assert (config.augreg, config.optimizer, config.lr) == ("strong", "sgd", 0.01)  # the paper's recipe
    # normalisation of the paper's backbone (orig_in21k: mean = std = 0.5), from the name alone, as `eval` reads it
    assert normalization_for(config.model) == ((0.5,) * 3, (0.5,) * 3, "bicubic")

    fit_inputs = _capture_eval_inputs(monkeypatch)
    result = fit(config)
    fit_batches = torch.cat(fit_inputs)
    model = result.model
    # architecture: the real ViT-B/16 at the requested size, O of GLSim §4, uniform stochastic depth
    assert model.backbone_name == "vit_base_patch16_224.orig_in21k"
    assert (len(model.encoder.blocks), model.embed_dim) == (12, 768)
    assert tuple(model.encoder.patch_embed.img_size) == (img_size, img_size)
    assert model.top_o == top_o and result.metrics["top_o"] == top_o
    for blk in model.encoder.blocks:
        assert blk.drop_path1.drop_prob == pytest.approx(0.1) and blk.drop_path2.drop_prob == pytest.approx(0.1)
    assert model.aggregator.drop_path1.drop_prob == pytest.approx(0.1)
    assert result.metrics["weights"] == {"name": "vit_base_patch16_224.orig_in21k", "loaded": False}
    # one optimiser step, one evaluation
    assert result.history[-1]["step"] == 1 and result.metrics["n_eval"] == 1
    assert torch.isfinite(torch.tensor(result.history[-1]["train_loss"]))
    # what the model saw: the eval transform of the raw image, normalised with the backbone's statistics
    assert (result.data.mean, result.data.std) == ((0.5,) * 3, (0.5,) * 3)
    raw = datasets.load_from_disk(str(cub_like))["test"][0]["image"].convert("RGB")
    expected = build_transform(img_size, train=False, mean=(0.5,) * 3, std=(0.5,) * 3)(raw)
    assert fit_inputs[0].shape[-2:] == (img_size, img_size)
    assert torch.allclose(fit_inputs[0][0], expected, atol=1e-6)

    # the `eval` command on the checkpoint sees exactly the same inputs and gives the same accuracy
    monkeypatch.undo()
    eval_inputs = _capture_eval_inputs(monkeypatch)
    assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--device", "cpu", "--batch-size", "2",
                 "--out", str(tmp_path / "eval")]) == 0
    assert len(eval_inputs) >= 1
    assert torch.equal(torch.cat(eval_inputs), fit_batches)
    ev = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert ev["top1"] == result.metrics["top1"] and ev["weights"]["name"] == "vit_base_patch16_224.orig_in21k"
