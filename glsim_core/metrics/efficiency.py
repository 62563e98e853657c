"""Inference efficiency as GLSim §5.3 / appendix D.1 measures it: throughput at the best batch size and its memory.

:func:`benchmark_inference` times the forward pass (no grad, the model in eval mode) at batch sizes 1, 2, 4, ...,
256, keeps the batch size with the highest images/s, and reports the peak memory of that run: CUDA
``max_memory_allocated`` on a GPU; on CPU the peak **resident set size** of the process (sampled every few ms by a
thread while the timed loop runs) and its increase over the resident size before the run. Autocast (bf16 where
supported) is used on GPUs when ``amp=True``, as in the papers' mixed-precision inference.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..runtime import autocast, get_device

__all__ = ["benchmark_inference", "peak_memory", "DEFAULT_BATCH_SIZES"]

DEFAULT_BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _RssSampler:
    """Sample the process' resident set size in a background thread; keep the maximum."""

    def __init__(self, interval: float = 0.002):
        import psutil

        self.proc, self.interval = psutil.Process(), interval
        self.peak = self.start_rss = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def peak_memory(device: torch.device) -> dict[str, float]:
    """Current peak memory counters: CUDA max allocated (MiB) or the process RSS (MiB)."""
    if device.type == "cuda":
        return {"peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    import psutil

    return {"peak_mem_mib": psutil.Process().memory_info().rss / 2**20}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@torch.no_grad()
def benchmark_inference(model: nn.Module, img_size: int | Sequence[int] = 224,
                        batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, device: str | torch.device | None = None,
                        warmup: int = 2, iters: int = 5, min_seconds: float = 0.2, amp: bool = True,
                        max_seconds: float | None = None, in_chans: int = 3) -> dict[str, Any]:
    """Throughput (images/s) and peak memory per batch size; ``best`` is the batch size with the most images/s.

    Each batch size runs ``warmup`` untimed passes, then at least ``iters`` timed passes and ``min_seconds``.
    Stops early at an out-of-memory error or when ``max_seconds`` (total) is exceeded.
    Returns ``{"rows": [...], "best": row, "device": str}``; a row has ``batch_size``, ``img_per_s``,
    ``ms_per_batch``, ``peak_mem_mib`` (and on CPU ``rss_increase_mib``).
    """
    device = get_device(device)
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise ValueError(f"batch_sizes must be positive integers, got {batch_sizes}")
    was_training = model.training
    model = model.to(device).eval()
    rows: list[dict[str, Any]] = []
    start_all = time.perf_counter()
    try:
        for bs in batch_sizes:
            x = torch.randn(int(bs), in_chans, *size, device=device)
            try:
                with autocast(device, enabled=amp):
                    for _ in range(warmup):
                        model(x)
                _sync(device)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                sampler = _RssSampler() if device.type == "cpu" else None
                n, t0 = 0, time.perf_counter()
                ctx = sampler if sampler is not None else _Null()
                with ctx, autocast(device, enabled=amp):
                    while n < iters or time.perf_counter() - t0 < min_seconds:
                        model(x)
                        n += 1
                    _sync(device)
                elapsed = time.perf_counter() - t0
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                break
            row = {"batch_size": int(bs), "img_per_s": n * bs / elapsed, "ms_per_batch": 1000 * elapsed / n}
            if device.type == "cuda":
                row["peak_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            elif sampler is not None:
                row["peak_mem_mib"] = sampler.peak / 2**20
                row["rss_increase_mib"] = max(0.0, (sampler.peak - sampler.start_rss) / 2**20)
            rows.append(row)
            if max_seconds is not None and time.perf_counter() - start_all > max_seconds:
                break
    finally:
        model.train(was_training)
    if not rows:
        raise RuntimeError("no batch size could run (out of memory even at the smallest batch size?)")
    best = max(rows, key=lambda r: r["img_per_s"])
    return {"rows": rows, "best": best, "device": str(device)}


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
