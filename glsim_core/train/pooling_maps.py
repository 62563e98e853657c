"""The four trained models whose pooling maps SimPool's Figure 1 compares (notebook 02 §6): a ViT's CLS token, a
ViT with SimPool, a CNN's GAP and a CNN with SimPool.

* ``cpu`` profile: the shipped checkpoints fine-tuned on the offline benchmark (``load_finetuned``; trained with the
  same recipe if a file is missing), so every map is a trained map.
* ``gpu`` profile: timm's supervised ViT-S/16 and ResNet-50, and the same networks with a *new* (untrained) SimPool
  head — SimPool's own checkpoints are not in timm, so only the CLS and GAP maps are trained there.
"""

from __future__ import annotations

from typing import Any

import torch

from .. import models as model_registry  # looked up on the module, so tests can replace create_model
from ..profiles import get_profile
from .finetuned import load_finetuned

__all__ = ["POOLING_MAP_RECIPES", "GPU_MODELS", "pooling_map_titles", "load_pooling_map_models"]

#: Figure column title (``{cnn}`` is the profile's CNN) -> the ``load_finetuned`` recipe of the cpu profile.
POOLING_MAP_RECIPES = {
    "ViT: CLS attention": "vit",
    "ViT + SimPool: a": "simpool_vit",
    "{cnn}: GAP share": "resnet",
    "{cnn} + SimPool: a": "simpool_resnet",
}
#: The gpu profile's timm networks (supervised ImageNet weights).
GPU_MODELS = {"vit": "vit_small_patch16_224.augreg_in21k_ft_in1k", "cnn": "resnet50"}


def pooling_map_titles(cnn: str) -> dict[str, str]:
    """``{title: cpu recipe}`` with the CNN's name filled in."""
    return {title.format(cnn=cnn): recipe for title, recipe in POOLING_MAP_RECIPES.items()}


def load_pooling_map_models(profile: str = "cpu", seed: int = 0, **train_kw: Any) -> tuple[dict, dict]:
    """``({title: model in eval mode}, {title: test top-1 or None})`` for the four models of SimPool's Figure 1.

    ``train_kw`` (``epochs``, ``max_train_samples``, ...) only matter when a cpu checkpoint must be trained here.
    """

    if profile == "gpu":
        vit, cnn = GPU_MODELS["vit"], GPU_MODELS["cnn"]
        torch.manual_seed(seed)  # the new SimPool heads' initialisation
        built = {
            "ViT: CLS attention": model_registry.create_model(vit, pretrained=True),
            "ViT + SimPool: a": model_registry.create_model(vit, pretrained=True, pooling="simpool"),
            f"{cnn}: GAP share": model_registry.create_model(cnn, pretrained=True),
            f"{cnn} + SimPool: a": model_registry.create_model(cnn, pretrained=True, pooling="simpool"),
        }
        return {title: m.eval() for title, m in built.items()}, dict.fromkeys(built)

    titles = pooling_map_titles(get_profile(profile).cnn_model)
    loaded = {title: load_finetuned(recipe, profile=profile, return_info=True, progress=False, **train_kw)
              for title, recipe in titles.items()}
    return ({title: m.eval() for title, (m, _) in loaded.items()},
            {title: info["top1"] for title, (_, info) in loaded.items()})
