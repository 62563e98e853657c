"""Real fine-grained datasets on the Hugging Face hub for the ``gpu`` profile (GLSim Table 9), by short name.

Where these facts come from: the datasets' hub pages (dataset cards and the dataset viewer) as seen when this file
was written, without network access from this machine, so **they must be verified online** before a paper-scale run
(``datasets.load_dataset(hub_id)`` once, then compare ``.features`` with the entry). Column names are also detected
automatically (:func:`glsim_core.data.hf.load_image_dataset`), so a changed card mostly costs a warning, not a crash.
The tests exercise every entry with a local dataset of the same schema.

* ``cub200`` - ``bentrevett/caltech-ucsd-birds-200-2011``: image, label (ClassLabel, 200 names), bbox (4 numbers,
  read from the viewer as pixel x0, y0, x1, y1: e.g. [60, 29, 492, 384] on a 500-px-wide image cannot be x, y, w, h);
  splits train 5,994 / test 5,794.
* ``flowers102`` - ``dpdl-benchmark/oxford_flowers102``: image, label (ClassLabel, 102 names); splits train 1,020 /
  validation 1,020 / test 6,149 (the official Nilsback & Zisserman split). GLSim trains on train+validation.
* ``pets`` - ``timm/oxford-iiit-pet``: image, label (ClassLabel, 37 breeds); splits train 3,680 / test 3,669.
* ``food101`` - ``ethz/food101``: image, label (ClassLabel, 101); splits train 75,750 / validation 25,250, where the
  hub's ``validation`` is the official test set (mapped to ``test`` here). The train split has more than 50,000
  images, so the LR-search split is 20/80 (GLSim appendix C).
* ``dogs`` - ``Donghyun99/Stanford-Dogs``: image, label; splits train 12,000 / test 8,580 (Stanford Dogs has no
  box column on this copy; TFDS's copy keeps boxes). Its label order is **not** the official one (the order of
  the dataset's ``file_list.mat`` / TFDS): class k here is not class k there, so per-class numbers, confusion
  matrices and heads do not carry over between copies without remapping by class name.

**Revisions.** Every entry names the hub revision ``load_dataset(..., revision=...)`` loads (``revision``), and
each loaded dataset records it (``ImageData.info["revision"]``). The entries say ``"main"`` because the commit
shas could not be read offline when this file was written: ``main`` is the hub's moving head, **not a pin**.
Before a paper-scale run, pin each one: ``huggingface_hub.HfApi().dataset_info(hub_id).sha`` gives the commit
to write here (or pass ``revision=`` to :func:`glsim_core.data.hf.load_image_dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["HubDataset", "FINEGRAINED_DATASETS", "get_hub_dataset", "UNPINNED"]

#: The revision an entry has until someone with network access pins it to a commit sha (see the module docstring).
UNPINNED = "main"


@dataclass(frozen=True)
class HubDataset:
    """What this project needs to know about one hub dataset."""

    name: str
    hub_id: str
    config: str | None = None
    image_column: str = "image"
    label_column: str = "label"
    bbox_column: str | None = None
    bbox_format: str = "xyxy"  # "xyxy" pixels, "xywh" pixels, or "yxyx_norm" (TFDS BBoxFeature)
    #: our split role -> the hub's split name (roles: train, val, test); a missing role is carved or absent
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    num_classes: int | None = None
    num_train: int | None = None
    num_test: int | None = None
    notes: str = ""
    #: hub git revision passed to ``load_dataset(revision=...)``: a commit sha pins it; "main" follows the head
    revision: str = "main"


FINEGRAINED_DATASETS: dict[str, HubDataset] = {
    d.name: d
    for d in [
        HubDataset("cub200", "bentrevett/caltech-ucsd-birds-200-2011", bbox_column="bbox", bbox_format="xyxy",
                   num_classes=200, num_train=5994, num_test=5794,
                   notes="CUB-200-2011 (Wah et al. 2011); box format read from the viewer, verify online"),
        HubDataset("flowers102", "dpdl-benchmark/oxford_flowers102",
                   splits={"train": "train", "val": "validation", "test": "test"},
                   num_classes=102, num_train=2040, num_test=6149,
                   notes="Oxford Flowers-102; label is a ClassLabel with the 102 flower names"),
        HubDataset("pets", "timm/oxford-iiit-pet", num_classes=37, num_train=3680, num_test=3669,
                   notes="Oxford-IIIT Pets (37 breeds)"),
        HubDataset("food101", "ethz/food101", splits={"train": "train", "test": "validation"},
                   num_classes=101, num_train=75750, num_test=25250,
                   notes="Food-101: the hub's 'validation' split is the official test set"),
        HubDataset("dogs", "Donghyun99/Stanford-Dogs", num_classes=120, num_train=12000, num_test=8580,
                   notes="Stanford Dogs (unofficial hub copy): its label order is not the official class order; "
                         "no boxes"),
    ]
}


def get_hub_dataset(name: str) -> HubDataset | None:
    """The registry entry for a short name (case-insensitive), or None."""
    return FINEGRAINED_DATASETS.get(str(name).lower())
