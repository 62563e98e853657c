"""Hugging Face image-classification datasets -> torch, from the hub or from a local path, with one entry point.

:func:`load_image_dataset` accepts

* a short name of the fine-grained registry (``"cub200"``, ``"flowers102"``, ``"pets"``, ``"food101"``, ``"dogs"``;
  :mod:`glsim_core.data.registry`),
* a hub id ``"org/name"`` (optional ``config``),
* a local path: a ``save_to_disk`` directory (``DatasetDict`` or a single ``Dataset``), an imagefolder directory
  (``train/<class>/*.png``, ``test/<class>/*.png``, or ``<class>/*.png``), a directory of parquet or arrow files
  (splits from the file names, ``train-*.parquet`` ...), or one parquet/arrow file.

It detects the image column (an ``Image`` feature, or image/img/pixel_values...), the label column (a ``ClassLabel``,
or label/labels/fine_label/class...) and an optional box column (bbox/bboxes/box...), takes the class names from
``ClassLabel`` (string labels are encoded, sorted), and returns an :class:`ImageData` whose ``train``, ``val``,
``test`` and ``trainval`` are torch datasets built with ``datasets.Dataset.with_transform``: images are decoded one
batch at a time when indexed, never all at once.

Splits (GLSim appendix C): ``val`` is the dataset's own validation split if it has one; otherwise it is carved from
``train`` by a seeded random partition, 80 % train / 20 % val, or 20 % / 80 % when the train split has more than
50,000 images. ``trainval`` is the whole training data (train + its own validation split, if any): the protocol
searches the LR on train/val and trains the final runs on trainval, tested on test.

Bad input: L, LA, RGBA, P, CMYK and 16-bit images are converted to RGB (transparent pixels composited on white);
a truncated or undecodable image raises :class:`BadImageError` naming the dataset, split and index, or, with
``on_error="skip"``, is dropped from its batch and counted (``dataset.skipped`` and the batch's ``"skipped"``);
a hub id while offline, an empty split and a missing label column are errors that say what to do. Labels are
checked on load (:func:`_check_labels`): values beyond a ``ClassLabel``'s names and classes of val/test that train
never shows are errors; integer labels with gaps are re-encoded 0..K-1 with a warning. Boxes that are NaN, inverted
or outside the image are dropped and counted (``"dropped_boxes"`` of a batch).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage

from .boxes import sanitize_boxes, transform_with_boxes
from .registry import FINEGRAINED_DATASETS, HubDataset, get_hub_dataset
from .transforms import IMAGENET_MEAN, IMAGENET_STD, build_transform, normalization_for

__all__ = [
    "BadImageError", "HubUnavailableError", "ImageData", "HFImageDataset", "load_image_dataset", "to_rgb",
    "collate_images",
    "train_val_fractions", "IMAGE_COLUMNS", "LABEL_COLUMNS", "BBOX_COLUMNS",
]

IMAGE_COLUMNS = ("image", "img", "pixel_values", "picture", "photo", "images")
LABEL_COLUMNS = ("label", "labels", "fine_label", "fine_labels", "class", "class_id", "category", "target",
                 "species", "breed", "coarse_label")
BBOX_COLUMNS = ("bbox", "bboxes", "box", "boxes", "bounding_box", "objects")
_VAL_NAMES = ("validation", "val", "valid", "dev")
_TEST_NAMES = ("test", "testing")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
#: GLSim appendix C: above this many training images the train-val partition is 20 % / 80 %.
LARGE_DATASET = 50_000


class BadImageError(ValueError):
    """An image that cannot be decoded (truncated file, not an image)."""


class HubUnavailableError(ConnectionError, ValueError):
    """A hub dataset that cannot be fetched (offline mode, no network); the message shows the local-path route."""


def train_val_fractions(num_train: int) -> tuple[float, float]:
    """(train, val) fractions of the LR-search partition: 0.8/0.2, or 0.2/0.8 above 50,000 images (GLSim app. C)."""
    return (0.2, 0.8) if num_train > LARGE_DATASET else (0.8, 0.2)


# ----------------------------------------------------------------------------------------------------------- images
def to_rgb(img: PILImage.Image, background: tuple[int, int, int] = (255, 255, 255)) -> PILImage.Image:
    """Any PIL image as 8-bit RGB: alpha (RGBA, LA, PA, P with transparency) is composited on ``background``;
    CMYK, L, P, YCbCr... use PIL's conversion; 16/32-bit and float images are rescaled min-max to 0..255."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return PILImage.fromarray(arr.round().astype(np.uint8), mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        base = PILImage.new("RGBA", rgba.size, (*background, 255))
        return PILImage.alpha_composite(base, rgba).convert("RGB")
    return img.convert("RGB")


def _decode(value: Any) -> PILImage.Image:
    """Decode one undecoded ``Image`` cell ({"bytes", "path"}), a path, bytes or a PIL image, fully (``load``)."""
    if isinstance(value, PILImage.Image):
        value.load()
        return value
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
    elif isinstance(value, (bytes, bytearray)):
        data, path = value, None
    elif isinstance(value, (str, os.PathLike)):
        data, path = None, value
    else:
        raise BadImageError(f"unsupported image value of type {type(value).__name__}")
    if data is None and not path:
        raise BadImageError("empty image cell (no bytes, no path)")
    try:
        img = PILImage.open(io.BytesIO(data) if data is not None else path)
        img.load()  # decode now: truncated files fail here, not later in a worker
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as exc:
        raise BadImageError(f"{type(exc).__name__}: {exc}") from None
    return img


def _boxes_xyxy(value: Any, fmt: str, width: int, height: int) -> np.ndarray:
    """Boxes of one row as a (K, 4) float32 array of pixel (x0, y0, x1, y1)."""
    if isinstance(value, dict):  # TFDS-style {"bbox": [...]} objects
        value = value.get("bbox", value.get("boxes"))
    arr = np.asarray(value if value is not None else [], dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, 4), np.float32)
    arr = arr.reshape(-1, 4)
    if fmt == "xyxy":
        out = arr
    elif fmt == "xywh":
        out = np.stack([arr[:, 0], arr[:, 1], arr[:, 0] + arr[:, 2], arr[:, 1] + arr[:, 3]], 1)
    elif fmt == "yxyx_norm":
        out = np.stack([arr[:, 1] * width, arr[:, 0] * height, arr[:, 3] * width, arr[:, 2] * height], 1)
    else:
        raise ValueError(f"unknown bbox_format {fmt!r}; use 'xyxy', 'xywh' or 'yxyx_norm'")
    return out.astype(np.float32)


def _valid_boxes(boxes: np.ndarray, width: int, height: int, dropped: list[int] | None = None) -> np.ndarray:
    """The boxes that are finite, not inverted and inside the image (clipped); adds the dropped count to
    ``dropped[0]`` (see :func:`glsim_core.data.boxes.sanitize_boxes`)."""
    kept, n = sanitize_boxes(boxes, width, height)
    if dropped is not None:
        dropped[0] += n
    return kept.astype(np.float32)


# ------------------------------------------------------------------------------------------------ torch dataset
class HFImageDataset(torch.utils.data.Dataset):
    """One split as a torch dataset: ``ds[i]`` -> ``{"image": (C,S,S) float, "label": int, "index": int,
    "boxes": (K,4) float (only when the dataset has boxes and ``with_boxes``)}``, decoded through ``with_transform``.

    ``__getitems__`` fetches a whole batch from Arrow in one call (torch's DataLoader uses it). With
    ``on_error="skip"`` a bad image becomes ``None`` (dropped by :func:`collate_images`) and is counted in
    ``self.skipped`` (indices, this process only; the batch's ``"skipped"`` count works across workers).
    """

    def __init__(self, hf_split, *, dataset_name: str, split: str, image_column: str, label_column: str,
                 transform: Callable | None, bbox_column: str | None = None, bbox_format: str = "xyxy",
                 with_boxes: bool = False, on_error: str = "raise",
                 source_index: np.ndarray | None = None, source_split: Sequence[str] | None = None):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.dataset_name, self.split = dataset_name, split
        self.image_column, self.label_column = image_column, label_column
        self.bbox_column = bbox_column if with_boxes else None
        self.bbox_format, self.transform, self.on_error = bbox_format, transform, on_error
        self.raw = hf_split
        n = len(hf_split)
        self.source_index = np.arange(n) if source_index is None else np.asarray(source_index)
        self.source_split = list(source_split) if source_split is not None else [split] * n
        self.skipped: list[int] = []
        self.dropped_boxes = 0  # invalid boxes dropped (this process), see _valid_boxes
        self.hf = hf_split.with_transform(self._transform_batch)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def labels(self) -> np.ndarray:
        """All labels, read from the Arrow column without decoding any image."""
        return np.asarray(self.raw.select_columns([self.label_column]).with_format("numpy")[:][self.label_column])

    def _transform_batch(self, batch: dict[str, list]) -> dict[str, list]:
        images, errors, boxes, dropped_boxes = [], [], [], []
        n = len(batch[self.label_column])
        for k in range(n):
            dropped = [0]
            dropped_boxes.append(dropped)
            try:
                img = to_rgb(_decode(batch[self.image_column][k]))
            except BadImageError as exc:
                images.append(None)
                errors.append(str(exc))
                boxes.append(None)
                continue
            errors.append("")
            if self.bbox_column is not None:
                b = _valid_boxes(_boxes_xyxy(batch[self.bbox_column][k], self.bbox_format, img.width, img.height),
                                 img.width, img.height, dropped)
                img, b = transform_with_boxes(img, b, self.transform)
                boxes.append(b)
            else:
                if self.transform is not None:
                    img = self.transform(img)
                boxes.append(None)
            images.append(img)
        return {"image": images, "label": list(batch[self.label_column]), "error": errors, "boxes": boxes,
                "dropped_boxes": [d[0] for d in dropped_boxes]}

    def _finish(self, i: int, row: dict[str, Any]) -> dict[str, Any] | None:
        if row["error"]:
            if self.on_error == "skip":
                self.skipped.append(int(i))
                return None
            raise BadImageError(
                f"dataset {self.dataset_name!r}, split {self.source_split[i]!r}, index {int(self.source_index[i])}: "
                f"cannot decode the image ({row['error']}). Fix or remove that file, or pass on_error='skip' "
                f"(CLI: --on-bad-image skip) to drop bad images and count them.")
        out = {"image": row["image"], "label": int(row["label"]), "index": int(self.source_index[i])}
        if self.bbox_column is not None:
            out["boxes"] = row["boxes"]
            out["dropped_boxes"] = int(row["dropped_boxes"])
            self.dropped_boxes += int(row["dropped_boxes"])
        return out

    def __getitem__(self, i: int) -> dict[str, Any] | None:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for split {self.split!r} of size {len(self)}")
        i %= len(self)
        return self._finish(i, self.hf[i])

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any] | None]:
        idx = [int(i) for i in indices]
        batch = self.hf[idx]
        rows = [{k: batch[k][j] for k in ("image", "label", "error", "boxes", "dropped_boxes")}
                for j in range(len(idx))]
        return [self._finish(i, row) for i, row in zip(idx, rows)]


def collate_images(samples: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
    """Stack samples into a batch; drop skipped (None) samples and count them in ``"skipped"``.

    Returns ``image`` (B, C, S, S), ``label`` (B,), ``index`` (B,), ``skipped`` (int) and, when present,
    ``boxes``: a list of B tensors of shape (K_i, 4).
    """
    kept = [s for s in samples if s is not None]
    out: dict[str, Any] = {"skipped": len(samples) - len(kept)}
    if not kept:
        out.update(image=torch.empty(0), label=torch.empty(0, dtype=torch.long), index=torch.empty(0, dtype=torch.long))
        return out
    out["image"] = torch.stack([s["image"] for s in kept])
    out["label"] = torch.tensor([s["label"] for s in kept], dtype=torch.long)
    out["index"] = torch.tensor([s["index"] for s in kept], dtype=torch.long)
    if "boxes" in kept[0]:
        out["boxes"] = [s["boxes"] for s in kept]
        out["dropped_boxes"] = sum(int(s.get("dropped_boxes", 0)) for s in kept)
    return out


# ------------------------------------------------------------------------------------------------- the container
@dataclass
class ImageData:
    """A loaded dataset: raw HF splits plus torch views of them with the recipe's transforms.

    ``splits`` holds the raw (undecoded) ``datasets.Dataset`` per role: ``train``, ``val``, ``test`` (None if the
    dataset has no test split) and ``trainval``. ``train``/``val``/``test``/``trainval`` attributes give torch
    datasets (train transforms for train/trainval, eval transforms for val/test); :meth:`torch_split` builds one
    with other settings.
    """

    name: str
    splits: dict[str, Any]
    class_names: list[str]
    image_column: str
    label_column: str
    bbox_column: str | None = None
    bbox_format: str = "xyxy"
    img_size: int = 224
    augreg: str = "minimal"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bicubic"
    on_error: str = "raise"
    info: dict[str, Any] = field(default_factory=dict)
    _sources: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict, repr=False)
    _cache: dict[tuple, HFImageDataset] = field(default_factory=dict, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_boxes(self) -> bool:
        return self.bbox_column is not None

    def split_sizes(self) -> dict[str, int]:
        return {k: (len(v) if v is not None else 0) for k, v in self.splits.items()}

    def torch_split(self, split: str, train: bool | None = None, with_boxes: bool | None = None,
                    img_size: int | None = None, augreg: str | None = None,
                    transform: Callable | None = None) -> HFImageDataset:
        """A torch view of one split. ``train`` picks the transform (default: True for train/trainval);
        ``with_boxes`` adds the boxes (default: for eval splits of datasets that have them)."""
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; available: {sorted(self.splits)}")
        raw = self.splits[split]
        if raw is None:
            raise ValueError(f"dataset {self.name!r} has no {split!r} split; its splits: "
                             f"{[k for k, v in self.splits.items() if v is not None]}")
        train = split in ("train", "trainval") if train is None else bool(train)
        with_boxes = (self.has_boxes and not train) if with_boxes is None else (bool(with_boxes) and self.has_boxes)
        size = int(img_size or self.img_size)
        level = augreg or self.augreg
        key = (split, train, with_boxes, size, level, id(transform))
        if key not in self._cache:
            tf = transform or build_transform(size, train=train, level=level, mean=self.mean, std=self.std,
                                              interpolation=self.interpolation)
            index, source = self._sources.get(split, (None, None))
            self._cache[key] = HFImageDataset(
                raw, dataset_name=self.name, split=split, image_column=self.image_column,
                label_column=self.label_column, transform=tf, bbox_column=self.bbox_column,
                bbox_format=self.bbox_format, with_boxes=with_boxes, on_error=self.on_error,
                source_index=index, source_split=source)
        return self._cache[key]

    @property
    def train(self) -> HFImageDataset:
        return self.torch_split("train")

    @property
    def val(self) -> HFImageDataset:
        return self.torch_split("val")

    @property
    def test(self) -> HFImageDataset:
        return self.torch_split("test")

    @property
    def trainval(self) -> HFImageDataset:
        return self.torch_split("trainval")

    def raw_example(self, split: str, index: int) -> dict[str, Any]:
        """One raw example: the RGB PIL image, its label, class name and boxes (pixel xyxy) - for plots."""
        row = self.splits[split][int(index)]
        img = to_rgb(_decode(row[self.image_column]))
        label = int(row[self.label_column])
        out = {"image": img, "label": label, "class_name": self.class_names[label]}
        if self.bbox_column is not None:
            out["boxes"] = _valid_boxes(_boxes_xyxy(row[self.bbox_column], self.bbox_format, img.width, img.height),
                                        img.width, img.height)
        return out

    def describe(self) -> str:
        sizes = ", ".join(f"{k} {v}" for k, v in self.split_sizes().items())
        boxes = f", boxes in {self.bbox_column!r}" if self.has_boxes else ""
        return (f"{self.name}: {self.num_classes} classes; {sizes}; image column {self.image_column!r}, "
                f"label column {self.label_column!r}{boxes}; {self.info.get('val_from', '')}")


# ------------------------------------------------------------------------------------------------ loading
def _is_offline() -> bool:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "0").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    return False


def _offline_message(hub_id: str, reason: str) -> str:
    local = f"data/{hub_id.split('/')[-1]}"
    return (f"cannot load {hub_id!r} from the Hugging Face hub: {reason}. This machine is offline "
            f"(HF_HUB_OFFLINE=1 or no network), so only local data can be read. Download it once on a machine "
            f"with network and save it, e.g. `datasets.load_dataset({hub_id!r}).save_to_disk('{local}')`, then "
            f"pass the local path: load_image_dataset('{local}') or "
            f"`python -m glsim_core train --dataset {local} ...`.")


def _load_hub(hub_id: str, config: str | None, cache_dir: str | None, revision: str | None = None):
    import datasets

    try:
        kw = {"revision": revision} if revision else {}
        return datasets.load_dataset(hub_id, config, cache_dir=cache_dir, **kw)
    except Exception as exc:  # datasets raises many kinds; translate the common causes
        text = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        offline_like = _is_offline() or isinstance(exc, (ConnectionError, TimeoutError)) or "Offline" in text
        if offline_like:
            raise HubUnavailableError(_offline_message(hub_id, text)) from None
        raise ValueError(f"cannot load hub dataset {hub_id!r}" + (f" (config {config!r})" if config else "")
                         + f": {text}. Check the id on huggingface.co/datasets, or pass a local path.") from None


def _looks_like_hub_id(source: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", source)) and not source.startswith((".", "/"))


def _load_local(path: Path, cache_dir: str | None):
    import datasets

    kw = {"cache_dir": cache_dir} if cache_dir else {}
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".arrow"):
            return datasets.load_dataset(suffix[1:], data_files={"train": str(path)}, **kw)
        raise ValueError(f"{path} is a file but not .parquet or .arrow; pass a directory (save_to_disk, "
                         f"imagefolder, parquet/arrow files) or a hub id")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    files = [p for p in path.rglob("*") if p.is_file()]
    if not files:
        raise ValueError(f"{path} is an empty directory: no dataset to load")
    if any(p.suffix == ".parquet" for p in files):
        return datasets.load_dataset("parquet", data_dir=str(path), **kw)
    if any(p.suffix == ".arrow" for p in files):
        return datasets.load_dataset("arrow", data_dir=str(path), **kw)
    if any(p.suffix.lower() in _IMAGE_SUFFIXES for p in files):
        return datasets.load_dataset("imagefolder", data_dir=str(path), **kw)
    raise ValueError(f"cannot tell what {path} holds: expected a save_to_disk directory, an imagefolder "
                     f"(class sub-folders of images) or parquet/arrow files")


def _pick_column(features, names: Sequence[str], kinds: tuple, explicit: str | None, what: str,
                 source: str) -> str | None:
    cols = list(features)
    if explicit is not None:
        if explicit not in cols:
            raise ValueError(f"{what} column {explicit!r} not in dataset {source!r}; its columns: {cols}")
        return explicit
    typed = [c for c in cols if isinstance(features[c], kinds)] if kinds else []
    for name in names:  # a typed column with a preferred name first
        if name in typed:
            return name
    if typed:
        return typed[0]
    for name in names:
        if name in cols:
            return name
    return None


def _normalise_splits(dd, spec: HubDataset | None, split_names: dict[str, str] | None) -> dict[str, Any]:
    """Map the dataset's split names onto roles train / val / test."""
    import datasets

    if isinstance(dd, datasets.Dataset):
        dd = datasets.DatasetDict({"train": dd})
    names = list(dd.keys())
    mapping = dict(spec.splits) if spec is not None else {}
    mapping.update(split_names or {})
    roles: dict[str, Any] = {}
    for role, source in mapping.items():
        if role not in ("train", "val", "test"):
            raise ValueError(f"unknown split role {role!r}; use train, val or test")
        if source not in dd:
            raise ValueError(f"split {source!r} (for {role}) not found; the dataset has splits {names}")
        roles[role] = (source, dd[source])
    if "train" not in roles:
        if "train" in dd:
            roles["train"] = ("train", dd["train"])
        elif len(names) == 1:
            roles["train"] = (names[0], dd[names[0]])
        else:
            raise ValueError(f"no 'train' split among {names}; name one with split_names={{'train': NAME}}")
    used = {src for src, _ in roles.values()}
    for role, candidates in (("val", _VAL_NAMES), ("test", _TEST_NAMES)):
        if role not in roles and role not in mapping:
            for c in candidates:
                if c in dd and c not in used:
                    roles[role] = (c, dd[c])
                    break
    return roles


def _check_labels(roles: dict[str, Any], label_feature: Any, lab_col: str, name: str) -> tuple[list[str], dict]:
    """Class names and the roles with integer labels 0..K-1, after checking the labels of every split.

    Errors: negative labels (unlabelled examples), ClassLabel values beyond its names, classes of val/test that
    never occur in train (a model cannot learn them). Integer labels with gaps are re-encoded as 0..K-1 (names keep
    the original values) with a warning that counts the unused values."""
    import warnings

    import datasets

    values = {role: np.asarray(ds.select_columns([lab_col]).with_format("numpy")[:][lab_col])
              for role, (_, ds) in roles.items()}
    is_class_label = isinstance(label_feature, datasets.ClassLabel)
    dtype = getattr(label_feature, "dtype", "")
    if is_class_label or dtype not in ("string", "large_string"):
        neg = [roles[r][0] for r, arr in values.items() if len(arr) and int(np.min(arr)) < 0]
        if neg:
            raise ValueError(f"split(s) {neg} of {name!r} have negative labels (unlabelled examples?): they cannot "
                             f"be used for training or evaluation")
    if is_class_label:
        class_names = list(label_feature.names)
        beyond = {roles[r][0]: sorted({int(v) for v in arr if int(v) >= len(class_names)})
                  for r, arr in values.items()}
        beyond = {k: v for k, v in beyond.items() if v}
        if beyond:
            raise ValueError(f"{name!r} has label values beyond its ClassLabel's {len(class_names)} names (valid: 0.."
                             f"{len(class_names) - 1}): {', '.join(f'split {k!r}: {v[:8]}' for k, v in beyond.items())}"
                             f". Fix those labels or add the missing names to the ClassLabel")
        seen = {r: {class_names[int(v)] for v in arr} for r, arr in values.items()}
    elif dtype in ("string", "large_string"):
        class_names = sorted({str(v) for arr in values.values() for v in arr})
        lookup = {n: i for i, n in enumerate(class_names)}
        for role, (src, ds) in list(roles.items()):
            ds = ds.map(lambda b: {lab_col: [lookup[str(v)] for v in b[lab_col]]}, batched=True)
            roles[role] = (src, ds.cast_column(lab_col, datasets.ClassLabel(names=class_names)))
        seen = {r: {str(v) for v in arr} for r, arr in values.items()}
    else:
        distinct = np.unique(np.concatenate([arr.astype(np.int64) for arr in values.values()]))
        high = int(distinct[-1])
        class_names = [str(int(v)) for v in distinct]
        if len(distinct) != high + 1:
            warnings.warn(f"the integer labels of {name!r} are not 0..K-1: {len(distinct)} distinct values in 0.."
                          f"{high} ({high + 1 - len(distinct)} unused); re-encoded as 0..{len(distinct) - 1}, the "
                          f"class names keep the original values", stacklevel=3)
            lookup = {int(v): i for i, v in enumerate(distinct)}
            for role, (src, ds) in list(roles.items()):
                ds = ds.map(lambda b: {lab_col: [lookup[int(v)] for v in b[lab_col]]}, batched=True)
                roles[role] = (src, ds.cast_column(lab_col, datasets.ClassLabel(names=class_names)))
        seen = {r: {str(int(v)) for v in arr} for r, arr in values.items()}
    learnt = seen.get("train", set())
    for role in ("val", "test"):
        if role not in seen:
            continue
        unseen = sorted(seen[role] - learnt)
        if unseen:
            raise ValueError(f"{len(unseen)} class(es) of split {roles[role][0]!r} of {name!r} never occur in "
                             f"{roles['train'][0]!r} ({unseen[:8]}{' ...' if len(unseen) > 8 else ''}): a model cannot "
                             f"learn them and would score 0 % on them. Add training images of those classes or "
                             f"remove them from {roles[role][0]!r}")
        if role == "val":
            learnt = learnt | seen["val"]  # trainval (train + own val) is what the test runs train on
    return class_names, roles


def load_image_dataset(
    source: str | os.PathLike,
    config: str | None = None,
    *,
    split_names: dict[str, str] | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    bbox_column: str | None = None,
    bbox_format: str | None = None,
    img_size: int = 224,
    augreg: str = "minimal",
    model: Any = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    split_seed: int = 0,
    val_fraction: float | None = None,
    max_samples: int | dict[str, int] | None = None,
    on_error: str = "raise",
    cache_dir: str | None = None,
    revision: str | None = None,
) -> ImageData:
    """Load an image-classification dataset from the hub or a local path; see the module docstring.

    ``revision`` (hub datasets): the git revision to load (default: the registry entry's pin, else the hub's
    ``main``); it is recorded in ``info["revision"]``.
    ``model`` (a timm model or name) supplies the normalisation (``mean``/``std`` override it);
    ``val_fraction`` overrides GLSim's 0.2 (or 0.8 above 50,000 images) when val is carved from train;
    ``max_samples`` keeps a seeded random subset of each split (an int for all, or per role) for quick runs.
    """
    import datasets

    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    source_str = os.fspath(source)
    hub_revision: str | None = None
    spec = get_hub_dataset(source_str) if not Path(source_str).exists() else None
    path = Path(source_str).expanduser()
    if spec is not None:
        name = spec.name
        hub_revision = revision or spec.revision
        dd = _load_hub(spec.hub_id, config or spec.config, cache_dir, hub_revision)
        image_column = image_column or spec.image_column
        label_column = label_column or spec.label_column
        bbox_column = bbox_column or spec.bbox_column
        bbox_format = bbox_format or spec.bbox_format
    elif path.exists():
        name = path.name or source_str
        try:
            dd = _load_local(path, cache_dir)
        except (ValueError, FileNotFoundError):
            raise
        except Exception as exc:  # a corrupt or half-written directory, an unreadable file...
            text = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            raise ValueError(f"cannot read the dataset at {path}: {text}. Is it complete (an empty split, an "
                             f"interrupted save_to_disk)? Regenerate or re-save it.") from None
    elif _looks_like_hub_id(source_str):
        name = source_str
        hub_revision = revision or "main"
        try:
            dd = _load_hub(source_str, config, cache_dir, revision)
        except ValueError as exc:
            top = Path(source_str.split("/", 1)[0])
            if not top.is_dir():  # "org/name" with no local folder "org": a hub id; keep the hub's message
                raise
            raise FileNotFoundError(f"dataset path {source_str!r} does not exist (cwd {Path.cwd()}); as a hub id it "
                                    f"cannot be loaded either: {exc}") from None
    else:
        raise FileNotFoundError(
            f"{source_str!r} is neither an existing path nor a hub id ('org/name') nor a registered dataset "
            f"({sorted(FINEGRAINED_DATASETS)}). For the offline benchmark run `python -m glsim_core data benchmark` "
            f"first (it writes data/cache/finegrained_benchmark).")
    roles = _normalise_splits(dd, spec, split_names)
    features = roles["train"][1].features

    img_col = _pick_column(features, IMAGE_COLUMNS, (datasets.Image,), image_column, "image", name)
    if img_col is None:
        raise ValueError(f"no image column in {name!r}: columns {list(features)}; pass image_column=...")
    lab_col = _pick_column(features, LABEL_COLUMNS, (datasets.ClassLabel,), label_column, "label", name)
    if lab_col is None:
        raise ValueError(f"no label column in {name!r}: columns {list(features)} (looked for a ClassLabel or one of "
                         f"{list(LABEL_COLUMNS)}); rename it to 'label' (`ds.rename_column(OLD, 'label')`, then "
                         f"save_to_disk) or pass label_column=... to load_image_dataset")
    box_col = _pick_column(features, BBOX_COLUMNS, (), bbox_column, "bbox", name)
    bbox_format = bbox_format or "xyxy"

    # every role: same columns, images undecoded, labels as ints
    for role, (src, ds) in list(roles.items()):
        missing = [c for c in (img_col, lab_col) if c not in ds.features]
        if missing:
            raise ValueError(f"split {src!r} of {name!r} lacks column(s) {missing}; its columns: {list(ds.features)}")
        if len(ds) == 0:
            raise ValueError(f"split {src!r} of {name!r} is empty: nothing to train or evaluate on")
        if not isinstance(ds.features[img_col], datasets.Image):
            ds = ds.cast_column(img_col, datasets.Image())
        roles[role] = (src, ds.cast_column(img_col, datasets.Image(decode=False)))

    class_names, roles = _check_labels(roles, features[lab_col], lab_col, name)
    # val: own split, else a seeded carve of train (GLSim appendix C)
    info: dict[str, Any] = {"source": source_str, "splits": {r: s for r, (s, _) in roles.items()}}
    if hub_revision is not None:
        info["revision"] = hub_revision
    sources: dict[str, tuple[np.ndarray, list[str]]] = {}
    train_src, train_ds = roles["train"]
    rng = np.random.default_rng(split_seed)
    if "val" in roles:
        val_src, val_ds = roles["val"]
        trainval = datasets.concatenate_datasets([train_ds, val_ds])
        sources["trainval"] = (np.concatenate([np.arange(len(train_ds)), np.arange(len(val_ds))]),
                               [train_src] * len(train_ds) + [val_src] * len(val_ds))
        info["val_from"] = f"val = the dataset's own {val_src!r} split; trainval = train + {val_src!r}"
        splits = {"train": train_ds, "val": val_ds}
        sources["train"] = (np.arange(len(train_ds)), [train_src] * len(train_ds))
        sources["val"] = (np.arange(len(val_ds)), [val_src] * len(val_ds))
    else:
        n = len(train_ds)
        if n < 2:
            raise ValueError(f"split {train_src!r} of {name!r} has {n} example(s): too few to carve a validation set")
        frac_val = train_val_fractions(n)[1] if val_fraction is None else float(val_fraction)
        if not 0.0 < frac_val < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
        perm = rng.permutation(n)
        n_val = min(n - 1, max(1, int(round(frac_val * n))))
        tr_idx, va_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
        splits = {"train": train_ds.select(tr_idx), "val": train_ds.select(va_idx)}
        sources["train"] = (tr_idx, [train_src] * len(tr_idx))
        sources["val"] = (va_idx, [train_src] * len(va_idx))
        trainval = train_ds
        sources["trainval"] = (np.arange(n), [train_src] * n)
        info["val_from"] = (f"val = {frac_val:.0%} of {train_src!r} (seed {split_seed}), train = the other "
                            f"{1 - frac_val:.0%}; trainval = all of {train_src!r}")
    splits["trainval"] = trainval
    if "test" in roles:
        test_src, test_ds = roles["test"]
        splits["test"] = test_ds
        sources["test"] = (np.arange(len(test_ds)), [test_src] * len(test_ds))
    else:
        splits["test"] = None

    if max_samples is not None:
        limits = max_samples if isinstance(max_samples, dict) else {k: int(max_samples) for k in splits}
        for role, limit in limits.items():
            if role not in splits:
                raise ValueError(f"max_samples names unknown split {role!r}; splits: {sorted(splits)}")
            ds = splits[role]
            if ds is None or limit is None or len(ds) <= int(limit):
                continue
            keep = np.sort(np.random.default_rng(split_seed + 1).permutation(len(ds))[: int(limit)])
            splits[role] = ds.select(keep)
            index, src_names = sources[role]
            sources[role] = (index[keep], [src_names[k] for k in keep])

    if model is not None or mean is None or std is None:
        m, s, interp = normalization_for(model)
    else:
        m, s, interp = IMAGENET_MEAN, IMAGENET_STD, "bicubic"
    data = ImageData(
        name=name, splits=splits, class_names=class_names, image_column=img_col, label_column=lab_col,
        bbox_column=box_col, bbox_format=bbox_format, img_size=int(img_size), augreg=augreg,
        mean=tuple(mean) if mean is not None else m, std=tuple(std) if std is not None else s,
        interpolation=interp, on_error=on_error, info=info)
    data._sources = sources
    return data
