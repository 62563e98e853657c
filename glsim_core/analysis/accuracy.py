"""Classification metrics: top-1, per-class accuracy, confusion matrix, mean ± std over seeds, relative error.

``relative_error`` is GLSim's footnote 1: ``Err_rel = 100 * ((100 - Acc) - (100 - Acc_ref)) / (100 - Acc_ref)``,
with accuracies in percent; negative means fewer errors than the reference (GLSim: -10.15 % vs ViT on average).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["binomial_se", "top1_accuracy", "confusion_matrix", "per_class_accuracy", "accuracy_from_confusion",
           "relative_error", "mean_std", "format_mean_std", "difference"]


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def top1_accuracy(logits_or_preds, targets) -> float:
    """Top-1 accuracy in percent; accepts logits (B, K) or predicted labels (B,)."""
    pred = _as_tensor(logits_or_preds)
    tgt = _as_tensor(targets).reshape(-1).long()
    if pred.ndim == 2:
        pred = pred.argmax(dim=1)
    pred = pred.reshape(-1).long()
    if pred.shape != tgt.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and targets {tuple(tgt.shape)} differ in length")
    if tgt.numel() == 0:
        raise ValueError("no targets: accuracy of an empty set is undefined")
    return float((pred == tgt).double().mean() * 100.0)


def confusion_matrix(preds, targets, num_classes: int) -> torch.Tensor:
    """(K, K) int64 counts: row = true class, column = predicted class."""
    pred = _as_tensor(preds)
    if pred.ndim == 2:
        pred = pred.argmax(dim=1)
    pred = pred.reshape(-1).long().cpu()
    tgt = _as_tensor(targets).reshape(-1).long().cpu()
    if pred.shape != tgt.shape:
        raise ValueError(f"predictions {tuple(pred.shape)} and targets {tuple(tgt.shape)} differ in length")
    if tgt.numel() and (int(tgt.min()) < 0 or int(tgt.max()) >= num_classes or int(pred.min()) < 0
                        or int(pred.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    return torch.bincount(tgt * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes,
                                                                                                 num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> torch.Tensor:
    """Accuracy (percent) of each true class; NaN for a class with no examples."""
    cm = _as_tensor(confusion).double()
    support = cm.sum(dim=1)
    acc = torch.diagonal(cm) / support * 100.0
    return torch.where(support > 0, acc, torch.full_like(acc, float("nan")))


def accuracy_from_confusion(confusion: torch.Tensor) -> float:
    cm = _as_tensor(confusion).double()
    total = float(cm.sum())
    if total == 0:
        raise ValueError("empty confusion matrix")
    return float(torch.diagonal(cm).sum() / total * 100.0)


def relative_error(acc: float, ref_acc: float) -> float:
    """GLSim footnote 1 (accuracies in percent): 100 * ((100 - acc) - (100 - ref)) / (100 - ref)."""
    ref_err = 100.0 - float(ref_acc)
    if ref_err <= 0:
        raise ValueError("the reference has no errors (accuracy 100 %): relative error is undefined")
    return 100.0 * ((100.0 - float(acc)) - ref_err) / ref_err


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of runs over seeds."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std of no values")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    m, s = mean_std(values)
    if math.isnan(m):
        return "nan"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def difference(a: Sequence[float], b: Sequence[float]) -> dict[str, float]:
    """``mean(a) - mean(b)`` of two sets of runs (e.g. two models over seeds) with its uncertainty.

    Returns ``diff``, ``se`` (Welch: ``sqrt(s_a^2 / n_a + s_b^2 / n_b)``, the runs of a and b taken as independent),
    ``df`` (Welch-Satterthwaite), ``ci95_low`` / ``ci95_high`` (``diff -+ t_{0.975, df} * se``), ``z``
    (``diff / se``: a difference is read only when ``|z| > 2``) and ``n_a``, ``n_b``. Needs two runs on each side.
    """
    from scipy import stats

    xa, xb = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if xa.size < 2 or xb.size < 2:
        raise ValueError(f"a difference needs at least 2 runs on each side, got {xa.size} and {xb.size}")
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    diff = float(xa.mean() - xb.mean())
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1)) if se > 0 else float("inf")
    half = float(stats.t.ppf(0.975, df)) * se if se > 0 else 0.0
    z = diff / se if se > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    return {"diff": diff, "se": se, "df": float(df), "ci95_low": diff - half, "ci95_high": diff + half, "z": z,
            "n_a": int(xa.size), "n_b": int(xb.size)}


def binomial_se(percent, n):
    """The standard error, in points, of a percentage measured on ``n`` independent images: 100·√(p(1 − p)/n).
    Scalars give a float; arrays (percentages and/or counts) give an array."""
    p = np.clip(np.asarray(percent, dtype=np.float64) / 100.0, 0.0, 1.0)
    se = 100.0 * np.sqrt(p * (1 - p) / np.maximum(np.asarray(n, dtype=np.float64), 1.0))
    return float(se) if se.ndim == 0 else se
