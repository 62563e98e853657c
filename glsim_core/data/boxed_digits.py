"""A second small boxed dataset, never used to build the recipe: handwritten digits placed in clutter.

The `cpu` profile's recipe (backbone, epochs, learning rate, O) was chosen on the offline bird benchmark. To check
that it is not tuned to that benchmark alone, this dataset asks the same question of other images: scikit-learn's
handwritten digits (``load_digits``: 1,797 scans of 8 x 8 px by 43 writers, shipped inside scikit-learn, no
download), each enlarged and inked in a random colour that stands out from the background under it (at least
``min_contrast`` apart in RGB), pasted at a random place and size on a smooth random background with strokes of
clutter and a smaller distractor digit. The label is the digit (10 classes); the box is the pasted digit's tight
box. Train and test use disjoint scans (the first 1,300 scans for training, the remaining 497 for testing), so the
test set holds handwriting the model has never seen. Sizes match the benchmark (3,000 train, 1,000 test, drawn for
a 64-px view). Written as a Hugging Face ``save_to_disk`` dataset with the benchmark's columns (image, label, bbox)::

    python -m glsim_core data digits            # data/cache/boxed_digits
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..paths import cache_dir
from .synthetic import ensure_generated, save_boxed_dataset
from .transforms import resize_size

__all__ = ["DigitsSpec", "render_digit_image", "generate_boxed_digits", "ensure_boxed_digits",
           "default_digits_path", "TRAIN_SCANS"]

#: scans [0, TRAIN_SCANS) are drawn into the train split, the rest into the test split
TRAIN_SCANS = 1300


@dataclass(frozen=True)
class DigitsSpec:
    """Parameters of the boxed-digits dataset (every field is part of the cache key)."""

    view_size: int = 64
    train_size: int = 3000
    test_size: int = 1000
    digit_scale: tuple[float, float] = (0.40, 0.60)  # digit height as a fraction of the view
    clutter: tuple[int, int] = (3, 8)  # random strokes per image
    distractor_scale: float = 0.5  # the distractor digit's size relative to the labelled one
    seed: int = 0
    min_contrast: float = 140.0  # least RGB distance between a digit's ink and the background under it
    version: int = 2

    def __post_init__(self):
        lo, hi = self.digit_scale
        if not 0.05 <= lo <= hi <= 0.9:
            raise ValueError(f"digit_scale must be (min, max) with 0.05 <= min <= max <= 0.9, got {self.digit_scale}")
        if self.train_size < 1 or self.test_size < 1:
            raise ValueError(f"train_size and test_size must be >= 1, got {self.train_size}, {self.test_size}")
        if not 0.0 <= self.min_contrast <= 300.0:
            raise ValueError(f"min_contrast must be in [0, 300] (RGB distance), got {self.min_contrast}")
        if self.clutter[0] < 0 or self.clutter[1] < self.clutter[0]:
            raise ValueError(f"clutter must be (min, max) with 0 <= min <= max, got {self.clutter}")

    @property
    def image_size(self) -> int:
        return resize_size(self.view_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _scans() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float32) / 16.0, digits.target.astype(np.int64)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random colour field: a 4 x 4 grid of random colours, bicubically enlarged."""
    grid = rng.uniform(40, 215, size=(4, 4, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.BICUBIC), dtype=np.float32)


def _paste(canvas: np.ndarray, scan: np.ndarray, height: int, x0: int, y0: int, colour: np.ndarray) -> np.ndarray:
    """Alpha-blend a tinted scan of ``height`` px at (x0, y0); returns the pasted alpha mask (canvas-sized)."""
    ink = np.asarray(Image.fromarray((scan * 255).astype(np.uint8)).resize((height, height), Image.BILINEAR),
                     dtype=np.float32) / 255.0
    h, w = canvas.shape[:2]
    ys, xs = slice(max(0, y0), min(h, y0 + height)), slice(max(0, x0), min(w, x0 + height))
    sub = ink[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0, None]
    canvas[ys, xs] = canvas[ys, xs] * (1 - sub) + colour * sub
    mask = np.zeros((h, w), dtype=np.float32)
    mask[ys, xs] = sub[..., 0]
    return mask


def _ink_colour(canvas: np.ndarray, x0: int, y0: int, height: int, min_contrast: float,
                rng: np.random.Generator) -> np.ndarray:
    """A random ink colour at least ``min_contrast`` (RGB distance) from the mean background under the digit, so
    the digit stays legible; after 64 rejected draws, the colour farthest from that mean among them."""
    h, w = canvas.shape[:2]
    under = canvas[max(0, y0):min(h, y0 + height), max(0, x0):min(w, x0 + height)].reshape(-1, 3).mean(0)
    best, best_d = None, -1.0
    for _ in range(64):
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        d = float(np.linalg.norm(colour - under))
        if d >= min_contrast:
            return colour
        if d > best_d:
            best, best_d = colour, d
    return best


def render_digit_image(spec: DigitsSpec, scan: np.ndarray, rng: np.random.Generator, distractor: np.ndarray
                       ) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """One image: background, clutter strokes, a smaller distractor digit, then the labelled digit on top; the
    labelled digit's tight box (pixels where its ink is above a quarter) as (x0, y0, x1, y1), half-open."""
    size = spec.image_size
    canvas = _background(size, rng)
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(spec.clutter[0], spec.clutter[1] + 1))):
        pts = [tuple(map(float, rng.uniform(0, size, 2))) for _ in range(3)]
        draw.line(pts, fill=tuple(int(v) for v in rng.integers(0, 256, 3)), width=int(rng.integers(1, 3)))
    canvas = np.asarray(img, dtype=np.float32).copy()
    height = int(round(rng.uniform(*spec.digit_scale) * spec.view_size))
    margin = (size - spec.view_size) // 2  # keep the digit inside the centre crop the eval transform keeps
    small = max(4, int(round(height * spec.distractor_scale)))
    dx, dy = int(rng.integers(0, size - small + 1)), int(rng.integers(0, size - small + 1))
    _paste(canvas, distractor, small, dx, dy, _ink_colour(canvas, dx, dy, small, spec.min_contrast, rng))
    x0 = int(rng.integers(margin, max(margin + 1, size - margin - height + 1)))
    y0 = int(rng.integers(margin, max(margin + 1, size - margin - height + 1)))
    mask = _paste(canvas, scan, height, x0, y0, _ink_colour(canvas, x0, y0, height, spec.min_contrast, rng))
    rows, cols = np.nonzero(mask > 0.25)
    box = (float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)) if rows.size else (
        0.0, 0.0, 0.0, 0.0)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)), box


def _render(spec: DigitsSpec, split: str, n: int, progress: bool) -> list[tuple[bytes, int, tuple]]:
    import io

    from tqdm.auto import tqdm

    images, labels = _scans()
    pool = np.arange(TRAIN_SCANS) if split == "train" else np.arange(TRAIN_SCANS, len(images))
    rng = np.random.default_rng([spec.seed, 0 if split == "train" else 1, 23])
    rows = []
    for _ in tqdm(range(n), desc=f"boxed digits {split}", unit="img", disable=not progress):
        i, j = rng.choice(pool, size=2, replace=False)
        img, box = render_digit_image(spec, images[i], rng, images[j])
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        rows.append((buf.getvalue(), int(labels[i]), box))
    return rows


def default_digits_path() -> Path:
    return cache_dir() / "boxed_digits"


def generate_boxed_digits(spec: DigitsSpec | None = None, path: str | Path | None = None,
                          progress: bool = True) -> Path:
    """Render the dataset and write it (``train`` and ``test``) as an HF ``save_to_disk`` directory."""
    spec = spec or DigitsSpec()
    path = Path(path) if path is not None else default_digits_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = {split: _render(spec, split, n, progress) for split, n in (("train", spec.train_size),
                                                                      ("test", spec.test_size))}
    return save_boxed_dataset("boxed_digits", spec, rows, [str(d) for d in range(10)], path, start,
                              generator="glsim_core.data.boxed_digits")


def ensure_boxed_digits(spec: DigitsSpec | None = None, path: str | Path | None = None,
                        progress: bool = True) -> Path:
    """The dataset's directory, generated first if missing or made with another spec."""
    return ensure_generated(spec or DigitsSpec(), Path(path) if path is not None else default_digits_path(),
                            generate_boxed_digits, progress=progress)
