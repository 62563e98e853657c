"""Image transforms of the GLSim recipe (§4, appendix C, Table 11), built with torchvision ``transforms.v2``.

* Geometry: resize to a square of ``int(1.34 * S)`` (bicubic), then a random ``S x S`` crop for training or the
  centre crop for evaluation (GLSim §4: "300x300 for image size 224x224").
* AugReg levels exactly as GLSim Table 11: ``minimal`` = random crop + horizontal flip; ``weak`` = + label smoothing
  0.1; ``medium`` = + stochastic depth 0.1; ``strong`` = + random erasing + TrivialAugmentWide. Label smoothing and
  stochastic depth are not image transforms: :func:`augreg` returns them as settings the training engine applies
  (the loss and timm's ``drop_path_rate``).
* Normalisation: the mean/std of the timm model's pretrained config (:func:`normalization_for`).

Deliberate choices where the paper is silent (they follow the authors' released code): random erasing
with p=0.3, area 0.02-0.4, aspect 0.3-3.3, erased to 0 after normalisation (the mean colour); TrivialAugmentWide
before normalisation (it works on uint8 images); the paper's Table 10 says "normalize then resize" - resizing and
normalising are both linear per pixel, so the order only matters through clipping, and we normalise last.

Bounding boxes (``tv_tensors.BoundingBoxes``, XYXY pixels) go through the same geometry, so the offline benchmark's
boxes stay aligned with the crop the network sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torchvision.transforms import v2

__all__ = [
    "AUGREG_LEVELS", "AugReg", "augreg", "resize_size", "normalization_for", "build_transform",
    "IMAGENET_MEAN", "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: GLSim Table 11, weakest to strongest.
AUGREG_LEVELS = ("minimal", "weak", "medium", "strong")

#: The ratio between the resize and the crop (GLSim §4: 1.34·S, e.g. 300 for 224).
RESIZE_RATIO = 1.34


@dataclass(frozen=True)
class AugReg:
    """One AugReg level of GLSim Table 11: image augmentations plus the two regularisers the engine applies."""

    level: str
    random_crop: bool = True
    hflip: bool = True
    label_smoothing: float = 0.0  # applied by the loss (engine)
    drop_path_rate: float = 0.0  # stochastic depth, applied through timm's ``drop_path_rate`` (engine)
    random_erasing: float = 0.0  # probability of RandomErasing
    trivial_augment: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


_LEVELS = {
    "minimal": AugReg("minimal"),
    "weak": AugReg("weak", label_smoothing=0.1),
    "medium": AugReg("medium", label_smoothing=0.1, drop_path_rate=0.1),
    "strong": AugReg("strong", label_smoothing=0.1, drop_path_rate=0.1, random_erasing=0.3, trivial_augment=True),
}


def augreg(level: str | AugReg) -> AugReg:
    """The settings of an AugReg level (``minimal``, ``weak``, ``medium``, ``strong``; GLSim Table 11)."""
    if isinstance(level, AugReg):
        return level
    key = str(level).lower()
    if key not in _LEVELS:
        raise ValueError(f"unknown augreg level {level!r}; choose one of {list(AUGREG_LEVELS)} (GLSim Table 11)")
    return _LEVELS[key]


def resize_size(img_size: int) -> int:
    """The side of the square resize before cropping: ``int(1.34 * img_size)`` (e.g. 300 for 224, 85 for 64)."""
    if int(img_size) <= 0:
        raise ValueError(f"img_size must be positive, got {img_size}")
    return int(RESIZE_RATIO * int(img_size))


def normalization_for(model: object | str | None) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """(mean, std, interpolation) from a timm model's pretrained config (a model, or a registered name).

    Falls back to ImageNet statistics and bicubic interpolation when the model has no such config.
    """
    cfg = None
    if model is None:
        cfg = None
    elif isinstance(model, str):
        import timm

        try:
            cfg = timm.models.get_pretrained_cfg(model)
            cfg = cfg.to_dict() if cfg is not None and hasattr(cfg, "to_dict") else cfg
        except Exception:  # unknown tag or name: fall back below
            cfg = None
        if cfg is None and not timm.is_model(model.split(".")[0]):
            raise ValueError(f"unknown timm model {model!r}: cannot read its normalisation")
    else:
        cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    cfg = dict(cfg or {})
    mean = tuple(float(v) for v in cfg.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in cfg.get("std", IMAGENET_STD))
    interpolation = str(cfg.get("interpolation", "bicubic") or "bicubic")
    return mean, std, interpolation


def _interp(name: str) -> v2.InterpolationMode:
    try:
        return v2.InterpolationMode(name)
    except ValueError as exc:
        raise ValueError(f"unknown interpolation {name!r}; use bicubic, bilinear or nearest") from exc


def build_transform(
    img_size: int,
    train: bool,
    level: str | AugReg = "minimal",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bicubic",
) -> v2.Compose:
    """The transform for one split: PIL/uint8 image (and optional boxes) -> normalised float tensor (C, S, S).

    Train: resize to ``int(1.34 S)`` square -> random crop S (or centre crop if the level disables it) ->
    horizontal flip -> [TrivialAugmentWide] -> float + normalise -> [RandomErasing].
    Eval: resize to ``int(1.34 S)`` square -> centre crop S -> float + normalise.
    Call it as ``t(image)`` or ``t(image, boxes)`` with ``boxes`` a ``tv_tensors.BoundingBoxes``.
    """
    settings = augreg(level)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values (RGB), got {mean} and {std}")
    size = int(img_size)
    ops: list = [v2.ToImage(), v2.Resize((resize_size(size), resize_size(size)), interpolation=_interp(interpolation),
                                         antialias=True)]
    if train:
        ops.append(v2.RandomCrop(size) if settings.random_crop else v2.CenterCrop(size))
        if settings.hflip:
            ops.append(v2.RandomHorizontalFlip())
        if settings.trivial_augment:
            ops.append(v2.TrivialAugmentWide(interpolation=v2.InterpolationMode.BILINEAR))
    else:
        ops.append(v2.CenterCrop(size))
    ops += [v2.ClampBoundingBoxes(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    if train and settings.random_erasing > 0:
        ops.append(v2.RandomErasing(p=settings.random_erasing, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=0.0))
    return v2.Compose(ops)
