"""Training throughput of the engine against a bare timm training loop on the same model and data.

:func:`training_throughput` times, in the same process and alternately (``repeats`` rounds, so a shared machine's
load hits both alike), (a) :func:`glsim_core.train.fit` for one epoch over ``batches`` batches and (b) a bare loop:
the same timm model, the same DataLoader over the same HF split with the same transforms, the same optimizer
(SGD or AdamW) and cross-entropy, ``forward -> loss -> backward -> step`` and nothing else (no schedule, clipping,
autocast context, NaN check, metric bookkeeping or checkpoint). Both report training images per second (data
loading included); the engine's figure is its history's ``img_per_s`` (the epoch's training loop only, not its
evaluation).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.hf import collate_images
from ..runtime import get_device, seed_everything
from .config import TrainConfig
from .engine import build_model, fit, load_data

__all__ = ["training_throughput", "bare_training_loop"]


def bare_training_loop(config: TrainConfig, data, batches: int) -> float:
    """Images/s of a bare timm loop (forward, cross-entropy, backward, optimizer step) over ``batches`` batches."""
    device = get_device(config.device)
    seed_everything(config.seed, deterministic=config.deterministic)
    model = build_model(config, data.num_classes).to(device).train()
    if config.optimizer == "adamw":  # the same optimizer as the engine's run, nothing else
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    ds = data.torch_split(config.train_split, train=True, with_boxes=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=config.batch_size, shuffle=True, collate_fn=collate_images,
                                         num_workers=config.num_workers,
                                         generator=torch.Generator().manual_seed(config.seed))
    seen, start = 0, time.perf_counter()
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        x, y = batch["image"].to(device), batch["label"].to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += y.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - start)


def training_throughput(config: TrainConfig, batches: int = 20, repeats: int = 3) -> dict[str, Any]:
    """``{"engine": [img/s per round], "bare": [...], "engine_median", "bare_median", "ratio"}`` (ratio = engine /
    bare; 1.0 means the engine adds no overhead)."""
    if batches < 1 or repeats < 1:
        raise ValueError("batches and repeats must be >= 1")
    n = batches * config.batch_size
    cfg = config.replace(epochs=1, max_train_samples=n, max_eval_samples=config.batch_size, out_dir=None,
                         progress=False, train_split="train", eval_split="val", resume=False)
    data = load_data(cfg)
    engine, bare = [], []
    for _ in range(repeats):
        engine.append(float(fit(cfg, data=data).history[0]["img_per_s"]))
        bare.append(bare_training_loop(cfg, data, batches))
    e, b = float(np.median(engine)), float(np.median(bare))
    return {"engine": engine, "bare": bare, "engine_median": e, "bare_median": b, "ratio": e / b,
            "batches": batches, "batch_size": config.batch_size, "model": config.model,
            "device": str(get_device(config.device)), "threads": torch.get_num_threads()}
