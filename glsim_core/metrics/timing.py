"""Inference throughput of models side by side (images per second at a few batch sizes, CPU or GPU).

A small, dependable timer for notebooks and reports: warm-up, then the median of ``repeats`` timed batches, with
``torch.inference_mode`` and device synchronisation. (The training engine's benchmark searches the best batch size
as GLSim D.1 does; this one compares models at the batch sizes you give.)
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

__all__ = ["throughput", "torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily run torch's CPU ops on ``n`` threads (None: leave as is).

    On a machine shared with other jobs, multi-threaded CPU ops wait for each other's threads: a 65x65 matmul that
    takes 20 us on one thread was measured at 15 ms on two busy cores. One thread gives stable, comparable numbers.
    """
    if n is None:
        yield
        return
    if int(n) < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(models: Mapping[str, nn.Module], img_size: int | Sequence[int], batch_sizes: Sequence[int] = (1, 8),
               repeats: int = 3, warmup: int = 1, device: str | torch.device | None = None, seed: int = 0,
               stat: str = "median", num_threads: int | None = None, progress: bool = True):
    """DataFrame (model, batch_size, seconds per batch, images/s) for each model and batch size (eval mode).

    ``stat``: "median" of the timed batches, or "min" (the least disturbed run: better on a shared machine);
    ``num_threads``: torch CPU threads while timing (see :func:`torch_threads`).
    Models are timed in turn, batch size by batch size, so that a load spike hits them alike.
    """
    if stat not in ("median", "min"):
        raise ValueError(f"stat must be 'median' or 'min', got {stat!r}")
    import pandas as pd
    from tqdm.auto import tqdm

    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    rows = []
    jobs = [(name, b) for b in batch_sizes for name in models]
    gen = torch.Generator().manual_seed(seed)
    for name, b in tqdm(jobs, desc="throughput", disable=not progress, leave=False):
        model = models[name]
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        was_training = model.training
        model.eval()
        x = torch.randn(b, 3, h, w, generator=gen).to(dev)
        with torch.inference_mode(), torch_threads(num_threads):
            for _ in range(max(0, warmup)):
                model(x)
            times = []
            for _ in range(max(1, repeats)):
                _sync(dev)
                t0 = time.perf_counter()
                model(x)
                _sync(dev)
                times.append(time.perf_counter() - t0)
        model.train(was_training)
        sec = statistics.median(times) if stat == "median" else min(times)
        rows.append(dict(model=name, batch_size=b, seconds=sec, images_per_s=b / sec))
    return pd.DataFrame(rows).sort_values(["model", "batch_size"], key=lambda c: c.map(
        {n: i for i, n in enumerate(models)}) if c.name == "model" else c, kind="stable").reset_index(drop=True)
