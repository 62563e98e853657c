"""Checks for the localisation exercises (notebook 08): the boxes a thresholded score map gives, and MaxBoxAcc at
one IoU threshold δ — the two halves of MaxBoxAccV2 (Choe et al. 2020, the metric of SimPool Table 5).

The expected values are computed here, independently of the core's metric: min-max normalisation, the mask
``s >= tau``, the connected components by a flood fill this module owns, half-open boxes and their IoU
(:func:`estimated_boxes_reference`, :func:`maxboxacc_reference`). The maps are given at image resolution, so no
upsampling is involved. While the student's code runs, the core's localisation code
(:mod:`glsim_core.analysis.localisation`) is unavailable, so a submission that delegates to it fails with a hint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from .checks_pooling import _grader_references
from .grading import Case, CheckResult, Mismatch, call, core_functions, run_check

__all__ = ["check_estimated_boxes", "check_maxboxacc", "estimated_boxes_reference", "maxboxacc_reference"]

_F64 = torch.float64
_COARSE = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2).tolist())  # τ ∈ {0, 0.05, ..., 0.95}
_FINE = tuple(np.round(np.arange(0.0, 1.0, 0.01), 2).tolist())  # τ ∈ {0, 0.01, ..., 0.99}: MaxBoxAccV2's grid


def _blocked() -> dict:
    return {**core_functions("glsim_core.analysis.localisation", "glsim_core.data.boxes", "glsim_core.analysis.probes"),
            **_grader_references()}


# ------------------------------------------------------------------------------------------------------ references
def _normalized(score_map) -> np.ndarray:
    """Min-max normalised to [0, 1]; a constant map becomes all zeros."""
    s = _np(score_map)
    lo, hi = float(s.min()), float(s.max())
    return (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)


def _components(mask: np.ndarray, connectivity: int = 8) -> list[tuple[list[int], int]]:
    """Flood fill: (half-open box [x0, y0, x1, y1], pixel count) of each connected component of ``mask``."""
    h, w = mask.shape
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)
             and (connectivity == 8 or dy == 0 or dx == 0)]
    seen = np.zeros(mask.shape, dtype=bool)
    out = []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        seen[y, x] = True
        todo, y0, y1, x0, x1, count = [(int(y), int(x))], h, -1, w, -1, 0
        while todo:
            cy, cx = todo.pop()
            count += 1
            y0, y1, x0, x1 = min(y0, cy), max(y1, cy), min(x0, cx), max(x1, cx)
            for dy, dx in steps:
                ny, nx = cy + dy, cx + dx
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    todo.append((ny, nx))
        out.append(([x0, y0, x1 + 1, y1 + 1], count))
    return out


def _boxes_variant(score_map, tau: float, *, normalize: bool = True, multi: bool = True, strict: bool = False,
                   connectivity: int = 8) -> np.ndarray:
    """The boxes of :func:`estimated_boxes_reference`, with flags for known mistakes: no normalisation, the largest
    component only (MaxBoxAcc V1), ``s > tau``, 4-connectivity."""
    s = _normalized(score_map) if normalize else _np(score_map)
    comps = _components(s > tau if strict else s >= tau, connectivity)
    if not comps:
        return np.zeros((1, 4))
    if not multi:
        comps = [max(comps, key=lambda c: c[1])]
    return np.array([box for box, _ in comps], dtype=np.float64)


def estimated_boxes_reference(score_map, tau: float) -> np.ndarray:
    """(K, 4) half-open boxes ``x0, y0, x1, y1`` of every 8-connected component of ``{normalised map >= tau}``; an
    empty mask gives the one box ``(0, 0, 0, 0)`` (the reference of :func:`check_estimated_boxes`)."""
    return _boxes_variant(score_map, tau)


def _iou(boxes: np.ndarray, gt: np.ndarray, inclusive: bool = False) -> np.ndarray:
    """IoU (K,) of half-open boxes with one box ``gt``; ``inclusive`` adds the +1 of inclusive pixel boxes (a known
    mistake)."""
    one = 1.0 if inclusive else 0.0
    iw = np.clip(np.minimum(boxes[:, 2], gt[2]) - np.maximum(boxes[:, 0], gt[0]) + one, 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], gt[3]) - np.maximum(boxes[:, 1], gt[1]) + one, 0, None)
    area = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    union = area + (gt[2] - gt[0] + one) * (gt[3] - gt[1] + one) - iw * ih
    return np.where(union > 0, iw * ih / np.where(union > 0, union, 1.0), 0.0)


def maxboxacc_reference(maps, gt_boxes, delta: float, thresholds: Sequence[float]) -> float:
    """MaxBoxAcc(δ) in percent of full-resolution maps (B, H, W) with one ground-truth box (B, 4) each: the largest,
    over the thresholds τ, of the percentage of images whose best IoU is ``>= delta`` (the reference of
    :func:`check_maxboxacc`)."""
    return _maxboxacc_variant(maps, gt_boxes, delta, thresholds)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


# ------------------------------------------------------------------------------------------------------ mistakes
def _maxboxacc_variant(maps, gt_boxes, delta: float, thresholds: Sequence[float], *, normalize: bool = True,
                       multi: bool = True, strict: bool = False, inclusive: bool = False, per_image: bool = False,
                       reduce: str = "max", scale: float = 100.0) -> float:
    """MaxBoxAcc(δ) by its definition, with flags for known mistakes (as named)."""
    maps, gts = _np(maps), _np(gt_boxes).reshape(-1, 4)
    hits = np.zeros((len(maps), len(thresholds)))
    for i, (m, gt) in enumerate(zip(maps, gts)):
        for j, tau in enumerate(thresholds):
            boxes = _boxes_variant(m, tau, normalize=normalize, multi=multi)
            iou = _iou(boxes, gt, inclusive).max()
            hits[i, j] = iou > delta if strict else iou >= delta
    if per_image:
        return float(hits.max(1).mean() * scale)
    per_tau = hits.mean(0)
    return float((per_tau.max() if reduce == "max" else per_tau.mean()) * scale)


# ------------------------------------------------------------------------------------------------------ maps
def _blob(h: int, w: int, cy: float, cx: float, sy: float, sx: float | None = None) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h, dtype=_F64), torch.arange(w, dtype=_F64), indexing="ij")
    sx = sy if sx is None else sx
    return torch.exp(-((yy - cy) ** 2 / (2 * sy ** 2) + (xx - cx) ** 2 / (2 * sx ** 2)))


def _plateaus(h: int, w: int, regions: Sequence[tuple[tuple[int, int, int, int], float]]) -> torch.Tensor:
    """A map of zeros with ``value`` on each half-open pixel box ``(x0, y0, x1, y1)`` (later regions on top)."""
    m = torch.zeros(h, w, dtype=_F64)
    for (x0, y0, x1, y1), value in regions:
        m[y0:y1, x0:x1] = value
    return m


def _box_around(cy: float, cx: float, hy: float, hx: float, h: int, w: int) -> list[float]:
    return [max(0.0, round(cx - hx)), max(0.0, round(cy - hy)), min(float(w), round(cx + hx)),
            min(float(h), round(cy + hy))]


# ------------------------------------------------------------------------------------------------------ boxes
def _as_boxes(value) -> np.ndarray:
    if value is None:
        raise Mismatch("a (K, 4) array of boxes", "None", "Your function returned nothing: did you forget `return`?")
    try:
        a = _np(value)
    except Exception:  # noqa: BLE001
        raise Mismatch("a (K, 4) array of boxes", f"a {type(value).__name__}",
                       "Return the boxes as a torch tensor (or a NumPy array) of shape (K, 4).") from None
    if a.ndim == 1 and a.size == 4:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != 4:
        raise Mismatch("a (K, 4) array of boxes", f"an array of shape {a.shape}",
                       "One row per connected component, four numbers per row: x0, y0, x1, y1.")
    return a


def _sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])] if len(a) else a


def _boxes_text(a: np.ndarray) -> str:
    rows = _sorted_rows(a).tolist()
    shown = ", ".join(str([int(v) if float(v).is_integer() else round(float(v), 3) for v in r]) for r in rows[:3])
    more = f" (+{len(rows) - 3} more)" if len(rows) > 3 else ""
    return f"{len(rows)} box{'es' if len(rows) != 1 else ''} (x0, y0, x1, y1): {shown}{more}"


def _same_boxes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(_sorted_rows(a), _sorted_rows(b), rtol=0, atol=1e-9))


def check_estimated_boxes(estimated_boxes, *, quiet: bool = False) -> CheckResult:
    """Exercise ``estimated_boxes``: ``estimated_boxes(score_map, tau)`` returns the (K, 4) half-open pixel boxes
    ``(x0, y0, x1, y1)`` of **every** 8-connected component of the mask ``{s >= tau}``, where ``s`` is the (H, W)
    ``score_map`` min-max normalised to [0, 1] (a constant map becomes all zeros); an empty mask gives the single
    box ``(0, 0, 0, 0)``. The order of the boxes does not matter (Choe et al. 2020, MaxBoxAccV2's box rule)."""

    def run_case(make_map: Callable[[], torch.Tensor], tau: float, hint: str = ""):
        def run(fn):
            m = make_map()
            expected = estimated_boxes_reference(m, tau)
            got = _as_boxes(call(fn, m.clone(), tau))
            if _same_boxes(got, expected):
                return
            exp_text, got_text = f"boxes: {_boxes_text(expected)}", f"boxes: {_boxes_text(got)}"
            if len(got) == 0 and not expected[:, 2:].any():
                raise Mismatch(exp_text, got_text, "An empty mask has no component: return the single box "
                               "(0, 0, 0, 0) (IoU 0 with any object), so that the best IoU is still defined.")
            mistakes = [
                ("the map thresholded without min-max normalisation", _boxes_variant(m, tau, normalize=False),
                 "τ lives on the normalised scale: rescale the map to [0, 1] (its minimum to 0, its maximum to 1) "
                 "before thresholding; a constant map becomes all zeros."),
                ("the largest component only (MaxBoxAcc V1)", _boxes_variant(m, tau, multi=False),
                 "MaxBoxAccV2 boxes every connected component of the mask, not only the largest one."),
                ("the mask s > τ", _boxes_variant(m, tau, strict=True),
                 "A pixel whose normalised score equals τ belongs to the mask: s ≥ τ."),
                ("4-connected components", _boxes_variant(m, tau, connectivity=4),
                 "Pixels that touch only at a corner are connected too (8-connectivity: pass a 3 × 3 structure of "
                 "ones to the labelling)."),
                ("inclusive boxes (x1, y1 = the last pixel)", expected - np.array([0.0, 0.0, 1.0, 1.0]),
                 "Boxes are half-open: x1 and y1 are one past the last pixel, so that image[y0:y1, x0:x1] is the "
                 "box and its area is (x1 − x0)(y1 − y0)."),
                ("boxes written (y0, x0, y1, x1)", expected[:, [1, 0, 3, 2]],
                 "x runs along the columns (the second axis of the map) and y along the rows: (x0, y0, x1, y1)."),
            ]
            for label, wrong, mistake_hint in mistakes:
                if _same_boxes(got, wrong) and not _same_boxes(wrong, expected):
                    raise Mismatch(exp_text, f"{got_text} — it matches {label}", mistake_hint)
            rows = {tuple(r) for r in expected.tolist()}
            if 0 < len(got) < len(expected) and all(tuple(r) in rows for r in got.tolist()):
                raise Mismatch(exp_text, f"{got_text} — right boxes, but {len(expected) - len(got)} missing",
                               "MaxBoxAccV2 boxes every connected component of the mask: return one box per "
                               "component, not only some of them.")
            raise Mismatch(exp_text, got_text, hint or "Normalise, threshold with s ≥ τ, label the 8-connected "
                           "components, and take the tight half-open box of each.")
        return run

    def two_blobs():
        return _blob(64, 64, 16, 14, 4) + 0.8 * _blob(64, 64, 44, 46, 6)

    def diagonal():
        m = _plateaus(48, 48, [((8, 8, 16, 16), 1.0), ((30, 30, 36, 36), 1.0)])
        for i in range(16, 30):
            m[i, i] = 1.0  # a one-pixel diagonal chain joins the two squares at their corners
        return m

    cases = [
        Case("one Gaussian blob, τ = 0.5", run_case(lambda: _blob(64, 64, 24, 40, 5, 8), 0.5)),
        Case("two separate blobs, τ = 0.3: one box each", run_case(two_blobs, 0.3)),
        Case("squares joined by a diagonal chain of pixels, τ = 0.5 (8-connectivity)", run_case(diagonal, 0.5)),
        Case("scores exactly equal to τ = 0.5 belong to the mask",
             run_case(lambda: _plateaus(32, 32, [((2, 3, 10, 12), 1.0), ((16, 18, 30, 28), 0.5)]), 0.5)),
        Case("negative scores (as cosines can be), τ = 0.3",
             run_case(lambda: 0.2 * _blob(64, 64, 30, 20, 7) - 0.9, 0.3)),
        Case("a constant map at τ = 0: every pixel is in the mask",
             run_case(lambda: torch.full((40, 56), 0.7, dtype=_F64), 0.0)),
        Case("a constant map at τ = 0.4: an empty mask",
             run_case(lambda: torch.full((40, 56), 0.7, dtype=_F64), 0.4)),
        Case("the maximum on the image's corner, τ = 0.6: the box reaches the edge",
             run_case(lambda: _blob(64, 64, 63, 0, 9), 0.6)),
        Case("a 40 × 72 map (H ≠ W) with three blobs, τ = 0.35",
             run_case(lambda: _blob(40, 72, 10, 12, 4) + _blob(40, 72, 30, 60, 5, 9) + 0.6 * _blob(40, 72, 28, 30, 3),
                      0.35)),
    ]
    return run_check("estimated_boxes", "the boxes of a thresholded score map, MaxBoxAccV2's rule", estimated_boxes,
                     cases, blocked=_blocked(), quiet=quiet)


# ------------------------------------------------------------------------------------------------------ MaxBoxAcc
def _blob_set(seed: int, n: int, h: int = 64, w: int = 64, on_object: float = 0.75, offset: float = 0.0,
              scale: float = 1.0, border: bool = False):
    """``n`` maps with one blob each and a ground-truth box; a fraction ``on_object`` of the blobs sits on its box,
    the others elsewhere. Returns (maps (n, h, w), boxes (n, 4))."""
    g = np.random.default_rng(seed)
    maps, boxes = [], []
    for i in range(n):
        if border:
            cy, cx = g.choice([0.0, h - 1.0]), g.uniform(0, w - 1)
        else:
            cy, cx = g.uniform(0.25 * h, 0.75 * h), g.uniform(0.25 * w, 0.75 * w)
        sy, sx = g.uniform(3, 8), g.uniform(3, 8)
        maps.append(_blob(h, w, cy, cx, sy, sx) * scale + offset + 0.02 * torch.as_tensor(g.random((h, w))))
        if i < round(on_object * n):
            by, bx = cy + g.normal(0, 1.5), cx + g.normal(0, 1.5)
            boxes.append(_box_around(by, bx, 2 * sy * g.uniform(0.8, 1.2), 2 * sx * g.uniform(0.8, 1.2), h, w))
        else:
            boxes.append(_box_around(h - cy, w - cx, 6, 6, h, w))
    return torch.stack(maps), torch.tensor(boxes, dtype=_F64)


def _exact_half():
    """IoU exactly 0.5 on the first image, just under on the second."""
    maps = torch.stack([_plateaus(64, 64, [((16, 16, 32, 48), 1.0)]), _plateaus(64, 64, [((16, 16, 31, 48), 1.0)])])
    return maps, torch.tensor([[16, 16, 48, 48], [16, 16, 46, 48]], dtype=_F64)


def _small_objects():
    """Boxes of a few pixels, where a +1 in the areas changes the IoU."""
    est = [(10, 10, 12, 12), (30, 8, 33, 11), (8, 40, 12, 44), (50, 50, 51, 51)]
    gts = [[10, 10, 13, 13], [30, 8, 34, 12], [7, 39, 13, 45], [50, 50, 52, 51]]
    maps = torch.stack([_plateaus(64, 64, [(b, 1.0)]) for b in est])
    return maps, torch.tensor(gts, dtype=_F64)


def _two_blobs_set():
    """A large blob far from the object and a smaller one on it."""
    maps, boxes = [], []
    for cy, cx, s in ((14, 14, 3), (50, 16, 3.5), (16, 48, 2.5)):
        maps.append(_blob(64, 64, cy, cx, s) + _blob(64, 64, 64 - cy, 64 - cx, 9))
        boxes.append(_box_around(cy, cx, 2 * s, 2 * s, 64, 64))
    return torch.stack(maps), torch.tensor(boxes, dtype=_F64)


def _constant_maps():
    return (torch.stack([torch.full((64, 64), 3.7, dtype=_F64), torch.full((64, 64), -1.0, dtype=_F64)]),
            torch.tensor([[0, 0, 64, 48], [16, 16, 48, 48]], dtype=_F64))


def _two_levels():
    """Image 1 is localised only at low τ, image 2 only at high τ: no single τ gets both."""
    big = (8, 8, 56, 56)
    a = _plateaus(64, 64, [(big, 0.3), ((30, 30, 34, 34), 1.0)])
    b = _plateaus(64, 64, [(big, 0.3), ((20, 24, 36, 40), 1.0)])
    return torch.stack([a, b]), torch.tensor([list(big), [20, 24, 36, 40]], dtype=_F64)


_PERCENT_ATOL = 1e-3  # percentages move in steps of 100 / B: float32 rounding is far below that
_MAXBOXACC_MISTAKES = [
    ("the best τ chosen per image", dict(per_image=True),
     "MaxBoxAcc picks one τ for the whole set (the best BoxAcc(τ, δ)), not the best τ of each image: count the "
     "correct images per τ first, then take the maximum over τ."),
    ("the mean over τ instead of the maximum", dict(reduce="mean"),
     "MaxBoxAcc is the *maximum* over τ of BoxAcc(τ, δ)."),
    ("a fraction instead of a percentage", dict(scale=1.0),
     "Return a percentage (0–100), as the papers report MaxBoxAcc."),
    ("IoU > δ instead of IoU ≥ δ", dict(strict=True),
     "An image whose best IoU equals δ counts as correct: IoU ≥ δ."),
    ("box areas counted with +1 (inclusive pixels)", dict(inclusive=True),
     "Boxes are half-open: the area of (x0, y0, x1, y1) is (x1 − x0)(y1 − y0), and the intersection's sides are "
     "min(x1) − max(x0) and min(y1) − max(y0), clipped at 0."),
    ("the largest component's box only (MaxBoxAcc V1)", dict(multi=False),
     "Take the best IoU over *all* the boxes of the mask (your estimated_boxes gives them)."),
    ("maps thresholded without min-max normalisation", dict(normalize=False),
     "Each map is normalised to [0, 1] before thresholding (your estimated_boxes does it)."),
]


def _pct(v: float) -> str:
    return f"{v:.4g} %"


def _as_percent(value) -> float:
    if value is None:
        raise Mismatch("one number", "None", "Your function returned nothing: did you forget `return`?")
    if isinstance(value, bool):
        raise Mismatch("one number", repr(value), "Return the percentage, a number between 0 and 100.")
    try:
        a = _np(value)
    except Exception:  # noqa: BLE001
        raise Mismatch("one number", f"a {type(value).__name__}",
                       "Return one number (a float): the percentage of correct images at the best τ.") from None
    if a.size != 1:
        raise Mismatch("one number", f"an array of shape {a.shape}",
                       "Return one number: the percentage of correct images at the best τ (the maximum over τ).")
    v = float(a.reshape(()))
    if not np.isfinite(v):
        raise Mismatch("a finite percentage", repr(v), "Your result is nan/inf: which division can be by zero?")
    return v


def check_maxboxacc(maxboxacc, *, quiet: bool = False) -> CheckResult:
    """Exercise ``maxboxacc``: ``maxboxacc(maps, gt_boxes, delta, thresholds)`` returns MaxBoxAcc(δ) in percent:
    for full-resolution score maps (B, H, W) and one ground-truth box (B, 4) per image, the largest over the
    thresholds τ of the percentage of images for which some box of ``estimated_boxes(map, τ)`` has IoU ≥ δ with the
    ground truth (Choe et al. 2020; MaxBoxAccV2 is its mean over δ ∈ {0.3, 0.5, 0.7}). τ is chosen once for the
    whole set, not per image."""

    def run_case(make: Callable[[], tuple[torch.Tensor, torch.Tensor]], delta: float,
                 thresholds: Sequence[float] = _COARSE, hint: str = ""):
        def run(fn):
            maps, boxes = make()
            expected = maxboxacc_reference(maps, boxes, delta, thresholds)
            got = _as_percent(call(fn, maps.clone(), boxes.clone(), delta, list(thresholds)))
            if abs(got - expected) <= _PERCENT_ATOL:
                return
            exp_text, got_text = f"MaxBoxAcc = {_pct(expected)}", f"MaxBoxAcc = {_pct(got)}"
            for label, flags, mistake_hint in _MAXBOXACC_MISTAKES:
                wrong = _maxboxacc_variant(maps, boxes, delta, thresholds, **flags)
                if abs(wrong - expected) > _PERCENT_ATOL and abs(got - wrong) <= _PERCENT_ATOL:
                    raise Mismatch(exp_text, f"{got_text} — it matches {label}", mistake_hint)
            raise Mismatch(exp_text, got_text, hint or "For each τ, count the images whose best IoU (over the boxes "
                           "of their mask) reaches δ; return the best count as a percentage of the images.")
        return run

    cases = [
        Case("one image, a blob on its object, δ = 0.5", run_case(lambda: _blob_set(81, 1, on_object=1.0), 0.5)),
        Case("8 images, blobs on and off their objects, δ = 0.5", run_case(lambda: _blob_set(82, 8), 0.5)),
        Case("an IoU of exactly δ = 0.5 counts as correct", run_case(_exact_half, 0.5)),
        Case("objects of a few pixels, δ = 0.5 (half-open boxes)", run_case(_small_objects, 0.5)),
        Case("two blobs, the object under the smaller one, δ = 0.5", run_case(_two_blobs_set, 0.5)),
        Case("constant maps carry no information, δ = 0.5", run_case(_constant_maps, 0.5,
                                                                     hint="A constant map normalises to all zeros; "
                                                                          "guard the division by max − min.")),
        Case("one τ for the whole set: images that need different τ, δ = 0.5", run_case(_two_levels, 0.5)),
        Case("negative scores (cosines), 6 images, δ = 0.3",
             run_case(lambda: _blob_set(83, 6, offset=-0.8, scale=0.3), 0.3)),
        Case("objects at the image's border, τ ∈ {0, 0.01, …, 0.99}, δ = 0.7",
             run_case(lambda: _blob_set(84, 4, border=True, on_object=1.0), 0.7, _FINE)),
        Case("48 × 80 images (H ≠ W), a batch of 5, δ = 0.3", run_case(lambda: _blob_set(85, 5, h=48, w=80), 0.3)),
    ]
    return run_check("maxboxacc", "MaxBoxAcc at one IoU threshold δ, the core of MaxBoxAccV2", maxboxacc, cases,
                     blocked=_blocked(), quiet=quiet)
