"""Helpers to build tiny local datasets for the data/training tests (imported by those tests)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def solid(colour, size=(20, 16), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def class_images(n_per_class: int, num_classes: int, size: int = 24, seed: int = 0) -> list[tuple[Image.Image, int]]:
    """Easy images: class k is a square of brightness ~ k on noise (learnable in a few steps)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_per_class):  # round-robin over classes, so any prefix is balanced
        for k in range(num_classes):
            arr = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
            arr[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = int(60 + 190 * k / max(1, num_classes - 1))
            out.append((Image.fromarray(arr), k))
    return out


def make_disk_dataset(path: Path, splits: dict[str, int], num_classes: int = 3, image_column: str = "image",
                      label_column: str = "label", class_label: bool = True, bbox: bool = False,
                      names: list[str] | None = None) -> Path:
    """A save_to_disk DatasetDict with the given splits (images as PNG bytes)."""
    import datasets

    parts = {}
    for i, (split, n) in enumerate(splits.items()):
        rows = class_images(max(1, n // num_classes) + 1, num_classes, seed=i)[:n]
        feats = {image_column: datasets.Image()}
        if class_label:
            feats[label_column] = datasets.ClassLabel(names=names or [f"class_{k}" for k in range(num_classes)])
        else:
            feats[label_column] = datasets.Value("int64")
        data = {image_column: [{"bytes": png_bytes(im), "path": None} for im, _ in rows],
                label_column: [lab for _, lab in rows]}
        if bbox:
            feats["bbox"] = datasets.List(datasets.Value("float32"), length=4)
            data["bbox"] = [[6.0, 6.0, 18.0, 18.0] for _ in rows]
        parts[split] = datasets.Dataset.from_dict(data, features=datasets.Features(feats))
    datasets.DatasetDict(parts).save_to_disk(str(path))
    return path
