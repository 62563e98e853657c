"""glsim_core.train.pooling_maps: the four models of SimPool's Figure 1 (notebook 02 §6)."""

import json

import torch
from torch import nn

import glsim_core.models
from glsim_core.models import num_prefix_tokens
from glsim_core.models.heads import get_pooling
from glsim_core.pooling import SimPool
from glsim_core.train.pooling_maps import GPU_MODELS, POOLING_MAP_RECIPES, load_pooling_map_models, pooling_map_titles


def test_titles_name_the_profiles_cnn_and_each_recipe_once():
    titles = pooling_map_titles("resnet_nano_64")
    assert list(titles) == ["ViT: CLS attention", "ViT + SimPool: a", "resnet_nano_64: GAP share",
                            "resnet_nano_64 + SimPool: a"]
    assert sorted(titles.values()) == sorted(POOLING_MAP_RECIPES.values()) == sorted(
        ["vit", "simpool_vit", "resnet", "simpool_resnet"])


def test_cpu_profile_loads_the_shipped_checkpoints_with_their_accuracy(root):
    models, top1 = load_pooling_map_models("cpu")
    manifest = json.loads((root / "data" / "finetuned" / "manifest.json").read_text())["models"]
    titles = pooling_map_titles("resnet_nano_64")
    assert list(models) == list(titles) == list(top1)
    for title, recipe in titles.items():
        assert top1[title] == manifest[recipe]["metrics"]["top1"]
        assert not models[title].training
    assert isinstance(get_pooling(models["ViT + SimPool: a"]), SimPool)
    assert isinstance(get_pooling(models["resnet_nano_64 + SimPool: a"]), SimPool)
    assert num_prefix_tokens(models["ViT: CLS attention"]) == 1  # the CLS token whose attention is drawn
    assert num_prefix_tokens(models["ViT + SimPool: a"]) == 0  # SimPool removes it
    with torch.no_grad():
        assert models["ViT: CLS attention"](torch.zeros(1, 3, 64, 64)).shape == (1, 12)


def test_gpu_profile_builds_timm_models_with_new_simpool_heads(monkeypatch):
    calls = []

    def fake_create_model(name, **kwargs):
        calls.append((name, kwargs))
        return nn.Linear(2, 2).train()

    monkeypatch.setattr(glsim_core.models, "create_model", fake_create_model)
    models, top1 = load_pooling_map_models("gpu")
    vit, cnn = GPU_MODELS["vit"], GPU_MODELS["cnn"]
    assert calls == [(vit, {"pretrained": True}), (vit, {"pretrained": True, "pooling": "simpool"}),
                     (cnn, {"pretrained": True}), (cnn, {"pretrained": True, "pooling": "simpool"})]
    assert list(models) == ["ViT: CLS attention", "ViT + SimPool: a", f"{cnn}: GAP share", f"{cnn} + SimPool: a"]
    assert all(not m.training for m in models.values())
    assert top1 == dict.fromkeys(models)  # no checkpoint accuracy: the SimPool heads are new
