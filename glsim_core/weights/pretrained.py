"""Which backbone weights a notebook can use right now: :func:`best_available_backbone`.

The papers fine-tune pretrained backbones. In the ``gpu`` profile those are timm's (ImageNet-21k ViT-B/16 from the
Hugging Face hub). In the ``cpu`` profile they are the small backbones this repository pretrains and ships under
``data/`` (:mod:`glsim_core.weights.shipped`, which timm loads for ``vit_nano_patch8_64`` & co.)
- until they exist, and whenever the weights cannot be had offline, the answer is "random initialisation", said
out loud. Notebooks build their models with::

    weights = best_available_backbone(profile)        # or best_available_backbone(profile, prefer="random")
    print(weights)                                     # what was found, and why
    model = create_model(profile.glsim_model, **weights.kwargs(), num_classes=10)

so that switching to pretrained (or to random) weights is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import timm

from ..paths import display_path
from ..profiles import get_profile
from ..runtime import hub_offline
from .shipped import SHIPPED, shipped_weights_path

__all__ = ["BackboneWeights", "best_available_backbone"]


@dataclass(frozen=True)
class BackboneWeights:
    """The backbone a profile can load now: timm name, whether to pass ``pretrained=True``, and from where."""

    model: str
    pretrained: bool
    source: str
    reason: str
    pretrained_cfg_overlay: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keywords for ``create_model``/``timm.create_model`` of the backbone **or** of a GLSim variant on it."""
        out: dict[str, Any] = {"pretrained": self.pretrained}
        if self.pretrained and self.pretrained_cfg_overlay:
            out["pretrained_cfg_overlay"] = dict(self.pretrained_cfg_overlay)
        return out

    @property
    def trained(self) -> bool:
        return self.pretrained

    def __str__(self) -> str:
        state = "pretrained" if self.pretrained else "UNTRAINED (random initialisation)"
        return f"{self.model}: {state} - {self.source}; {self.reason}"


def _offline() -> bool:
    return hub_offline()


def _hub_cached(repo_id: str, filename: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    names = [filename] if filename else ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
    return any(isinstance(try_to_load_from_cache(repo_id, n), str) for n in names)


def best_available_backbone(profile: Any = None, model: str | None = None, prefer: str = "best",
                            allow_download: bool | None = None) -> BackboneWeights:
    """The best weights available **now** for a profile's backbone (or ``model``), falling back to random init.

    Order: the weights this repository ships for it (the cpu profile's backbones, :mod:`.shipped`) -> hub/url
    weights already in the local cache -> hub/url weights to download, only when downloading is allowed
    (``allow_download``; default: the profile's ``pretrained`` flag, and never with ``HF_HUB_OFFLINE=1``) ->
    random initialisation. ``prefer="random"`` forces the last.
    """
    if prefer not in ("best", "random"):
        raise ValueError(f"prefer must be 'best' or 'random', got {prefer!r}")
    prof = get_profile(profile) if model is None or profile is not None else None
    name = model or prof.model
    if allow_download is None:
        allow_download = bool(prof.pretrained) if prof is not None else False
    allow_download = allow_download and not _offline()
    if prefer == "random":
        return BackboneWeights(name, False, "random initialisation", "asked for (prefer='random')")
    if not timm.is_model(name.split(".", 1)[0]):
        raise ValueError(f"unknown timm model {name!r}")
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError as exc:  # an invalid tag
        raise ValueError(str(exc)) from None
    if cfg is None:
        return BackboneWeights(name, False, "random initialisation", "timm has no pretrained config for it")
    base = name.split(".", 1)[0]
    if base in SHIPPED:
        path = shipped_weights_path(base)
        if path.is_file():
            return BackboneWeights(name, True, f"file {display_path(path)}", "shipped checkpoint found",
                                   {"file": str(path)})
        reason = f"its checkpoint file {display_path(path)} is missing"
    else:
        reason = "no checkpoint file is shipped for it"
    if cfg.hf_hub_id:
        if _hub_cached(cfg.hf_hub_id, cfg.hf_hub_filename):
            return BackboneWeights(name, True, f"hf-hub {cfg.hf_hub_id} (cached)", "found in the local hub cache")
        if allow_download:
            return BackboneWeights(name, True, f"hf-hub {cfg.hf_hub_id}", "will download (network allowed)")
        reason += f"; hf-hub {cfg.hf_hub_id} is not cached and downloading is off (offline or cpu profile)"
    elif cfg.url:
        if allow_download:
            return BackboneWeights(name, True, f"url {cfg.url}", "will download (network allowed)")
        reason += "; its url weights cannot be downloaded (offline or cpu profile)"
    return BackboneWeights(name, False, "random initialisation", reason)
