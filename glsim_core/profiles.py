"""The two profiles: one code path, two sizes.

``cpu`` (the default, what CI and Binder run): tiny timm ViTs at 64 px, the offline benchmark generated under
``data/``, minutes on 2 cores, no network. ``gpu`` (Colab / a workstation): timm pretrained weights, Hugging Face
hub datasets, the papers' image sizes and epochs. A notebook's ``parameters`` cell, a papermill run and the CLI
all pick a profile by name and may override any field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .runtime import profile_name
from .selection.gls import paper_top_o

__all__ = ["Profile", "PROFILES", "get_profile", "default_profile_name", "paper_top_o"]


@dataclass(frozen=True)
class Profile:
    """Sizes that follow from the choice of profile. Every field can be overridden by name."""

    name: str
    model: str  # timm backbone name (a registered glsim_core variant in the cpu profile)
    glsim_model: str  # the GLSim model built on that backbone
    img_size: int
    patch_size: int
    pretrained: bool  # load timm's pretrained weights (gpu) - the cpu profile uses the shipped backbones
    dataset: str  # HF hub id or local path
    epochs: int
    batch_size: int
    lr: float
    top_o: int | None  # O of the GLS crop; None: the paper's rule (8, 16 for Dogs, doubled at 448 px)
    num_workers: int
    optimizer: str = "sgd"  # the papers' fine-tuning recipe: SGD + Nesterov, no weight decay (GLSim appendix C)
    weight_decay: float = 0.0
    cnn_model: str = "resnet50"  # the CNN SimPool is compared on (SimPool Tables 2-3: ResNet-50)

    def replace(self, **overrides: Any) -> Profile:
        """A copy with some fields changed; unknown names are an error that lists the valid ones."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown profile field(s) {unknown}; valid fields: {sorted(names)}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def o_for(self, img_size: int | None = None, dataset: str | None = None) -> int:
        """O of the GLS crop: the profile's ``top_o`` if set, else :func:`paper_top_o` (default: its own sizes)."""
        if self.top_o is not None:
            return int(self.top_o)
        return paper_top_o(img_size or self.img_size, dataset or self.dataset)

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        name="cpu",
        # the nano ViT with a convolutional stem, pretrained on a stream of fresh corpus images (corpus-val 94.3 %)
        model="vit_nano_convstem_patch8_64",
        glsim_model="glsim_vit_nano_convstem_patch8_64",
        img_size=64,
        patch_size=8,
        pretrained=True,  # the backbones pretrained by `python -m glsim_core pretrain`, shipped in data/pretrained
        dataset="data/cache/finegrained_benchmark",
        # From the learning curves of the recipe (data/results/recipe_probe_cpu.csv: ViT, train -> val, 15 epochs):
        # at AdamW 1e-3 val top-1 reaches 66-68 % by epoch 4-6 and stays there; at 3e-4 it needs ~10 epochs.
        epochs=8,
        batch_size=32,
        # A 0.8 M-parameter ViT fine-tuned for a few hundred steps does not move with SGD at the paper's LRs
        # (measured on the benchmark: SGD lr 0.03 -> 11.8 %, lr 0.003 -> 5.5 %, AdamW lr 1e-3 -> 31.7 %; 12 classes,
        # 6 epochs, same shipped backbone), so the cpu profile fine-tunes with AdamW; the gpu profile keeps SGD.
        lr=1e-3,
        optimizer="adamw",
        weight_decay=0.05,
        top_o=8,
        num_workers=0,
        cnn_model="resnet_nano_64",  # output stride 8: an 8x8 map at 64 px, like the ViT's token grid
    ),
    "gpu": Profile(
        name="gpu",
        # The paper's backbone: ViT-B/16 pre-trained on ImageNet-21k by the original ViT authors (timm tag
        # orig_in21k, mean/std 0.5). The AugReg weights are a named option: vit_base_patch16_224.augreg_in21k /
        # glsim_vit_base_patch16_224.augreg_in21k.
        model="vit_base_patch16_224.orig_in21k",
        glsim_model="glsim_vit_base_patch16_224",
        img_size=224,
        patch_size=16,
        pretrained=True,
        dataset="cub200",
        epochs=50,
        batch_size=8,
        lr=0.01,
        top_o=None,  # GLSim §4: 8 at 224 px, 16 at 448 px (Dogs: 16 and 32)
        num_workers=4,
    ),
}


def default_profile_name() -> str:
    """``GLSIM_PROFILE`` from the environment (Binder's start script sets ``cpu``), else ``cpu``."""
    return profile_name()


def get_profile(name: str | Profile | None = None, **overrides: Any) -> Profile:
    """Look a profile up by name (``None`` -> :func:`default_profile_name`) and apply overrides."""
    if isinstance(name, Profile):
        return name.replace(**overrides) if overrides else name
    name = default_profile_name() if name is None else str(name).lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    profile = PROFILES[name]
    return profile.replace(**overrides) if overrides else profile
