"""Measured cost: FLOPs with ``torch.utils.flop_counter`` and parameter counts.

``torch.utils.flop_counter`` counts a multiply-add as **2** FLOPs (a matmul of (m, k) by (k, n) is 2·m·k·n). Papers
that quote "GFLOPs" for CNNs and ViTs (e.g. SimPool's Table 8: ViT-S 4.24 at 224) usually count multiply-accumulates
(fvcore's convention), i.e. half of this number: use ``unit="mac"`` to compare with them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_parameters", "measure_flops"]


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
