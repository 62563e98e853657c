"""timm encoders as this project uses them: small registered ViTs for the ``cpu`` profile, tokens and attentions.

Nothing here forks timm. The small variants are ordinary timm ``VisionTransformer`` configurations registered
under their own names (so ``timm.create_model("vit_nano_patch8_64")`` works once ``glsim_core.models`` is
imported); attention maps are read with forward hooks on each block's ``attn_drop`` (the module that receives the
softmax-normalised attention), with timm's fused attention switched off only while recording, or - for mechanisms
that need the **pre-softmax** scores (FFVT's MAWS) - recomputed as ``(q * scale) @ k^T`` from a hook on ``attn.qkv``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import PatchEmbed
from timm.models import generate_default_cfgs, register_model
from timm.models.resnet import BasicBlock, ResNet, _create_resnet
from timm.models.vision_transformer import VisionTransformer, _create_vision_transformer
from torch import nn

__all__ = ["ConvStemPatchEmbed", "SMALL_VITS", "SMALL_CNNS", "record_attention", "set_weights_resolver",
           "num_prefix_tokens", "patch_grid", "ATTENTION_KINDS", "DROP_PATH_SCHEDULES", "drop_path_rates",
           "set_drop_path"]


class ConvStemPatchEmbed(PatchEmbed):
    """A patch embedding whose projection is a small convolutional stem instead of one strided linear map.

    ``log2(patch)`` blocks of 3x3 convolution (stride 2) + BatchNorm + ReLU, then a 1x1 convolution to the embedding
    width (Xiao et al., "Early Convolutions Help Transformers See Better", NeurIPS 2021). The token grid is the same
    as the plain patch embedding's (one token per ``patch x patch`` cell), so every token-level method of the papers
    (GLS, the crop, attention maps) applies unchanged; only the features of each token see a little context around
    its cell. A ViT trained from scratch on a small corpus learns many times faster with it (measured: the plain
    0.8 M-parameter ViT stays at chance for the first 1,500 steps on the pretraining corpus, this one does not).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        patch = self.patch_size[0]
        if patch != self.patch_size[1] or patch < 2 or patch & (patch - 1):
            raise ValueError(f"ConvStemPatchEmbed needs a square power-of-two patch size, got {self.patch_size}")
        dim, in_chans = self.proj.out_channels, self.proj.in_channels
        n = patch.bit_length() - 1
        widths = [in_chans] + [max(16, dim // 2 ** (n - i)) for i in range(1, n + 1)]
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(widths[-1], dim, 1))
        self.proj = nn.Sequential(*layers)

#: What :func:`record_attention` records: softmax probabilities, or the scores before the softmax.
ATTENTION_KINDS = ("probs", "logits")
#: Stochastic-depth schedules over the depth of a ViT (:func:`drop_path_rates`).
DROP_PATH_SCHEDULES = ("uniform", "linear")

#: Small-image ViT configurations for the cpu profile (name -> VisionTransformer kwargs).
SMALL_VITS: dict[str, dict] = {
    # The cpu profile's backbone: vit_nano_patch8_64 with a convolutional stem (same 8x8 grid of 64 tokens);
    # ~0.9 M parameters. Pretrained on the offline corpus (data/pretrained).
    "vit_nano_convstem_patch8_64": dict(img_size=64, patch_size=8, embed_dim=128, depth=4, num_heads=4,
                                        mlp_ratio=4.0, embed_layer=ConvStemPatchEmbed),
    # 64 px, 8 px patches -> an 8x8 grid of 64 tokens; ~0.8 M parameters.
    "vit_nano_patch8_64": dict(img_size=64, patch_size=8, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    # 64 px, 8 px patches, wider and deeper; ~2.7 M parameters.
    "vit_micro_patch8_64": dict(img_size=64, patch_size=8, embed_dim=192, depth=6, num_heads=3, mlp_ratio=4.0),
    # 16 px patches on 64 px images: a 4x4 grid of 16 tokens.
    "vit_nano_patch16_64": dict(img_size=64, patch_size=16, embed_dim=128, depth=4, num_heads=4, mlp_ratio=4.0),
    # The coarse side of GLSim Table 15's patch-size ablation at cpu scale: the backbone's conv stem with one more
    # stride-2 stage, so the two sides differ only in patch size (8 -> 16 px; 8x8 -> 4x4 grid).
    "vit_nano_convstem_patch16_64": dict(img_size=64, patch_size=16, embed_dim=128, depth=4, num_heads=4,
                                         mlp_ratio=4.0, embed_layer=ConvStemPatchEmbed),
}


#: Small CNNs for the cpu profile (SimPool's CNN side): timm ResNets with BasicBlocks. ``output_stride=8`` keeps
#: an 8x8 feature map at 64 px (like the ViT's token grid) by dilating the last two stages instead of striding.
SMALL_CNNS: dict[str, dict] = {
    # 64 px -> 8x8x128 map; ~0.5 M parameters.
    "resnet_nano_64": dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(32, 64, 96, 128), stem_width=32,
                           output_stride=8),
}


def _cfg(img_size: int, first_conv: str = "patch_embed.proj", classifier: str = "head") -> dict:
    """A timm pretrained config: the data config (64 px, resize 1.34, ImageNet mean/std). The weights file is not
    named here: :func:`set_weights_resolver` supplies it when ``pretrained=True``."""
    return dict(input_size=(3, img_size, img_size), crop_pct=1 / 1.34, interpolation="bicubic",
                mean=IMAGENET_DEFAULT_MEAN, std=IMAGENET_DEFAULT_STD, num_classes=1000,
                first_conv=first_conv, classifier=classifier)


# timm's register_model reads this module-level name to attach the pretrained configs to the names below.
default_cfgs = generate_default_cfgs({
    **{name: _cfg(args["img_size"], first_conv="patch_embed.proj.0" if "embed_layer" in args
                  else "patch_embed.proj") for name, args in SMALL_VITS.items()},
    **{name: _cfg(64, first_conv="conv1", classifier="fc") for name in SMALL_CNNS},
})

#: ``resolver(name, kwargs) -> kwargs``, called when a name registered here is built with ``pretrained=True``
#: (and no ``pretrained_cfg``): it puts the weights file (and its class count) into ``pretrained_cfg_overlay``.
_weights_resolver: Callable[[str, dict], dict] | None = None


def set_weights_resolver(resolver: Callable[[str, dict], dict] | None) -> None:
    """Say where ``pretrained=True`` finds the weights of the small backbones registered here.

    These backbones have no hub weights: this repository pretrains them and ships the files under ``data/``. The
    weights layer (:mod:`glsim_core.weights.shipped`, imported with the package) installs the resolver that finds
    and checks those files; this layer only calls it."""
    global _weights_resolver
    _weights_resolver = resolver


def _resolve_weights(name: str, pretrained: bool, kwargs: dict) -> dict:
    if not pretrained or kwargs.get("pretrained_cfg") is not None:
        return kwargs
    return kwargs if _weights_resolver is None else _weights_resolver(name, kwargs)


def _make(name: str):
    def factory(pretrained: bool = False, **kwargs) -> VisionTransformer:
        kwargs = _resolve_weights(name, pretrained, kwargs)
        return _create_vision_transformer(name, pretrained=pretrained, **{**SMALL_VITS[name], **kwargs})

    factory.__name__ = name
    factory.__doc__ = f"Small ViT for the cpu profile: {SMALL_VITS[name]}."
    return register_model(factory)


def _make_cnn(name: str):
    def factory(pretrained: bool = False, **kwargs) -> ResNet:
        kwargs = _resolve_weights(name, pretrained, kwargs)
        return _create_resnet(name, pretrained=pretrained, **{**SMALL_CNNS[name], **kwargs})

    factory.__name__ = name
    factory.__doc__ = f"Small ResNet for the cpu profile: {SMALL_CNNS[name]}."
    return register_model(factory)


for _name in SMALL_VITS:
    _make(_name)
for _name in SMALL_CNNS:
    _make_cnn(_name)


def num_prefix_tokens(model: nn.Module) -> int:
    """How many leading tokens (CLS, registers) precede the patch tokens in ``forward_features``'s output."""
    return int(getattr(model, "num_prefix_tokens", 1))


def patch_grid(model: nn.Module, img_size: Sequence[int] | int | None = None) -> tuple[int, int]:
    """(rows, cols) of the patch-token grid for an input size (default: the model's own)."""
    embed = model.patch_embed
    if img_size is None:
        return tuple(embed.grid_size)
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    if hasattr(embed, "dynamic_feat_size"):
        return tuple(embed.dynamic_feat_size(tuple(img_size)))
    patch = embed.patch_size
    return img_size[0] // patch[0], img_size[1] // patch[1]


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise TypeError(f"{type(model).__name__} has no `blocks`: attention recording needs a timm ViT")
    mods = [blk.attn for blk in blocks if hasattr(blk, "attn") and hasattr(blk.attn, "attn_drop")]
    if not mods:
        raise TypeError(f"{type(model).__name__}'s blocks have no timm `Attention` with `attn_drop`")
    return mods


def _logits_hook(attn: nn.Module, store: list[torch.Tensor]):
    """A forward hook on ``attn.qkv`` that appends ``(q * scale) @ k^T`` (B, heads, T, T): timm's pre-softmax scores."""

    def hook(_m: nn.Module, _inp: tuple, qkv: torch.Tensor) -> None:
        b, t, _ = qkv.shape
        q, k, _v = qkv.reshape(b, t, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = attn.q_norm(q), attn.k_norm(k)
        store.append((q * attn.scale) @ k.transpose(-2, -1))

    return hook


@contextlib.contextmanager
def record_attention(model: nn.Module, layers: Sequence[int] | None = None,
                     kind: str = "probs") -> Iterator[list[torch.Tensor]]:
    """Collect each block's attention (B, heads, T, T) during forward passes inside the context.

    ``kind="probs"`` (default): the softmax probabilities (rows sum to 1). Fused attention is turned off inside the
    context (the explicit softmax path computes the same values) and restored afterwards. ``kind="logits"``: the
    scores before the softmax, ``q k^T / sqrt(d)`` (after timm's optional q/k norms), recomputed from the block's
    ``qkv`` output, so fused attention stays on (no mask is applied: timm's ViTs use none).
    ``layers`` picks blocks by index (negative indices allowed; default all). The list yielded fills as the
    model runs, one entry per selected block per forward pass, in block order.

    >>> with record_attention(vit, layers=[-1]) as attn:  # doctest: +SKIP
    ...     vit(images)
    >>> cls_attn = attn[-1][:, :, 0, vit.num_prefix_tokens:].mean(1)  # last layer, head mean, CLS row
    """
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"kind must be one of {ATTENTION_KINDS}, got {kind!r}")
    mods = _attention_modules(model)
    chosen = range(len(mods)) if layers is None else [range(len(mods))[i] for i in layers]
    store: list[torch.Tensor] = []
    handles, saved = [], []
    try:
        for i in chosen:
            attn = mods[i]
            if kind == "logits":
                handles.append(attn.qkv.register_forward_hook(_logits_hook(attn, store)))
                continue
            saved.append((attn, getattr(attn, "fused_attn", False)))
            attn.fused_attn = False
            handles.append(attn.attn_drop.register_forward_hook(lambda _m, _inp, out: store.append(out)))
        yield store
    finally:
        for h in handles:
            h.remove()
        for attn, fused in saved:
            attn.fused_attn = fused


def drop_path_rates(rate: float, depth: int, schedule: str = "uniform") -> list[float]:
    """Stochastic-depth rate of each of ``depth`` blocks.

    ``"uniform"``: ``rate`` in every block (GLSim appendix C/D.2: stochastic depth 0.1 in every block).
    ``"linear"``: timm's rule, ``linspace(0, rate, depth)`` (block 0 never dropped, mean ``rate / 2``).
    """
    if schedule not in DROP_PATH_SCHEDULES:
        raise ValueError(f"drop_path_schedule must be one of {DROP_PATH_SCHEDULES}, got {schedule!r}")
    if not 0 <= rate < 1:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate}")
    if schedule == "uniform" or depth <= 1:
        return [float(rate)] * depth
    return [float(rate) * i / (depth - 1) for i in range(depth)]


def set_drop_path(blocks: Iterable[nn.Module], rates: Sequence[float]) -> None:
    """Give each timm ``Block`` its stochastic-depth rate (both residual branches): ``DropPath(r)`` or Identity."""
    from timm.layers import DropPath

    blocks = list(blocks)
    if len(blocks) != len(rates):
        raise ValueError(f"{len(rates)} drop-path rates for {len(blocks)} blocks")
    for blk, r in zip(blocks, rates):
        for name in ("drop_path1", "drop_path2"):
            if hasattr(blk, name):
                setattr(blk, name, DropPath(float(r)) if r > 0 else nn.Identity())
