"""What the exercise notebooks' experiments need besides the student's code: their inputs and their figures.

The predict-then-measure cells of the exercise notebooks run the student's functions on data built here and draw the
result with the figures here, so that each cell shows the measurement itself in a few lines. Nothing in this module
computes what an exercise asks for: the student's functions are passed in, or their outputs are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..analysis.accuracy import binomial_se
from ..analysis.localisation import upsample_maps
from ..analysis.probes import baseline_scores, boxed_examples, token_scores
from ..train.engine import load_data
from ..train.finetuned import finetuned_config, load_finetuned
from ..viz.maps import draw_box, overlay_scores

__all__ = ["untrained_simpool_params", "entropy", "gamma_sharpness_figure", "block_scores",
           "scattered_and_compact_maps", "box_areas", "box_rule_figure", "localization_maps", "binomial_se",
           "maps_with_boxes_figure"]


# ------------------------------------------------------------------------------------------------ exercise 4
def untrained_simpool_params(dim: int, gamma: float | None = 2.0, seed: int = 0) -> dict[str, Any]:
    """Single-head SimPool parameters as an untrained module has them (float64): LayerNorm with its identity affine
    map, ``wq``/``wk`` drawn as ``nn.Linear`` initialises them (uniform in ±1/√D), ``gamma`` and ``eps``."""
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(dim)
    return dict(ln_weight=torch.ones(dim, dtype=torch.float64), ln_bias=torch.zeros(dim, dtype=torch.float64),
                ln_eps=1e-6, wq=(torch.rand(dim, dim, generator=gen, dtype=torch.float64) * 2 - 1) * bound,
                wk=(torch.rand(dim, dim, generator=gen, dtype=torch.float64) * 2 - 1) * bound, gamma=gamma, eps=1e-6)


def entropy(w: torch.Tensor, dim: int) -> torch.Tensor:
    """−Σ w ln w along ``dim`` (0 ln 0 = 0), in nats."""
    return -(w * w.clamp_min(1e-300).log()).sum(dim)


def gamma_sharpness_figure(gammas: Sequence[float], share_entropy: Mapping[float, torch.Tensor],
                           attention_entropy: float, attention: torch.Tensor, shares: Mapping[float, torch.Tensor],
                           channel: int, grid: Sequence[int], shown: Sequence[float] = (1.0, 5.0, 25.0)):
    """Exercise 4's figure: the entropy of the shares against γ (mean and range over the channels, the attention's
    entropy dashed), the attention map, and one channel's shares at a few γ (one colour scale: they are compared).
    ``share_entropy``: γ -> (D,) per-channel entropies; ``shares``: γ -> (1, N, D); ``attention``: (N,)."""
    import matplotlib.pyplot as plt

    shown = [g for g in shown if g in shares]
    fig, axes = plt.subplots(1, 2 + len(shown), figsize=(2.9 * (2 + len(shown)) + 0.6, 2.9))
    means = [float(share_entropy[g].mean()) for g in gammas]
    lows = [float(share_entropy[g].min()) for g in gammas]
    highs = [float(share_entropy[g].max()) for g in gammas]
    axes[0].plot(gammas, means, "k.-", label="shares (mean)")
    axes[0].fill_between(gammas, lows, highs, color="0.85", label="channels (min–max)")
    axes[0].axhline(attention_entropy, color="C3", ls="--", label="attention a")
    axes[0].set(xscale="log", xlabel="γ", ylabel="entropy (nats)", title="sharpness vs γ")
    axes[0].legend(loc="lower left")
    rows, cols = int(grid[0]), int(grid[1])
    im = axes[1].imshow(attention.reshape(rows, cols).numpy(), cmap="inferno")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("attention a")
    vmax = max(float(shares[g][0, :, channel].max()) for g in shown) if shown else None
    for ax, g in zip(axes[2:], shown):
        im = ax.imshow(shares[g][0, :, channel].reshape(rows, cols).numpy(), cmap="inferno", vmin=0, vmax=vmax)
        ax.set_title(f"shares, channel {channel}\nγ = {g:g}")
    if shown:
        fig.colorbar(im, ax=axes[-1], fraction=0.046, pad=0.03)
    for ax in axes[1:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ exercise 7
def block_scores(h: int, w: int, grid: tuple[int, int] = (14, 14), top: tuple[int, int] = (4, 5)) -> torch.Tensor:
    """(1, N) scores selecting an ``h`` × ``w`` block of tokens whose top-left token is ``top`` (row, column)."""
    s = torch.zeros(1, grid[0] * grid[1])
    for i in range(h):
        for j in range(w):
            s[0, (top[0] + i) * grid[1] + top[1] + j] = 1.0
    return s


def scattered_and_compact_maps(n: int, seed: int = 0, grid: tuple[int, int] = (14, 14),
                               width: float = 1.5) -> dict[str, torch.Tensor]:
    """Two kinds of (n, N) score maps: uniform noise (its top tokens are scattered, as an untrained model's) and a
    Gaussian bump of ``width`` tokens at a random place plus a little noise (its top tokens form a compact blob, as
    a trained model's)."""
    gen = torch.Generator().manual_seed(seed)
    random_maps = torch.rand(n, grid[0] * grid[1], generator=gen)
    yy, xx = torch.meshgrid(torch.arange(float(grid[0])), torch.arange(float(grid[1])), indexing="ij")
    centres = torch.rand(n, 2, generator=gen) * torch.tensor([grid[0] - 4.0, grid[1] - 4.0]) + 2
    blobs = torch.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / (2 * width ** 2))
    blobs = blobs.flatten(1) + 0.05 * torch.rand(n, grid[0] * grid[1], generator=gen)
    return {"random (scattered)": random_maps, "blobs (compact)": blobs}


def box_areas(boxes: torch.Tensor) -> torch.Tensor:
    """Pixel areas (B,) of half-open boxes (B, 4) ``(x0, y0, x1, y1)``."""
    b = torch.as_tensor(boxes).double()
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_rule_figure(kept: torch.Tensor, table):
    """Exercise 7's figure: the fraction of an h × w block the release keeps (a 4 × 4 table of ``kept``), and the
    fraction of the selected tokens inside each rule's box for each kind of map (``table``: maps, rule,
    selected_inside)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8.6, 3.3))
    im = axes[0].imshow(kept.numpy(), cmap="viridis", vmin=0, vmax=1)
    for h in range(kept.shape[0]):
        for w in range(kept.shape[1]):
            axes[0].text(w, h, f"{kept[h, w]:.2f}", ha="center", va="center", fontsize=9,
                         color="k" if kept[h, w] > 0.7 else "w")
    ticks = range(kept.shape[0])
    axes[0].set(xticks=ticks, xticklabels=[t + 1 for t in ticks], yticks=ticks, yticklabels=[t + 1 for t in ticks],
                xlabel="block width w", ylabel="block height h", title="release: fraction of a block kept")
    fig.colorbar(im, ax=axes[0], fraction=0.046, label="fraction kept")
    for i, (_maps, grp) in enumerate(table.groupby("maps", sort=False)):
        axes[1].bar([i - 0.2, i + 0.2], grp.selected_inside, width=0.4, color=["tab:green", "tab:red"],
                    label=["paper" if i == 0 else None, "release" if i == 0 else None])
    axes[1].set(xticks=[0, 1], xticklabels=table.maps.unique(), ylim=(0, 1.05), ylabel="selected tokens inside",
                title="O = 8")
    axes[1].legend(loc="lower left")
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------ exercise 11
def localization_maps(n_images: int = 64, device: str = "cpu") -> dict[str, Any]:
    """The inputs of exercise 11: the first ``n_images`` test images of the offline benchmark with their object
    boxes, and two score maps per image at image resolution (bicubic, as MaxBoxAccV2 upsamples token maps): the
    GLS map of the shipped fine-tuned GLSim's encoder and the centre prior (the same Gaussian bump for every image,
    :func:`glsim_core.analysis.probes.baseline_scores`). Returns ``images``, ``boxes``, ``size``, ``maps``
    (name -> (B, H, W) float64), ``mean``, ``std`` and ``model_top1`` (the checkpoint's test top-1)."""
    glsim, info = load_finetuned("glsim", profile="cpu", train_if_missing=False, device=device, return_info=True)
    data = load_data(finetuned_config("glsim", "cpu", quiet=True))
    bench = boxed_examples(data, "test", n=n_images)
    images, boxes = bench["images"], bench["boxes"]
    size = tuple(int(v) for v in images.shape[-2:])
    grid = tuple(int(v) for v in glsim.encoder.patch_embed.grid_size)
    with torch.no_grad():
        token_maps = {"centre prior": baseline_scores("center", len(images), grid),
                      "GLS (fine-tuned GLSim)": token_scores(glsim.encoder, images.to(device), "gls").float().cpu()}
    maps = {name: torch.from_numpy(upsample_maps(m.reshape(-1, *grid), size)).double()
            for name, m in token_maps.items()}
    return dict(images=images, boxes=boxes, size=size, maps=maps, mean=data.mean, std=data.std,
                model_top1=info["top1"])


def maps_with_boxes_figure(images: torch.Tensor, maps: Mapping[str, torch.Tensor], gt: torch.Tensor,
                           taus: Mapping[str, float], boxes_fn: Callable[[torch.Tensor, float], torch.Tensor],
                           mean: Sequence[float], std: Sequence[float], n_show: int = 6):
    """Exercise 11's figure: one row per map, its first ``n_show`` images with the object's box (lime) and the
    boxes ``boxes_fn(map, tau)`` draws at that map's ``taus[name]`` (cyan); one colour scale per row."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(maps), n_show, figsize=(1.75 * n_show + 0.8, 2.1 * len(maps)), squeeze=False,
                             layout="constrained")
    size = tuple(images.shape[-2:])
    for r, (name, m) in enumerate(maps.items()):
        lo, hi = float(m[:n_show].min()), float(m[:n_show].max())
        for i in range(n_show):
            im = overlay_scores(axes[r, i], images[i], m[i].flatten(), size, mean=mean, std=std, vmin=lo, vmax=hi)
            draw_box(axes[r, i], gt[i], color="lime", linewidth=1.2)
            for b in boxes_fn(m[i], taus[name]):
                draw_box(axes[r, i], b, color="cyan", linewidth=1.2)
        axes[r, 0].set_title(f"{name}, τ = {taus[name]:.2f}", loc="left")
        fig.colorbar(im, ax=list(axes[r]), fraction=0.02, pad=0.01, label="score")
    return fig
