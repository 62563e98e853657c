"""Offline sample images and the pictures of token selection: heatmaps over images, boxes, the patch grid.

Matplotlib only (imported lazily by the callers' figures); every function draws on an ``Axes`` it is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_sample_images", "denormalize", "show_image", "overlay_scores", "draw_box", "draw_token_grid"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_sample_images(names: Sequence[str] = ("astronaut", "chelsea", "coffee", "rocket"), size: int = 224,
                       mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> torch.Tensor:
    """Images that ship with scikit-image (no network), resized (shorter side) + centre-cropped to ``size`` and
    normalised with ``mean``/``std`` (pass the model's ``pretrained_cfg`` values): (len(names), 3, size, size)."""
    from skimage import data as skdata

    out = []
    for name in names:
        if not hasattr(skdata, name):
            raise ValueError(f"skimage.data has no image {name!r} (try astronaut, chelsea, coffee, rocket)")
        img = np.asarray(getattr(skdata, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        t = torch.from_numpy(img[..., :3].copy()).permute(2, 0, 1).float()[None] / 255.0
        h, w = t.shape[-2:]
        scale = size / min(h, w)
        new = (max(size, round(h * scale)), max(size, round(w * scale)))
        t = F.interpolate(t, size=new, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
        top, left = (new[0] - size) // 2, (new[1] - size) // 2
        out.append(t[0, :, top:top + size, left:left + size])
    x = torch.stack(out)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def denormalize(x: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """(3, H, W) normalised tensor -> (H, W, 3) float image in [0, 1] for ``imshow``."""
    x = x.detach().float().cpu() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def show_image(ax, x: torch.Tensor, title: str | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> None:
    ax.imshow(denormalize(x, mean, std), interpolation="nearest")  # nearest: small PNGs, true pixels
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")


def overlay_scores(ax, x: torch.Tensor | None, scores: torch.Tensor, grid: Sequence[int], title: str | None = None,
                   cmap: str = "inferno", alpha: float = 0.6, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                   vmin: float | None = None, vmax: float | None = None, colorbar: bool = False):
    """A (N,) token-score map drawn as a (rows, cols) heatmap, over the image ``x`` (3, H, W) if given.

    ``vmin``/``vmax`` fix the colour scale (pass the same ones to panels that are compared); ``colorbar=True``
    adds a colour bar beside the axes. Returns the heatmap's image (for ``fig.colorbar``)."""
    rows, cols = int(grid[0]), int(grid[1])
    heat = scores.detach().float().cpu().reshape(rows, cols).numpy()
    if x is not None:
        h, w = x.shape[-2:]
        ax.imshow(denormalize(x, mean, std), interpolation="nearest")
        im = ax.imshow(heat, cmap=cmap, alpha=alpha, extent=(0, w, h, 0), interpolation="nearest", vmin=vmin,
                       vmax=vmax)
    else:
        im = ax.imshow(heat, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    if title:
        ax.set_title(title, fontsize=9)
    ax.axis("off")
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    return im


def draw_box(ax, box: Sequence[int] | torch.Tensor, color: str = "lime", label: str | None = None,
             linewidth: float = 2.0, linestyle: str = "-") -> None:
    """Draw a half-open pixel box (x0, y0, x1, y1) exactly over the pixels it covers."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = (int(v) for v in (box.tolist() if isinstance(box, torch.Tensor) else box))
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor=color,
                           linewidth=linewidth, linestyle=linestyle, label=label))


def draw_token_grid(ax, grid: Sequence[int], patch: int, selected: Sequence[int] = (), color: str = "tab:orange",
                    labels: bool = False) -> None:
    """The patch grid in pixel coordinates, with the ``selected`` token indices filled (row-major order)."""
    from matplotlib.patches import Rectangle

    rows, cols = int(grid[0]), int(grid[1])
    ax.set_xlim(-0.5, cols * patch - 0.5)
    ax.set_ylim(rows * patch - 0.5, -0.5)
    for r in range(rows + 1):
        ax.axhline(r * patch - 0.5, color="0.8", linewidth=0.5)
    for c in range(cols + 1):
        ax.axvline(c * patch - 0.5, color="0.8", linewidth=0.5)
    for i in selected:
        r, c = divmod(int(i), cols)
        ax.add_patch(Rectangle((c * patch - 0.5, r * patch - 0.5), patch, patch, color=color, alpha=0.7))
        if labels:
            ax.text(c * patch + patch / 2 - 0.5, r * patch + patch / 2 - 0.5, f"{r},{c}", ha="center",
                    va="center", fontsize=9)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
