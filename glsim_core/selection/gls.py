"""Global-local similarity (GLSim §3.2, Eq. 1-2), the top-O box, and a batched crop-and-resize.

GLS compares the global representation of an image (the ViT's CLS token ``f^0`` after the final LayerNorm) with
every local (patch) token ``f^i``; the image is then cropped to the rectangle that **encloses** the O tokens with
the highest similarity, and the crop is resized back to the input size (Figure 1, Appendix B).

Deliberate differences from the authors' release, each available as an option:

* Box: the paper's rectangle encloses the top-O tokens, ``[min*P, (max+1)*P)``; the release drops the last
  selected row and column, ``[min*P, max(max, min+1)*P)`` -> ``box_rule="reference"``.
* L1/L2: the release ranks tokens by the *smallest* mean absolute / squared difference; here they are returned
  negated, so that for every metric larger = more similar and the same top-O code serves all three.
* O larger than the number of tokens: the release's ``topk`` fails; here it is clamped with a warning.
* Ties are broken deterministically (lower token index first: a stable sort), on every device.
* The crop is one batched ``grid_sample`` call instead of a Python loop over the batch; it reproduces the
  release's per-image slice + bilinear resize (``align_corners=True``) to float32 coordinate rounding.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["METRICS", "BOX_RULES", "global_local_similarity", "select_boxes", "top_o_indices", "paper_top_o",
           "crop_and_resize", "crop_and_resize_reference"]

METRICS = ("cosine", "l1", "l2")
BOX_RULES = ("paper", "reference")


def paper_top_o(img_size: int | tuple[int, int], dataset: str | None = None) -> int:
    """GLSim §4's O: 8 tokens, 16 for Stanford Dogs, "doubled accordingly when using image size 448"."""
    side = max(img_size) if isinstance(img_size, (tuple, list)) else int(img_size)
    name = str(dataset or "").lower()
    base = 16 if name == "dogs" or "stanford-dogs" in name or "stanford_dogs" in name else 8
    return base * 2 if side >= 448 else base


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, (int,)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif isinstance(value, torch.Size) or (isinstance(value, Sequence) and len(value) == 2):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a (height, width) pair, got {value!r}")
    if min(pair) < 1:
        raise ValueError(f"{name} must be positive, got {pair}")
    return pair


def global_local_similarity(tokens: torch.Tensor, metric: str = "cosine", num_prefix_tokens: int = 1, *,
                            global_token: torch.Tensor | None = None, eps: float = 1e-8) -> torch.Tensor:
    """GLS scores (B, N) between the global token and each of the N patch tokens; larger = more similar.

    ``tokens``: (B, T, D) encoder output **after the final norm** (e.g. ``vit.forward_features(x)``), with
    ``num_prefix_tokens`` leading tokens (CLS first, then any register tokens, as timm orders them); the patch
    tokens are ``tokens[:, num_prefix_tokens:]``. The global representation is ``tokens[:, 0]`` (the CLS token),
    or ``global_token`` (B, D) when the model pools differently (e.g. SimPool; then pass ``num_prefix_tokens`` for
    whatever prefix the token sequence still has, possibly 0).

    * ``"cosine"`` (Eq. 1-2): ``s_i = f^0 . f^i / (|f^0| |f^i|)``, in [-1, 1], invariant to scaling either vector.
    * ``"l1"``: ``-mean_j |f^0_j - f^i_j|``; ``"l2"``: ``-mean_j (f^0_j - f^i_j)^2`` (the release's per-token mean
      over channels, negated so that the largest score is the most similar token).

    Computed in float32 (or float64 for float64 input) whatever the input dtype, so that rankings under
    autocast are not decided by bf16 rounding; returned on the input's device.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be (batch, tokens, channels), got shape {tuple(tokens.shape)}")
    prefix = int(num_prefix_tokens)
    if prefix < 0 or (global_token is None and prefix < 1):
        raise ValueError("num_prefix_tokens must be >= 1 (the CLS token is the global representation) "
                         "unless global_token is given")
    if tokens.shape[1] <= prefix:
        raise ValueError(f"no patch tokens: {tokens.shape[1]} tokens with {prefix} prefix tokens")
    dtype = torch.promote_types(tokens.dtype, torch.float32)
    local = tokens[:, prefix:].to(dtype)
    if global_token is None:
        glob = tokens[:, 0].to(dtype)
    else:
        if global_token.shape != (tokens.shape[0], tokens.shape[2]):
            raise ValueError(f"global_token must be (batch, channels) = {(tokens.shape[0], tokens.shape[2])}, "
                             f"got {tuple(global_token.shape)}")
        glob = global_token.to(dtype)
    if metric == "cosine":
        # normalise, then one batched dot product (counted by torch.utils.flop_counter, unlike elementwise ops)
        g = F.normalize(glob, dim=-1, eps=eps)
        loc = F.normalize(local, dim=-1, eps=eps)
        return torch.einsum("bd,bnd->bn", g, loc)
    diff = glob[:, None, :] - local
    if metric == "l1":
        return -diff.abs().mean(-1)
    return -diff.square().mean(-1)


def top_o_indices(scores: torch.Tensor, top_o: int) -> torch.Tensor:
    """Indices (B, O) of the O largest scores per row; ties go to the lower index (a stable descending sort)."""
    if scores.ndim != 2:
        raise ValueError(f"scores must be (batch, tokens), got shape {tuple(scores.shape)}")
    n = scores.shape[1]
    top_o = int(top_o)
    if top_o < 1:
        raise ValueError(f"top_o must be >= 1, got {top_o}")
    if top_o > n:
        warnings.warn(f"top_o={top_o} is larger than the number of tokens ({n}); using all {n} tokens",
                      stacklevel=3)
        top_o = n
    order = torch.sort(scores.detach().float(), dim=1, descending=True, stable=True).indices
    return order[:, :top_o]


def select_boxes(scores: torch.Tensor, grid_size: int | Sequence[int], patch_size: int | Sequence[int],
                 top_o: int, box_rule: str = "paper") -> torch.Tensor:
    """Pixel boxes (B, 4) int64 ``(x0, y0, x1, y1)``, half-open, around the top-O tokens of ``scores`` (B, N).

    Token ``i`` of a ``grid_size = (rows, cols)`` grid sits at row ``i // cols``, column ``i % cols`` (timm's
    row-major flattening; non-square grids allowed) and covers pixels ``[row*Ph, (row+1)*Ph) x [col*Pw, (col+1)*Pw)``.

    * ``box_rule="paper"``: the rectangle enclosing the top-O tokens (§3.2, Figure 1):
      ``y0 = min_row*Ph, y1 = (max_row+1)*Ph`` and likewise for x.
    * ``box_rule="reference"``: the authors' release: ``y1 = max(max_row, min_row+1)*Ph``, i.e. the last selected
      row/column is excluded, and a single patch is taken when min == max.

    ``top_o`` > N is clamped to N with a warning; ties between equal scores go to the lower token index.
    """
    if box_rule not in BOX_RULES:
        raise ValueError(f"box_rule must be one of {BOX_RULES}, got {box_rule!r}")
    rows, cols = _pair(grid_size, "grid_size")
    ph, pw = _pair(patch_size, "patch_size")
    if scores.ndim != 2 or scores.shape[1] != rows * cols:
        raise ValueError(f"scores must be (batch, {rows}*{cols}={rows * cols}) for a {rows}x{cols} grid, "
                         f"got shape {tuple(scores.shape)}")
    idx = top_o_indices(scores, top_o)
    r, c = idx // cols, idx % cols
    r0, r1 = r.amin(1), r.amax(1)
    c0, c1 = c.amin(1), c.amax(1)
    if box_rule == "paper":
        r1, c1 = r1 + 1, c1 + 1
    else:
        r1, c1 = torch.maximum(r1, r0 + 1), torch.maximum(c1, c0 + 1)
    return torch.stack([c0 * pw, r0 * ph, c1 * pw, r1 * ph], dim=1).to(torch.int64)


def _check_boxes(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    if boxes.ndim != 2 or boxes.shape != (images.shape[0], 4):
        raise ValueError(f"boxes must be (batch, 4) = ({images.shape[0]}, 4), got shape {tuple(boxes.shape)}")
    if boxes.is_floating_point():
        raise TypeError("boxes must be integer pixel coordinates (x0, y0, x1, y1); got a floating-point tensor")
    b = boxes.detach().to("cpu", torch.int64)
    h, w = images.shape[-2:]
    x0, y0, x1, y1 = b.unbind(1)
    if bool(((x0 < 0) | (y0 < 0) | (x1 > w) | (y1 > h) | (x1 <= x0) | (y1 <= y0)).any()):
        raise ValueError(f"every box must satisfy 0 <= x0 < x1 <= {w} and 0 <= y0 < y1 <= {h}; got {b.tolist()}")
    return boxes.to(images.device, torch.int64)


def _source_coords(start: torch.Tensor, length: torch.Tensor, out: int, align_corners: bool) -> torch.Tensor:
    """(B, out) float64 source pixel coordinates that ``F.interpolate(mode="bilinear")`` samples along one axis
    when a crop ``[start, start+length)`` is resized to ``out`` pixels (clamped to the crop, as it clamps)."""
    j = torch.arange(out, device=start.device, dtype=torch.float64)[None, :]
    length_f = length.to(torch.float64)[:, None]
    if align_corners:
        pos = j * ((length_f - 1) / (out - 1)) if out > 1 else torch.zeros_like(j * length_f)
    else:
        pos = (length_f / out * (j + 0.5) - 0.5).clamp_min(0)
    return start.to(torch.float64)[:, None] + torch.minimum(pos, length_f - 1)


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor, size: int | Sequence[int],
                    align_corners: bool = True) -> torch.Tensor:
    """Crop each image to its box and resize it bilinearly to ``size``: (B, C, H, W) -> (B, C, size_h, size_w).

    Equal (to float rounding) to ``F.interpolate(images[i:i+1, :, y0:y1, x0:x1], size, mode="bilinear",
    align_corners=align_corners)`` for every ``i`` (the release uses ``align_corners=True``), but as one
    ``grid_sample`` call for the whole batch (no Python loop): the source coordinate of every output pixel is
    computed (in float64, on the CPU) exactly as ``F.interpolate`` computes it inside the crop, then shifted by
    the box origin and normalised for ``grid_sample(align_corners=True)``. Coordinates never leave the box, so no
    pixel outside it contributes. The only difference from the loop is the float32 rounding of the normalised
    coordinates (about 1e-5 pixel at 224 px), which changes outputs by ~1e-5 times the local pixel difference.

    Works on any device, under autocast (sampling runs in float32, or float64 for float64 input, with autocast
    off, and the result is cast back to the images' dtype) and with gradients w.r.t. ``images``.
    ``boxes``: (B, 4) int ``(x0, y0, x1, y1)``, half-open, as :func:`select_boxes` returns them.
    """
    out_h, out_w = _pair(size, "size")
    _check_boxes(images, boxes)
    h, w = images.shape[-2:]
    dtype = torch.promote_types(images.dtype, torch.float32)
    # coordinates in float64 on the CPU (tiny: B x (out_h + out_w); MPS has no float64), then to the device
    x0, y0, x1, y1 = boxes.detach().to("cpu", torch.int64).unbind(1)
    ys = _source_coords(y0, y1 - y0, out_h, align_corners)  # (B, out_h) source rows
    xs = _source_coords(x0, x1 - x0, out_w, align_corners)  # (B, out_w) source columns
    # grid_sample(align_corners=True) maps -1 / +1 to the centres of the first / last pixel.
    gy = (ys * (2.0 / max(h - 1, 1)) - 1.0).to(dtype).to(images.device)
    gx = (xs * (2.0 / max(w - 1, 1)) - 1.0).to(dtype).to(images.device)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (B, out_h, out_w, 2)
    with torch.autocast(device_type=images.device.type, enabled=False):
        out = F.grid_sample(images.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.to(images.dtype)


def crop_and_resize_reference(images: torch.Tensor, boxes: torch.Tensor, size: int | Sequence[int],
                              align_corners: bool = True) -> torch.Tensor:
    """The release's way, for comparison and benchmarks: a Python loop of slice + ``F.interpolate`` per image."""
    out_h, out_w = _pair(size, "size")
    boxes = _check_boxes(images, boxes).tolist()
    crops = [F.interpolate(images[i:i + 1, :, y0:y1, x0:x1], size=(out_h, out_w), mode="bilinear",
                           align_corners=align_corners) for i, (x0, y0, x1, y1) in enumerate(boxes)]
    return torch.cat(crops, dim=0)
