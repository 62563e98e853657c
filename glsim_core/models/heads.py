"""SimPool (or any Table-1 pooling) as the pooling of timm ViT, ResNet and ConvNeXt models (SimPool paper §4).

:func:`create_with_pooling` builds the timm model (timm loads its pretrained weights as usual), then replaces its
pooling, so every pretrained layer is kept and only the new pooling (and, when ``num_classes`` differs from the
checkpoint, timm's re-initialised classifier) is fresh:

* **ViT** (``VisionTransformer``): the CLS token is removed, the position embedding keeps the patch entries only,
  and SimPool pools the patch tokens **after** the final norm (the supervised release's placement; a model with
  ``fc_norm`` — norm after pooling — gets that norm moved before the pooling). The pooling sits in timm's
  ``attn_pool`` slot, so ``forward``, ``forward_features``, ``forward_head`` and ``reset_classifier`` keep working.
* **ResNet**: SimPool replaces ``global_pool`` (GAP) on the layer-4 map, before ``fc``.
* **ConvNeXt**: SimPool replaces ``head.global_pool``; the head's norm (ConvNeXt pools before its final norm, like
  the release) and ``fc`` follow.

``gamma`` means what it means for :class:`glsim_core.pooling.SimPool` (see there): a number is γ, ``None`` the
plain weighted average. Left out (:data:`FAMILY_GAMMA`), it is the paper's default for the family: 1.25 for
transformers, 2.0 for CNNs (§4.4). :func:`pooling_attention` returns the map a model pools with.
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from timm.layers.classifier import ClassifierHead, NormMlpClassifierHead
from timm.models.convnext import ConvNeXt
from timm.models.resnet import ResNet
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from ..pooling import SimPool, pool
from ..pooling.simpool_variants import SimPoolVariant
from .backbones import num_prefix_tokens, patch_grid, record_attention

__all__ = ["DEFAULT_GAMMA", "FAMILY_GAMMA", "simpool_gamma", "create_with_pooling", "attach_pooling", "get_pooling",
           "model_family", "pooling_attention", "PooledVisionTransformer", "PooledResNet", "PooledConvNeXt", "MaxOverK"]

#: γ by family (SimPool §4.4): transformers 1.25, convolutional networks 2.0.
DEFAULT_GAMMA = {"vit": 1.25, "resnet": 2.0, "convnext": 2.0}
#: ``gamma``'s default in :func:`attach_pooling` / :func:`create_with_pooling`: the family's γ (:data:`DEFAULT_GAMMA`).
FAMILY_GAMMA = "family"


def model_family(model: nn.Module) -> str:
    """'vit', 'resnet' or 'convnext' for the timm classes this module supports (exact class or our subclass)."""
    for cls, fam in ((VisionTransformer, "vit"), (ResNet, "resnet"), (ConvNeXt, "convnext")):
        if type(model) is cls or type(model) in _POOLED.values() and isinstance(model, cls):
            return fam
    raise ValueError(f"{type(model).__name__} is not supported: pooling heads exist for timm VisionTransformer, "
                     "ResNet and ConvNeXt models")


class MaxOverK(nn.Module):
    """Classifier for k pooled vectors (B, k, D): the linear layer on each, then the maximum of the k logits per
    class (SimPool §4.2's reduction for k-means, OTK and slot attention)."""

    def __init__(self, fc: nn.Linear):
        super().__init__()
        self.fc = fc

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        logits = self.fc(u)
        return logits.amax(dim=1) if logits.ndim == 3 else logits


class _MapPool(nn.Module):
    """Adapter in ConvNeXt's ``head.global_pool`` slot: pools (B, C, H, W) and returns (B, C, 1, 1) (before the
    head's LayerNorm2d) or (B, C) (``ClassifierHead``)."""

    def __init__(self, pool_module: nn.Module, keep_dims: bool):
        super().__init__()
        self.pool = pool_module
        self.keep_dims = keep_dims
        self.pool_type = "simpool" if isinstance(pool_module, SimPool) else getattr(pool_module, "name", "custom")

    def is_identity(self) -> bool:
        return False

    def feat_mult(self) -> int:
        return 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.pool(x)
        return u[:, :, None, None] if self.keep_dims else u


def _classifier(in_features: int, num_classes: int, k_vectors: bool, like: nn.Module) -> nn.Module:
    if num_classes <= 0:
        return nn.Identity()
    ref = next(like.parameters(), None) if like is not None else None
    fc = nn.Linear(in_features, num_classes)
    if ref is not None:
        fc = fc.to(device=ref.device, dtype=ref.dtype)
    return MaxOverK(fc) if k_vectors else fc


def _pool_out(pool_module: nn.Module, dim: int) -> tuple[int, bool]:
    """(width fed to the classifier, whether the pooling returns k vectors for max-over-logits)."""
    k_vectors = getattr(pool_module, "reduce", "concat") == "none" and getattr(pool_module, "k", 1) > 1
    out = getattr(pool_module, "out_dim", None) or dim
    return out, k_vectors


class PooledVisionTransformer(VisionTransformer):
    """A timm ViT whose ``attn_pool`` slot holds SimPool (or another Table-1 pooling); built by
    :func:`attach_pooling`. ``reset_classifier(n)`` keeps the pooling and replaces the linear head."""

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            raise ValueError("this ViT pools with a SimPool-style head; build a new model to change its pooling")
        self.num_classes = num_classes
        out, k_vectors = _pool_out(self.attn_pool, self.embed_dim)
        self.head = _classifier(out, num_classes, k_vectors, self)


class PooledResNet(ResNet):
    """A timm ResNet whose ``global_pool`` is SimPool (or another Table-1 pooling); ``reset_classifier(n)`` keeps it."""

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            raise ValueError("this ResNet pools with a SimPool-style head; build a new model to change its pooling")
        self.num_classes = num_classes
        out, k_vectors = _pool_out(self.global_pool, self.num_features)
        self.fc = _classifier(out, num_classes, k_vectors, self)


class PooledConvNeXt(ConvNeXt):
    """A timm ConvNeXt whose ``head.global_pool`` wraps SimPool; ``reset_classifier(n)`` keeps it."""

    def reset_classifier(self, num_classes: int, global_pool: str | None = None, reset_other: bool = False) -> None:
        if global_pool is not None:
            raise ValueError("this ConvNeXt pools with a SimPool-style head; build a new model to change its pooling")
        super().reset_classifier(num_classes, None, reset_other=reset_other)


_POOLED = {"vit": PooledVisionTransformer, "resnet": PooledResNet, "convnext": PooledConvNeXt}


def get_pooling(model: nn.Module) -> nn.Module | None:
    """The pooling module a model built by :func:`attach_pooling` pools with (None for an unmodified timm model)."""
    fam = model_family(model)
    if fam == "vit":
        return model.attn_pool if isinstance(model, PooledVisionTransformer) else None
    if fam == "resnet":
        return model.global_pool if isinstance(model, PooledResNet) else None
    gp = model.head.global_pool
    return gp.pool if isinstance(gp, _MapPool) else None


def simpool_gamma(gamma: float | str | None, family: str = "vit") -> float | None:
    """The γ a SimPool head gets: ``gamma`` as a number; ``None`` (or ``False``, the same) for SimPool's plain
    weighted average; :data:`FAMILY_GAMMA` for the paper's default of the family (1.25 ViT, 2.0 CNNs)."""
    if isinstance(gamma, str):
        if gamma != FAMILY_GAMMA:
            raise ValueError(f"gamma must be a number, None or {FAMILY_GAMMA!r}, got {gamma!r}")
        return DEFAULT_GAMMA[family]
    return None if gamma is None or gamma is False else float(gamma)


def _build_pool(pooling: str | nn.Module, dim: int, family: str, gamma: Any, pool_kwargs: dict) -> nn.Module:
    if isinstance(pooling, nn.Module):
        if gamma != FAMILY_GAMMA or pool_kwargs:
            raise ValueError("pass gamma / pooling options to the module you built, not here")
        return pooling
    name = str(pooling).lower()
    if name == "simpool":
        g = simpool_gamma(gamma, family)
        if {"linear", "layernorm", "shared_qk"} & set(pool_kwargs):  # SimPool Table 10's design options
            return SimPoolVariant(dim, gamma=g, **pool_kwargs)
        return SimPool(dim, gamma=g, **pool_kwargs)
    if gamma != FAMILY_GAMMA:
        raise ValueError(f"gamma is SimPool's exponent; pooling={pooling!r} takes its options in pool_kwargs")
    return pool(name, dim=dim, **pool_kwargs)


def attach_pooling(model: nn.Module, pooling: str | nn.Module = "simpool", gamma: float | str | None = FAMILY_GAMMA,
                   **pool_kwargs: Any) -> nn.Module:
    """Replace the pooling of a timm ViT / ResNet / ConvNeXt in place (see the module docstring) and return it.

    ``pooling`` is a Table-1 name (``"simpool"``, ``"gap"``, ``"gem"``, ``"cait"``, ...) or a module;
    ``gamma`` (SimPool only, :func:`simpool_gamma`): a number, ``None`` (no generalised mean) or left out (the
    family's γ); ``pool_kwargs`` go to the
    pooling's constructor (e.g. ``num_heads``, ``use_beta``, ``min_over`` for SimPool; ``reduce="none"`` for a
    k > 1 method gives the maximum over the k logits). Parameters keep the device and dtype of the model.
    """
    family = model_family(model)
    if type(model) in _POOLED.values():
        raise ValueError("this model already has a SimPool-style pooling")
    ref = next(model.parameters())
    if family == "vit":
        dim = model.embed_dim
        new_pool = _build_pool(pooling, dim, family, gamma, pool_kwargs)
        if model.attn_pool is not None:
            raise ValueError("this ViT already pools with attention ('map'/'prr'); start from a CLS or GAP ViT")
        if model.cls_token is not None:
            model.cls_token = None
            if model.pos_embed is not None and not model.no_embed_class:
                requires_grad = model.pos_embed.requires_grad
                model.pos_embed = nn.Parameter(model.pos_embed.detach()[:, 1:].clone(), requires_grad=requires_grad)
            model.num_prefix_tokens -= 1
            model.has_class_token = False
        if not isinstance(model.fc_norm, nn.Identity) and isinstance(model.norm, nn.Identity):
            model.norm, model.fc_norm = model.fc_norm, nn.Identity()  # pool after the final norm
        model.attn_pool = new_pool.to(device=ref.device, dtype=ref.dtype)
        model.pool_include_prefix = False
        model.global_pool = "map"
        out, k_vectors = _pool_out(new_pool, dim)
        if out != dim or k_vectors:
            model.head = _classifier(out, model.num_classes, k_vectors, model)
        model.head_hidden_size = out
    elif family == "resnet":
        dim = model.num_features
        new_pool = _build_pool(pooling, dim, family, gamma, pool_kwargs)
        model.global_pool = new_pool.to(device=ref.device, dtype=ref.dtype)
        out, k_vectors = _pool_out(new_pool, dim)
        if out != dim or k_vectors:
            model.fc = _classifier(out, model.num_classes, k_vectors, model)
        model.head_hidden_size = out
    else:
        dim = model.num_features
        new_pool = _build_pool(pooling, dim, family, gamma, pool_kwargs)
        out, k_vectors = _pool_out(new_pool, dim)
        if out != dim or k_vectors:
            raise ValueError(f"ConvNeXt's head norm needs a {dim}-d pooled vector; {pooling!r} gives {out} "
                             "(use reduce='mean' or 'max' for k > 1 methods)")
        if isinstance(model.head, NormMlpClassifierHead):
            keep = True
        elif isinstance(model.head, ClassifierHead):
            keep = False
        else:
            raise ValueError(f"unsupported ConvNeXt head {type(model.head).__name__}")
        model.head.global_pool = _MapPool(new_pool, keep_dims=keep).to(device=ref.device, dtype=ref.dtype)
        model.head.flatten = nn.Flatten(1) if keep else nn.Identity()
    model.__class__ = _POOLED[family]
    model.pooling_name = getattr(new_pool, "name", "simpool") if not isinstance(new_pool, SimPool) else "simpool"
    return model


def create_with_pooling(name: str, pooling: str | nn.Module = "simpool", gamma: float | str | None = FAMILY_GAMMA,
                        num_classes: int | None = None, pretrained: bool = False,
                        pool_kwargs: dict | None = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, pretrained=..., num_classes=..., **kwargs)`` with its pooling replaced by
    ``pooling`` (default SimPool with the family's γ). See :func:`attach_pooling` for ``gamma`` and
    ``pool_kwargs``; ``use_beta`` and ``min_over`` may also be given directly (SimPool-only names). Other keywords
    go to timm (``img_size``, ``drop_path_rate``, ``pretrained_cfg_overlay=dict(file=...)`` for local weights...).

    >>> m = create_with_pooling("resnet50", num_classes=200)            # doctest: +SKIP
    >>> m = create_with_pooling("vit_small_patch16_224", gamma=1.25)     # doctest: +SKIP
    """
    pool_kwargs = dict(pool_kwargs or {})
    for key in ("use_beta", "min_over"):
        if key in kwargs:
            pool_kwargs[key] = kwargs.pop(key)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    return attach_pooling(model, pooling=pooling, gamma=gamma, **pool_kwargs)


def _l1_share(tokens: torch.Tensor) -> torch.Tensor:
    """Each location's share of the total absolute activation, (B, p, d) -> (B, p)."""
    mass = tokens.float().abs().sum(-1)
    return mass / mass.sum(-1, keepdim=True).clamp_min(torch.finfo(mass.dtype).tiny)


@torch.no_grad()
def pooling_attention(model: nn.Module, images: torch.Tensor, flatten: bool = True) -> torch.Tensor:
    """The spatial map a model pools with, (B, N) with N = H·W in row-major order (``flatten=False``: (B, H, W)).

    * a model built by :func:`create_with_pooling` / :func:`attach_pooling`: the pooling's attention — SimPool's a
      (Eq. 15); for k > 1 methods the mean of the k maps;
    * a plain timm ViT with a CLS token: the last block's CLS → patch attention, mean over heads
      (:func:`glsim_core.models.record_attention`);
    * a plain GAP model (ResNet, ConvNeXt, GAP ViT): GAP's own weights are uniform (1/N, Table 1), so this returns
      each location's share of the absolute activation GAP averages, ‖x_j‖₁ / Σ_i ‖x_i‖₁ (for ReLU networks exactly
      location j's share of 1ᵀu).

    Runs under ``torch.no_grad()`` in the model's current mode (call ``model.eval()`` first).
    """
    family = model_family(model)
    p = get_pooling(model)
    if family == "vit":
        grid = patch_grid(model, tuple(images.shape[-2:]))
        prefix = num_prefix_tokens(model)
        if p is None and model.cls_token is not None:
            with record_attention(model, layers=[-1]) as attn:
                model.forward_features(images)
            a = attn[-1][:, :, 0, prefix:].mean(1)
        else:
            tokens = model.forward_features(images)[:, prefix:]
            a = _l1_share(tokens) if p is None else p(tokens, return_attention=True)[1]
    else:
        fmap = model.forward_features(images)
        grid = tuple(fmap.shape[-2:])
        a = _l1_share(fmap.flatten(2).transpose(1, 2)) if p is None else p(fmap, return_attention=True)[1]
    a = a.float()
    if a.ndim == (4 if family != "vit" else 3):  # k maps
        a = a.mean(1)
    a = a.reshape(a.shape[0], -1)
    return a if flatten else a.reshape(a.shape[0], *grid)

