"""The cpu profile's shipped pretrained backbones: where their weights live and how timm finds them.

The weights are produced by ``python -m glsim_core pretrain`` (:mod:`glsim_core.train.pretrain`) on the offline
generic corpus (:mod:`glsim_core.data.synthetic`) and stored under ``data/pretrained/`` with a ``manifest.json``
(command, seed, data recipe, metrics, sha256). Each shipped name's timm pretrained config carries
``file=<absolute path of its weights>`` (computed from :func:`glsim_core.paths.data_dir` at import), so
``timm.create_model(name, pretrained=True)`` and ``glsim_core.models.create_model(name, pretrained=True)`` load them
offline; timm drops the corpus classifier when ``num_classes`` differs and resamples the position embedding when
``img_size`` differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..paths import data_dir

__all__ = ["SHIPPED", "shipped_weights_path", "has_shipped_weights", "read_manifest", "manifest_path", "sha256",
           "PRETRAINED_DIR"]

PRETRAINED_DIR = "pretrained"

#: name -> file name under data/pretrained and the number of classifier outputs of the shipped weights
#: (the corpus' 61 categories + 1 background class used by the token-level pretraining loss).
SHIPPED: dict[str, dict[str, Any]] = {
    "vit_nano_convstem_patch8_64": {"file": "vit_nano_convstem_patch8_64.corpus.pth", "num_classes": 62},
    "vit_nano_patch8_64": {"file": "vit_nano_patch8_64.corpus.pth", "num_classes": 62},
    "resnet_nano_64": {"file": "resnet_nano_64.corpus.pth", "num_classes": 62},
}


def shipped_weights_path(name: str) -> Path:
    """Absolute path of a shipped backbone's weights (it may not exist before ``python -m glsim_core pretrain``)."""
    base = name.split(".")[0]
    if base not in SHIPPED:
        raise ValueError(f"no shipped weights for {name!r}; shipped backbones: {sorted(SHIPPED)}")
    return (data_dir() / PRETRAINED_DIR / SHIPPED[base]["file"]).resolve()


def has_shipped_weights(name: str) -> bool:
    base = name.split(".")[0]
    return base in SHIPPED and shipped_weights_path(base).is_file()


def manifest_path() -> Path:
    return data_dir() / PRETRAINED_DIR / "manifest.json"


def read_manifest() -> dict[str, Any]:
    """The shipped backbones' manifest (empty dict if none was written yet)."""
    path = manifest_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
