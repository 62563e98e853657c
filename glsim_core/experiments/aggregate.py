"""Aggregation of sweep tables: mean ± sample std per group, seaborn plots, and the papers' numbers beside them.

:data:`PAPER_REFERENCE` holds the numbers of every ablation notebook 07 reproduces, copied from the papers' tables
(GLSim Tables 5, 11, 12, 13, 14, 15: top-1 % on CUB-200-2011 with ViT B-16 at 224 px, mean ± std over seeds 1, 10,
100; SimPool Table 10: top-1 % on ImageNet-20 % with ResNet-18, 100 epochs, one run). Each entry: ``paper``,
``table``, ``setting`` (what the numbers were measured on), ``rows`` ``{variant label: "mean ± std" or "mean"}`` -
the labels are the ``variant`` names of :mod:`glsim_core.experiments.ablations` - and ``notes``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["PAPER_REFERENCE", "summarize", "plot_summary", "with_reference", "parse_reference", "format_mean_std"]

_CUB = "CUB-200-2011, ViT B-16 (ImageNet-21k), 224 px, mean ± std over seeds 1, 10, 100"

PAPER_REFERENCE: dict[str, dict[str, Any]] = {
    "glsim_table5": {
        "paper": "GLSim", "table": "Table 5", "setting": _CUB,
        "title": "Ablation on proposed components (GLS crops × aggregator)",
        "rows": {"no crops, no aggregator (ViT)": "90.11 ± 0.17", "aggregator only": "90.55 ± 0.06",
                 "GLS crops, no aggregator": "90.54 ± 0.16", "GLS crops + aggregator (GLSim)": "90.93 ± 0.24"},
    },
    "glsim_table11": {
        "paper": "GLSim", "table": "Table 11", "setting": _CUB + " (the 224 px rows)",
        "title": "AugReg levels (minimal RC+RF, weak ++LS, medium ++SD, strong ++RE+TA)",
        "rows": {"ViT / minimal": "88.27 ± 0.2", "ViT / weak": "88.53 ± 0.27", "ViT / medium": "89.5 ± 0.21",
                 "ViT / strong": "90.11 ± 0.17", "GLSim / minimal": "89.78 ± 0.13", "GLSim / weak": "89.72 ± 0.38",
                 "GLSim / medium": "90.49 ± 0.26", "GLSim / strong": "90.93 ± 0.24"},
    },
    "glsim_table12": {
        "paper": "GLSim", "table": "Table 12", "setting": _CUB,
        "title": "Aggregator and robustness to non-optimal (random) crops",
        "rows": {"baseline (ViT)": "90.11 ± 0.24", "random crops, no aggregator": "89.47 ± 0.19",
                 "random crops + aggregator": "90.26 ± 0.27", "GLS crops + aggregator (GLSim)": "90.93 ± 0.24"},
    },
    "glsim_table13": {
        "paper": "GLSim", "table": "Table 13", "setting": _CUB,
        "title": "Hyperparameter O (top-O tokens for the crop)",
        "rows": {"O=4": "90.69 ± 0.25", "O=8": "90.93 ± 0.24", "O=16": "90.85 ± 0.17", "O=32": "90.82 ± 0.30"},
    },
    "glsim_table14": {
        "paper": "GLSim", "table": "Table 14", "setting": _CUB,
        "title": "Similarity metric of GLS",
        "rows": {"cosine": "90.93 ± 0.24", "l1": "91.03 ± 0.21", "l2": "90.93 ± 0.13"},
    },
    "glsim_table15": {
        "paper": "GLSim", "table": "Table 15", "setting": _CUB + "; patch 16 and 32 (ViT B-16 / B-32)",
        "title": "Patch size (fine vs coarse patches)",
        "rows": {"ViT / fine patches": "90.11 ± 0.24", "GLSim / fine patches": "90.93 ± 0.17",
                 "ViT / coarse patches": "85.84 ± 0.17", "GLSim / coarse patches": "88.28 ± 0.02"},
        "notes": "paper: fine = patch 16, coarse = patch 32 at 224 px; cpu profile: patch 8 vs 16 at 64 px.",
    },
    "glsim_selectors": {
        "paper": "GLSim", "table": "Table 12 (GLS and random rows)", "setting": _CUB,
        "title": "Selection mechanism for the crop (all with the aggregator)",
        "rows": {"gls": "90.93 ± 0.24", "random": "90.26 ± 0.27"},
        "notes": "the paper trains GLSim only with GLS and random crops; rollout, last-layer attention and SimPool "
                 "attention as GLSim selectors have no paper number (GLSim Tables 1/7/8 compare them as parts of "
                 "other models and by cost).",
    },
    "simpool_gamma": {
        "paper": "SimPool", "table": "§4.4 (γ default)", "setting": "the paper's default choice, no number",
        "title": "SimPool's generalised-mean exponent γ (Eq. 17)",
        "rows": {},
        "notes": "SimPool §4.4 sets γ = 1.25 for transformers and γ = 2 for CNNs; the γ ablation itself is in the "
                 "paper's appendix, which the text we have does not include - so there is no number to compare.",
    },
    "simpool_table10": {
        "paper": "SimPool", "table": "Table 10", "setting": "ImageNet-20 %, ResNet-18, 100 epochs, one run",
        "title": "SimPool design choices",
        "rows": {"SimPool (default)": "57.1", "multi-head (m=4)": "56.6", "W_Q = W_K": "56.4",
                 "f_-1: linear q,k; LN k,v (chosen)": "56.6", "GAP": "55.0"},
        "notes": "left part (f = f_α): SimPool 57.1, multi-head σ2 with m = 4 heads 56.6, W_Q = W_K 56.4; right part "
                 "(f = f_{-1}): the chosen linear-on-q,k / LN-on-k,v setup 56.6 (§4.4 text), GAP 55.0. The other "
                 "rows of the right part (linear and LN placements) cannot be read unambiguously from the text.",
    },
}

_NUM = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:±\s*([-+]?\d+(?:\.\d+)?))?\s*$")


def parse_reference(text: str | None) -> tuple[float, float]:
    """``"90.93 ± 0.24"`` -> (90.93, 0.24); ``"57.1"`` -> (57.1, nan); None -> (nan, nan)."""
    if text is None:
        return (math.nan, math.nan)
    m = _NUM.match(str(text))
    if not m:
        raise ValueError(f"not a paper number: {text!r} (expected 'mean' or 'mean ± std')")
    return float(m.group(1)), float(m.group(2)) if m.group(2) else math.nan


def format_mean_std(mean: float, std: float, n: int, digits: int = 2) -> str:
    """``"61.20 ± 1.05"``; one run: ``"61.20 (n=1)"``; no runs: ``"not run"``."""
    if n == 0 or mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "not run"
    if n == 1 or std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarize(df, by: Sequence[str] | str, metrics: Sequence[str] | str = ("top1",), digits: int = 2,
              only_ok: bool = True):
    """Mean, sample std (ddof 1, NaN for one run) and n of each metric per group of ``by``.

    Columns: ``by`` ..., then per metric ``<m>_mean``, ``<m>_std``, ``<m>_n`` and ``<m>`` ("mean ± std" string).
    Rows whose ``status`` is not ``ok`` are left out (``only_ok=False`` keeps them). Groups keep their first
    appearance order.
    """
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [c for c in by + metrics if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in the table; it has {list(df.columns)}")
    if only_ok and "status" in df.columns:
        df = df[df["status"] == "ok"]
    rows = []
    for key, group in df.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by, key))
        for m in metrics:
            values = pd.to_numeric(group[m], errors="coerce").dropna()
            n = int(values.size)
            mean = float(values.mean()) if n else math.nan
            std = float(values.std(ddof=1)) if n > 1 else math.nan
            row.update({f"{m}_mean": mean, f"{m}_std": std, f"{m}_n": n, m: format_mean_std(mean, std, n, digits)})
        rows.append(row)
    columns = by + [c for m in metrics for c in (f"{m}_mean", f"{m}_std", f"{m}_n", m)]
    return pd.DataFrame(rows, columns=columns)


def with_reference(summary, ablation: str | Mapping[str, Any], key: str = "variant", metric: str = "top1"):
    """``summary`` with a ``paper`` column (the paper's number for each ``key`` value; "" where it has none),
    plus one row per paper row that this repository did not run ("not run")."""
    import pandas as pd

    ref = PAPER_REFERENCE[ablation] if isinstance(ablation, str) else ablation
    rows = ref.get("rows", {})
    out = summary.copy()
    out["paper"] = [rows.get(v, "") for v in out[key]]
    missing = [v for v in rows if v not in set(out[key])]
    if missing:
        extra = pd.DataFrame({key: missing, metric: ["not run"] * len(missing), "paper": [rows[v] for v in missing]})
        out = pd.concat([out, extra], ignore_index=True)
    return out


def plot_summary(df, x: str, y: str = "top1", hue: str | None = None, kind: str = "bar",
                 reference: str | Mapping[str, Any] | None = None, title: str | None = None, ax=None,
                 order: Sequence[Any] | None = None, chance: float | None = None):
    """Seaborn bar (or point) plot of the raw runs: mean with sample-std error bars (``errorbar="sd"``); ``chance``
    (in the units of ``y``) is drawn as a dashed line on this repository's panel.

    With ``reference`` (an ablation name or a PAPER_REFERENCE entry), a second panel shows the paper's numbers for
    the same ``x`` labels with their std, on the same y-axis (0-100 % for top-1), so that the two can be compared by
    eye. Returns the figure.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    if kind not in ("bar", "point"):
        raise ValueError(f"kind must be 'bar' or 'point', got {kind!r}")
    data = df[df["status"] == "ok"] if "status" in df.columns else df
    ref = PAPER_REFERENCE[reference] if isinstance(reference, str) else reference
    ref_rows = {k: v for k, v in (ref or {}).get("rows", {}).items()} if ref else {}
    if ax is not None:
        fig, axes = ax.figure, [ax]
    else:
        ncols = 2 if ref_rows else 1
        fig, axes = plt.subplots(1, ncols, figsize=(5.2 * ncols, 3.4), squeeze=False, sharey=True)
        axes = list(axes[0])
    order = list(order) if order is not None else list(dict.fromkeys(data[x]))
    plot = sns.barplot if kind == "bar" else sns.pointplot
    plot(data=data, x=x, y=y, hue=hue, order=order, errorbar="sd", ax=axes[0], **({"capsize": 0.15}))
    axes[0].set_title(title or "this repository")
    if y == "top1":
        axes[0].set_ylim(0, 100)
    if chance is not None:
        axes[0].axhline(chance, color="k", ls="--", lw=1, label=f"chance ({chance:.1f})")
        axes[0].legend(loc="lower right", fontsize=9)
    axes[0].set_xlabel("")
    axes[0].tick_params(axis="x", rotation=30)
    for label in axes[0].get_xticklabels():
        label.set_horizontalalignment("right")
    if len(axes) > 1 and ref_rows:
        labels = [k for k in ref_rows]
        parsed = [parse_reference(ref_rows[k]) for k in labels]
        means = [p[0] for p in parsed]
        stds = [0.0 if math.isnan(p[1]) else p[1] for p in parsed]
        axes[1].bar(range(len(labels)), means, yerr=stds, capsize=3, color="0.6")
        axes[1].set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axes[1].set_title(f"paper: {ref['paper']} {ref['table']}")
        axes[1].set_ylabel(y)
    fig.tight_layout()
    return fig
