"""GLSim: global-local similarity crops + aggregator on a timm ViT (GLSim §3.3, Eq. 3-6, Figure 1, Appendix B).

Forward pass (Figure 1, the pseudocode of Figure 6):

1. **Encoder**: a timm ViT (``timm.create_model(backbone, pretrained=...)``; its own head removed) encodes the
   image; ``f`` = all output tokens after the final LayerNorm, ``f^0`` = the CLS token.
2. **Selection** (no gradients): GLS between ``f^0`` and every patch token (Eq. 1-2) - or another mechanism for
   the ablations - scores the tokens; the rectangle enclosing the top-O tokens is cropped from the input image and
   resized to the input size (:mod:`glsim_core.selection.gls`).
3. **Second pass** (with gradients): the crop goes through the **same** encoder (shared weights) with a
   **separate learnable CLS token**, initialised from the encoder's; ``f^0_crops`` is its output CLS token.
4. **Aggregator** (Eq. 3-4): one pre-norm transformer block (timm's ``Block``: MHSA + MLP 4D, GELU) over the two
   tokens ``[f^0; f^0_crops]``; then a LayerNorm (Eq. 5) and the linear head on token 0 (Eq. 6).

Switches for the ablations (Table 5, Table 12-14): ``selector`` ("gls", "random", "rollout", "attention", "maws",
"psm", "simpool"), ``top_o``, ``metric`` ("cosine", "l1", "l2"), ``box_rule`` ("paper", "reference"),
``use_crops``, ``use_aggregator``.

* ``use_crops=False, use_aggregator=True`` is Table 5's second row: the aggregator block sees ``[f^0]`` only.
* ``use_aggregator=False`` (Table 5's third row): the classifier ``C_final`` is applied to each view's CLS token
  (one shared head, as the release applies one head to every token; the encoder is shared too) and, per sample,
  the prediction of the more confident view (larger max softmax probability; ties -> the original image) is the
  output. Training uses the same rule: the loss sees the selected view's logits, so gradients flow through the
  view the model trusts for that sample (both views share every weight except the crops' CLS token).
  ``forward_details`` returns both views' logits for other training rules.
* ``use_crops=False, use_aggregator=False`` is the plain ViT (head on ``f^0``).

SimPool (``pool="simpool"``, implied by ``selector="simpool"``): the global representation is whatever the
backbone pools. A :class:`glsim_core.pooling.SimPool` pools the final-normed **patch** tokens (SimPool's
supervised placement, after the final norm) into ``g``; the crop is chosen from SimPool's attention map ``a``
(SimPool Eq. 15) when ``selector="simpool"`` (or by GLS between ``g`` and the patch tokens when ``selector="gls"``);
the crop is pooled by the same SimPool module, and the aggregator fuses ``[g; g_crops]``. The encoder keeps its
CLS token in the sequence (so timm's pretrained weights load unchanged) but nothing reads it, and there is no
separate crop token (SimPool's query is the GAP of the tokens, not a learned token).

Deliberate differences from the authors' release: the separate crop CLS token is used (the
release's own-ViT path creates it but never uses it); the box encloses the top-O tokens (``box_rule="reference"``
gives the release's); the crop is batched; O > N is clamped; GLS runs on the final-normed output (the release's
timm variant at HEAD dropped that norm).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import partial
from typing import Any

import timm
import torch
from timm.models import generate_default_cfgs, register_model
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from ..pooling import SimPool
from ..selection.attention import ATTENTION_MECHANISMS, attention_kind, attention_layers, scores_from_attention
from ..selection.gls import (
    BOX_RULES,
    METRICS,
    crop_and_resize,
    global_local_similarity,
    paper_top_o,
    select_boxes,
)
from .backbones import SMALL_VITS, drop_path_rates, patch_grid, record_attention, set_drop_path
from .heads import simpool_gamma

__all__ = ["GLSim", "GLSimOutput", "SELECTORS", "POOLS", "GLSIM_VARIANTS", "GLSIM_BACKBONES", "paper_top_o",
           "glsim_backbone"]

SELECTORS = ("gls", "random", "rollout", "attention", "maws", "psm", "simpool")
POOLS = ("token", "simpool")

#: Registered timm names -> {weights tag: backbone (timm name with its pretrained tag)}; the first tag is the default.
#: The paper's backbone is ViT-B/16 pre-trained on ImageNet-21k by the original ViT authors (timm's ``orig_in21k``);
#: ``augreg_in21k`` (Steiner et al.'s AugReg weights) is a named option: ``glsim_vit_base_patch16_224.augreg_in21k``.
#: ViT-Ti/S have no ``orig_in21k`` weights in timm. The small-image variants are the cpu profile's ViTs
#: (models.backbones.SMALL_VITS, weights shipped in data/pretrained).
GLSIM_BACKBONES: dict[str, dict[str, str]] = {
    "glsim_vit_tiny_patch16_224": {"augreg_in21k": "vit_tiny_patch16_224.augreg_in21k"},
    "glsim_vit_small_patch16_224": {"augreg_in21k": "vit_small_patch16_224.augreg_in21k"},
    "glsim_vit_base_patch16_224": {"orig_in21k": "vit_base_patch16_224.orig_in21k",
                                   "augreg_in21k": "vit_base_patch16_224.augreg_in21k"},
    "glsim_vit_base_patch32_224": {"orig_in21k": "vit_base_patch32_224.orig_in21k",  # Table 15's patch-size ablation
                                   "augreg_in21k": "vit_base_patch32_224.augreg_in21k"},
    **{f"glsim_{name}": {"": name} for name in SMALL_VITS},
}
#: Registered timm names -> default backbone (timm name with pretrained tag).
GLSIM_VARIANTS: dict[str, str] = {v: next(iter(tags.values())) for v, tags in GLSIM_BACKBONES.items()}


@dataclass
class GLSimOutput:
    """Everything one GLSim forward pass computed (for visualisation and analysis).

    ``scores`` (B, N) selection scores on the ``grid`` = (rows, cols) of patch tokens, ``boxes`` (B, 4) int64
    ``(x0, y0, x1, y1)`` pixel boxes, ``crops`` (B, C, H, W) the resized crops (all None with ``use_crops=False``);
    ``global_rep`` / ``global_rep_crops`` (B, D): ``f^0`` and ``f^0_crops`` (SimPool's pooled vectors with
    ``pool="simpool"``); ``view_logits`` (B, 2, K) and ``chosen_view`` (B,) (0 = image, 1 = crop) only without
    the aggregator.
    """

    logits: torch.Tensor
    scores: torch.Tensor | None
    boxes: torch.Tensor | None
    crops: torch.Tensor | None
    global_rep: torch.Tensor
    global_rep_crops: torch.Tensor | None
    grid: tuple[int, int]
    view_logits: torch.Tensor | None = None
    chosen_view: torch.Tensor | None = None
    pool_attention: torch.Tensor | None = None


def _init_linear(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class GLSim(nn.Module):
    """GLSim on a timm ViT. See the module docstring for the method and every switch.

    Args:
        backbone: timm ViT name, with optional pretrained tag (default ``"vit_base_patch16_224.orig_in21k"``, the
            paper's ImageNet-21k ViT-B/16).
        num_classes: classes of the final head (0: ``forward`` returns the normalised token 0 features).
        pretrained: load the backbone's timm pretrained weights (hub, url, or the ``file`` of its pretrained cfg).
        selector, top_o, metric, box_rule, use_crops, use_aggregator, pool: the ablation switches; ``top_o=None``
            follows the paper (:func:`paper_top_o`: 8, doubled at 448 px).
        gamma: SimPool's γ when ``pool="simpool"``: a number, ``None`` for the plain weighted average (as
            :class:`glsim_core.pooling.SimPool`); default 1.25, SimPool's γ for transformers.
        crop_size: size the crop is resized to (default: the input's own size, as the paper).
        align_corners: bilinear resize convention of the crop (the release: True).
        drop_rate: dropout before the head.
        drop_path_rate, drop_path_schedule: stochastic depth. ``"uniform"`` (default) puts ``drop_path_rate`` in
            every encoder block (GLSim appendix C: 0.1 in every block); ``"linear"`` is timm's rule (0 in block 0
            up to the rate in the last). The aggregator is a transformer block trained like the encoder's, so it
            gets ``drop_path_rate`` too under both schedules (it sits after the last block, where timm's rule
            reaches the full rate); dropping its residual branch leaves ``[f^0; f^0_crops]`` unchanged, i.e.
            the head sees the plain CLS token for that sample.
        pretrained_cfg, pretrained_cfg_overlay, cache_dir: passed to ``timm.create_model`` for the backbone.
        **backbone_kwargs: any other timm ViT keyword (``img_size``, ``dynamic_img_size``, ...).
    """

    def __init__(self, backbone: str = "vit_base_patch16_224.orig_in21k", num_classes: int = 1000,
                 pretrained: bool = False, *, selector: str = "gls", top_o: int | None = None,
                 metric: str = "cosine", box_rule: str = "paper", use_crops: bool = True, use_aggregator: bool = True,
                 pool: str | None = None, gamma: float | None = 1.25, crop_size: int | tuple[int, int] | None = None,
                 align_corners: bool = True, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 drop_path_schedule: str = "uniform", pretrained_cfg: Any = None,
                 pretrained_cfg_overlay: dict | None = None, cache_dir: str | None = None,
                 **backbone_kwargs: Any) -> None:
        super().__init__()
        if selector not in SELECTORS:
            raise ValueError(f"selector must be one of {SELECTORS}, got {selector!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if box_rule not in BOX_RULES:
            raise ValueError(f"box_rule must be one of {BOX_RULES}, got {box_rule!r}")
        if top_o is not None and (isinstance(top_o, bool) or not isinstance(top_o, int) or top_o < 1):
            raise ValueError(f"top_o must be a positive int, got {top_o!r}")
        pool = pool or ("simpool" if selector == "simpool" else "token")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if selector == "simpool" and pool != "simpool":
            raise ValueError("selector='simpool' reads SimPool's attention map: it needs pool='simpool'")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.selector, self.top_o, self.metric, self.box_rule = selector, top_o, metric, box_rule
        self.use_crops, self.use_aggregator, self.pool = bool(use_crops), bool(use_aggregator), pool
        self.crop_size, self.align_corners = crop_size, bool(align_corners)
        self.num_classes = num_classes
        self.backbone_name = backbone

        enc_kwargs = dict(backbone_kwargs, num_classes=0, drop_path_rate=drop_path_rate)
        for key, value in (("pretrained_cfg", pretrained_cfg), ("pretrained_cfg_overlay", pretrained_cfg_overlay),
                           ("cache_dir", cache_dir)):
            if value is not None:
                enc_kwargs[key] = value
        rates = drop_path_rates(drop_path_rate, 1, drop_path_schedule)  # validates before the (slow) build
        self.encoder = timm.create_model(backbone, pretrained=pretrained, **enc_kwargs)
        enc = self.encoder
        if not isinstance(enc, VisionTransformer) or enc.cls_token is None:
            raise TypeError(f"GLSim needs a timm VisionTransformer with a CLS token; {backbone!r} built a "
                            f"{type(enc).__name__}")
        if isinstance(enc.norm, nn.Identity):
            raise ValueError(f"{backbone!r} applies no final norm to its tokens (fc_norm / avg-pool config); "
                             "GLS reads the final-normed tokens: build it with its default global_pool='token'")
        dim = self.num_features = self.embed_dim = enc.embed_dim
        heads = enc.blocks[0].attn.num_heads
        set_drop_path(enc.blocks, drop_path_rates(drop_path_rate, len(enc.blocks), drop_path_schedule))
        self.drop_path_schedule = drop_path_schedule
        if top_o is None:
            self.top_o = paper_top_o(tuple(enc.patch_embed.img_size) if enc.patch_embed.img_size else 224)

        if pool == "simpool":
            self.simpool = SimPool(dim, gamma=simpool_gamma(gamma, "vit"))
        # Separate learnable CLS token for the crops (§3.2), initialised from the (possibly pretrained) encoder's.
        self.cls_token_crops = (nn.Parameter(enc.cls_token.detach().clone())
                                if self.use_crops and pool == "token" else None)
        if self.use_aggregator:
            self.aggregator = Block(dim, heads, mlp_ratio=4.0, qkv_bias=True, drop_path=rates[0],
                                    norm_layer=partial(nn.LayerNorm, eps=1e-6), act_layer=nn.GELU)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            _init_linear(self.aggregator)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()
        _init_linear(self.head)
        # data config (mean/std/input size) comes from the backbone's pretrained cfg
        self.pretrained_cfg = dict(getattr(enc, "pretrained_cfg", {}) or {}, num_classes=num_classes,
                                   classifier="head")
        self.default_cfg = self.pretrained_cfg

    # ---------------------------------------------------------------------------------------------- timm API
    @property
    def num_prefix_tokens(self) -> int:
        return int(self.encoder.num_prefix_tokens)

    @property
    def patch_size(self) -> tuple[int, int]:
        return tuple(self.encoder.patch_embed.patch_size)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        return names | ({"cls_token_crops"} if self.cls_token_crops is not None else set())

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.encoder.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new (randomly initialised) head for ``num_classes`` classes (``global_pool`` is ignored)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        _init_linear(self.head)
        self.head.to(self.encoder.cls_token.device)
        self.pretrained_cfg["num_classes"] = num_classes

    # ------------------------------------------------------------------------------------------ the pieces
    def encode(self, images: torch.Tensor, cls_token: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder output tokens (B, prefix + N, D) after the final norm: timm's ``encoder.forward_features``.

        With ``cls_token`` (1, 1, D), that token replaces the encoder's CLS token at the input (the crops' pass). The
        override is small and uses timm's public modules only: a forward hook on ``encoder.patch_drop`` (the first
        module after timm adds the position embedding) shifts token 0 by ``cls_token - encoder.cls_token``, which is
        exactly the swap (the position embedding is added to both alike); the encoder's CLS token gets no gradient
        from it, and everything else (grad checkpointing, attention recording) is timm's own forward.
        """
        enc = self.encoder
        if cls_token is None:
            return enc.forward_features(images)

        def swap_cls(_module: nn.Module, _inputs: tuple, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x[:, :1] + (cls_token - enc.cls_token).to(x.dtype), x[:, 1:]], dim=1)

        handle = enc.patch_drop.register_forward_hook(swap_cls)
        try:
            return enc.forward_features(images)
        finally:
            handle.remove()

    def global_representation(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(g, attention)``: the CLS token and None, or SimPool's pooled vector and its map (B, N)."""
        if self.pool == "token":
            return tokens[:, 0], None
        pooled, attn = self.simpool(tokens[:, self.num_prefix_tokens:], return_attention=True)
        return pooled, attn.flatten(1)

    def _grid(self, images: torch.Tensor, num_patches: int) -> tuple[int, int]:
        rows, cols = patch_grid(self.encoder, tuple(images.shape[-2:]))
        if rows * cols != num_patches:
            raise ValueError(f"{num_patches} patch tokens do not form the {rows}x{cols} grid of a "
                             f"{tuple(images.shape[-2:])} input")
        return rows, cols

    def _scores(self, selector: str, metric: str, tokens: torch.Tensor, global_rep: torch.Tensor,
                maps: list[torch.Tensor], pool_attn: torch.Tensor | None, **kwargs: Any) -> torch.Tensor:
        prefix = self.num_prefix_tokens
        if selector == "gls":
            glob = None if self.pool == "token" else global_rep.detach()
            return global_local_similarity(tokens.detach(), metric, prefix, global_token=glob)
        if selector == "random":
            return torch.rand(tokens.shape[0], tokens.shape[1] - prefix, device=tokens.device)
        if selector == "simpool":
            if pool_attn is None:
                raise ValueError("selector 'simpool' needs a model built with pool='simpool'")
            return pool_attn.detach().float()
        return scores_from_attention(selector, maps, prefix, **kwargs)

    def _recording(self, selector: str):
        if selector in ATTENTION_MECHANISMS:
            return record_attention(self.encoder, attention_layers(selector, len(self.encoder.blocks)),
                                    kind=attention_kind(selector))
        return contextlib.nullcontext([])

    def _first_pass(self, images: torch.Tensor, selector: str, metric: str, select: bool, **kwargs: Any):
        if images.ndim != 4:
            raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
        with self._recording(selector) if select else contextlib.nullcontext([]) as maps:
            tokens = self.encode(images)
        global_rep, pool_attn = self.global_representation(tokens)
        scores = None
        if select:
            with torch.no_grad():
                scores = self._scores(selector, metric, tokens, global_rep, maps, pool_attn, **kwargs)
        return tokens, global_rep, pool_attn, scores

    def selection_scores(self, images: torch.Tensor, selector: str | None = None, metric: str | None = None,
                         **kwargs: Any) -> torch.Tensor:
        """(B, N) token scores of any mechanism on the first pass (no gradients), e.g. to draw them."""
        selector = selector or self.selector
        if selector not in SELECTORS:
            raise ValueError(f"selector must be one of {SELECTORS}, got {selector!r}")
        with torch.no_grad():
            return self._first_pass(images, selector, metric or self.metric, True, **kwargs)[3]

    def _features(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        tokens, g, pool_attn, scores = self._first_pass(images, self.selector, self.metric, self.use_crops)
        grid = self._grid(images, tokens.shape[1] - self.num_prefix_tokens)
        info = dict(scores=scores, boxes=None, crops=None, global_rep=g, global_rep_crops=None, grid=grid,
                    pool_attention=pool_attn)
        reps = [g]
        if self.use_crops:
            with torch.no_grad():
                boxes = select_boxes(scores, grid, self.patch_size, self.top_o, self.box_rule)
                size = self.crop_size if self.crop_size is not None else tuple(images.shape[-2:])
                crops = crop_and_resize(images.detach(), boxes, size, self.align_corners)
            g_crops = self.global_representation(self.encode(crops, self.cls_token_crops))[0]
            reps.append(g_crops)
            info.update(boxes=boxes, crops=crops, global_rep_crops=g_crops)
        return self._aggregate(torch.stack(reps, dim=1)), info

    def _aggregate(self, reps: torch.Tensor) -> torch.Tensor:
        if not self.use_aggregator:
            return reps
        return self.norm(self.aggregator(reps))  # Eq. 3-5

    def _classify(self, feats: torch.Tensor):
        if self.use_aggregator or feats.shape[1] == 1:
            return self.head(self.head_drop(feats[:, 0])), None, None  # Eq. 6
        view_logits = self.head(self.head_drop(feats))  # (B, 2, K): the shared head on each view's token
        confidence = view_logits.detach().float().softmax(-1).amax(-1)  # (B, 2)
        chosen = confidence.argmax(dim=1)  # ties -> 0, the original image
        index = chosen[:, None, None].expand(-1, 1, view_logits.shape[-1])
        return view_logits.gather(1, index).squeeze(1), view_logits, chosen

    # ------------------------------------------------------------------------------------------- forwards
    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, V, D) representations entering the head: the aggregated, normalised ``[CLS, CLS_crop]``
        (V = 2; 1 without crops), or the two raw CLS tokens without the aggregator."""
        return self._features(images)[0]

    def forward_head(self, feats: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if pre_logits:
            return feats[:, 0]
        return self._classify(feats)[0]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes)."""
        return self._classify(self.forward_features(images))[0]

    def forward_details(self, images: torch.Tensor) -> GLSimOutput:
        """Logits plus the selection scores, boxes, crops and both global representations (:class:`GLSimOutput`)."""
        feats, info = self._features(images)
        logits, view_logits, chosen = self._classify(feats)
        return GLSimOutput(logits=logits, view_logits=view_logits, chosen_view=chosen, **info)

    def extra_repr(self) -> str:
        return (f"backbone={self.backbone_name!r}, selector={self.selector!r}, top_o={self.top_o}, "
                f"metric={self.metric!r}, box_rule={self.box_rule!r}, use_crops={self.use_crops}, "
                f"use_aggregator={self.use_aggregator}, pool={self.pool!r}")


# ------------------------------------------------------------------------------------------ timm registration
def glsim_backbone(variant: str, tag: str | None = None) -> str:
    """The backbone (timm name with weights tag) of a registered GLSim name and tag (default: the first tag)."""
    tags = GLSIM_BACKBONES[variant]
    if not tag:
        return next(iter(tags.values()))
    if tag in tags:
        return tags[tag]
    arch = next(iter(tags.values())).split(".", 1)[0]
    return f"{arch}.{tag}"  # any other tag of the backbone architecture (timm checks that it exists)


def _glsim_cfg(backbone: str) -> dict:
    """A GLSim name's pretrained config: its backbone's data config (mean/std, input size, interpolation, crop)."""
    cfg = timm.models.get_pretrained_cfg(backbone)
    if cfg is None:
        raise RuntimeError(f"timm has no pretrained config for {backbone!r}")
    return dict(input_size=cfg.input_size, interpolation=cfg.interpolation, crop_pct=cfg.crop_pct, mean=cfg.mean,
                std=cfg.std, num_classes=0, first_conv=f"encoder.{cfg.first_conv or 'patch_embed.proj'}",
                classifier="head",
                license=cfg.license, notes=f"backbone weights: {backbone}")


# timm's register_model reads this module-level name: one pretrained config per (name, weights tag), the first
# of each name being its default - the same scheme timm uses for its own models.
default_cfgs = generate_default_cfgs({
    (f"{variant}.{tag}" if tag else variant): _glsim_cfg(backbone)
    for variant, tags in GLSIM_BACKBONES.items() for tag, backbone in tags.items()
})


def _create_glsim(variant: str, pretrained: bool = False, pretrained_cfg: Any = None,
                  pretrained_cfg_overlay: dict | None = None, cache_dir: str | None = None,
                  backbone: str | None = None, **kwargs: Any) -> GLSim:
    tag = None
    if isinstance(pretrained_cfg, str):  # "glsim_vit_base_patch16_224.<tag>" -> the backbone with that tag
        tag, pretrained_cfg = pretrained_cfg, None
    elif pretrained_cfg is not None and getattr(pretrained_cfg, "architecture", None) == variant:
        tag, pretrained_cfg = pretrained_cfg.tag, None  # one of ours (timm.get_pretrained_cfg): its tag
    name = backbone or glsim_backbone(variant, tag)
    return GLSim(name, pretrained=pretrained, pretrained_cfg=pretrained_cfg,
                 pretrained_cfg_overlay=pretrained_cfg_overlay, cache_dir=cache_dir, **kwargs)


@register_model
def glsim_vit_tiny_patch16_224(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ViT-Ti/16 (AugReg ImageNet-21k weights)."""
    return _create_glsim("glsim_vit_tiny_patch16_224", pretrained, **kwargs)


@register_model
def glsim_vit_small_patch16_224(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ViT-S/16 (AugReg ImageNet-21k weights)."""
    return _create_glsim("glsim_vit_small_patch16_224", pretrained, **kwargs)


@register_model
def glsim_vit_base_patch16_224(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ViT-B/16, the paper's model: original ImageNet-21k weights (``.orig_in21k``, default) or the
    AugReg ones (``.augreg_in21k``)."""
    return _create_glsim("glsim_vit_base_patch16_224", pretrained, **kwargs)


@register_model
def glsim_vit_base_patch32_224(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ViT-B/32 (Table 15's patch-size ablation): ``.orig_in21k`` (default) or ``.augreg_in21k``."""
    return _create_glsim("glsim_vit_base_patch32_224", pretrained, **kwargs)


@register_model
def glsim_vit_nano_patch8_64(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on the cpu profile's ``vit_nano_patch8_64`` (shipped weights)."""
    return _create_glsim("glsim_vit_nano_patch8_64", pretrained, **kwargs)


@register_model
def glsim_vit_nano_convstem_patch8_64(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ``vit_nano_convstem_patch8_64`` (the nano ViT with a convolutional stem; shipped weights)."""
    return _create_glsim("glsim_vit_nano_convstem_patch8_64", pretrained, **kwargs)


@register_model
def glsim_vit_micro_patch8_64(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on the cpu profile's ``vit_micro_patch8_64`` (shipped weights)."""
    return _create_glsim("glsim_vit_micro_patch8_64", pretrained, **kwargs)


@register_model
def glsim_vit_nano_convstem_patch16_64(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ``vit_nano_convstem_patch16_64`` (the coarse-patch side of Table 15 at cpu scale; no shipped
    weights: trained from scratch)."""
    return _create_glsim("glsim_vit_nano_convstem_patch16_64", pretrained, **kwargs)


@register_model
def glsim_vit_nano_patch16_64(pretrained: bool = False, **kwargs: Any) -> GLSim:
    """GLSim on ``vit_nano_patch16_64`` (plain patch embedding, 4x4 grid; no shipped weights)."""
    return _create_glsim("glsim_vit_nano_patch16_64", pretrained, **kwargs)
