"""Accuracy against cost (GLSim §5.3, appendix D.1, Figures 4 and 7): one table per set of models.

* :func:`efficiency_table` - for each model: parameters, FLOPs of one image (``torch.utils.flop_counter``, 2 per
  multiply-add), throughput at the best batch size and the peak memory of that run
  (:func:`glsim_core.metrics.efficiency.benchmark_inference`), beside its accuracy. The FLOPs and parameters are
  deterministic; the timings depend on the machine and its load (report the device with them).
* :func:`eval_top1` - top-1 of a model on (a seeded prefix of) a dataset's evaluation split, e.g. for a GLSim model
  whose selector was swapped after training.
* :func:`selection_scaling` - how each selection mechanism's cost grows with the image size for one backbone:
  the analytic count of the authors' convention (:func:`glsim_core.selection.dfsm_flops`), the FLOPs torch counts on
  this project's implementation (:func:`~glsim_core.selection.measured_dfsm_flops`, on the meta device) and, if
  asked, the wall clock (:func:`~glsim_core.selection.time_dfsm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .efficiency import benchmark_inference
from .flops import count_parameters, measure_flops

__all__ = ["efficiency_table", "eval_top1", "selection_scaling", "model_flops"]


def model_flops(model: nn.Module, img_size: int, in_chans: int = 3) -> int:
    """FLOPs of one forward pass of one image (torch's count: 2 per multiply-add; element-wise ops not counted),
    on a zero image on the model's device (FLOPs do not depend on the values)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return measure_flops(model, torch.zeros(1, in_chans, img_size, img_size, device=device))
    finally:
        model.train(was_training)


def efficiency_table(models: Mapping[str, nn.Module], img_size: int, accuracy: Mapping[str, float] | None = None,
                     batch_sizes: Sequence[int] = (1, 8, 32, 128), device: str | torch.device | None = None,
                     timed: bool = True, num_threads: int | None = None, amp: bool = True,
                     max_seconds: float | None = 30.0, progress: bool = True):
    """DataFrame, one row per model: ``params_m``, ``gflops`` (one image), ``top1`` (from ``accuracy``), and with
    ``timed``: ``best_batch``, ``img_per_s``, ``ms_per_image``, ``peak_mem_mib`` (CUDA max allocated, or the CPU
    process' peak RSS), ``mem_mib`` (what the run itself needed: CUDA's peak allocation, or on a CPU the increase
    of the peak RSS over the RSS before the run) and ``device``. ``num_threads``: torch CPU threads while timing
    (1 = stable on a shared machine)."""
    import pandas as pd
    from tqdm.auto import tqdm

    from ..runtime import get_device
    from .timing import torch_threads

    device = get_device(device)
    rows = []
    for name, model in tqdm(list(models.items()), desc="models", disable=not progress, leave=False):
        model = model.to(device).eval()
        row: dict[str, Any] = dict(model=name, params_m=count_parameters(model) / 1e6,
                                   gflops=model_flops(model, img_size) / 1e9)
        row["top1"] = None if accuracy is None else accuracy.get(name)
        if timed:
            with torch_threads(num_threads if device.type == "cpu" else None):
                bench = benchmark_inference(model, img_size, batch_sizes, device, amp=amp, max_seconds=max_seconds)
            best = bench["best"]
            row.update(best_batch=best["batch_size"], img_per_s=best["img_per_s"],
                       ms_per_image=best["ms_per_batch"] / best["batch_size"],
                       peak_mem_mib=best.get("peak_mem_mib"),
                       mem_mib=best.get("rss_increase_mib", best.get("peak_mem_mib")), device=bench["device"])
        rows.append(row)
    return pd.DataFrame(rows)


@torch.no_grad()
def eval_top1(model: nn.Module, data: Any, split: str = "test", max_samples: int | None = None,
              batch_size: int = 128) -> float:
    """Top-1 (%) of ``model`` on the first ``max_samples`` images of ``data``'s ``split`` (eval transforms)."""
    from ..data.hf import collate_images
    from ..train.engine import evaluate

    ds = data.torch_split(split, train=False, with_boxes=False)
    n = len(ds) if max_samples is None else min(len(ds), int(max_samples))
    subset = torch.utils.data.Subset(ds, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False, collate_fn=collate_images)
    device = next(model.parameters()).device
    return float(evaluate(model, loader, data.num_classes, device)["top1"])


def selection_scaling(model: str | nn.Module, img_sizes: Sequence[int],
                      methods: Sequence[str] = ("psm", "rollout", "maws", "gls"), timed: bool = False,
                      repeats: int = 3, num_threads: int | None = 1, max_mflops: float = 2e4,
                      device: str | torch.device = "cpu", progress: bool = False):
    """DataFrame (method, img_size, tokens, mflops (analytic), measured_mflops, backbone_mflops, percent and, with
    ``timed``, seconds) of each selection mechanism on ``model``'s ViT at each image size."""
    import pandas as pd

    from ..selection.flops import dfsm_flops, measured_dfsm_flops, time_dfsm, vit_spec

    spec = vit_spec(model)
    rows = []
    for size in img_sizes:
        for m in methods:
            a = dfsm_flops(m, spec, int(size))
            meas = measured_dfsm_flops(m, spec, int(size))
            rows.append(dict(method=m, img_size=int(size), tokens=a["tokens"], mflops=a["mflops"],
                             measured_mflops=meas["measured_mflops"], backbone_mflops=a["backbone_mflops"],
                             percent=a["percent"]))
    table = pd.DataFrame(rows)
    if timed:
        times = time_dfsm(spec, img_sizes, methods, repeats=repeats, max_mflops=max_mflops, device=device,
                          num_threads=num_threads, progress=progress)
        table = table.merge(times[["method", "img_size", "seconds", "skipped"]], on=["method", "img_size"])
    return table
