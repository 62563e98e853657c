"""Token maps of a model, and how well they find the object: per-layer probes and MaxBoxAccV2 tables.

* :func:`token_scores` - (B, N) token scores of any mechanism (:data:`glsim_core.selection.MECHANISMS`: GLS,
  last-layer attention, MAWS, PSM, rollout, SimPool's map) for a timm ViT, a SimPool-pooled model or a GLSim model.
* :func:`localization_scores` - one model's maps on a dataset with boxes: MaxBoxAccV2
  (:mod:`glsim_core.analysis.localisation`) and the fraction of its top-1 / top-O / bottom-1 / bottom-O tokens
  that fall inside the object box, against chance.

* :func:`gls_layer_probe` - for each encoder block ``l``, the fraction of the top-O and of the bottom-O tokens
  that lie inside the object's box, for GLS computed on the tokens after block ``l`` (GLSim Eq. 1-2, with the
  encoder's final LayerNorm applied as GLSim applies it to the last block's output), for the CLS attention of
  block ``l`` (head mean, Figure 2's "attention" at that depth) and for attention rollout over blocks ``1..l``
  (Abnar & Zuidema 2020). ``chance`` is the fraction of all tokens inside the box: a selector that ignores the
  image scores ``chance`` on average; one that finds the object approaches 1 for top-O and 0 for bottom-O.
  GLSim §3.2 argues that the CLS token's most (least) similar tokens are the discriminative (background) ones;
  this probe measures it, per layer and per backbone.
* :func:`localization_table` - every map method of several models scored with MaxBoxAccV2 (Choe et al. 2020, as
  in SimPool Table 5) and with token hit rates on a dataset's boxes (through
  :func:`localization_scores`), plus two image-independent baselines: ``center`` (a
  centred Gaussian prior) and ``random`` (seeded uniform scores).
* :func:`pooling_localization` - the map each model *pools* with (:func:`glsim_core.models.heads.pooling_attention`:
  SimPool's a, a ViT's CLS attention, a GAP network's per-location share) scored the same way, for any family (ViT,
  ResNet, ConvNeXt), plus ``mass_in_box``: the share of the map's mass on locations inside the box (SimPool
  Figure 1's claim, measured).
* :func:`versus_baseline` - each map of a :func:`localization_table` against one baseline row (the centre prior by
  default): the difference in MaxBoxAccV2 and in the IoU >= 0.5 / 0.7 shares, each with a binomial standard error,
  and a verdict - "above" / "below" only beyond 2 standard errors, else "within noise".
* :func:`boxed_examples` - a batch of evaluation images with their object boxes (for the probe and the plots).

A token is "inside" when its patch centre lies inside the box (:func:`glsim_core.analysis.localisation.token_box_hits`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.hf import ImageData, collate_images
from ..models.backbones import num_prefix_tokens, patch_grid, record_attention
from ..models.glsim import GLSim
from ..models.heads import get_pooling, pooling_attention
from ..selection.attention import (
    MECHANISMS,
    attention_kind,
    attention_layers,
    attention_rollout,
    last_layer_attention,
    scores_from_attention,
)
from ..selection.gls import global_local_similarity
from .accuracy import binomial_se
from .localisation import MaxBoxAccV2, box_iou, max_box_acc, token_box_hits, tokens_in_boxes

__all__ = ["versus_baseline", "token_scores", "token_maps", "available_methods", "localization_scores",
           "PROBE_METHODS", "BASELINES", "encoder_of", "layer_token_scores", "gls_layer_probe", "boxed_examples",
           "baseline_scores", "localization_table", "pooling_localization", "renormalize_for"]

PROBE_METHODS = ("gls", "attention", "rollout")
BASELINES = ("center", "random", "uniform")
#: the IoU thresholds MaxBoxAccV2 averages over (its defaults)
_DELTAS = (0.3, 0.5, 0.7)


# -------------------------------------------------------------------------------------------------------- token maps
def token_scores(model: nn.Module, images: torch.Tensor, method: str = "gls", metric: str = "cosine",
                 **kwargs) -> torch.Tensor:
    """(B, N) token scores of any mechanism for a timm ViT (or a GLSim model's encoder) on ``images``.

    ``method``: "gls" (with ``metric``), "attention", "maws", "psm", "rollout", or "simpool" (SimPool's attention
    map, for a model pooled with SimPool: a GLSim model built with ``pool="simpool"``, or a timm ViT from
    ``glsim_core.models.create_model(..., pooling="simpool")``). Runs without gradients; the model's train/eval
    mode is left as it is (call ``model.eval()`` first for deterministic maps). Extra keywords go to the
    mechanism (e.g. ``head_reduce`` for psm, ``layer`` for maws).
    """
    if method not in MECHANISMS:
        raise ValueError(f"unknown mechanism {method!r}; choose one of {MECHANISMS}")
    if isinstance(model, GLSim):
        return model.selection_scores(images, selector=method, metric=metric, **kwargs)
    prefix = num_prefix_tokens(model)
    with torch.no_grad():
        if method == "simpool":
            attn = pooling_attention(model, images)
            return attn.flatten(1)
        if method == "gls":
            return _gls_of(model, images, metric, prefix)
        depth = len(model.blocks)
        with record_attention(model, layers=attention_layers(method, depth), kind=attention_kind(method)) as maps:
            model.forward_features(images)
        return scores_from_attention(method, maps, prefix, **kwargs)


def _gls_of(model: nn.Module, images: torch.Tensor, metric: str, prefix: int) -> torch.Tensor:
    tokens = model.forward_features(images)
    return global_local_similarity(tokens, metric=metric, num_prefix_tokens=prefix)


def available_methods() -> tuple[str, ...]:
    """Every map :func:`token_maps` can draw (:data:`glsim_core.selection.MECHANISMS`)."""
    return tuple(MECHANISMS)


@torch.no_grad()
def token_maps(model: nn.Module, images: torch.Tensor, method: str = "attention") -> torch.Tensor:
    """(B, N) scores of ``method`` for ``images`` (larger = more salient): :func:`token_scores`."""
    return token_scores(model, images, method)


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


# ------------------------------------------------------------------------------------------------- per-layer probes
def encoder_of(model: nn.Module) -> nn.Module:
    """The timm ViT inside ``model`` (GLSim's ``encoder``, else the model itself)."""
    enc = getattr(model, "encoder", model)
    if not hasattr(enc, "blocks") or not hasattr(enc, "patch_embed"):
        raise TypeError(f"{type(model).__name__} is not a timm ViT (nor a GLSim model): the probe reads its blocks")
    return enc


def _layers(layers: Sequence[int] | None, depth: int) -> list[int]:
    if layers is None:
        return list(range(depth))
    out = []
    for i in layers:
        if not -depth <= int(i) < depth:
            raise ValueError(f"layer {i} out of range for {depth} blocks (use 0..{depth - 1} or negative indices)")
        out.append(int(i) % depth)
    return sorted(set(out))


@torch.no_grad()
def layer_token_scores(model: nn.Module, images: torch.Tensor, layers: Sequence[int] | None = None,
                       methods: Sequence[str] = PROBE_METHODS, metric: str = "cosine",
                       norm: bool = True) -> dict[str, dict[int, torch.Tensor]]:
    """``{method: {layer: (B, N) scores}}`` from one forward pass of the encoder (layers are 0-based blocks).

    ``gls``: GLS between the CLS token and the patch tokens after block ``l`` (through the final norm when
    ``norm``); ``attention``: head-mean CLS row of block ``l``'s attention; ``rollout``: rollout over blocks
    ``0..l``. The model's train/eval mode is left as it is (call ``model.eval()`` first).
    """
    unknown = sorted(set(methods) - set(PROBE_METHODS))
    if unknown:
        raise ValueError(f"unknown probe method(s) {unknown}; choose from {PROBE_METHODS}")
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    enc = encoder_of(model)
    depth = len(enc.blocks)
    chosen = _layers(layers, depth)
    prefix = num_prefix_tokens(enc)
    if prefix < 1 or getattr(enc, "cls_token", None) is None:
        raise ValueError(f"{type(model).__name__} has no CLS token: GLS, attention and rollout read the CLS "
                         "token (a SimPool-pooled ViT drops it; probe its SimPool map with token_scores instead)")
    outputs: list[torch.Tensor] = []
    hooks = [blk.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for blk in enc.blocks]
    try:
        with record_attention(enc) as maps:
            enc.forward_features(images)
    finally:
        for h in hooks:
            h.remove()
    result: dict[str, dict[int, torch.Tensor]] = {m: {} for m in methods}
    for layer in chosen:
        if "gls" in methods:
            tokens = enc.norm(outputs[layer]) if norm else outputs[layer]
            result["gls"][layer] = global_local_similarity(tokens, metric, prefix).float()
        if "attention" in methods:
            result["attention"][layer] = last_layer_attention(maps[layer:layer + 1], prefix).float()
        if "rollout" in methods:
            result["rollout"][layer] = attention_rollout(maps[:layer + 1], prefix).float()
    return result


@torch.no_grad()
def gls_layer_probe(model: nn.Module, images: torch.Tensor, boxes: torch.Tensor, top_o: int = 8,
                    layers: Sequence[int] | None = None, methods: Sequence[str] = PROBE_METHODS,
                    metric: str = "cosine", norm: bool = True, batch_size: int = 128):
    """Per layer and method: fraction of the top-O / bottom-O tokens inside the object box, and chance.

    ``images`` (B, C, H, W) on the model's device, ``boxes`` (B, 4) pixel boxes ``x0, y0, x1, y1`` (half-open) of
    the objects in those images. Returns a pandas DataFrame with one row per (method, layer): ``layer`` (1-based
    block number), ``top`` and ``bottom`` (hit rates of the top-O / bottom-O tokens), ``chance``, ``top_ratio`` =
    top / chance, ``top1`` (hit rate of the single best token), ``o`` and ``n`` images.
    """
    import pandas as pd

    boxes = torch.as_tensor(boxes).reshape(-1, 4)
    if len(boxes) != len(images):
        raise ValueError(f"{len(images)} images but {len(boxes)} boxes")
    if isinstance(top_o, bool) or int(top_o) < 1:
        raise ValueError(f"top_o must be a positive int, got {top_o!r}")
    enc = encoder_of(model)
    grid = patch_grid(enc, tuple(images.shape[-2:]))
    patch = tuple(int(p) for p in enc.patch_embed.patch_size)
    o = min(int(top_o), grid[0] * grid[1])
    chunks: dict[tuple[str, int], list[torch.Tensor]] = {}
    for start in range(0, len(images), batch_size):
        scores = layer_token_scores(model, images[start:start + batch_size], layers, methods, metric, norm)
        for method, per_layer in scores.items():
            for layer, s in per_layer.items():
                chunks.setdefault((method, layer), []).append(s.cpu())
    rows = []
    for (method, layer), parts in chunks.items():
        s = torch.cat(parts)
        top = token_box_hits(s, boxes, grid, patch, k=o)
        bottom = token_box_hits(s, boxes, grid, patch, k=o, largest=False)
        best = token_box_hits(s, boxes, grid, patch, k=1)
        rows.append(dict(method=method, layer=layer + 1, top=top["hit_rate"], bottom=bottom["hit_rate"],
                         chance=top["chance"], top_ratio=top["ratio"], top1=best["hit_rate"], o=o, n=len(s)))
    order = {m: i for i, m in enumerate(PROBE_METHODS)}
    return pd.DataFrame(rows).sort_values(["method", "layer"], key=lambda c: c.map(order) if c.name == "method"
                                          else c).reset_index(drop=True)


def boxed_examples(data: Any, split: str = "test", n: int = 64, start: int = 0) -> dict[str, Any]:
    """``{"images" (n, C, H, W), "boxes" (n, 4), "labels" (n,), "index" (n,)}``: evaluation-transformed images of a
    dataset with boxes (:class:`glsim_core.data.ImageData`), the first box of each, in the view's pixels."""
    if not data.has_boxes:
        raise ValueError(f"dataset {data.name!r} has no boxes")
    ds = data.torch_split(split, train=False, with_boxes=True)
    stop = min(len(ds), int(start) + int(n))
    if stop <= start:
        raise ValueError(f"split {split!r} has {len(ds)} examples; nothing from index {start}")
    batch = collate_images(ds.__getitems__(list(range(int(start), stop))))
    boxes = torch.stack([torch.as_tensor(b).reshape(-1, 4)[0] for b in batch["boxes"]]).float()
    return {"images": batch["image"], "boxes": boxes, "labels": batch["label"], "index": batch["index"]}


def baseline_scores(kind: str, batch: int, grid: tuple[int, int], seed: int = 0, sigma: float = 0.25) -> torch.Tensor:
    """(B, N) image-independent scores: ``center`` = a Gaussian of width ``sigma`` (fraction of the side) around
    the image centre, ``random`` = uniform scores from a seeded generator, ``uniform`` = one constant score (no
    information at all: its box is the whole image, see :func:`localization_table`)."""
    rows, cols = grid
    if kind == "uniform":
        return torch.ones(batch, rows * cols)
    if kind == "center":
        yy, xx = torch.meshgrid((torch.arange(rows) + 0.5) / rows - 0.5, (torch.arange(cols) + 0.5) / cols - 0.5,
                                indexing="ij")
        s = torch.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2)).reshape(1, -1)
        return s.expand(batch, -1).clone()
    if kind == "random":
        return torch.rand(batch, rows * cols, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"unknown baseline {kind!r}; choose from {BASELINES}")


def _applicable(model: nn.Module, method: str) -> bool:
    """Whether ``model`` has the map ``method`` reads: a CLS token for GLS and the attention mechanisms (GLSim
    always has one), a SimPool head for ``simpool``."""
    if method != "simpool":
        return getattr(encoder_of(model), "cls_token", None) is not None
    if isinstance(model, GLSim):
        return model.pool == "simpool"
    try:
        return get_pooling(model) is not None
    except Exception:
        return False


def localization_table(models: Mapping[str, nn.Module], data: Any, split: str = "test",
                       methods: Sequence[str] = ("attention", "maws", "psm", "rollout", "gls", "simpool"),
                       baselines: Sequence[str] = BASELINES, max_samples: int | None = None, top_o: int = 8,
                       batch_size: int = 128, seed: int = 0):
    """MaxBoxAccV2 (and MaxBoxAcc at IoU 0.3/0.5/0.7, top-1/top-O/bottom-O token hit rates) of every map method of
    every model on ``data``'s boxes. Methods a model does not have (``simpool`` without a SimPool head) are left
    out. Returns a DataFrame: model, method, maxboxacc_v2, iou30, iou50, iou70, top1, topO, bottomO, chance, n."""
    import pandas as pd

    rows = []
    for name, model in models.items():
        usable = [m for m in methods if _applicable(model, m)]
        if not usable:
            continue
        res = localization_scores(model, data, split, usable, batch_size=batch_size, max_samples=max_samples,
                                  top_o=top_o)
        for method, r in res.items():
            rows.append(_row(name, method, r, top_o))
    if baselines:
        ex = boxed_examples(data, split, n=max_samples or 10 ** 9)
        side = ex["images"].shape[-1]
        if not models:
            raise ValueError("baselines need at least one model (for the token grid)")
        grid, patch = _grid_of(next(iter(models.values())), ex["images"])
        for kind in baselines:
            if kind == "uniform":
                rows.append(_row("baseline", kind, _uniform_baseline(ex["boxes"], side, grid, patch, top_o), top_o))
                continue
            s = baseline_scores(kind, len(ex["boxes"]), grid, seed=seed)
            metric = MaxBoxAccV2()
            metric.update(s.reshape(-1, *grid), [b[None] for b in ex["boxes"]], (side, side))
            res = metric.compute()
            k = min(top_o, s.shape[1])
            hits = {"top1": token_box_hits(s, ex["boxes"], grid, patch, k=1),
                    f"top{k}": token_box_hits(s, ex["boxes"], grid, patch, k=k),
                    f"bottom{k}": token_box_hits(s, ex["boxes"], grid, patch, k=k, largest=False)}
            r = {"maxboxacc_v2": res["maxboxacc_v2"], "maxboxacc": res["maxboxacc"],
                 **{key: h["hit_rate"] for key, h in hits.items()}, "chance": hits["top1"]["chance"], "n": res["n"]}
            rows.append(_row("baseline", kind, r, top_o))
    return pd.DataFrame(rows)


def _uniform_baseline(boxes, side: int, grid: tuple[int, int], patch: tuple[int, int], top_o: int
                      ) -> dict[str, Any]:
    """A constant map: thresholding it gives the whole image as the box at every tau, and any top-k of it is a
    tie broken arbitrarily, so its token hit rates are chance (the share of tokens inside the box) by definition."""
    gt = torch.stack([b.reshape(-1, 4)[0] for b in boxes]).numpy()
    iou = np.diag(box_iou(np.tile([[0.0, 0.0, side, side]], (len(gt), 1)), gt))
    acc = {d: float((iou >= d).mean() * 100) for d in _DELTAS}
    inside = float(tokens_in_boxes(torch.as_tensor(gt), grid, patch).mean())
    k = min(top_o, grid[0] * grid[1])
    return {"maxboxacc_v2": float(np.mean(list(acc.values()))), "maxboxacc": acc, "top1": inside,
            f"top{k}": inside, f"bottom{k}": inside, "chance": inside, "n": len(gt)}


def _grid_of(model: nn.Module, images: torch.Tensor) -> tuple[tuple[int, int], tuple[int, int]]:
    enc = encoder_of(model)
    return patch_grid(enc, tuple(images.shape[-2:])), tuple(int(p) for p in enc.patch_embed.patch_size)


def _row(model: str, method: str, r: dict[str, Any], top_o: int) -> dict[str, Any]:
    k = next((key[3:] for key in r if key.startswith("top") and key != "top1"), str(top_o))
    acc = {float(d): v for d, v in r["maxboxacc"].items()}
    return dict(model=model, method=method, maxboxacc_v2=r["maxboxacc_v2"], iou30=acc.get(0.3),
                iou50=acc.get(0.5), iou70=acc.get(0.7), top1=r["top1"], topO=r.get(f"top{k}"),
                bottomO=r.get(f"bottom{k}"),                 chance=r["chance"], n=r["n"])


def _mass_in_box(maps: torch.Tensor, boxes: torch.Tensor, side: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: the share of a non-negative (B, h, w) map's mass on cells whose centre lies inside the box, and
    the share of cells inside the box (what a uniform map scores)."""
    _, h, w = maps.shape
    inside = torch.from_numpy(tokens_in_boxes(boxes, (h, w), (side[0] / h, side[1] / w))).double()
    m = maps.flatten(1).to(torch.float64).clamp_min(0)
    mass = (m * inside).sum(1) / m.sum(1).clamp_min(1e-12)
    return mass, inside.mean(1)


def renormalize_for(model: nn.Module, images: torch.Tensor,
                    normalization: tuple[Sequence[float], Sequence[float]]) -> torch.Tensor:
    """``images`` normalised with ``normalization = (mean, std)``, re-normalised with ``model``'s own
    ``pretrained_cfg`` mean and std (unchanged when the model has none)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "mean" not in cfg or "std" not in cfg:
        return images

    def col(v: Sequence[float]) -> torch.Tensor:
        return torch.as_tensor(v, dtype=images.dtype, device=images.device).reshape(1, -1, 1, 1)

    raw = images * col(normalization[1]) + col(normalization[0])
    return (raw - col(cfg["mean"])) / col(cfg["std"])


@torch.no_grad()
def pooling_localization(models: Mapping[str, nn.Module], examples: Mapping[str, Any],
                         baselines: Sequence[str] = ("center",), batch_size: int = 64,
                         normalization: tuple[Sequence[float], Sequence[float]] | None = None):
    """MaxBoxAccV2 (Choe et al. 2020; IoU 0.3/0.5/0.7) and attention mass inside the object box of the map each
    model pools with (:func:`~glsim_core.models.heads.pooling_attention`), on ``examples`` from
    :func:`boxed_examples` (``images`` already in each model's input format, ``boxes`` in their pixels).

    Returns a DataFrame: model, grid (the map's h x w), maxboxacc_v2, iou30, iou50, iou70, mass_in_box (mean share of
    the map on cells inside the box), area (mean share of cells inside the box: a uniform map's mass_in_box), n.
    ``baselines`` (see :func:`baseline_scores`) are scored on the first model's map grid. ``normalization``: the
    ``(mean, std)`` the images were normalised with (e.g. ``ImageData.mean, ImageData.std``); each model then gets
    them re-normalised with its own ``pretrained_cfg`` mean and std (models of different families may differ)."""
    import pandas as pd

    if not models:
        raise ValueError("pooling_localization needs at least one model")
    images, boxes = examples["images"], torch.as_tensor(examples["boxes"]).reshape(-1, 4).float()
    side = tuple(int(s) for s in images.shape[-2:])
    rows, first_grid = [], None

    def row(name: str, maps: torch.Tensor) -> dict[str, Any]:
        acc = max_box_acc(maps.numpy(), boxes.numpy(), side)
        mass, area = _mass_in_box(maps, boxes, side)
        per = {float(k): v for k, v in acc["maxboxacc"].items()}
        return dict(model=name, grid=f"{maps.shape[1]}x{maps.shape[2]}", maxboxacc_v2=acc["maxboxacc_v2"],
                    iou30=per.get(0.3), iou50=per.get(0.5), iou70=per.get(0.7),
                    mass_in_box=100 * float(mass.mean()), area=100 * float(area.mean()), n=acc["n"])

    for name, model in models.items():
        device = next(model.parameters()).device
        x = images if normalization is None else renormalize_for(model, images, normalization)
        parts = [pooling_attention(model, x[i:i + batch_size].to(device), flatten=False).float().cpu()
                 for i in range(0, len(x), batch_size)]
        maps = torch.cat(parts)
        first_grid = first_grid or tuple(maps.shape[1:])
        rows.append(row(name, maps))
    for kind in baselines:
        s = baseline_scores(kind, len(images), first_grid).reshape(-1, *first_grid)
        rows.append(row(f"baseline: {kind}", s))
    return pd.DataFrame(rows)


def versus_baseline(table, baseline: tuple[str, str] = ("baseline", "center"), z: float = 2.0):
    """Every map of a :func:`localization_table` against one baseline row, with the noise of ``n`` images.

    For IoU >= 0.5 and >= 0.7 the scores are shares of images, so each side has the binomial standard error
    ``sqrt(p (1 - p) / n)`` and the difference ``sqrt(se_a^2 + se_b^2)`` (conservative: both are scored on the same
    images, and a paired error would be smaller). MaxBoxAccV2 is the mean of the shares at IoU 0.3, 0.5 and 0.7;
    its error is taken as the mean of those three errors (an upper bound when they are positively correlated,
    as they are). A map is "above" / "below" the baseline only beyond ``z`` standard errors, else "within noise".
    Returns one row per map: model, method, and per score ``<score> Δ``, ``<score> se``, ``<score> vs baseline``.
    """
    import pandas as pd

    model, method = baseline
    base = table[(table["model"] == model) & (table["method"] == method)]
    if base.empty:
        raise ValueError(f"no baseline row {model!r} / {method!r} in the table")
    base = base.iloc[0]

    maps = table[table["model"] != model].reset_index(drop=True)
    out = maps[["model", "method"]].copy()
    for col, label in (("maxboxacc_v2", "MaxBoxAccV2"), ("iou50", "IoU 0.5"), ("iou70", "IoU 0.7")):
        if col == "maxboxacc_v2":
            parts = ("iou30", "iou50", "iou70")
            err_a = np.mean([binomial_se(maps[c], maps["n"]) for c in parts], axis=0)
            err_b = float(np.mean([binomial_se(base[c], base["n"]) for c in parts]))
        else:
            err_a, err_b = binomial_se(maps[col], maps["n"]), binomial_se(base[col], base["n"])
        diff = maps[col].to_numpy(dtype=float) - float(base[col])
        err = np.sqrt(err_a ** 2 + err_b ** 2)
        out[f"{label} Δ"] = diff
        out[f"{label} se"] = err
        out[f"{label} vs {method}"] = np.where(diff > z * err, "above", np.where(diff < -z * err, "below",
                                                                                  "within noise"))
    return pd.DataFrame(out)
