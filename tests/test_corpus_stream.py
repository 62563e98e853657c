"""The pretraining corpus as a stream of fresh images, and the convolutional-stem ViT it pretrains."""

from __future__ import annotations

import pytest
import timm
import torch

from glsim_core.data.corpus_stream import CorpusStream, CorpusStreamData, corpus_stream_example
from glsim_core.data.synthetic import CORPUS_CATEGORIES, CorpusSpec
from glsim_core.models import create_model
from glsim_core.models.backbones import ConvStemPatchEmbed
from glsim_core.train import TrainConfig, fit


@pytest.fixture(scope="module")
def data():
    return CorpusStreamData(CorpusSpec(seed=3), images_per_epoch=6, val_size=4)


def test_stream_images_are_a_function_of_seed_epoch_and_index(data):
    train = data.torch_split("train", train=False, with_boxes=True)  # eval transform: no random crop
    a, b = train[2], train[2]
    assert torch.equal(a["image"], b["image"]) and a["label"] == b["label"]
    train.set_epoch(1)
    c = train[2]
    assert not torch.equal(a["image"], c["image"])  # a new epoch draws new images
    train.set_epoch(0)
    assert torch.equal(train[2]["image"], a["image"])  # ... and going back gives the same ones (exact resume)
    img, label, box = corpus_stream_example(CorpusSpec(seed=3), 101, 0, 2)
    assert label == a["label"] and 0 <= label < len(CORPUS_CATEGORIES)
    other = corpus_stream_example(CorpusSpec(seed=4), 101, 0, 2)[0]
    assert img.tobytes() != other.tobytes()  # the spec's seed matters


def test_stream_boxes_follow_the_crop_and_stay_in_the_view(data):
    train = data.torch_split("train", train=True, with_boxes=True)
    for i in range(len(train)):
        s = train[i]
        assert s["image"].shape == (3, 64, 64)
        (x0, y0, x1, y1), = s["boxes"].tolist()
        assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64


def test_validation_images_are_fixed_and_disjoint_from_training(data):
    val = data.torch_split("val", train=False)
    again = CorpusStreamData(CorpusSpec(seed=3), images_per_epoch=6, val_size=4).torch_split("val", train=False)
    assert all(torch.equal(val[i]["image"], again[i]["image"]) for i in range(4))
    train = data.torch_split("train", train=False)
    assert not any(torch.equal(val[i]["image"], train[i]["image"]) for i in range(4))
    with pytest.raises(ValueError, match="splits train and val"):
        data.torch_split("holdout")
    with pytest.raises(ValueError, match="length >= 1"):
        CorpusStream(CorpusSpec(), 0, transform=None)


def test_fit_draws_each_epochs_own_images_and_resumes_exactly(tmp_path, monkeypatch):
    seen: list[int] = []
    original = CorpusStream.set_epoch

    def spy(self, epoch):
        seen.append(epoch)
        original(self, epoch)

    monkeypatch.setattr(CorpusStream, "set_epoch", spy)
    stream = CorpusStreamData(CorpusSpec(seed=5), images_per_epoch=8, val_size=4)

    class Stop(Exception):
        pass

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise Stop

    def run(out, epochs, resume=False, callbacks=()):
        cfg = TrainConfig(model="vit_nano_convstem_patch8_64", dataset="corpus-stream", train_split="train",
                          eval_split="val", epochs=epochs, batch_size=4, lr=1e-3, optimizer="adamw", augreg="weak",
                          out_dir=str(out), progress=False, resume=resume, seed=2)
        torch.manual_seed(0)  # the same initial weights in every run
        return fit(cfg, model=create_model("vit_nano_convstem_patch8_64", num_classes=61, depth=1), data=stream,
                   callbacks=callbacks)

    full = run(tmp_path / "full", 2)
    assert seen == [0, 1]
    with pytest.raises(Stop):  # interrupted after its first epoch's checkpoint
        run(tmp_path / "part", 2, callbacks=[stop_after_first])
    resumed = run(tmp_path / "part", 2, resume=True)
    assert seen[-1] == 1
    assert resumed.history[-1]["train_loss"] == pytest.approx(full.history[-1]["train_loss"], abs=1e-6)
    assert resumed.metrics["eval_loss"] == pytest.approx(full.metrics["eval_loss"], abs=1e-6)


def test_conv_stem_keeps_the_patch_grid_and_replaces_the_linear_projection():
    vit = create_model("vit_nano_convstem_patch8_64", num_classes=5)
    plain = create_model("vit_nano_patch8_64", num_classes=5)
    assert isinstance(vit.patch_embed, ConvStemPatchEmbed)
    assert vit.patch_embed.grid_size == plain.patch_embed.grid_size == (8, 8)
    assert vit.forward_features(torch.randn(2, 3, 64, 64)).shape == plain.forward_features(
        torch.randn(2, 3, 64, 64)).shape
    strides = [m.stride[0] for m in vit.patch_embed.proj if isinstance(m, torch.nn.Conv2d)]
    assert strides == [2, 2, 2, 1]  # log2(8) stride-2 convolutions, then a 1x1 projection
    # each token sees only its own cell plus a small margin: changing a far-away pixel leaves token 0 unchanged
    vit.eval()
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[..., 40:, 40:] += 1.0
    t0 = vit.patch_embed(x)[0, 0]
    assert torch.allclose(t0, vit.patch_embed(y)[0, 0])
    cfg = timm.get_pretrained_cfg("vit_nano_convstem_patch8_64")
    assert cfg.first_conv == "patch_embed.proj.0" and isinstance(vit.get_submodule(cfg.first_conv), torch.nn.Conv2d)
    with pytest.raises(ValueError, match="power-of-two"):
        ConvStemPatchEmbed(img_size=60, patch_size=6, embed_dim=16)
