"""Models: timm backbones (the cpu profile's small ViTs and CNN), pooling heads (SimPool on ViT / ResNet /
ConvNeXt) and GLSim, all registered in timm.

Importing this package registers this project's names in timm's registry (the small ViTs and CNN of
:mod:`.backbones`, the GLSim variants of :mod:`.glsim`), so ``timm.create_model`` and :func:`create_model` both see
them. Part of the methods layer: imports torch, timm and the layer below (``pooling``, ``selection``) only. Which
weights exist for a backbone (the shipped ones, the hub's) is the weights layer's question
(:mod:`glsim_core.weights`); fine-tuned checkpoints are the training layer's (:mod:`glsim_core.train.finetuned`).
"""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from . import backbones, glsim  # noqa: F401 - register the small backbones and the GLSim variants in timm
from .backbones import num_prefix_tokens, patch_grid, record_attention
from .heads import create_with_pooling

__all__ = ["create_model", "num_prefix_tokens", "patch_grid", "record_attention"]


def create_model(name: str, pretrained: bool = False, pooling: str | None = None, **kwargs: Any) -> nn.Module:
    """A thin wrapper over ``timm.create_model`` that knows this project's names and pooling heads.

    ``pooling=None`` (or ``"default"``) keeps the architecture's own pooling (CLS token for ViT, GAP for CNNs);
    ``pooling="simpool"`` (with ``gamma=...`` and the SimPool options, :func:`.heads.create_with_pooling`) swaps it
    for SimPool. Any other keyword goes to timm (``num_classes``, ``img_size``, ``drop_path_rate``...).
    """
    if pooling in (None, "default"):
        if "gamma" in kwargs and kwargs["gamma"] is None:  # timm drops None keywords; False means the same (SimPool)
            kwargs["gamma"] = False
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    return create_with_pooling(name, pooling=pooling, pretrained=pretrained, **kwargs)
