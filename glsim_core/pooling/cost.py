"""Computation resources of SimPool vs the default pooling, in the style of the paper's Table 8.

:func:`resource_table` builds each model twice (timm default pooling, and SimPool through
:func:`glsim_core.models.heads.create_with_pooling`) with random weights on the ``meta`` device (shapes only: no
memory, no compute, a fraction of a second per model) and measures

* ``params_M``: parameters in millions (:func:`glsim_core.metrics.count_parameters`);
* ``gmacs``: multiply-accumulates in billions for one image at 224×224 measured by ``torch.utils.flop_counter``
  (:func:`glsim_core.metrics.measure_flops` with ``unit="mac"``: torch counts 2 FLOPs per multiply-add, the
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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..metrics import count_parameters, measure_flops

__all__ = ["PAPER_TABLE8", "TABLE8_MODELS", "layer_macs", "model_cost", "resource_table"]

#: SimPool Table 8 (ImageNet-1k, 224×224): d, #params (M) and GFLOPs for baseline and SimPool.
PAPER_TABLE8: dict[str, dict] = {
    "resnet18": dict(label="ResNet-18", d=512, params=(11.7, 12.2), gflops=(1.82, 1.84)),
    "resnet50": dict(label="ResNet-50", d=2048, params=(25.6, 33.9), gflops=(4.13, 4.34)),
    "convnext_small": dict(label="ConvNeXt-S", d=768, params=(50.2, 51.4), gflops=(8.68, 8.71)),
    "vit_small_patch16_224": dict(label="ViT-S", d=384, params=(22.1, 22.3), gflops=(4.24, 4.26)),
}
TABLE8_MODELS: tuple[str, ...] = tuple(PAPER_TABLE8)

_LAYER_OPS = {"aten.convolution", "aten.addmm", "aten.mm", "aten._convolution"}


def layer_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of the convolution and linear layers only (the paper's counting convention)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    per_op = counter.get_flop_counts().get("Global", {})
    return sum(int(v) for k, v in per_op.items() if str(k) in _LAYER_OPS) // 2


def model_cost(name: str, pooling: str | None = None, img_size: int = 224, device: str | torch.device = "meta",
               num_classes: int = 1000, **kwargs) -> dict:
    """Parameters and MACs of ``name`` with its default pooling (``pooling=None``) or with ``pooling``
    (e.g. ``"simpool"``), for one image of ``img_size``² pixels. Weights are random (``meta``: shapes only)."""
    from ..models import create_model

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
