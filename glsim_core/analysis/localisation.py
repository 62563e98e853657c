"""Localisation scores for token-score / attention maps: MaxBoxAccV2 and token-in-box hit rates.

**MaxBoxAccV2** (Choe et al., "Evaluating Weakly Supervised Object Localization Methods Right", CVPR 2020, §4 and
their TPAMI extension; used by SimPool Table 5). For every image the score map is upsampled to the image size
(bicubic), min-max normalised to [0, 1], and thresholded at every ``tau`` in ``{0, 0.01, ..., 0.99}``. At each
``tau`` the estimated boxes are the tight boxes of **all** connected components (8-connectivity) of the mask
``{s >= tau}`` - the "V2" change over MaxBoxAcc, which kept only the largest component - and the image counts as
correct at IoU threshold ``delta`` when the best IoU over (estimated box, ground-truth box) pairs is ``>= delta``.
``BoxAcc(tau, delta)`` is the fraction of correct images; ``MaxBoxAcc(delta) = max_tau BoxAcc(tau, delta)`` - the
threshold is optimised **once per dataset and per delta**, not per map; ``MaxBoxAccV2`` is the mean of
``MaxBoxAcc(delta)`` over ``delta in {0.3, 0.5, 0.7}``.

Options: ``multi_contour=False`` gives the V1 box rule (largest component only; with ``iou_thresholds=(0.5,)`` it
is MaxBoxAcc).

**Boundary conventions** (``convention=``). ``"reference"`` (default) follows the metric's reference evaluation code
(Choe et al.'s release) exactly where the paper's text is silent: the normalised map is quantised to 8 bits,
``q = floor(255 s)``; the mask at ``tau`` is the **strict** ``q > int(tau * max q)``; an estimated box is
``x0 = min col, y0 = min row, x1 = min(max col + 1, W - 1), y1 = min(max row + 1, H - 1)``; ground-truth
coordinates are truncated to integers; IoU counts pixels inclusively (area ``(x1 - x0 + 1)(y1 - y0 + 1)``); an
image is correct when IoU ``>= delta``. ``"continuous"`` is the paper's text read literally: ``s >= tau`` on the
continuous map, half-open boxes, area ``(x1 - x0)(y1 - y0)``. The two differ by a pixel at box edges and by the
8-bit quantisation, which matter on small images (a 64-px view); tests pin every one of these boundaries.

**Token hit rate** (:func:`token_box_hits`): the fraction of the top-k (or bottom-k) tokens of a score whose patch
centre lies inside the object's box, against chance (the fraction of all tokens whose centre lies inside it) - the
probe of *where* GLS, attention or rollout look (GLSim §3.2, notebook 08).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.boxes import sanitize_boxes

__all__ = ["MaxBoxAccV2", "CONVENTIONS", "reference_boxes", "sanitize_boxes", "max_box_acc", "boxes_from_mask",
           "box_iou", "normalize_map", "upsample_maps", "tokens_in_boxes", "token_box_hits", "token_centers",
           "DEFAULT_CAM_THRESHOLDS"]

#: MaxBoxAccV2's boundary conventions (module docstring).
CONVENTIONS = ("reference", "continuous")
DEFAULT_CAM_THRESHOLDS = tuple(np.round(np.arange(0.0, 1.0, 0.01), 2).tolist())
_EIGHT = np.ones((3, 3), dtype=int)


def upsample_maps(maps, image_size: tuple[int, int], mode: str = "bicubic") -> np.ndarray:
    """(B, h, w) score maps -> (B, H, W) float64 at the image size (torch interpolation, align_corners=False)."""
    m = maps if isinstance(maps, torch.Tensor) else torch.as_tensor(np.asarray(maps))
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"score maps must be (B, h, w), got shape {tuple(m.shape)}")
    m = m.detach().float().cpu()[:, None]
    if tuple(m.shape[-2:]) != tuple(image_size):
        kw = {} if mode == "nearest" else {"align_corners": False}
        m = F.interpolate(m, size=tuple(image_size), mode=mode, **kw)
    return m[:, 0].double().numpy()


def normalize_map(m: np.ndarray) -> np.ndarray:
    """Min-max normalise one map to [0, 1]; a constant or non-finite map becomes all zeros (Choe et al.)."""
    m = np.asarray(m, dtype=np.float64)
    if not np.isfinite(m).all():
        return np.zeros_like(m)
    lo, hi = m.min(), m.max()
    if hi <= lo:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def boxes_from_mask(mask: np.ndarray, multi_contour: bool = True) -> np.ndarray:
    """Tight half-open boxes (K, 4) ``x0, y0, x1, y1`` of the 8-connected components of a binary mask.

    ``multi_contour=False`` keeps only the largest component (by pixel count). An empty mask gives one box
    ``(0, 0, 0, 0)`` (IoU 0 with anything).
    """
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(mask, structure=_EIGHT)
    if n == 0:
        return np.zeros((1, 4), dtype=np.float64)
    slices = ndimage.find_objects(labels)
    if not multi_contour:
        sizes = np.bincount(labels.ravel())[1:]
        slices = [slices[int(np.argmax(sizes))]]
    return np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices], dtype=np.float64)


def reference_boxes(mask: np.ndarray, multi_contour: bool = True) -> np.ndarray:
    """The reference evaluation's boxes of a binary mask: ``x1 = min(max col + 1, W - 1)`` (same for y), used with
    inclusive IoU (``box_iou(..., inclusive=True)``). An empty mask gives ``(0, 0, 0, 0)``."""
    mask = np.asarray(mask, dtype=bool)
    boxes = boxes_from_mask(mask, multi_contour)  # an empty mask: (0, 0, 0, 0), unchanged by the clip below
    h, w = mask.shape
    boxes[:, 2] = np.minimum(boxes[:, 2], w - 1)
    boxes[:, 3] = np.minimum(boxes[:, 3], h - 1)
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of boxes ``x0, y0, x1, y1``: half-open (area ``(x1 - x0)(y1 - y0)``), or with
    ``inclusive=True`` the reference evaluation's pixel count ``(x1 - x0 + 1)(y1 - y0 + 1)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    one = 1.0 if inclusive else 0.0
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0 + one, 0, None) * np.clip(iy1 - iy0 + one, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0] + one, 0, None) * np.clip(a[:, 3] - a[:, 1] + one, 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0] + one, 0, None) * np.clip(b[:, 3] - b[:, 1] + one, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


class MaxBoxAccV2:
    """Accumulate MaxBoxAccV2 over batches: ``update(maps, gt_boxes, image_size)`` then ``compute()``.

    ``maps``: (B, h, w) scores (any resolution; upsampled to ``image_size``); ``gt_boxes``: per image a (K, 4)
    array of pixel boxes ``x0, y0, x1, y1`` (or a (B, 4) array for one box each). Invalid boxes (NaN, inverted,
    outside the image: :func:`sanitize_boxes`) are dropped and counted (``dropped_boxes``); an image left without
    a box is not scored (``images_without_box``); :meth:`compute` warns with both counts.
    """

    def __init__(self, iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                 cam_thresholds: Sequence[float] = DEFAULT_CAM_THRESHOLDS, multi_contour: bool = True,
                 upsample: str = "bicubic", convention: str = "reference"):
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.convention = convention
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        if not self.iou_thresholds or any(not 0 < t <= 1 for t in self.iou_thresholds):
            raise ValueError(f"iou_thresholds must lie in (0, 1], got {iou_thresholds}")
        self.cam_thresholds = np.asarray(cam_thresholds, dtype=np.float64)
        self.multi_contour, self.upsample = bool(multi_contour), upsample
        self.correct = np.zeros((len(self.cam_thresholds), len(self.iou_thresholds)), dtype=np.int64)
        self.count = 0
        self.dropped_boxes = 0
        self.images_without_box = 0

    def best_ious(self, score_map: np.ndarray, gt: np.ndarray) -> np.ndarray:
        """For one normalised full-size map: the best IoU at every CAM threshold, shape (num_thresholds,)."""
        out = np.zeros(len(self.cam_thresholds))
        if self.convention == "continuous":
            for i, tau in enumerate(self.cam_thresholds):
                out[i] = box_iou(boxes_from_mask(score_map >= tau, self.multi_contour), gt).max()
            return out
        q = (np.asarray(score_map, dtype=np.float64) * 255).astype(np.uint8)  # 8-bit, truncated as the reference
        gt = np.trunc(np.asarray(gt, dtype=np.float64))
        top = int(q.max())
        for i, tau in enumerate(self.cam_thresholds):
            boxes = reference_boxes(q > int(tau * top), self.multi_contour)
            out[i] = box_iou(boxes, gt, inclusive=True).max()
        return out

    def update(self, maps, gt_boxes, image_size: tuple[int, int]) -> None:
        full = upsample_maps(maps, image_size, self.upsample)
        if isinstance(gt_boxes, (np.ndarray, torch.Tensor)) and np.asarray(gt_boxes).ndim == 2:
            gt_boxes = [np.asarray(b)[None] for b in np.asarray(gt_boxes)]
        if len(gt_boxes) != len(full):
            raise ValueError(f"{len(full)} maps but {len(gt_boxes)} box sets")
        thr = np.asarray(self.iou_thresholds)
        for m, gt in zip(full, gt_boxes):
            gt, dropped = sanitize_boxes(gt, image_size[1], image_size[0])
            self.dropped_boxes += dropped
            if len(gt) == 0:
                self.images_without_box += 1
                continue
            ious = self.best_ious(normalize_map(m), gt)
            self.correct += (ious[:, None] >= thr[None, :]).astype(np.int64)
            self.count += 1

    def compute(self) -> dict:
        """``{"maxboxacc_v2": percent, "maxboxacc": {delta: percent}, "best_threshold": {delta: tau}, "n": N}``."""
        if self.dropped_boxes:
            warnings.warn(f"MaxBoxAccV2: {self.dropped_boxes} invalid ground-truth box(es) dropped (NaN, inverted or "
                          f"outside the image); {self.images_without_box} image(s) left without a box not scored",
                          stacklevel=2)
        if self.count == 0:
            if self.images_without_box:
                raise ValueError(f"MaxBoxAccV2: none of the {self.images_without_box} image(s) has a valid box")
            raise ValueError("MaxBoxAccV2.compute() before any update()")
        acc = self.correct / self.count * 100.0  # (taus, deltas)
        best = acc.argmax(axis=0)
        per = {float(d): float(acc[best[j], j]) for j, d in enumerate(self.iou_thresholds)}
        return {"maxboxacc_v2": float(np.mean(list(per.values()))), "maxboxacc": per,
                "best_threshold": {float(d): float(self.cam_thresholds[best[j]])
                                   for j, d in enumerate(self.iou_thresholds)},
                "n": int(self.count), "dropped_boxes": int(self.dropped_boxes),
                "images_without_box": int(self.images_without_box)}


def max_box_acc(maps, gt_boxes, image_size: tuple[int, int], **kwargs) -> dict:
    """MaxBoxAccV2 of a set of maps in one call (see :class:`MaxBoxAccV2` for the options)."""
    metric = MaxBoxAccV2(**kwargs)
    metric.update(maps, gt_boxes, image_size)
    return metric.compute()


def token_centers(grid_size: tuple[int, int], patch_size: int | tuple[float, float]) -> np.ndarray:
    """(N, 2) pixel centres ``(x, y)`` of the patch tokens, row-major (token n = row * cols + col)."""
    rows, cols = grid_size
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else patch_size
    yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack([(xx.ravel() + 0.5) * pw, (yy.ravel() + 0.5) * ph], 1).astype(np.float64)


def tokens_in_boxes(boxes, grid_size: tuple[int, int], patch_size: int | tuple[float, float]) -> np.ndarray:
    """(B, N) bool: whether each token's centre (:func:`token_centers`) lies inside its image's half-open pixel box
    ``x0, y0, x1, y1`` (``boxes``: (B, 4))."""
    b = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    b = b.reshape(-1, 4)
    c = token_centers(grid_size, patch_size)
    return ((c[None, :, 0] >= b[:, None, 0]) & (c[None, :, 0] < b[:, None, 2])
            & (c[None, :, 1] >= b[:, None, 1]) & (c[None, :, 1] < b[:, None, 3]))


def token_box_hits(scores, boxes, grid_size: tuple[int, int], patch_size: int | tuple[int, int], k: int = 1,
                   largest: bool = True) -> dict:
    """Where the top-k (``largest``) or bottom-k tokens of each score row fall relative to the object box.

    ``scores``: (B, N) per-token scores (N = rows * cols, row-major); ``boxes``: (B, 4) pixel boxes of the view the
    tokens come from. Returns ``hit_rate`` (fraction of the selected tokens whose centre is inside the box),
    ``chance`` (mean fraction of all tokens inside the box), ``any_hit`` (fraction of images with at least one
    selected token inside) and ``ratio`` = hit_rate / chance (> 1: better than chance).
    """
    s = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
    s = s.detach().float().cpu()
    b = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    b = b.reshape(-1, 4)
    n = int(grid_size[0]) * int(grid_size[1])
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"scores must be (B, {n}) for a {grid_size} grid, got {tuple(s.shape)}")
    if len(b) != len(s):
        raise ValueError(f"{len(s)} score rows but {len(b)} boxes")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    inside = tokens_in_boxes(b, grid_size, patch_size)  # (B, N)
    idx = torch.topk(s, k, dim=1, largest=largest).indices.numpy()
    hits = np.take_along_axis(inside, idx, axis=1)
    hit_rate, chance = float(hits.mean()), float(inside.mean())
    return {"hit_rate": hit_rate, "chance": chance, "any_hit": float(hits.any(axis=1).mean()),
            "ratio": hit_rate / chance if chance > 0 else float("nan"), "k": int(k), "largest": bool(largest),
            "n": int(len(s))}
