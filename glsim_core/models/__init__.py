"""Models: timm backbones, SimPool heads, GLSim.

Importing this package registers this project's model names in timm's registry (the small cpu-profile ViTs and,
as they land, the GLSim variants), so ``timm.create_model`` and :func:`create_model` both see them.
"""

from __future__ import annotations

import importlib
from typing import Any

import timm
from torch import nn

from . import backbones  # noqa: F401 - registers the small ViTs
from .backbones import forward_tokens, num_prefix_tokens, patch_grid, record_attention
from .pretrained import BackboneWeights, best_available_backbone

# Optional modules that register more names; each lands with its issue.
for _mod in ("glsim_core.models.glsim",):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as _exc:  # not written yet
        if _exc.name != _mod:
            raise

__all__ = ["BackboneWeights", "best_available_backbone", "create_model", "forward_tokens", "num_prefix_tokens",
           "patch_grid", "record_attention", "load_finetuned", "FINETUNED"]

_LAZY = {"load_finetuned": "glsim_core.models.finetuned", "FINETUNED": "glsim_core.models.finetuned",
         "finetuned_path": "glsim_core.models.finetuned"}


def __getattr__(name: str) -> Any:
    """``load_finetuned`` & co. import the training engine: loaded on first use only."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_model(name: str, pretrained: bool = False, pooling: str | None = None, **kwargs: Any) -> nn.Module:
    """A thin wrapper over ``timm.create_model`` that knows this project's names and pooling heads.

    ``pooling=None`` (or ``"default"``) keeps the architecture's own pooling (CLS token for ViT, GAP for CNNs);
    ``pooling="simpool"`` (with ``gamma=...`` and the SimPool options) swaps it for SimPool (``models.heads``).
    Any other keyword goes to timm (``num_classes``, ``img_size``, ``drop_path_rate``...).
    """
    if pooling in (None, "default"):
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    from .heads import create_with_pooling

    return create_with_pooling(name, pooling=pooling, pretrained=pretrained, **kwargs)
