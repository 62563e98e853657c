"""Pretraining the cpu profile's backbones on the offline generic corpus (the stand-in for ImageNet-21k weights).

``python -m glsim_core pretrain`` (or :func:`pretrain_backbones`) generates the corpus if needed
(:class:`glsim_core.data.synthetic.CorpusSpec`), trains each shipped backbone with the engine (:func:`fit`, the
same recipe as fine-tuning: SGD + Nesterov, cosine with warm-up, grad clip 1.0), and writes the weights to
``data/pretrained/<name>.corpus.pth`` (fp16 when ``half=True``) plus ``data/pretrained/manifest.json`` with the
command, seeds, corpus recipe, training settings, final corpus-validation metrics, wall time and sha256 of each file.

The ViT's objective adds a **token-level loss** to the usual CLS cross-entropy (a deliberate choice, documented in
the manifest): the classifier is also applied to every patch token after the final LayerNorm, and each token whose
patch centre lies inside the object's box is trained to predict the object's category, the others a "background"
class (index ``num_categories``). Large-scale pretraining (ImageNet-21k for the papers' ViT-B) produces final-layer
patch tokens on the object that resemble the CLS token - the property GLS relies on (GLSim §3.2); a 0.8 M-parameter
ViT trained for minutes on CLS labels alone does not get there (measured in the issue's probe: the top GLS token
fell inside the object 3.8 % of the time against 6.3 % chance). The token loss builds that property in directly,
in the spirit of token labelling (Jiang et al., "All Tokens Matter", 2021). ``token_weight=0`` turns it off.

**Why the ViT recipe is what it is** (pilot runs on this corpus, one core each, AdamW, cosine, label smoothing 0.1;
corpus-validation top-1 on 2,000 images, chance 1.6 %):

* the plain ``vit_nano_patch8_64`` (one linear map per 8x8 patch) stays at chance for 1,500 steps of 64: the
  corpus has no shortcut (colours, textures and positions are random), so a network must first build shape
  detectors, and a linear patch embedding learns them very slowly. The same ViT with a convolutional stem
  (:class:`glsim_core.models.backbones.ConvStemPatchEmbed`, same 8x8 token grid) reaches 24 % in those steps;
* the token loss speeds this up (12.3 % against 8.2 % after 750 steps of 64);
* batches of 32 use the images better than batches of 64: 40 % after 3,000 steps of 32 (the same 96,000 images);
* a fixed set of a few thousand images is memorised; the stream of fresh images
  (:mod:`glsim_core.data.corpus_stream`) never repeats one, so the recipe trains for as many steps as the budget
  allows without overfitting. The learning curve (corpus-val top-1 after every epoch) is in the manifest.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.corpus_stream import CorpusStreamData
from ..data.hf import load_image_dataset
from ..data.synthetic import CORPUS_CATEGORIES, CorpusSpec, ensure_corpus
from ..data.transforms import normalization_for
from ..models import create_model
from ..notebook import _jsonable
from ..paths import build_dir, data_dir
from ..weights.shipped import PRETRAINED_DIR, SHIPPED, sha256
from .config import TrainConfig
from .engine import _unwrap, fit

__all__ = ["TokenLoss", "BackboneRecipe", "PretrainRecipe", "pretrain_backbones", "DEFAULT_RECIPE",
           "inside_box_tokens"]


def inside_box_tokens(boxes: Sequence[torch.Tensor], grid: tuple[int, int], patch: tuple[float, float],
                      device: torch.device) -> torch.Tensor:
    """(B, N) bool: is each patch token's centre inside its image's first box (pixel x0, y0, x1, y1)?"""
    rows, cols = grid
    ys = (torch.arange(rows, device=device, dtype=torch.float32) + 0.5) * patch[0]
    xs = (torch.arange(cols, device=device, dtype=torch.float32) + 0.5) * patch[1]
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    cx, cy = cx.reshape(1, -1), cy.reshape(1, -1)
    b = torch.stack([bx.reshape(-1, 4)[0].to(device=device, dtype=torch.float32) for bx in boxes])  # (B, 4)
    return (cx >= b[:, :1]) & (cx < b[:, 2:3]) & (cy >= b[:, 1:2]) & (cy < b[:, 3:4])


class TokenLoss:
    """CLS cross-entropy + ``weight`` x dense cross-entropy (object locations -> class, others -> background).

    Works with timm ``VisionTransformer``s (a forward hook on ``model.norm`` keeps the final tokens; token logits are
    ``head(fc_norm(token))``, the CLS token's classifier) and timm ``ResNet``s (a hook on ``layer4`` keeps the final
    feature map; location logits are ``fc`` applied at every position, the classifier of the pooled feature).
    """

    needs_boxes = True

    def __init__(self, model: nn.Module, num_categories: int, weight: float = 1.0, background: bool = True,
                 label_smoothing: float = 0.0):
        base = _unwrap(model)
        if hasattr(base, "norm") and hasattr(base, "patch_embed") and hasattr(base, "head"):
            self.kind, hooked = "vit", base.norm
        elif hasattr(base, "layer4") and hasattr(base, "fc"):
            self.kind, hooked = "cnn", base.layer4
        else:
            raise TypeError(f"TokenLoss needs a timm VisionTransformer or ResNet, got {type(base).__name__}")
        self.model, self.num_categories = base, int(num_categories)
        self.weight, self.background, self.label_smoothing = float(weight), bool(background), float(label_smoothing)
        self._features: torch.Tensor | None = None
        self._handle = hooked.register_forward_hook(self._keep)

    def _keep(self, _module, _inputs, output) -> None:
        self._features = output

    def remove(self) -> None:
        self._handle.remove()

    def dense_logits(self, image_size: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int], tuple[float, float]]:
        """(B, N, K) logits of every token/location, its grid and its cell size in pixels."""
        m, f = self.model, self._features
        if self.kind == "vit":
            patches = f[:, m.num_prefix_tokens:]
            side = int(round(patches.shape[1] ** 0.5))
            grid = tuple(m.patch_embed.grid_size) if patches.shape[1] == m.patch_embed.num_patches else (side, side)
            return m.head(m.fc_norm(patches)), grid, tuple(float(p) for p in m.patch_embed.patch_size)
        b, c, h, w = f.shape
        logits = m.fc(f.flatten(2).transpose(1, 2))
        return logits, (h, w), (image_size[0] / h, image_size[1] / w)

    def __call__(self, _net: nn.Module, batch: dict[str, Any], logits: torch.Tensor) -> torch.Tensor:
        y = batch["label"]
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        if self.weight <= 0:
            return loss
        if self._features is None or "boxes" not in batch:
            raise RuntimeError("TokenLoss needs the final features (hook) and the boxes in the batch")
        dense, grid, cell = self.dense_logits(tuple(batch["image"].shape[-2:]))
        inside = inside_box_tokens(batch["boxes"], grid, cell, dense.device)
        target = y[:, None].expand_as(inside).clone()
        target[~inside] = self.num_categories if self.background else -100
        tok = F.cross_entropy(dense.float().reshape(-1, dense.shape[-1]), target.reshape(-1), ignore_index=-100)
        self._features = None
        return loss + self.weight * tok


@dataclass
class BackboneRecipe:
    """How one backbone is pretrained (all fields go to the manifest)."""

    model: str
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adamw"  # from scratch: AdamW (SGD at the fine-tuning LRs does not get a tiny ViT going)
    weight_decay: float = 0.05
    augreg: str = "minimal"
    token_weight: float = 0.0  # the dense token/location loss (ViT tokens, ResNet feature-map cells)
    background_class: bool = False  # add a background output for the token loss
    seed: int = 0
    #: fresh images per epoch from :class:`glsim_core.data.corpus_stream.CorpusStreamData` (None: the fixed corpus
    #: on disk, ``CorpusSpec.train_size`` images, each seen once per epoch)
    images_per_epoch: int | None = None
    val_size: int = 2000  # fixed validation images of the stream

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PretrainRecipe:
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    backbones: tuple[BackboneRecipe, ...] = (
        # 30 epochs x 32,000 fresh images = 30,000 steps of 32 (see the module docstring for why).
        BackboneRecipe("vit_nano_convstem_patch8_64", epochs=30, batch_size=32, lr=2e-3, augreg="weak",
                       token_weight=1.0, background_class=True, images_per_epoch=32_000),
        BackboneRecipe("resnet_nano_64", epochs=3, token_weight=1.0, background_class=True),
    )
    half: bool = False  # store fp16 weights

    def to_dict(self) -> dict[str, Any]:
        return {"corpus": self.corpus.to_dict(), "backbones": [b.to_dict() for b in self.backbones],
                "half": self.half}


DEFAULT_RECIPE = PretrainRecipe()


def _train_one(recipe: BackboneRecipe, corpus_path: Path | None, out_dir: Path, work_dir: Path, progress: bool,
               max_train_samples: int | None, num_workers: int, corpus_spec: CorpusSpec,
               resume: bool = False) -> dict[str, Any]:
    stream = recipe.images_per_epoch is not None
    config = TrainConfig(model=recipe.model, dataset="corpus-stream" if stream else str(corpus_path), img_size=64,
                         augreg=recipe.augreg, train_split="train", eval_split="val", epochs=recipe.epochs,
                         batch_size=recipe.batch_size, lr=recipe.lr, optimizer=recipe.optimizer,
                         weight_decay=recipe.weight_decay, min_lr=min(1e-5, recipe.lr / 10), seed=recipe.seed,
                         out_dir=str(work_dir / recipe.model), progress=progress, resume=resume,
                         max_train_samples=max_train_samples, num_workers=num_workers, pretrained=False)
    if stream:
        mean, std, interpolation = normalization_for(recipe.model)
        data = CorpusStreamData(corpus_spec, images_per_epoch=max_train_samples or recipe.images_per_epoch,
                                val_size=recipe.val_size, augreg=recipe.augreg, mean=mean, std=std,
                                interpolation=interpolation, progress=progress)
    else:
        data = load_image_dataset(corpus_path, img_size=64, augreg=recipe.augreg, model=recipe.model,
                                  max_samples={"train": max_train_samples} if max_train_samples else None)
    num_categories = data.num_classes
    num_out = num_categories + (1 if recipe.background_class else 0)
    model = create_model(recipe.model, num_classes=num_out)
    loss_fn = None
    if recipe.token_weight > 0:
        loss_fn = TokenLoss(model, num_categories, weight=recipe.token_weight, background=recipe.background_class,
                            label_smoothing=config.effective_label_smoothing)
    start = time.perf_counter()
    result = fit(config, model=model, data=data, loss_fn=loss_fn)
    seconds = time.perf_counter() - start
    if loss_fn is not None:
        loss_fn.remove()
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    target = out_dir / SHIPPED.get(recipe.model, {}).get("file", f"{recipe.model}.corpus.pth")
    return {"state": state, "target": target, "seconds": seconds, "metrics": result.metrics,
            "history": result.history, "num_outputs": num_out}


def pretrain_backbones(recipe: PretrainRecipe = DEFAULT_RECIPE, out_dir: str | Path | None = None,
                       models: Sequence[str] | None = None, progress: bool = True,
                       max_train_samples: int | None = None, num_workers: int = 0,
                       work_dir: str | Path | None = None, command: str | None = None,
                       corpus_dir: str | Path | None = None, resume: bool = False) -> dict[str, Any]:
    """Generate the corpus (if needed), pretrain the backbones, write weights + ``manifest.json``; return it.

    ``models`` restricts to some backbones (the manifest keeps the other entries); ``max_train_samples`` is for
    quick checks only (the manifest records it; for a streaming backbone it is the number of images per epoch).
    ``resume=True`` continues each backbone from its last epoch checkpoint in ``work_dir`` (exactly: the stream's
    images are a function of (seed, epoch, index)).
    """

    out = Path(out_dir) if out_dir is not None else data_dir() / PRETRAINED_DIR
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir is not None else build_dir() / "pretrain"
    chosen = [b for b in recipe.backbones if models is None or b.model in models]
    if not chosen:
        raise ValueError(f"no backbone selected; the recipe has {[b.model for b in recipe.backbones]}")
    t0 = time.perf_counter()
    corpus_path = None  # the fixed corpus on disk is drawn only for backbones that do not stream fresh images
    if any(b.images_per_epoch is None for b in chosen):
        corpus_path = ensure_corpus(recipe.corpus, corpus_dir, progress=progress)
    corpus_seconds = time.perf_counter() - t0
    manifest_file = out / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    manifest.setdefault("backbones", {})
    for b in chosen:
        expected = SHIPPED.get(b.model, {}).get("num_classes")
        num_out = len(CORPUS_CATEGORIES) + (1 if b.background_class else 0)
        if expected is not None and expected != num_out:
            raise ValueError(f"{b.model}: the recipe gives {num_out} outputs but glsim_core/models/shipped.py "
                             f"declares {expected}; the two must agree (timm drops a head of another size)")
        res = _train_one(b, corpus_path, out, work, progress, max_train_samples, num_workers, recipe.corpus,
                         resume=resume)
        state = {k: (v.half() if recipe.half and v.is_floating_point() else v) for k, v in res["state"].items()}
        torch.save(state, res["target"])
        m = res["metrics"]
        manifest["backbones"][b.model] = {
            "file": res["target"].name, "sha256": sha256(res["target"]),
            "bytes": res["target"].stat().st_size, "dtype": "float16" if recipe.half else "float32",
            "recipe": b.to_dict(), "num_outputs": res["num_outputs"],
            "outputs": list(CORPUS_CATEGORIES) + (["background"] if b.background_class else []),
            "corpus_val_top1": m["top1"], "corpus_val_loss": m["eval_loss"],
            "history": [{k: v for k, v in row.items()} for row in res["history"]],
            "train_seconds": round(res["seconds"], 1), "max_train_samples": max_train_samples,
        }
    manifest.update({
        "command": command or "python -m glsim_core pretrain",
        "corpus": recipe.corpus.to_dict(),
        "corpus_generator": "glsim_core.data.synthetic.generate_corpus",
        "corpus_seconds": round(corpus_seconds, 1),
        "total_seconds": round(time.perf_counter() - t0, 1),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
                    "threads": torch.get_num_threads()},
        "objective": "CLS cross-entropy; ViT: + token-level cross-entropy (object tokens -> category, other tokens "
                     "-> background) with the shared classifier, see glsim_core.train.pretrain",
    })

    manifest_file.write_text(json.dumps(_jsonable(manifest), indent=2))
    return manifest
