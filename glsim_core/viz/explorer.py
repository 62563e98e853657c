"""An explorer of token-selection maps: image, method, layer, O and threshold - a widget, or a static grid.

:func:`map_explorer` returns an ``ipywidgets`` box (sliders and drop-downs redraw one figure) when a live widget
frontend is likely present, and otherwise a static matplotlib grid of the same pictures, so the call never fails
headless (CI runs the notebooks with nbval; ``python -m glsim_core notebooks execute`` and papermill runs have a
kernel but nobody looking at it). The decision (:func:`widget_frontend_available`):

* ``GLSIM_WIDGETS=0`` forces the static grid, ``GLSIM_WIDGETS=1`` forces the widget (when ipywidgets and an
  IPython kernel are there);
* otherwise static when ``GLSIM_SMOKE=1`` (CI) or ``GLSIM_HEADLESS=1`` (set by this repository's notebook
  runners), when not inside an IPython kernel (a script, pytest) or when ipywidgets is missing.

Each picture shows, for one image: the token map of a method (``gls``, ``attention``, ``rollout`` at any layer;
``maws``, ``psm``, ``simpool`` at the last) over the image; the top-O tokens and the box GLSim would crop from
them (:func:`glsim_core.selection.select_boxes`, orange); the boxes MaxBoxAccV2 estimates at threshold ``tau``
(all connected components of the normalised, upsampled map ``>= tau``, cyan, dashed) and the object's box (lime),
with the best IoU in the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis.localisation import box_iou, boxes_from_mask, normalize_map, upsample_maps
from ..analysis.probes import _applicable, encoder_of, layer_token_scores, token_scores
from ..models.backbones import patch_grid
from ..runtime import env_flag
from ..selection import select_boxes
from .maps import IMAGENET_MEAN, IMAGENET_STD, draw_box, overlay_scores, show_image

__all__ = ["widget_frontend_available", "MapExplorer", "map_explorer", "maps_figure", "LAYERED_METHODS"]

#: Methods the explorer can show at any layer (the others read the last one).
LAYERED_METHODS = ("gls", "attention", "rollout")
_ALL_METHODS = ("gls", "attention", "rollout", "maws", "psm", "simpool")


def widget_frontend_available() -> bool:
    """Whether an interactive widget is worth returning (see the module docstring for the rules)."""
    forced = env_flag("GLSIM_WIDGETS")
    if forced is False:
        return False
    if forced is None and (env_flag("GLSIM_SMOKE") or env_flag("GLSIM_HEADLESS")):
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class MapExplorer:
    """Token maps of one model on a batch of images, computed once per (method, layer) and drawn on demand.

    ``images`` (B, C, H, W) normalised with ``mean``/``std``; ``boxes`` (B, 4) object boxes in pixels (optional);
    ``methods`` the maps to offer (those the model lacks, e.g. ``simpool`` without a SimPool head, are dropped).
    """

    def __init__(self, model: nn.Module, images: torch.Tensor, boxes: torch.Tensor | None = None,
                 methods: Sequence[str] = ("gls", "attention", "rollout", "maws", "psm"), top_o: int = 8,
                 threshold: float = 0.5, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 names: Sequence[str] | None = None):
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images must be a non-empty (B, C, H, W) batch, got shape {tuple(images.shape)}")
        unknown = sorted(set(methods) - set(_ALL_METHODS))
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {_ALL_METHODS}")
        self.model = model.eval()
        self.images = images
        self.boxes = None if boxes is None else torch.as_tensor(boxes).reshape(-1, 4).float()
        if self.boxes is not None and len(self.boxes) != len(images):
            raise ValueError(f"{len(images)} images but {len(self.boxes)} boxes")
        self.methods = [m for m in methods if _applicable(model, m)]
        if not self.methods:
            raise ValueError(f"the model has none of the maps {list(methods)}")
        enc = encoder_of(model)
        self.depth = len(enc.blocks)
        self.grid = patch_grid(enc, tuple(images.shape[-2:]))
        self.patch = tuple(int(p) for p in enc.patch_embed.patch_size)
        self.top_o, self.threshold = int(top_o), float(threshold)
        self.mean, self.std = tuple(mean), tuple(std)
        self.names = list(names) if names is not None else [str(i) for i in range(len(images))]
        self._cache: dict[tuple[str, int], torch.Tensor] = {}

    # ------------------------------------------------------------------------------------------ the numbers
    def layer_of(self, method: str, layer: int | None) -> int:
        """0-based block a picture reads: ``layer`` (1-based, None = last) for the layered methods, else the last."""
        if method not in LAYERED_METHODS or layer is None:
            return self.depth - 1
        if not 1 <= int(layer) <= self.depth:
            raise ValueError(f"layer must be in 1..{self.depth}, got {layer}")
        return int(layer) - 1

    @torch.no_grad()
    def maps(self, method: str, layer: int | None = None) -> torch.Tensor:
        """(B, N) scores of ``method`` at ``layer`` (1-based; None = last) for every image."""

        if method not in self.methods:
            raise ValueError(f"method {method!r} is not available for this model; choose from {self.methods}")
        key = (method, self.layer_of(method, layer))
        if key not in self._cache:
            if method in LAYERED_METHODS and key[1] != self.depth - 1:
                for m, per_layer in layer_token_scores(self.model, self.images, methods=LAYERED_METHODS).items():
                    for lay, s in per_layer.items():
                        self._cache[(m, lay)] = s.float().cpu()
            else:
                model = getattr(self.model, "encoder", self.model) if method != "simpool" else self.model
                self._cache[key] = token_scores(model, self.images, method).float().cpu()
        return self._cache[key]

    def crop_box(self, scores: torch.Tensor, top_o: int) -> torch.Tensor:
        o = max(1, min(int(top_o), scores.shape[-1]))
        return select_boxes(scores[None], self.grid, self.patch, o)[0]

    def estimated_boxes(self, scores: torch.Tensor, threshold: float) -> np.ndarray:
        """MaxBoxAccV2's boxes for one map at ``threshold``: every component of the normalised map ``>= tau``."""
        full = upsample_maps(scores.reshape(1, *self.grid), tuple(self.images.shape[-2:]))[0]
        return boxes_from_mask(normalize_map(full) >= float(threshold))

    # ------------------------------------------------------------------------------------------ the pictures
    def draw(self, ax, index: int, method: str, layer: int | None = None, top_o: int | None = None,
             threshold: float | None = None, title: bool = True, colorbar: bool = True) -> dict[str, Any]:
        """One picture on ``ax``; returns what it drew (crop box, estimated boxes, best IoU). ``colorbar``: a colour
        bar beside the heat map (its scores' scale)."""
        top_o = self.top_o if top_o is None else int(top_o)
        threshold = self.threshold if threshold is None else float(threshold)
        s = self.maps(method, layer)[int(index)]
        overlay_scores(ax, self.images[int(index)], s, self.grid, mean=self.mean, std=self.std, colorbar=colorbar)
        crop = self.crop_box(s, top_o)
        est = self.estimated_boxes(s, threshold)
        draw_box(ax, crop, color="tab:orange", linewidth=1.5)
        for b in est:
            draw_box(ax, b, color="cyan", linewidth=1.0, linestyle="--")
        iou = None
        if self.boxes is not None:
            gt = self.boxes[int(index)]
            draw_box(ax, gt, color="lime", linewidth=1.5)
            iou = float(box_iou(est, gt.numpy()).max())
        if title:
            depth = self.layer_of(method, layer) + 1
            where = f" L{depth}" if method in LAYERED_METHODS else ""
            ax.set_title(f"{method}{where}" + (f" IoU {iou:.2f}" if iou is not None else ""), fontsize=9)
        return {"crop_box": crop, "estimated_boxes": est, "iou": iou}

    def grid_figure(self, indices: Sequence[int] | None = None, methods: Sequence[str] | None = None,
                    layer: int | None = None, top_o: int | None = None, threshold: float | None = None,
                    panel: float = 1.9, colorbar: bool = True):
        """The static view: rows = images, columns = methods (at ``layer``, O and ``threshold``); ``colorbar``: a
        colour bar beside every heat map (each map on its own scale)."""
        import matplotlib.pyplot as plt

        indices = list(range(min(4, len(self.images)))) if indices is None else [int(i) for i in indices]
        methods = list(methods or self.methods)
        fig, axes = plt.subplots(len(indices), len(methods), figsize=(panel * len(methods), panel * len(indices)),
                                 squeeze=False)
        for r, i in enumerate(indices):
            for c, m in enumerate(methods):
                self.draw(axes[r, c], i, m, layer, top_o, threshold, colorbar=colorbar)
            axes[r, 0].text(-0.08, 0.5, self.names[i], transform=axes[r, 0].transAxes, rotation=90,
                            ha="right", va="center", fontsize=9)
        t = self.threshold if threshold is None else threshold
        o = self.top_o if top_o is None else top_o
        fig.suptitle(f"O = {o} (orange: GLSim's crop box), threshold {t:.2f} (cyan: estimated boxes), lime: object",
                     fontsize=9)
        fig.tight_layout()
        return fig

    def widget(self, colorbar: bool = True):
        """An ``ipywidgets.VBox``: image, method, layer, O and threshold controls above one redrawn figure (with a
        colour bar unless ``colorbar=False``)."""
        import ipywidgets as w
        import matplotlib.pyplot as plt

        index = w.IntSlider(value=0, min=0, max=len(self.images) - 1, description="image")
        method = w.Dropdown(options=self.methods, value=self.methods[0], description="method")
        layer = w.IntSlider(value=self.depth, min=1, max=self.depth, description="layer")
        top_o = w.IntSlider(value=self.top_o, min=1, max=self.grid[0] * self.grid[1], description="O")
        threshold = w.FloatSlider(value=self.threshold, min=0.0, max=0.99, step=0.01, description="threshold")
        out = w.Output()

        def redraw(_change: Any = None) -> None:
            layer.disabled = method.value not in LAYERED_METHODS
            with out:
                out.clear_output(wait=True)
                fig, ax = plt.subplots(1, 1, figsize=(3.8, 3.2))
                info = self.draw(ax, index.value, method.value, layer.value, top_o.value, threshold.value,
                                 colorbar=colorbar)
                ax.set_xlabel(f"{len(info['estimated_boxes'])} estimated box(es)")
                plt.show()
                plt.close(fig)

        for control in (index, method, layer, top_o, threshold):
            control.observe(redraw, names="value")
        redraw()
        box = w.VBox([w.HBox([index, method]), w.HBox([layer, top_o]), threshold, out])
        box.redraw = redraw  # for tests and callers that change values programmatically
        return box


def map_explorer(model: nn.Module, images: torch.Tensor, boxes: torch.Tensor | None = None,
                 methods: Sequence[str] = ("gls", "attention", "rollout", "maws", "psm"), top_o: int = 8,
                 threshold: float = 0.5, layer: int | None = None, interactive: bool | None = None,
                 indices: Sequence[int] | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, names: Sequence[str] | None = None, colorbar: bool = True):
    """The explorer: an ``ipywidgets`` box when a widget frontend is available (``interactive=None`` decides with
    :func:`widget_frontend_available`; True/False force it), else a static matplotlib figure of
    ``indices`` x ``methods`` at ``layer``, ``top_o`` and ``threshold``. Every heat map has a colour bar unless
    ``colorbar=False``."""
    explorer = MapExplorer(model, images, boxes, methods, top_o, threshold, mean, std, names)
    if interactive is None:
        interactive = widget_frontend_available()
    if interactive:
        return explorer.widget(colorbar=colorbar)
    import matplotlib.pyplot as plt

    fig = explorer.grid_figure(indices, layer=layer, colorbar=colorbar)
    plt.close(fig)  # displayed once, as the returned figure (not again by the inline backend)
    return fig


def maps_figure(images: torch.Tensor, maps: dict[str, torch.Tensor], grid: Sequence[int],
                boxes: torch.Tensor | None = None, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD, original: bool = True, row_names: Sequence[str] | None = None,
                panel: float = 1.5, cmap: str = "inferno", colorbar: bool = True):
    """Rows = images, columns = the original (with its ``boxes`` in lime) and one heatmap per entry of ``maps``
    (name -> (B, N) token scores on ``grid``): the layout of GLSim Figure 2 and SimPool Figure 1.

    ``colorbar`` (default True): a colour bar beside every heat map. Each map keeps its own scale (the methods'
    scores are not comparable: a cosine, an attention probability, a rollout weight), so the bar is what says
    how much contrast a map has; the figure is widened by a third of a panel per map column to make room."""
    import matplotlib.pyplot as plt

    n, cols = len(images), len(maps) + int(original)
    for name, m in maps.items():
        if m.shape[0] != n or m.shape[-1] != int(grid[0]) * int(grid[1]):
            raise ValueError(f"map {name!r} has shape {tuple(m.shape)}; expected ({n}, {grid[0] * grid[1]})")
    width = panel * cols + (0.35 * panel * len(maps) if colorbar else 0.0)
    fig, axes = plt.subplots(n, cols, figsize=(width, panel * n), squeeze=False)
    for r in range(n):
        c = 0
        if original:
            show_image(axes[r, 0], images[r], "original" if r == 0 else None, mean, std)
            if boxes is not None:
                draw_box(axes[r, 0], boxes[r], color="lime", linewidth=1.2)
            c = 1
        for j, (name, m) in enumerate(maps.items()):
            overlay_scores(axes[r, c + j], images[r], m[r], grid, name if r == 0 else None, cmap=cmap, mean=mean,
                           std=std, colorbar=colorbar)
        if row_names is not None:
            axes[r, 0].text(-0.06, 0.5, row_names[r], transform=axes[r, 0].transAxes, rotation=90, ha="right",
                            va="center", fontsize=9)
    fig.tight_layout()
    return fig
