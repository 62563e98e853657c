"""Offline inputs for the pooling notebooks: images from ``skimage.data`` and a small, interpretable feature map.

:func:`handcrafted_features` turns an image into a non-negative feature tensor X ∈ R^{d×H×W} without any learned
weights (colour-opponent channels, oriented edge energy at two scales, blob responses), so that every pooling
method of Table 1 can be run and drawn on the *same* structured map on a laptop, with no network. With a GPU
profile the notebooks use a pretrained CNN's last feature map instead.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["load_image", "handcrafted_features", "FEATURE_NAMES"]

FEATURE_NAMES: tuple[str, ...] = (
    "lightness", "red", "green", "yellow", "blue", "saturation",
    "edge 0° fine", "edge 45° fine", "edge 90° fine", "edge 135° fine",
    "edge 0° coarse", "edge 45° coarse", "edge 90° coarse", "edge 135° coarse",
    "dark blob", "bright blob",
)


def load_image(name: str = "chelsea", size: int = 224) -> np.ndarray:
    """An RGB image of ``skimage.data`` (astronaut, chelsea, coffee, rocket, ...), centre-cropped to a square and
    resized to ``size``×``size``; float32 in [0, 1], shape (size, size, 3)."""
    from skimage import data as skdata
    from skimage import img_as_float32
    from skimage.transform import resize

    if not hasattr(skdata, name):
        raise ValueError(f"skimage.data has no image {name!r} (try astronaut, chelsea, coffee, rocket)")
    img = img_as_float32(getattr(skdata, name)())
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    img = img[top:top + s, left:left + s]
    return resize(img, (size, size), anti_aliasing=True).astype(np.float32)


def handcrafted_features(image: np.ndarray, grid: int = 16) -> torch.Tensor:
    """A (1, 16, grid, grid) non-negative feature map of an RGB image in [0, 1] (channels: :data:`FEATURE_NAMES`).

    Each channel is computed at full resolution, averaged over ``grid``×``grid`` cells and divided by its maximum,
    so values lie in [0, 1] like the output of a ReLU network.
    """
    from scipy import ndimage
    from skimage.color import rgb2hsv, rgb2lab

    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    lab = rgb2lab(np.clip(image, 0, 1))
    light, a, b = lab[..., 0] / 100.0, lab[..., 1] / 100.0, lab[..., 2] / 100.0
    chans = [light, np.maximum(a, 0), np.maximum(-a, 0), np.maximum(b, 0), np.maximum(-b, 0),
             rgb2hsv(np.clip(image, 0, 1))[..., 1]]
    for sigma in (1.0, 3.0):
        smooth = ndimage.gaussian_filter(light, sigma)
        gy, gx = ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1)
        for theta in (0.0, 45.0, 90.0, 135.0):
            t = np.deg2rad(theta)
            chans.append(np.abs(np.cos(t) * gx + np.sin(t) * gy))
    log = ndimage.gaussian_laplace(light, 4.0)
    chans += [np.maximum(log, 0), np.maximum(-log, 0)]
    x = torch.from_numpy(np.stack(chans).astype(np.float32))[None]
    x = F.adaptive_avg_pool2d(x, grid)
    return x / x.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
