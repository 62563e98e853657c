"""The training engine: one :func:`fit` for notebooks, the CLI, sweeps and ``torchrun``.

The recipe is GLSim §4 / appendix C (see :mod:`glsim_core.train.config`): SGD (momentum 0.9, Nesterov, weight decay
0), per-step cosine schedule with linear warm-up, label smoothing and stochastic depth from the AugReg level,
gradient clipping at 1.0, autocast on GPUs (bf16 where supported, fp16 with a gradient scaler otherwise).

The engine is model-agnostic: anything whose forward returns logits, built by
``glsim_core.models.create_model(config.model, pretrained=..., pooling=..., num_classes=K, ...)`` or passed in.

Outputs in ``config.out_dir``: ``config.json``; ``history.json`` / ``history.csv`` (one row per epoch: train loss
and top-1, eval loss and top-1, learning rate, training images/s, seconds); ``checkpoint.pt`` after every epoch
(model, optimizer, scaler, epoch, step, history, config, class names: tensors and plain data only); ``metrics.json``
(final top-1, per-class accuracy, confusion matrix, history, config). ``resume=True`` continues from
``checkpoint.pt``: every epoch re-seeds all random generators from ``(seed, epoch)`` and the data order comes from a
generator seeded the same way, so on CPU a resumed run ends with exactly the metrics of an uninterrupted one. Before
anything is written, a resume compares the checkpoint's config with the requested one: only
:data:`RESUME_MAY_CHANGE` may differ (anything else is an error listing the fields), and the data must have the
checkpoint's classes. A non-finite training loss, eval loss or weight stops the run with :class:`NonFiniteLossError`
before that epoch is saved: the checkpoint on disk is always the last good epoch's. Checkpoints hold only tensors
and plain data and are read with ``weights_only=True`` (:func:`glsim_core.safety.load_plain`).

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in ``DistributedDataParallel`` (nccl on
GPUs, gloo on CPU), training uses a ``DistributedSampler`` (``batch_size`` is per process), evaluation shards the
eval split across ranks and sums the confusion matrices, and only rank 0 prints, writes files and saves checkpoints.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis.accuracy import accuracy_from_confusion, per_class_accuracy
from ..data.hf import ImageData, collate_images, load_image_dataset
from ..data.synthetic import BenchmarkSpec, _cached_spec, default_benchmark_path, ensure_benchmark
from ..data.transforms import normalization_for
from ..models import create_model
from ..models.backbones import drop_path_rates, set_drop_path
from ..models.glsim import GLSIM_BACKBONES
from ..notebook import _jsonable
from ..runtime import amp_dtype, autocast, get_device, hub_offline, seed_everything
from ..safety import CheckpointError, ensure_writable_dir, load_plain
from ..selection.gls import paper_top_o
from ..weights.shipped import SHIPPED
from .config import TrainConfig

__all__ = ["fit", "evaluate", "FitResult", "NonFiniteLossError", "build_model", "model_kwargs_for", "weights_of",
           "align_normalization", "load_data", "lr_at", "load_checkpoint", "load_trained_model", "DistInfo",
           "init_distributed", "CHECKPOINT", "METRICS", "RESUME_MAY_CHANGE", "resume_conflicts", "eval_top1"]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"
#: Config fields a resume may change: they do not alter what the finished epochs computed. ``epochs`` extends (or
#: shortens) the run; the cosine schedule is then recomputed for the new total, so the rest differs from a run
#: planned with that many epochs from the start.
RESUME_MAY_CHANGE = ("epochs", "resume", "progress", "num_workers", "device", "out_dir", "eval_every",
                     "save_checkpoints", "name")
_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "step", "history", "config", "num_classes")


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint was kept."""


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device | None = None) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``RANK``/``WORLD_SIZE``); a no-op for one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, False)
    use_cuda = torch.cuda.is_available() and (device is None or device.type == "cuda")
    if use_cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank, world, local, True)


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (unwrapped), the per-epoch history and the final metrics."""

    model: nn.Module
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    config: TrainConfig
    out_dir: Path | None = None
    data: ImageData | None = field(default=None, repr=False)

    @property
    def top1(self) -> float:
        return float(self.metrics["top1"])


# --------------------------------------------------------------------------------------------------- building blocks
def lr_at(step: int, total_steps: int, lr: float, warmup_steps: int, warmup_lr: float = 1e-6,
          min_lr: float = 1e-5) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warm-up from ``warmup_lr`` to ``lr`` over
    ``warmup_steps``, then cosine annealing to ``min_lr`` at ``total_steps`` (GLSim appendix C)."""
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_lr + (lr - warmup_lr) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    t = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))


def _default_benchmark_if_missing(dataset: str, progress: bool) -> None:
    if Path(dataset).resolve() != default_benchmark_path().resolve():
        return
    if not Path(dataset).exists():
        print(f"generating the offline benchmark in {dataset} (first use; `python -m glsim_core data benchmark`)")
    elif _cached_spec(Path(dataset)) != json.loads(json.dumps(BenchmarkSpec().to_dict())):
        print(f"regenerating the offline benchmark in {dataset}: the cached copy was made with other settings")
    else:
        return
    ensure_benchmark(progress=progress)


def load_data(config: TrainConfig) -> ImageData:
    """The dataset of a config, with the model's normalisation (generates the offline benchmark if it is the
    default one and missing)."""
    _default_benchmark_if_missing(config.dataset, config.progress)

    limits = {}
    if config.max_train_samples:
        limits[config.train_split] = config.max_train_samples
    if config.max_eval_samples:
        limits[config.eval_split] = config.max_eval_samples
    norm_source: Any = config.model
    try:
        normalization_for(norm_source)
    except ValueError:
        norm_source = None  # a model name timm does not know (e.g. built by the caller): ImageNet statistics
    return load_image_dataset(
        config.dataset, config.dataset_config, img_size=config.img_size, augreg=config.augreg, model=norm_source,
        split_seed=config.split_seed, val_fraction=config.val_fraction, max_samples=limits or None,
        on_error=config.on_bad_image)


def _is_glsim_name(name: str) -> bool:
    return name.split(".", 1)[0] in GLSIM_BACKBONES


def model_kwargs_for(config: TrainConfig, num_classes: int) -> dict[str, Any]:
    """The keyword arguments :func:`build_model` gives ``create_model``: ``model_kwargs`` plus the resolved ones.

    ``drop_path_rate`` (the AugReg level's unless set) when > 0; for GLSim names always ``img_size`` (so 448-px
    runs build a 448-px encoder), ``drop_path_schedule`` and ``top_o`` (unless set: GLSim §4's rule,
    :func:`glsim_core.profiles.paper_top_o`: 8, 16 for Dogs, doubled at 448 px); for other models ``img_size`` only
    when it differs from the model's default input size (CNNs take none).
    """
    import timm

    kwargs = dict(config.model_kwargs)
    kwargs["num_classes"] = num_classes
    dpr = config.effective_drop_path_rate
    if dpr > 0:
        kwargs.setdefault("drop_path_rate", dpr)
    if _is_glsim_name(config.model):
        kwargs.setdefault("img_size", config.img_size)
        kwargs.setdefault("drop_path_schedule", config.drop_path_schedule)
        if kwargs.get("top_o") is None:
            kwargs["top_o"] = paper_top_o(kwargs["img_size"], config.dataset)
        return kwargs
    try:
        cfg = timm.models.get_pretrained_cfg(config.model)
        default_size = cfg.input_size[-1] if cfg is not None and cfg.input_size else None
    except Exception:
        default_size = None
    if default_size is not None and default_size != config.img_size:
        kwargs.setdefault("img_size", config.img_size)
    return kwargs


def _apply_drop_path_schedule(model: nn.Module, config: TrainConfig, kwargs: dict[str, Any]) -> None:
    """GLSim builds its own schedule; a plain timm ViT gets ``config.drop_path_schedule`` over its blocks (timm
    itself always decays linearly). Models without ViT blocks (CNNs) keep timm's own rule."""

    rate = float(kwargs.get("drop_path_rate", 0.0) or 0.0)
    blocks = getattr(model, "blocks", None)
    if _is_glsim_name(config.model) or rate <= 0 or blocks is None:
        return
    blocks = list(blocks)
    if blocks and all(hasattr(b, "drop_path1") for b in blocks):
        set_drop_path(blocks, drop_path_rates(rate, len(blocks), config.drop_path_schedule))


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """``glsim_core.models.create_model`` with the config's options (:func:`model_kwargs_for`) and its
    stochastic-depth schedule."""

    kwargs = model_kwargs_for(config, num_classes)
    if config.pooling not in (None, "default"):
        if _is_glsim_name(config.model):  # GLSim pools with its own SimPool (SimPool's options in model_kwargs)
            if config.pooling != "simpool":
                raise ValueError(f"GLSim pools with its CLS token or with SimPool: pooling must be None or 'simpool', "
                                 f"got {config.pooling!r}")
            kwargs.setdefault("pool", "simpool")
        else:
            kwargs["pooling"] = config.pooling
    try:
        try:
            model = create_model(config.model, pretrained=config.pretrained, **kwargs)
        except TypeError as exc:  # size-agnostic architectures (CNNs) take no img_size
            if "img_size" not in str(exc) or "img_size" in config.model_kwargs:
                raise
            kwargs.pop("img_size")
            model = create_model(config.model, pretrained=config.pretrained, **kwargs)
    except OSError as exc:
        if config.pretrained and _is_download_error(exc):
            raise ValueError(_no_download_message(config.model, exc)) from None
        raise
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise ValueError(f"unknown model {config.model!r}: {exc}") from None
        if config.pretrained and "size mismatch" in str(exc):
            raise ValueError(f"the pretrained weights of {config.model!r} do not fit this architecture "
                             f"(model_kwargs {config.model_kwargs}); train it from scratch with pretrained=False "
                             "(--no-pretrained) or drop the architecture options") from None
        raise
    except TypeError as exc:
        raise ValueError(f"model {config.model!r} does not accept these options {sorted(kwargs)}: {exc}") from None
    _apply_drop_path_schedule(model, config, kwargs)
    return model


def weights_of(model: nn.Module, pretrained: bool) -> dict[str, Any]:
    """Which pretrained weights a model (GLSim: its backbone) is built for - timm name and tag, e.g.
    ``vit_base_patch16_224.orig_in21k`` - and whether they were loaded (``pretrained``); recorded with every run."""
    name = getattr(model, "backbone_name", None)
    if name is None:
        cfg = dict(getattr(model, "pretrained_cfg", None) or {})
        arch, tag = cfg.get("architecture"), cfg.get("tag")
        name = f"{arch}.{tag}" if arch and tag else arch
    return {"name": name, "loaded": bool(pretrained)}


def align_normalization(data: ImageData, model: nn.Module) -> None:
    """Normalise ``data`` with the model's own pretrained config (mean/std/interpolation), as every command does:
    ``fit`` and ``eval`` then feed a model identical inputs."""

    norm = normalization_for(model)
    if norm != (tuple(data.mean), tuple(data.std), data.interpolation):
        data.mean, data.std, data.interpolation = norm
        data._cache.clear()


def _is_download_error(exc: BaseException) -> bool:
    """A hub/url download that failed (offline, no network), as opposed to this project's own file errors."""
    module = type(exc).__module__ or ""
    return module.startswith(("huggingface_hub", "requests", "urllib", "http")) or isinstance(
        exc, (ConnectionError, TimeoutError)) or "Internet connection" in str(exc)


def _no_download_message(model: str, exc: BaseException) -> str:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(model)
        source = cfg.hf_hub_id or cfg.url or "timm" if cfg is not None else "timm"
    except Exception:
        source = "timm"
    offline = "offline mode (HF_HUB_OFFLINE=1)" if hub_offline() else "no network"
    return (f"the pretrained weights of {model!r} ({source}) are not shipped with this repository and must be "
            f"downloaded, which needs the network ({offline}: {type(exc).__name__}). Train from random "
            f"initialisation with --no-pretrained (pretrained=False), pick a model with shipped weights "
            f"({', '.join(sorted(SHIPPED))}), or download the weights once on a machine with network")


def resume_conflicts(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """``"field: saved -> requested"`` for every field outside :data:`RESUME_MAY_CHANGE` that differs."""

    now = json.loads(config.to_json())
    old = json.loads(json.dumps(_jsonable(saved)))
    defaults = json.loads(TrainConfig().to_json())
    return [f"{k}: {old.get(k, defaults.get(k))!r} -> {v!r}" for k, v in now.items()
            if k not in RESUME_MAY_CHANGE and old.get(k, defaults.get(k)) != v]


def _non_finite_weights(model: nn.Module) -> list[str]:
    return [k for k, v in model.state_dict().items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**31)


def _seed_epoch(seed: int, epoch: int) -> int:
    s = _epoch_seed(seed, epoch)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) \
        else model


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=2))
    tmp.replace(path)


def _write_history(out: Path, history: list[dict[str, Any]]) -> None:
    _write_json(out / "history.json", history)
    if history:
        keys = list(history[0])
        for row in history[1:]:
            keys += [k for k in row if k not in keys]
        with open(out / "history.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint written by :func:`fit` (a dict with ``model``, ``optimizer``, ``epoch``, ``config`` ...), read
    with ``weights_only=True``; a corrupt, incomplete or non-plain file is a one-line ``CheckpointError``."""

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train first (`python -m glsim_core train ... --out DIR`)")
    ckpt = load_plain(path, "checkpoint", "delete it or retrain", map_location)
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt] if isinstance(ckpt, dict) else list(_CHECKPOINT_KEYS)
    missing += [k for k in ("model", "config", "optimizer") if k not in missing and not isinstance(ckpt[k], dict)]
    if missing:
        raise CheckpointError(f"checkpoint {path} is corrupt or incomplete (it lacks {missing}); delete it or retrain")
    return ckpt


def load_trained_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainConfig, dict]:
    """Rebuild the model of a checkpoint (or run directory) and load its weights: ``(model, config, checkpoint)``."""

    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict({**ckpt["config"], "pretrained": False})
    model = build_model(config, int(ckpt["num_classes"]))
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path}: its weights do not fit its own config "
                              f"({str(exc).splitlines()[0][:160]}); it is corrupt, delete it or retrain") from None
    return model.to(get_device(device)).eval(), config, ckpt


# --------------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, num_classes: int, device: torch.device | str | None = None,
             amp: bool = True, label_smoothing: float = 0.0, progress: bool = False,
             dist_info: DistInfo | None = None, desc: str = "eval") -> dict[str, Any]:
    """Top-1, mean loss, per-class accuracy and confusion matrix of ``model`` over ``loader`` (summed over ranks)."""
    from tqdm.auto import tqdm

    device = get_device(device)
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    skipped = 0
    try:
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
            skipped += int(batch.get("skipped", 0))
            if batch["image"].numel() == 0:
                continue
            x = batch["image"].to(device, non_blocking=True)
            y = batch["label"].to(device, non_blocking=True)
            with autocast(device, enabled=amp):
                logits = model(x)
            logits = logits.float()
            loss_sum += F.cross_entropy(logits, y, reduction="sum", label_smoothing=label_smoothing).double()
            pred = logits[:, :num_classes].argmax(dim=1)  # extra outputs (a background class) never win
            confusion += torch.bincount(y * num_classes + pred, minlength=num_classes ** 2).reshape(
                num_classes, num_classes).double()
    finally:
        model.train(was_training)
    if dist_info is not None and dist_info.enabled:
        import torch.distributed as dist

        dist.all_reduce(confusion)
        dist.all_reduce(loss_sum)
    confusion = confusion.cpu().long()
    n = int(confusion.sum())
    if n == 0:
        raise ValueError("the evaluation split produced no examples")
    per_class = per_class_accuracy(confusion)
    return {"top1": accuracy_from_confusion(confusion), "loss": float(loss_sum) / n, "n": n,
            "per_class_accuracy": per_class.tolist(), "confusion_matrix": confusion.tolist(), "skipped": skipped}


@torch.no_grad()
def eval_top1(model: nn.Module, data: ImageData, split: str = "test", max_samples: int | None = None,
              batch_size: int = 128) -> float:
    """Top-1 (%) of ``model`` on the first ``max_samples`` images of ``data``'s ``split`` (eval transforms), e.g. a
    GLSim model whose selector was swapped after training."""
    ds = data.torch_split(split, train=False, with_boxes=False)
    n = len(ds) if max_samples is None else min(len(ds), int(max_samples))
    subset = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate_images)
    device = next(model.parameters()).device
    return float(evaluate(model, loader, data.num_classes, device)["top1"])


class _Shard(torch.utils.data.Sampler):
    """Indices rank::world_size - disjoint eval shards, no padding (exact sums across ranks)."""

    def __init__(self, n: int, rank: int, world: int):
        self.idx = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.idx)

    def __len__(self) -> int:
        return len(self.idx)


# --------------------------------------------------------------------------------------------------- training
def fit(config: TrainConfig, *, model: nn.Module | None = None, data: ImageData | None = None,
        callbacks: Iterable[Callable[[dict[str, Any]], None]] = (),
        loss_fn: Callable[[nn.Module, dict[str, Any], torch.Tensor], torch.Tensor] | None = None) -> FitResult:
    """Train ``config.model`` (or ``model``) on ``config.dataset`` (or ``data``) with the GLSim recipe.

    ``callbacks`` are called on rank 0 with each epoch's history row. ``loss_fn(model, batch, logits)`` replaces the
    cross-entropy (used by the backbone pretraining's token loss); it must return a scalar tensor.
    Returns a :class:`FitResult`; raises :class:`NonFiniteLossError` on a NaN/inf loss.
    """
    from tqdm.auto import tqdm

    config = config.validate()
    device = get_device(config.device)
    dist_info = init_distributed(device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    main = dist_info.is_main
    show = config.progress and main
    out = Path(config.out_dir) if config.out_dir else None
    ckpt_path = out / CHECKPOINT if out is not None else None

    # ---- resume: read and compare the checkpoint before anything is written or loaded
    ckpt: dict[str, Any] | None = None
    if config.resume:
        if ckpt_path is None:
            raise ValueError("resume=True needs out_dir (the checkpoint lives in out_dir/checkpoint.pt)")
        if ckpt_path.is_file():
            ckpt = load_checkpoint(ckpt_path)
            diff = resume_conflicts(ckpt["config"], config)
            if diff:
                raise ValueError(f"cannot resume {ckpt_path}: the requested run differs from the checkpoint's in "
                                 f"{'; '.join(diff)}. Only {', '.join(RESUME_MAY_CHANGE)} may change on resume; "
                                 f"use the original settings or another --out")
    if out is not None and main:
        ensure_writable_dir(out, "output directory")
    seed_everything(config.seed, deterministic=config.deterministic)

    loaded_here = data is None
    data = data if data is not None else load_data(config)
    num_classes = data.num_classes
    if ckpt is not None and (int(ckpt["num_classes"]) != num_classes or
                             list(ckpt.get("class_names") or data.class_names) != list(data.class_names)):
        raise ValueError(f"cannot resume {ckpt_path}: it was trained on {ckpt['num_classes']} classes "
                         f"{list(ckpt.get('class_names') or [])[:10]}, the data now has {num_classes} "
                         f"{list(data.class_names)[:10]}; the dataset changed - use another --out")
    if model is None:
        model = build_model(config, num_classes)
    if loaded_here:  # the built model's own pretrained config is the authority on normalisation
        align_normalization(data, model)
    weights = weights_of(_unwrap(model), config.pretrained)
    model = model.to(device)
    if out is not None and main:
        (out / "config.json").write_text(config.to_json())

    train_ds = data.torch_split(config.train_split, train=True,
                                with_boxes=bool(getattr(loss_fn, "needs_boxes", False)))
    eval_ds = data.torch_split(config.eval_split, train=False, with_boxes=False)
    steps_per_epoch = math.ceil(len(train_ds) / (config.batch_size * dist_info.world_size))
    total_steps = steps_per_epoch * config.epochs
    warmup = config.effective_warmup(total_steps)
    label_smoothing = config.effective_label_smoothing

    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=config.weight_decay)
    use_amp = bool(config.amp) and amp_dtype(device) is not None
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype(device) == torch.float16)
    net: nn.Module = model
    if dist_info.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    # ---- resume
    start_epoch, step, history = 0, 0, []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") is not None:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, step, history = int(ckpt["epoch"]), int(ckpt["step"]), list(ckpt["history"])
        if main:
            print(f"resuming from {ckpt_path} after epoch {start_epoch} (step {step})")
    elif config.resume and main:
        print(f"resume: no checkpoint in {out}, starting from scratch")

    loader_kw = dict(batch_size=config.batch_size, num_workers=config.num_workers, collate_fn=collate_images,
                     pin_memory=device.type == "cuda", persistent_workers=False)
    eval_sampler = _Shard(len(eval_ds), dist_info.rank, dist_info.world_size) if dist_info.enabled else None
    eval_loader = torch.utils.data.DataLoader(eval_ds, shuffle=False, sampler=eval_sampler, **loader_kw)

    def checkpoint(epoch_done: int) -> None:
        if ckpt_path is None or not config.save_checkpoints or not main:
            return
        _atomic_save({"model": _unwrap(net).state_dict(), "optimizer": optimizer.state_dict(),
                      "scaler": scaler.state_dict() if scaler.is_enabled() else None, "epoch": epoch_done,
                      "step": step, "history": history, "config": config.to_dict(), "num_classes": num_classes,
                      "class_names": data.class_names, "model_name": config.model,
                      "weights": weights}, ckpt_path)

    last_eval: dict[str, Any] | None = None
    skipped_total = 0
    t_run = time.perf_counter()
    for epoch in range(start_epoch, config.epochs):
        epoch_seed = _seed_epoch(config.seed, epoch)
        gen = torch.Generator().manual_seed(epoch_seed)
        if hasattr(train_ds, "set_epoch"):  # a stream of fresh images (e.g. the pretraining corpus) draws epoch's own
            train_ds.set_epoch(epoch)
        if dist_info.enabled:
            sampler = torch.utils.data.DistributedSampler(train_ds, num_replicas=dist_info.world_size,
                                                          rank=dist_info.rank, shuffle=True, seed=config.seed,
                                                          drop_last=False)
            sampler.set_epoch(epoch)
            train_loader = torch.utils.data.DataLoader(train_ds, sampler=sampler, generator=gen, **loader_kw)
        else:
            train_loader = torch.utils.data.DataLoader(train_ds, shuffle=True, generator=gen, **loader_kw)
        net.train()
        loss_sum, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, disable=not show)
        for batch in bar:
            skipped_total += int(batch.get("skipped", 0))
            if batch["image"].numel() == 0:
                continue
            x = batch["image"].to(device, non_blocking=True)
            y = batch["label"].to(device, non_blocking=True)
            lr = lr_at(step, total_steps, config.lr, warmup, config.warmup_lr, config.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with autocast(device, enabled=use_amp):
                logits = net(x)
                if loss_fn is None:
                    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
                else:
                    loss = loss_fn(net, {**batch, "image": x, "label": y}, logits)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
                raise NonFiniteLossError(
                    f"non-finite loss ({loss_value}) at epoch {epoch + 1}, step {step} (lr {lr:.3g}): training "
                    f"stopped{where}. Lower --lr, keep --grad-clip, or check the data.")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if config.grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            bs = y.shape[0]
            loss_sum += loss_value * bs
            correct += int((logits.detach()[:, :num_classes].argmax(1) == y).sum())
            seen += bs
            if show:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{lr:.2e}")
        seconds = time.perf_counter() - t0
        stats = torch.tensor([loss_sum, correct, seen], dtype=torch.float64, device=device)
        if dist_info.enabled:
            import torch.distributed as dist

            dist.all_reduce(stats)
        loss_sum, correct, seen = float(stats[0]), int(stats[1]), int(stats[2])
        row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": lr_at(step - 1, total_steps, config.lr,
                                                                            warmup, config.warmup_lr, config.min_lr),
                               "train_loss": loss_sum / max(seen, 1), "train_top1": 100.0 * correct / max(seen, 1),
                               "img_per_s": seen / seconds if seconds > 0 else float("nan"),
                               "epoch_seconds": seconds}
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            last_eval = evaluate(net, eval_loader, num_classes, device, amp=use_amp, label_smoothing=label_smoothing,
                                 progress=False, dist_info=dist_info, desc=config.eval_split)
            row.update({f"{config.eval_split}_loss": last_eval["loss"], f"{config.eval_split}_top1": last_eval["top1"]})
        bad = _non_finite_weights(_unwrap(net))
        losses = {"train loss": row["train_loss"]}
        if f"{config.eval_split}_loss" in row:
            losses[f"{config.eval_split} loss"] = row[f"{config.eval_split}_loss"]
        if bad or not all(math.isfinite(v) for v in losses.values()):
            what = (f"non-finite weights ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''})" if bad else
                    "non-finite loss (" + ", ".join(f"{k} {v}" for k, v in losses.items()) + ")")
            where = f"; the last good checkpoint is {ckpt_path}" if ckpt_path and ckpt_path.exists() else ""
            raise NonFiniteLossError(f"{what} after epoch {epoch + 1}: the run diverged and this epoch was not "
                                     f"saved{where}. Lower --lr, keep --grad-clip, or check the data.")
        history.append(row)
        checkpoint(epoch + 1)
        if main:
            if out is not None:
                _write_history(out, history)
            for cb in callbacks:
                cb(dict(row))
            if config.progress:
                shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
                                  if k not in ("step", "epoch_seconds"))
                print(shown, flush=True)

    if last_eval is None:  # resumed a finished run: evaluate once more
        last_eval = evaluate(net, eval_loader, num_classes, device, amp=use_amp, label_smoothing=label_smoothing,
                             dist_info=dist_info, desc=config.eval_split)
    metrics = {
        "top1": last_eval["top1"], "eval_split": config.eval_split, "eval_loss": last_eval["loss"],
        "n_eval": last_eval["n"], "per_class_accuracy": last_eval["per_class_accuracy"],
        "confusion_matrix": last_eval["confusion_matrix"], "class_names": data.class_names,
        "history": history, "config": config.to_dict(), "model": config.model, "label": config.label,
        "weights": weights, "top_o": getattr(_unwrap(net), "top_o", None),
        "dataset_revision": (data.info or {}).get("revision"),
        "dataset": data.name, "num_classes": num_classes, "train_size": len(train_ds), "eval_size": len(eval_ds),
        "skipped_images": skipped_total + int(last_eval.get("skipped", 0)), "world_size": dist_info.world_size,
        "device": str(device), "seconds": time.perf_counter() - t_run,
        "train_img_per_s": float(np.mean([r["img_per_s"] for r in history])) if history else float("nan"),
    }
    if out is not None and main:
        _write_json(out / METRICS, metrics)
    if dist_info.initialized_here:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return FitResult(model=_unwrap(net), history=history, metrics=metrics, config=config, out_dir=out, data=data)
