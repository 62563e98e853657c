"""Localisation of a trained model's token maps on a dataset with boxes: MaxBoxAccV2 and token hit rates.

A "method" names a per-token score: ``attention`` (last-layer head-mean CLS attention, always available for timm
ViTs) and, once :mod:`glsim_core.selection` is present, every mechanism of its ``token_scores`` (``gls``,
``rollout``, ``maws``, ``psm``, ``simpool``). Each map is scored with MaxBoxAccV2
(:mod:`glsim_core.metrics.localization`) and with the fraction of its top-1 / top-O / bottom-1 / bottom-O tokens
that fall inside the object box, against chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..data.hf import ImageData, collate_images
from ..metrics.localization import MaxBoxAccV2, token_box_hits

__all__ = ["token_maps", "localization_scores", "available_methods"]


def _selection_token_scores():
    """``glsim_core.selection.token_scores`` if the GLSim issue's module is present, else None."""
    try:
        from ..selection import token_scores
    except ImportError:
        return None
    return token_scores


def available_methods() -> tuple[str, ...]:
    if _selection_token_scores() is not None:
        from ..selection import MECHANISMS

        return tuple(MECHANISMS)
    return ("attention",)


@torch.no_grad()
def token_maps(model: nn.Module, images: torch.Tensor, method: str = "attention") -> torch.Tensor:
    """(B, N) scores of ``method`` for ``images`` (larger = more salient)."""
    token_scores = _selection_token_scores()
    if token_scores is not None:
        return token_scores(model, images, method)
    if method != "attention":
        raise ValueError(f"map {method!r} needs glsim_core.selection (the GLSim issue); available now: attention")
    from ..models.backbones import num_prefix_tokens, record_attention

    prefix = num_prefix_tokens(model)
    with record_attention(model, layers=[-1]) as attn:
        model.forward_features(images)
    return attn[-1][:, :, 0, prefix:].mean(1)


@torch.no_grad()
def localization_scores(model: nn.Module, data: ImageData, split: str = "test",
                        methods: Sequence[str] = ("attention",), batch_size: int = 128,
                        max_samples: int | None = None, top_o: int = 8) -> dict[str, dict[str, Any]]:
    """``{method: {"maxboxacc_v2", "maxboxacc", "top1", "top{O}", "bottom1", "bottom{O}", "chance", "n",
    "dropped_boxes", "images_without_box"}}``; invalid boxes are dropped when the data is read, counted and warned
    about; images left without a box are not scored."""
    if not data.has_boxes:
        raise ValueError(f"dataset {data.name!r} has no boxes: localisation cannot be scored")
    ds = data.torch_split(split, train=False, with_boxes=True)
    n = len(ds) if max_samples is None else min(len(ds), int(max_samples))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    boxes: list[torch.Tensor] = []
    metrics = {m: MaxBoxAccV2() for m in methods}
    size = None
    dropped, without_box = 0, 0
    try:
        for start in range(0, n, batch_size):
            batch = collate_images(ds.__getitems__(list(range(start, min(n, start + batch_size)))))
            if batch["image"].numel() == 0:
                continue
            dropped += int(batch.get("dropped_boxes", 0))
            has_box = [bx.reshape(-1, 4).shape[0] > 0 for bx in batch["boxes"]]
            without_box += has_box.count(False)
            if not any(has_box):
                continue
            keep = torch.tensor(has_box)
            x = batch["image"][keep].to(device)
            size = tuple(x.shape[-2:])
            b = torch.stack([bx.reshape(-1, 4)[0] for bx, ok in zip(batch["boxes"], has_box) if ok])
            boxes.append(b)
            for m in methods:
                s = token_maps(model, x, m).float().cpu()
                side = int(round(math.sqrt(s.shape[1])))
                if side * side != s.shape[1]:
                    raise ValueError(f"map {m!r} has {s.shape[1]} tokens: not a square grid")
                scores[m].append(s)
                metrics[m].update(s.reshape(-1, side, side), [bb[None] for bb in b], size)
    finally:
        model.train(was_training)
    if dropped:
        import warnings

        warnings.warn(f"{data.name!r} split {split!r}: {dropped} invalid box(es) dropped (NaN, inverted or outside the "
                      f"image); {without_box} image(s) left without a box were not scored", stacklevel=2)
    if not boxes:
        raise ValueError(f"no images with a valid box to score in split {split!r}"
                         + (f" ({dropped} invalid box(es) dropped)" if dropped else ""))
    all_boxes = torch.cat(boxes)
    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        s = torch.cat(scores[m])
        side = int(round(math.sqrt(s.shape[1])))
        patch = (size[0] // side, size[1] // side)
        k = min(top_o, s.shape[1])
        res = metrics[m].compute()
        hits = {
            "top1": token_box_hits(s, all_boxes, (side, side), patch, k=1),
            f"top{k}": token_box_hits(s, all_boxes, (side, side), patch, k=k),
            "bottom1": token_box_hits(s, all_boxes, (side, side), patch, k=1, largest=False),
            f"bottom{k}": token_box_hits(s, all_boxes, (side, side), patch, k=k, largest=False),
        }
        out[m] = {"maxboxacc_v2": res["maxboxacc_v2"], "maxboxacc": res["maxboxacc"],
                  **{name: h["hit_rate"] for name, h in hits.items()}, "chance": hits["top1"]["chance"],
                  "n": res["n"], "dropped_boxes": dropped, "images_without_box": without_box}
    return out
