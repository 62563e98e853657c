"""Object boxes as the data pipeline carries them: pixel ``x0, y0, x1, y1`` (XYXY), checked, then transformed with
the image.

* :func:`sanitize_boxes` - keep the boxes that are finite, not inverted or empty, and inside the image (clipped).
* :func:`transform_with_boxes` - wrap boxes as torchvision ``BoundingBoxes`` on the image's canvas, run the
  transform on both (so crops, flips and resizes move the boxes with the pixels) and hand back plain tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

__all__ = ["sanitize_boxes", "transform_with_boxes"]


def sanitize_boxes(boxes, width: float, height: float, tol: float = 1.0) -> tuple[np.ndarray, int]:
    """``(kept, dropped)``: pixel boxes ``x0, y0, x1, y1`` that are finite, not inverted or empty, and inside the
    ``width`` x ``height`` image (``tol`` pixels of slack, then clipped); ``dropped`` counts the others."""
    b = np.asarray(boxes.detach().cpu() if isinstance(boxes, torch.Tensor) else boxes, dtype=np.float64)
    b = b.reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        ok &= (b[:, 0] >= -tol) & (b[:, 1] >= -tol) & (b[:, 2] <= width + tol) & (b[:, 3] <= height + tol)
    kept = b[ok].copy()
    kept[:, [0, 2]] = kept[:, [0, 2]].clip(0, width)
    kept[:, [1, 3]] = kept[:, [1, 3]].clip(0, height)
    return kept, int((~ok).sum())


def transform_with_boxes(img, boxes, transform: Callable[..., Any] | None) -> tuple[Any, torch.Tensor]:
    """``(image, boxes)`` after ``transform(image, BoundingBoxes)`` (no transform: the image as it is).

    ``img`` is a PIL image; ``boxes`` anything of shape (K, 4) in XYXY pixels of that image. The boxes come back as
    a plain float32 (K, 4) tensor in the transformed image's pixels.
    """
    data = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    wrapped = tv_tensors.BoundingBoxes(data, format="XYXY", canvas_size=(img.height, img.width))
    if transform is not None:
        img, wrapped = transform(img, wrapped)
    return img, wrapped.as_subclass(torch.Tensor)
