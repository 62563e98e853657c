"""Cost, in one place: analytic FLOPs (the papers' conventions), measured FLOPs (``torch.utils.flop_counter``),
parameters, and time (one timer for every table).

* **Counting** - :func:`measure_flops` (torch's count: 2 FLOPs per multiply-add; ``unit="mac"`` halves it, the
  fvcore convention papers quote as "GFLOPs"), :func:`count_parameters`, :func:`model_flops`, :func:`layer_macs`.
* **Timing** - :func:`time_call` (warm-up, then the seconds of each timed call, device synchronised, on a chosen
  number of CPU threads) serves :func:`throughput` (models side by side), :func:`benchmark_inference` (GLSim D.1:
  throughput at the best batch size and its peak memory) and :func:`time_dfsm` (the selection mechanisms).
* **GLSim Tables 1, 7, 8** - :func:`dfsm_flops` and friends, below.
* **SimPool Table 8** - :func:`model_cost`, :func:`resource_table` (below).
* **Accuracy against cost** (GLSim §5.3, Figures 4 and 7) - :func:`efficiency_table`, :func:`selection_scaling`.

GLSim Tables 1, 7, 8 (the discriminative feature selection mechanisms, DFSMs).

**Analytic counts** (:func:`dfsm_flops`) follow the conventions of the authors' release, which reproduce every
number of Tables 1, 7 and 8 (ViT B-16, B-14, T-16 at 224/448/768/1024 px). With ``D`` channels, ``H = D/64`` heads
(the models' own head count for the paper's models), ``L`` blocks, patch ``P``:

* tokens ``N = int((S - P)/stride + 1)^2 + 1`` (with the CLS token); ``stride = P`` except for the two methods
  whose models use **overlapping** patches, TransFG's PSM and AF-Trans's SACM: ``stride = P - 4`` (12 for
  P = 16, hence 325 tokens at 224 px).
* a product of two N x N matrices costs ``N * N * (2N - 1)`` FLOPs (N multiplications and N-1 additions each).
* **PSM** (TransFG; its part-selection layer is the last block, so L-1 attention maps, L-2 products, per head):
  ``H * (L - 2) * N^2 (2N - 1)``.
* **Rollout** (RAMS-Trans, DCAL, TPSKG; the release's DCAL variant): per layer a head mean plus identity
  ``H N^2 + N^2``, a normalisation ``N + 1``; then L-1 products: ``L (H N^2 + N^2 + N + 1) + (L - 1) N^2 (2N - 1)``.
* **MAWS** (FFVT; L-1 layers): per layer a softmax over the CLS column of every head ``5 N H``, two head means
  ``2 H``, one elementwise product ``N``: ``(L - 1)(5 N H + 2 H + N)``.
* **SACM** (AF-Trans; overlapping patches): head-wise elementwise products ``L (H - 1) N^2``, a squeeze
  ``N^2 + 1``, an excitation MLP ``2 * 3L`` and the re-weighting ``L (N - 1)``.
* **GLS** (ours): one cosine per patch token, ``D`` products + ``2 (D + 1)`` for the two norms + 1 division:
  ``(3D + 3)(N - 1)``.
* **Backbone** (the release's count for the ViT, 200 classes): patch embedding ``2 (N-1) P^2 3 D`` plus per block
  ``4 N D^2 + 2 N^2 D`` (attention) ``+ 8 N D^2`` (MLP), plus the head ``D * classes``. Note that it counts the
  patch embedding in FLOPs but the blocks in multiply-accumulates; ``measured_backbone_flops`` shows the
  difference from torch's count.

The release rounds MFLOPs to 4 decimals, the backbone's MFLOPs to 2, and the percentage (computed from the rounded
values) to 4; :func:`dfsm_flops` returns those values, and :func:`format_mflops` / :func:`format_percent` print
them the way the paper's tables do.

**Measured** (:func:`measured_dfsm_flops`, :func:`measured_backbone_flops`): ``torch.utils.flop_counter`` run on
this project's implementations (:mod:`glsim_core.selection.attention`, :mod:`~glsim_core.selection.gls`) and on the
timm backbone, on the ``meta`` device (shapes only: free at any image size). Torch counts matmuls/convolutions
only, at 2 FLOPs per multiply-add; elementwise work (softmax, MAWS, normalisation) counts 0. **Timed**
(:func:`time_dfsm`): CPU wall clock of the same implementations on random attention maps.

SimPool Table 8.
:func:`resource_table` builds each model twice (timm default pooling, and SimPool through
:func:`glsim_core.models.heads.create_with_pooling`) with random weights on the ``meta`` device (shapes only: no
memory, no compute, a fraction of a second per model) and measures

* ``params_M``: parameters in millions (:func:`count_parameters`);
* ``gmacs``: multiply-accumulates in billions for one image at 224×224 measured by ``torch.utils.flop_counter``
  (:func:`measure_flops` with ``unit="mac"``: torch counts 2 FLOPs per multiply-add, the
  paper's "GFLOPS" are multiply-accumulates, fvcore-style);
* ``gmacs_layers``: the same count restricted to convolutions and linear layers (aten ``convolution``, ``mm``,
  ``addmm``), leaving out the activation-by-activation products (``bmm``, scaled-dot-product attention).

Why the numbers differ from Table 8 where they do: the paper's GFLOPs for ViT-S (4.24) count only the linear and
convolution layers — that is exactly ``gmacs_layers`` — while torch also counts the attention products QKᵀ and AV
(+0.36 G for ViT-S: 12 blocks × 2 × 197² × 384). For CNNs the two agree; ResNet-50's 4.09 vs the paper's 4.13 is a
counter convention (element-wise ops such as BatchNorm, ReLU and the residual adds are not counted by torch, and
counters differ on them). SimPool's own cost is W_K on every location (p·d² MACs) plus W_Q on one vector (d²) and
two p·d products; on ViT it also removes the CLS token, so every block processes one token less, which
``gmacs_layers`` shows as a net +0.008 G rather than the paper's +0.02 G.

:func:`benchmark_inference` times the forward pass (no grad, the model in eval mode) at batch sizes 1, 2, 4, ...,
256, keeps the batch size with the highest images/s, and reports the peak memory of that run: CUDA
``max_memory_allocated`` on a GPU; on CPU the peak **resident set size** of the process (sampled every few ms by a
thread while the timed loop runs) and its increase over the resident size before the run. Autocast (bf16 where
supported) is used on GPUs when ``amp=True``, as in the papers' mixed-precision inference.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models import create_model
from ..models.backbones import SMALL_VITS
from ..runtime import autocast, get_device
from ..selection.attention import scores_from_attention
from ..selection.gls import global_local_similarity

__all__ = [
    # counting
    "measure_flops", "count_parameters", "model_flops", "layer_macs",
    # timing
    "time_call", "torch_threads", "throughput", "benchmark_inference", "peak_memory", "DEFAULT_BATCH_SIZES",
    # GLSim Tables 1, 7, 8
    "DFSM_METHODS", "PAPER_MODELS", "PAPER_IMG_SIZES", "PAPER_TABLES", "METHOD_MODELS", "ViTSpec", "vit_spec",
    "num_tokens", "backbone_flops", "dfsm_flops", "dfsm_table", "format_mflops", "format_percent", "paper_table",
    "compare_with_paper", "measured_dfsm_flops", "measured_backbone_flops", "time_dfsm", "cost_table",
    # SimPool Table 8
    "PAPER_TABLE8", "TABLE8_MODELS", "model_cost", "resource_table",
    # accuracy against cost
    "efficiency_table", "selection_scaling",
]


# ---------------------------------------------------------------------------------------------------- counting
def measure_flops(fn: Callable[..., Any], *args: Any, unit: str = "flop", **kwargs: Any) -> int:
    """Run ``fn(*args, **kwargs)`` once under ``FlopCounterMode`` (no grad) and return the operations it counted.

    ``unit="flop"`` (default) is torch's count (2 per multiply-add); ``unit="mac"`` halves it.
    Only operations torch has formulas for are counted (matmul, conv, attention, ...); element-wise ops are not.
    """
    if unit not in {"flop", "mac"}:
        raise ValueError(f"unit must be 'flop' or 'mac', got {unit!r}")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args, **kwargs)
    total = int(counter.get_total_flops())
    return total // 2 if unit == "mac" else total


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in module.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


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



_LAYER_OPS = {"aten.convolution", "aten.addmm", "aten.mm", "aten._convolution"}


def layer_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the convolution and linear layers only (the paper's counting convention)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    per_op = counter.get_flop_counts().get("Global", {})
    return sum(int(v) for k, v in per_op.items() if str(k) in _LAYER_OPS) // 2



# ------------------------------------------------------------------------------------------------------ timing
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


def time_call(fn: Callable[..., Any], *args: Any, repeats: int = 3, warmup: int = 1,
              device: str | torch.device | None = None, num_threads: int | None = None) -> list[float]:
    """Seconds of each of ``repeats`` calls ``fn(*args)`` after ``warmup`` untimed ones (no gradients).

    The one timer of this package: the device is synchronised around every timed call (CUDA / MPS work is
    asynchronous), and ``num_threads`` sets torch's CPU threads while timing (:func:`torch_threads`).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    with torch.no_grad(), torch_threads(num_threads):
        for _ in range(max(0, warmup)):
            fn(*args)
        times = []
        for _ in range(max(1, repeats)):
            _sync(dev)
            t0 = time.perf_counter()
            fn(*args)
            _sync(dev)
            times.append(time.perf_counter() - t0)
    return times


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
        with torch.inference_mode():
            times = time_call(model, x, repeats=repeats, warmup=warmup, device=dev, num_threads=num_threads)
        model.train(was_training)
        sec = statistics.median(times) if stat == "median" else min(times)
        rows.append(dict(model=name, batch_size=b, seconds=sec, images_per_s=b / sec))
    return pd.DataFrame(rows).sort_values(["model", "batch_size"], key=lambda c: c.map(
        {n: i for i, n in enumerate(models)}) if c.name == "model" else c, kind="stable").reset_index(drop=True)


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
                ctx = sampler if sampler is not None else contextlib.nullcontext()
                with ctx, autocast(device, enabled=amp):
                    times = time_call(model, x, repeats=iters, warmup=0, device=device)
                    while sum(times) < min_seconds:
                        times += time_call(model, x, repeats=max(1, iters), warmup=0, device=device)
                n, elapsed = len(times), sum(times)
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



# --------------------------------------------------------------------------------------- GLSim Tables 1, 7, 8
DFSM_METHODS = ("psm", "rollout", "maws", "sacm", "gls")
#: The paper's three cost tables: model -> (label, table).
PAPER_MODELS = {"vit_base_patch16_224": ("ViT B-16", "Table 1"), "vit_base_patch14_224": ("ViT B-14", "Table 7"),
                "vit_tiny_patch16_224": ("ViT T-16", "Table 8")}
PAPER_IMG_SIZES = (224, 448, 768, 1024)
#: Methods whose models use overlapping patches (stride P - 4) in the release's count.
_OVERLAPPING = ("psm", "sacm")
#: Which model each method belongs to (Table 1's header).
METHOD_MODELS = {"psm": "TransFG", "rollout": "RAMS-Trans / DCAL / TPSKG", "maws": "FFVT", "sacm": "AF-Trans",
                 "gls": "GLSim"}


# The numbers printed in GLSim Tables 1 (B-16), 7 (B-14) and 8 (T-16): per image size, MFLOPs then "% of Backbone"
# for PSM, Rollout, MAWS, SACM, GLS.
_PAPER_TEXT = {
    "vit_base_patch16_224": """
224  8.2e3 1.7e2 1.3e-1 1.4e1 4.5e-1 | 46.531 0.9833 0.0007 0.0795 0.0026
448  6.2e5 1.1e4 5.3e-1 2.5e2 1.8e0  | 781.31 13.592 0.0007 0.3162 0.0023
768  1.5e7 2.7e5 1.5e0  2.1e3 5.3e0  | 5065.4 91.152 0.0005 0.7072 0.0018
1024 9.1e7 1.5e6 2.7e0  6.9e3 9.4e0  | 13674  228.84 0.0004 1.0487 0.0014""",
    "vit_base_patch14_224": """
224  2.7e4 3.8e2 1.7e-1 3.1e1 5.9e-1 | 117.51 1.6455 0.0007 0.1344 0.0025
448  1.7e6 2.4e4 6.9e-1 5.0e2 2.4e0  | 1624.4 22.212 0.0006 0.4649 0.0022
768  4.6e7 5.5e5 2.0e0  4.4e3 6.7e0  | 11362  134.39 0.0005 1.09   0.0017
1024 2.7e8 3.3e6 3.6e0  1.4e4 1.2e1  | 27554  339.94 0.0004 1.4676 0.0013""",
    "vit_tiny_patch16_224": """
224  2.1e3 1.7e2 3.5e-2 2.6e0 1.1e-1 | 160.36 13.228 0.0027 0.2062 0.0089
448  1.5e5 1.1e4 1.4e-1 4.7e1 4.5e-1 | 2130.8 147.35 0.0019 0.6485 0.0063
768  3.8e6 2.7e5 4.1e-1 3.9e2 1.3e0  | 10037  720.95 0.0011 1.0537 0.0036
1024 2.3e7 1.5e6 7.2e-1 1.3e3 2.4e0  | 22568  1509.0 0.0007 1.3015 0.0024""",
}


def _parse_paper(text: str) -> dict[int, dict[str, tuple[str, str]]]:
    table = {}
    for line in text.strip().splitlines():
        left, right = line.split("|")
        size, *mflops = left.split()
        table[int(size)] = {m: (f"{f.split('e')[0]} × 10^{int(f.split('e')[1])}", p)
                            for m, f, p in zip(DFSM_METHODS, mflops, right.split())}
    return table


#: model -> image size -> method -> (MFLOPs as printed, % of backbone as printed).
PAPER_TABLES: dict[str, dict[int, dict[str, tuple[str, str]]]] = {m: _parse_paper(t) for m, t in _PAPER_TEXT.items()}


@dataclass(frozen=True)
class ViTSpec:
    """What the cost formulas need from a ViT."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int


_KNOWN: dict[str, ViTSpec] = {
    "vit_base_patch16_224": ViTSpec(768, 12, 12, 16),
    "vit_base_patch14_224": ViTSpec(768, 12, 12, 14),  # the paper's B-14 (e.g. DINOv2 B-14 without registers)
    "vit_base_patch14_dinov2": ViTSpec(768, 12, 12, 14),
    "vit_small_patch16_224": ViTSpec(384, 12, 6, 16),
    "vit_tiny_patch16_224": ViTSpec(192, 12, 3, 16),
    "vit_base_patch32_224": ViTSpec(768, 12, 12, 32),
}


def vit_spec(model: str | ViTSpec | torch.nn.Module) -> ViTSpec:
    """The (D, L, H, P) of a model name (timm names, with or without a pretrained tag), a module, or a spec."""
    if isinstance(model, ViTSpec):
        return model
    if isinstance(model, torch.nn.Module):
        enc = getattr(model, "encoder", model)  # a GLSim model -> its encoder
        return ViTSpec(int(enc.embed_dim), len(enc.blocks), int(enc.blocks[0].attn.num_heads),
                       int(enc.patch_embed.patch_size[0]))
    name = str(model).split(".", 1)[0]
    if name.startswith("glsim_"):
        name = name[len("glsim_"):]
    if name in _KNOWN:
        return _KNOWN[name]
    if name in SMALL_VITS:
        a = SMALL_VITS[name]
        return ViTSpec(a["embed_dim"], a["depth"], a["num_heads"], a["patch_size"])
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown model {model!r}: give a timm ViT name (e.g. vit_base_patch16_224) or a ViTSpec")
    with torch.device("meta"):
        m = timm.create_model(name)
    if not hasattr(m, "blocks") or not hasattr(m, "patch_embed"):
        raise ValueError(f"{model!r} is not a plain ViT (no blocks / patch_embed); the DFSM counts need one")
    return vit_spec(m)


def num_tokens(img_size: int, patch_size: int, stride: int | None = None, cls_token: bool = True) -> int:
    """Sequence length of a square image: ``int((S - P)/stride + 1)^2`` patches (+1 CLS), as the release counts."""
    stride = patch_size if stride is None else stride
    if img_size < patch_size or stride < 1:
        raise ValueError(f"image size {img_size} smaller than the patch {patch_size}, or stride {stride} < 1")
    return int((img_size - patch_size) / stride + 1) ** 2 + int(cls_token)


def _stride(method: str, patch_size: int) -> int:
    return patch_size - 4 if method in _OVERLAPPING and patch_size > 4 else patch_size


def backbone_flops(model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224,
                   num_classes: int = 200) -> int:
    """The release's analytic FLOPs of the ViT forward pass (see the module docstring)."""
    s = vit_spec(model)
    n, d = num_tokens(img_size, s.patch_size), s.embed_dim
    patch = 2 * (n - 1) * s.patch_size ** 2 * 3 * d
    block = 4 * n * d * d + 2 * n * n * d + 8 * n * d * d
    return patch + s.depth * block + d * num_classes


def _method_flops(method: str, s: ViTSpec, img_size: int) -> tuple[int, int]:
    n = num_tokens(img_size, s.patch_size, _stride(method, s.patch_size))
    h, depth, d = s.num_heads, s.depth, s.embed_dim
    matmul = n * n * (2 * n - 1)
    if method == "psm":
        flops = h * (depth - 2) * matmul
    elif method == "rollout":
        flops = depth * (h * n * n + n * n + n + 1) + (depth - 1) * matmul
    elif method == "maws":
        flops = (depth - 1) * (5 * n * h + 2 * h + n)
    elif method == "sacm":
        flops = depth * (h - 1) * n * n + (n * n + 1) + 2 * (3 * depth) + depth * (n - 1)
    elif method == "gls":
        flops = (d + 2 * (d + 1) + 1) * (n - 1)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {DFSM_METHODS}")
    return flops, n


def dfsm_flops(method: str, model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224,
               num_classes: int = 200) -> dict:
    """Analytic cost of one DFSM (Table 1 / 7 / 8): ``mflops``, ``backbone_mflops``, ``percent`` (and details).

    ``method`` in {"psm", "rollout", "maws", "sacm", "gls"}; ``model`` a timm ViT name (the paper's:
    ``vit_base_patch16_224`` = Table 1, ``vit_base_patch14_224`` = Table 7, ``vit_tiny_patch16_224`` = Table 8;
    any ViT works, e.g. the cpu profile's ``vit_nano_patch8_64``). Values are rounded as the release rounds them
    (MFLOPs 4 decimals, backbone MFLOPs 2, percent 4); ``flops`` / ``backbone_flops`` are the exact integers.
    """
    if method not in DFSM_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {DFSM_METHODS}")
    s = vit_spec(model)
    flops, n = _method_flops(method, s, int(img_size))
    bb = backbone_flops(s, int(img_size), num_classes)
    mflops, bb_m = round(flops / 1e6, 4), round(bb / 1e6, 2)
    return dict(method=method, model=str(model) if not isinstance(model, ViTSpec) else repr(model),
                img_size=int(img_size), tokens=n, flops=flops, backbone_flops=bb, mflops=mflops,
                backbone_mflops=bb_m, percent=round(100 * mflops / bb_m, 4))


def dfsm_table(models: Iterable[str] = tuple(PAPER_MODELS), img_sizes: Iterable[int] = PAPER_IMG_SIZES,
               methods: Iterable[str] = DFSM_METHODS, num_classes: int = 200):
    """Long-format DataFrame of :func:`dfsm_flops` over models x image sizes x methods."""
    import pandas as pd

    rows = [dfsm_flops(m, model, s, num_classes) for model in models for s in img_sizes for m in methods]
    return pd.DataFrame(rows)


def format_mflops(mflops: float, latex: bool = False) -> str:
    """MFLOPs the way the paper prints them: two significant digits, ``8.2 × 10^3`` (or LaTeX)."""
    base, exp = f"{mflops:.1E}".split("E")
    return f"${base}\\times 10^{{{int(exp)}}}$" if latex else f"{base} × 10^{int(exp)}"


def format_percent(percent: float) -> str:
    """A percentage the way the paper prints it: 5 significant digits of the value rounded to 4 decimals."""
    p = round(float(percent), 4)
    if p == 0:
        return "0"
    if abs(p) >= 1e4:
        return str(int(round(p)))
    digits = min(4, 5 - int(math.floor(math.log10(abs(p)))) - 1)
    return str(round(p, digits))


def paper_table(model: str = "vit_base_patch16_224", img_sizes: Iterable[int] = PAPER_IMG_SIZES,
                methods: Sequence[str] = DFSM_METHODS, num_classes: int = 200):
    """A DataFrame laid out like Table 1: rows "FLOPs (IS=S)" / "% of Backbone", one column per method."""
    import pandas as pd

    rows, index = [], []
    for s in img_sizes:
        costs = [dfsm_flops(m, model, s, num_classes) for m in methods]
        rows += [[format_mflops(c["mflops"]) for c in costs], [format_percent(c["percent"]) for c in costs]]
        index += [f"FLOPs (IS={s})", "% of Backbone"]
    columns = [{"rollout": "Rollout"}.get(m, m.upper()) for m in methods]
    table = pd.DataFrame(rows, index=index, columns=columns)
    return table


def compare_with_paper(model: str = "vit_base_patch16_224"):
    """Ours vs the paper's printed values for one of the paper's models: one row per (size, method), with
    ``match`` True when both the MFLOPs and the percentage print identically."""
    import pandas as pd

    if model not in PAPER_TABLES:
        raise ValueError(f"the paper has cost tables for {sorted(PAPER_TABLES)}, not {model!r}")
    rows = []
    for size, methods in PAPER_TABLES[model].items():
        for method, (paper_f, paper_p) in methods.items():
            c = dfsm_flops(method, model, size)
            ours_f, ours_p = format_mflops(c["mflops"]), format_percent(c["percent"])
            rows.append(dict(img_size=size, method=method, mflops=ours_f, paper_mflops=paper_f, percent=ours_p,
                             paper_percent=paper_p, match=(ours_f, ours_p) == (paper_f, paper_p)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- measured on our code
def _random_attention(batch: int, heads: int, n: int, device: str | torch.device, generator=None) -> torch.Tensor:
    if torch.device(device).type == "meta":
        return torch.empty(batch, heads, n, n, device=device)
    return torch.rand(batch, heads, n, n, generator=generator, device=device).softmax(-1)


def _inputs(method: str, s: ViTSpec, img_size: int, device: str | torch.device, batch: int = 1, generator=None):
    """The arguments our implementation of ``method`` takes, at the token count the analytic formula assumes."""
    n = num_tokens(img_size, s.patch_size, _stride(method, s.patch_size))
    if method == "gls":
        shape = (batch, n, s.embed_dim)
        tokens = torch.empty(shape, device=device) if torch.device(device).type == "meta" else \
            torch.randn(shape, generator=generator, device=device)
        return (tokens,), n
    layers = {"attention": 1, "maws": 1, "psm": s.depth, "rollout": s.depth}[method]
    return ([_random_attention(batch, s.num_heads, n, device, generator) for _ in range(layers)],), n


def _implementation(method: str):
    if method == "gls":
        return global_local_similarity
    return lambda maps: scores_from_attention(method, maps, 1)


def measured_dfsm_flops(method: str, model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224) -> dict:
    """FLOPs that ``torch.utils.flop_counter`` counts when this project's implementation of ``method`` runs.

    Runs on the ``meta`` device (shapes only), with the token count of the analytic formula (overlapping patches
    for psm). ``method`` in {"psm", "rollout", "maws", "gls", "attention"}; "sacm" is not implemented here (it
    needs AF-Trans's learned excitation MLP) and returns None. Torch counts 2 FLOPs per multiply-add and nothing
    for elementwise work, so MAWS (and last-layer attention) count 0.
    """

    s = vit_spec(model)
    if method == "sacm":
        return dict(method=method, img_size=int(img_size), measured_flops=None, measured_mflops=None)
    if method not in ("psm", "rollout", "maws", "gls", "attention"):
        raise ValueError(f"unknown method {method!r}")
    args, n = _inputs(method, s, int(img_size), "meta")
    flops = measure_flops(_implementation(method), *args)
    return dict(method=method, img_size=int(img_size), tokens=n, measured_flops=flops, measured_mflops=flops / 1e6)


def measured_backbone_flops(model: str = "vit_base_patch16_224", img_size: int = 224, num_classes: int = 200,
                            unit: str = "flop") -> int:
    """``torch.utils.flop_counter`` count of the timm ViT's forward pass at ``img_size`` (on the meta device)."""
    import timm

    name = str(model).split(".", 1)[0]
    with torch.device("meta"):
        m = timm.create_model(name, img_size=int(img_size), num_classes=num_classes)
        x = torch.empty(1, 3, int(img_size), int(img_size))
    return measure_flops(m, x, unit=unit)


def time_dfsm(model: str | ViTSpec = "vit_base_patch16_224", img_sizes: Iterable[int] = PAPER_IMG_SIZES,
              methods: Iterable[str] = ("psm", "rollout", "maws", "gls"), repeats: int = 3, batch: int = 1,
              max_mflops: float = 2e4, max_memory_mb: float = 1024, device: str | torch.device = "cpu",
              seed: int = 0, num_threads: int | None = None, progress: bool = True):
    """Wall clock (median of ``repeats``, seconds) of this project's implementation of each mechanism.

    Random softmax attention maps / tokens of the analytic formula's sizes. Configurations whose analytic cost
    exceeds ``max_mflops`` or whose attention maps exceed ``max_memory_mb`` are skipped (``seconds`` NaN,
    ``skipped`` says why) - PSM at 1024 px on ViT B-16 is 9e7 MFLOPs, hours on a laptop CPU. ``num_threads``:
    torch CPU threads while timing (1 gives stable numbers on a shared machine; None keeps torch's setting).
    Returns a DataFrame: method, img_size, tokens, analytic mflops, seconds, skipped.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    s = vit_spec(model)
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    jobs = [(m, size) for size in img_sizes for m in methods]
    rows = []
    for method, size in tqdm(jobs, desc="timing DFSMs", disable=not progress, leave=False):
        analytic = dfsm_flops(method, s, size)["mflops"] if method in DFSM_METHODS else float("nan")
        n = num_tokens(size, s.patch_size, _stride(method, s.patch_size))
        layers = {"psm": s.depth, "rollout": s.depth}.get(method, 1) if method != "gls" else 0
        memory = layers * batch * s.num_heads * n * n * 4 / 2 ** 20
        row = dict(method=method, img_size=int(size), tokens=n, mflops=analytic, seconds=float("nan"), skipped="")
        if analytic > max_mflops:
            row["skipped"] = f"> {max_mflops:g} MFLOPs"
        elif memory > max_memory_mb:
            row["skipped"] = f"attention maps {memory:.0f} MB > {max_memory_mb:g} MB"
        else:
            args, _ = _inputs(method, s, int(size), device, batch, gen)
            times = time_call(_implementation(method), *args, repeats=repeats, warmup=1, device=device,
                              num_threads=num_threads)
            row["seconds"] = statistics.median(times)
            del args
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(model: str = "vit_base_patch16_224", img_size: int = 224, measured: bool = True,
               methods: Sequence[str] = DFSM_METHODS, num_classes: int = 200):
    """Analytic cost (the paper's convention) beside the FLOPs torch counts on this project's implementations."""
    import pandas as pd

    rows = []
    for m in methods:
        a = dfsm_flops(m, model, img_size, num_classes)
        row = dict(method=m, model_family=METHOD_MODELS[m], tokens=a["tokens"], mflops=a["mflops"],
                   paper_style=format_mflops(a["mflops"]), percent_of_backbone=a["percent"])
        if measured:
            meas = measured_dfsm_flops(m, model, img_size)
            row["measured_mflops"] = meas["measured_mflops"]
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["backbone_mflops"] = dfsm_flops("gls", model, img_size, num_classes)["backbone_mflops"]
    if measured:
        table.attrs["measured_backbone_mflops"] = measured_backbone_flops(model, img_size, num_classes) / 1e6
    return table


# ---------------------------------------------------------------------------------------------- SimPool Table 8
#: SimPool Table 8 (ImageNet-1k, 224×224): d, #params (M) and GFLOPs for baseline and SimPool.
PAPER_TABLE8: dict[str, dict] = {
    "resnet18": dict(label="ResNet-18", d=512, params=(11.7, 12.2), gflops=(1.82, 1.84)),
    "resnet50": dict(label="ResNet-50", d=2048, params=(25.6, 33.9), gflops=(4.13, 4.34)),
    "convnext_small": dict(label="ConvNeXt-S", d=768, params=(50.2, 51.4), gflops=(8.68, 8.71)),
    "vit_small_patch16_224": dict(label="ViT-S", d=384, params=(22.1, 22.3), gflops=(4.24, 4.26)),
}
TABLE8_MODELS: tuple[str, ...] = tuple(PAPER_TABLE8)

def model_cost(name: str, pooling: str | None = None, img_size: int = 224, device: str | torch.device = "meta",
               num_classes: int = 1000, **kwargs) -> dict:
    """Parameters and MACs of ``name`` with its default pooling (``pooling=None``) or with ``pooling``
    (e.g. ``"simpool"``), for one image of ``img_size``² pixels. Weights are random (``meta``: shapes only)."""
    device = torch.device(device)
    with device:
        model = create_model(name, pretrained=False, pooling=pooling, num_classes=num_classes, **kwargs).eval()
    x = torch.zeros(1, 3, img_size, img_size, device=device)
    return dict(params=count_parameters(model), macs=measure_flops(model, x, unit="mac"),
                layer_macs=layer_macs(model, x))


def resource_table(models: Sequence[str] = TABLE8_MODELS, img_size: int = 224, device: str | torch.device = "meta",
                   pooling: str = "simpool", progress: bool = False):
    """Table 8 measured: one row per model, baseline vs ``pooling``, beside the paper's numbers.

    Columns: ``model``, ``d``, ``params_M`` / ``params_M_simpool``, ``paper_params_M`` /
    ``paper_params_M_simpool``, ``gmacs`` / ``gmacs_simpool`` (torch's total count, in MACs),
    ``gmacs_layers`` / ``gmacs_layers_simpool`` (linear and convolution layers only), ``paper_gflops`` /
    ``paper_gflops_simpool``. Models not in Table 8 get empty paper columns. Returns a pandas DataFrame.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    rows = []
    for name in tqdm(list(models), desc="Table 8", disable=not progress):
        base = model_cost(name, None, img_size, device)
        ours = model_cost(name, pooling, img_size, device)
        paper = PAPER_TABLE8.get(name, {})
        rows.append({
            "model": paper.get("label", name),
            "d": paper.get("d"),
            "params_M": base["params"] / 1e6,
            "params_M_simpool": ours["params"] / 1e6,
            "paper_params_M": paper.get("params", (None, None))[0],
            "paper_params_M_simpool": paper.get("params", (None, None))[1],
            "gmacs": base["macs"] / 1e9,
            "gmacs_simpool": ours["macs"] / 1e9,
            "gmacs_layers": base["layer_macs"] / 1e9,
            "gmacs_layers_simpool": ours["layer_macs"] / 1e9,
            "paper_gflops": paper.get("gflops", (None, None))[0],
            "paper_gflops_simpool": paper.get("gflops", (None, None))[1],
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------- accuracy against cost
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


def selection_scaling(model: str | nn.Module, img_sizes: Sequence[int],
                      methods: Sequence[str] = ("psm", "rollout", "maws", "gls"), timed: bool = False,
                      repeats: int = 3, num_threads: int | None = 1, max_mflops: float = 2e4,
                      device: str | torch.device = "cpu", progress: bool = False):
    """DataFrame (method, img_size, tokens, mflops (analytic), measured_mflops, backbone_mflops, percent and, with
    ``timed``, seconds) of each selection mechanism on ``model``'s ViT at each image size."""
    import pandas as pd

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
