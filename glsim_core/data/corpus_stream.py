"""The pretraining corpus as a stream of fresh images: every epoch draws images the network has never seen.

A small ViT trained from scratch on a fixed set of a few thousand procedural images memorises them (training loss
falls, validation stays near chance); the generator can draw as many images as training needs, so
:class:`CorpusStream` renders each training image on the fly from its own random generator, seeded by
``(spec.seed, epoch, index)``: epoch ``e`` is a new sample of the corpus, yet any run (and any resume, and any
number of DataLoader workers) sees exactly the same images. Rendering costs about as much CPU as a training step
of the cpu profile's ViT, so give the DataLoader one worker process (``num_workers=1``) to render while the main
process trains.

The validation images are a fixed set drawn from a disjoint seed stream, rendered once and kept in memory.
:class:`CorpusStreamData` offers both through the interface the training engine reads (``num_classes``,
``class_names``, ``torch_split``), so :func:`glsim_core.train.fit` trains on the stream like on any dataset; the
engine calls :meth:`CorpusStream.set_epoch` before each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .boxes import transform_with_boxes
from .synthetic import CORPUS_CATEGORIES, CorpusSpec, render_corpus_image
from .transforms import build_transform

__all__ = ["CorpusStream", "CorpusStreamData", "corpus_stream_example"]

_TRAIN_STREAM, _VAL_STREAM = 101, 202  # disjoint seed streams for training and validation images


def corpus_stream_example(spec: CorpusSpec, stream: int, epoch: int, index: int):
    """(PIL image, label, box) of one stream image; a pure function of its arguments."""
    rng = np.random.default_rng([spec.seed, stream, epoch, index])
    label = int(rng.integers(len(CORPUS_CATEGORIES)))
    img, box = render_corpus_image(spec, label, rng)
    return img, label, box


class CorpusStream(torch.utils.data.Dataset):
    """``length`` fresh training images per epoch (recipe transforms, boxes kept aligned when asked)."""

    def __init__(self, spec: CorpusSpec, length: int, transform, with_boxes: bool = False, epoch: int = 0):
        if int(length) < 1:
            raise ValueError(f"a corpus stream needs length >= 1, got {length}")
        self.spec, self.length, self.transform, self.with_boxes = spec, int(length), transform, bool(with_boxes)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw the images of ``epoch`` (the engine calls this before building each epoch's loader)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, label, box = corpus_stream_example(self.spec, _TRAIN_STREAM, self.epoch, int(i))
        return _sample(img, label, box, int(i), self.transform, self.with_boxes)


class _FixedImages(torch.utils.data.Dataset):
    def __init__(self, examples: Sequence[tuple], transform, with_boxes: bool):
        self.examples, self.transform, self.with_boxes = examples, transform, with_boxes

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        img, label, box = self.examples[i]
        return _sample(img, label, box, int(i), self.transform, self.with_boxes)


def _sample(img, label: int, box, index: int, transform, with_boxes: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"label": label, "index": index}
    if with_boxes:
        out["image"], out["boxes"] = transform_with_boxes(img, [box], transform)
    else:
        out["image"] = transform(img)
    return out


class CorpusStreamData:
    """The corpus for :func:`glsim_core.train.fit`: a fresh-image ``train`` stream and a fixed ``val`` set."""

    def __init__(self, spec: CorpusSpec | None = None, images_per_epoch: int = 32_000, val_size: int = 2000,
                 img_size: int | None = None, augreg: str = "minimal",
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 interpolation: str = "bicubic", progress: bool = False):
        from tqdm.auto import tqdm

        self.spec = spec or CorpusSpec()
        self.img_size = int(img_size or self.spec.view_size)
        self.images_per_epoch, self.augreg = int(images_per_epoch), augreg
        self.mean, self.std, self.interpolation = tuple(mean), tuple(std), interpolation
        self.name = f"corpus-stream(seed={self.spec.seed})"
        self.class_names = list(CORPUS_CATEGORIES)
        self._cache: dict = {}
        self.info: dict[str, Any] = {"source": "glsim_core.data.corpus_stream", "corpus": self.spec.to_dict(),
                                     "images_per_epoch": self.images_per_epoch, "val_size": int(val_size)}
        self.val_examples = [corpus_stream_example(self.spec, _VAL_STREAM, 0, i)
                             for i in tqdm(range(int(val_size)), desc="corpus validation images", unit="img",
                                           disable=not progress)]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _transform(self, train: bool):
        return build_transform(self.img_size, train, self.augreg, self.mean, self.std, self.interpolation)

    def torch_split(self, split: str, train: bool | None = None, with_boxes: bool | None = None, **_ignored):
        if split in ("train", "trainval"):
            return CorpusStream(self.spec, self.images_per_epoch, self._transform(train is not False),
                                with_boxes=bool(with_boxes))
        if split in ("val", "validation", "test"):
            return _FixedImages(self.val_examples, self._transform(bool(train)), bool(with_boxes))
        raise ValueError(f"the corpus stream has the splits train and val, not {split!r}")
