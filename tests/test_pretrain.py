"""Pretraining of the shipped backbones: the token loss, the one command's outputs, and timm loading them."""

from __future__ import annotations

import json

import pytest
import timm
import torch
import torch.nn.functional as F

from glsim_core.data.synthetic import CORPUS_CATEGORIES, CorpusSpec
from glsim_core.models import create_model
from glsim_core.train.pretrain import BackboneRecipe, PretrainRecipe, TokenLoss, pretrain_backbones
from glsim_core.weights.shipped import SHIPPED, read_manifest, sha256, shipped_weights_path


def test_token_loss_equals_a_direct_computation():
    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", num_classes=5, img_size=32, depth=1, embed_dim=32, num_heads=2)
    loss_fn = TokenLoss(model, num_categories=4, weight=0.5, background=True)
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([1, 3])
    boxes = [torch.tensor([[0.0, 0.0, 16.0, 16.0]]), torch.tensor([[8.0, 8.0, 32.0, 20.0]])]
    logits = model(x)
    got = loss_fn(model, {"label": y, "boxes": boxes, "image": x}, logits)
    tokens = model.forward_features(x)[:, 1:]  # (2, 16, 32): 4x4 grid of 8-px patches, centres 4, 12, 20, 28
    tok_logits = model.head(tokens)
    centres = torch.tensor([4.0, 12.0, 20.0, 28.0])
    target = torch.full((2, 16), 4)
    for b, (x0, y0, x1, y1) in enumerate([(0, 0, 16, 16), (8, 8, 32, 20)]):
        for r in range(4):
            for c in range(4):
                if x0 <= centres[c] < x1 and y0 <= centres[r] < y1:
                    target[b, r * 4 + c] = y[b]
    want = F.cross_entropy(logits, y) + 0.5 * F.cross_entropy(tok_logits.reshape(-1, 5), target.reshape(-1))
    torch.testing.assert_close(got, want)
    assert (target[0] == 1).sum() == 4 and (target[1] == 3).sum() == 3  # tokens whose centre is in the box
    loss_fn.remove()


def test_pretrain_command_writes_weights_and_manifest_that_timm_loads(tmp_path):
    recipe = PretrainRecipe(corpus=CorpusSpec(train_size=48, val_size=16, seed=1),
                            backbones=(BackboneRecipe("vit_nano_patch8_64", epochs=1, batch_size=16,
                                                      token_weight=1.0, background_class=True),))
    manifest = pretrain_backbones(recipe, out_dir=tmp_path / "w", progress=False, work_dir=tmp_path / "work",
                                  corpus_dir=tmp_path / "corpus", command="test")
    entry = manifest["backbones"]["vit_nano_patch8_64"]
    path = tmp_path / "w" / entry["file"]
    assert path.is_file() and entry["sha256"] == sha256(path) and entry["num_outputs"] == len(CORPUS_CATEGORIES) + 1
    assert manifest["corpus"]["train_size"] == 48 and manifest["command"] == "test"
    assert json.loads((tmp_path / "w" / "manifest.json").read_text())["backbones"].keys() == {"vit_nano_patch8_64"}
    state = torch.load(path)
    model = timm.create_model("vit_nano_patch8_64", pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    assert model.head.out_features == SHIPPED["vit_nano_patch8_64"]["num_classes"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    ft = create_model("vit_nano_patch8_64", pretrained=True, pretrained_cfg_overlay={"file": str(path)},
                      num_classes=7, img_size=32)  # other head, other size: head dropped, pos-embed resampled
    assert ft.head.out_features == 7 and torch.equal(ft.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_backbones_load_offline_through_timm(name):
    path = shipped_weights_path(name)
    assert path.is_file(), f"shipped weights missing: run `python -m glsim_core pretrain` ({path})"
    entry = read_manifest()["backbones"][name]
    assert entry["sha256"] == sha256(path)
    state = torch.load(path)
    model = timm.create_model(name, pretrained=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k].to(v.dtype)), k
    assert sum(p.numel() * 4 for p in state.values()) < 20 * 2**20


def test_shipped_files_stay_under_20_mb():
    total = sum(shipped_weights_path(n).stat().st_size for n in SHIPPED if shipped_weights_path(n).is_file())
    assert total <= 20 * 10**6


def test_dense_loss_on_a_resnet_uses_fc_at_every_location():
    torch.manual_seed(0)
    model = create_model("resnet_nano_64", num_classes=4)
    loss_fn = TokenLoss(model, num_categories=3, weight=1.0, background=True)
    x = torch.randn(2, 3, 64, 64)
    y = torch.tensor([0, 2])
    boxes = [torch.tensor([[0.0, 0.0, 32.0, 32.0]]), torch.tensor([[40.0, 0.0, 64.0, 64.0]])]
    logits = model(x)
    got = loss_fn(model, {"label": y, "boxes": boxes, "image": x}, logits)
    fmap = model.forward_features(x)  # (2, 128, 8, 8): 8-px cells, centres 4, 12, ..., 60
    dense = model.fc(fmap.flatten(2).transpose(1, 2))
    centres = torch.arange(8) * 8 + 4.0
    target = torch.full((2, 8, 8), 3)
    target[0][(centres[:, None] < 32) & (centres[None, :] < 32)] = 0
    target[1][:, centres >= 40] = 2
    want = F.cross_entropy(logits, y) + F.cross_entropy(dense.reshape(-1, 4), target.reshape(-1))
    torch.testing.assert_close(got, want)
    loss_fn.remove()


def test_pretrain_command_records_the_command_line(monkeypatch, capsys):
    import sys

    from glsim_core.cli import main
    from glsim_core.train import pretrain

    seen = {}

    def fake(recipe, **kw):
        seen.update(kw)
        return {"backbones": {}, "total_seconds": 0.0}

    monkeypatch.setattr(pretrain, "pretrain_backbones", fake)
    monkeypatch.setattr(sys, "argv", ["glsim_core", "pretrain", "--half"])
    assert main(["pretrain", "--half"]) == 0
    assert seen["command"] == "python -m glsim_core pretrain --half"
