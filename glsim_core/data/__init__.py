"""Data: Hugging Face datasets (hub or local) as torch splits, the recipe's transforms, and the offline datasets.

* :func:`load_image_dataset` - one entry point for a hub id, a registered fine-grained dataset or a local path.
* :func:`build_transform`, :func:`augreg` - GLSim's resize/crop geometry and AugReg levels (Table 11).
* :mod:`glsim_core.data.synthetic` - the offline fine-grained benchmark (with boxes) and the pretraining corpus.
"""

from .hf import (
    BadImageError,
    HFImageDataset,
    HubUnavailableError,
    ImageData,
    collate_images,
    load_image_dataset,
    to_rgb,
)
from .registry import FINEGRAINED_DATASETS, HubDataset, get_hub_dataset
from .transforms import AUGREG_LEVELS, AugReg, augreg, build_transform, normalization_for, resize_size

__all__ = [
    "load_image_dataset", "ImageData", "HFImageDataset", "BadImageError", "HubUnavailableError", "collate_images",
    "to_rgb",
    "FINEGRAINED_DATASETS", "HubDataset", "get_hub_dataset", "AUGREG_LEVELS", "AugReg", "augreg",
    "build_transform", "normalization_for", "resize_size",
]
