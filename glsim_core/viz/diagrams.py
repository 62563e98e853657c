"""Diagrams of the two methods, drawn from the code so that they cannot drift from it.

* :func:`glsim_stages` / :func:`draw_glsim`: GLSim's Figure 1 — encoder → GLS → top-O box → crop → the same encoder
  → aggregator → norm → head. Every box is named after the model's own children (``named_children()``), its
  parameters (``cls_token_crops``) or the selection function the model calls (``glsim_core.selection``), and its
  switches (``selector``, ``top_o``, ``box_rule``, ``num_classes``) are read from the model instance.
* :func:`pooling_steps` / :func:`draw_pooling_process`: SimPool §3.1's generic pooling process — U⁰ → pairwise
  interaction → attention → attention-weighted average → output (→ iterate) — with, under each step, which Table-1
  methods fill it and how, read from :func:`glsim_core.pooling.table1` (the configurations of ``pool(name)``).

``tests/test_diagrams.py`` checks that every labelled component exists in the model and in the framework.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from typing import Any

from ..models import create_model
from ..pooling import table1

__all__ = ["Stage", "glsim_stages", "draw_glsim", "PoolingStep", "POOLING_STEPS", "pooling_steps",
           "draw_pooling_process"]

KIND_COLORS = {"data": "#e8e8e8", "module": "#cfe2f3", "function": "#fde2c4", "parameter": "#d9ead3"}
KIND_LEGEND = {"data": "tensor", "module": "module of the model (trained)",
               "function": "selection, no gradients (glsim_core.selection)"}


@dataclass(frozen=True)
class Stage:
    """One box of the GLSim diagram.

    ``kind`` says where ``key`` lives: ``"module"`` a child of the model (``named_children``), ``"function"`` a
    function of ``glsim_core.selection`` that the model's module calls, ``"data"`` a tensor. ``extra`` names a
    parameter of the model the stage also uses (the crops' CLS token)."""

    key: str
    kind: str
    label: str
    xy: tuple[float, float]
    extra: str | None = None


def _default_glsim() -> Any:

    return create_model("glsim_vit_nano_patch8_64", num_classes=12)


def glsim_stages(model: Any = None) -> list[Stage]:
    """The boxes of GLSim's Figure 1 for ``model`` (default: the cpu profile's ``glsim_vit_nano_patch8_64``), in
    data-flow order; labels come from the model's children, parameters and switches."""
    model = _default_glsim() if model is None else model
    children = dict(model.named_children())
    enc = type(children["encoder"]).__name__
    selector = {"gls": "GLS: cos(f⁰, fⁱ)"}.get(model.selector, f"selector: {model.selector}")
    rule = "" if model.box_rule == "paper" else f" ({model.box_rule})"
    agg = type(children["aggregator"]).__name__ if model.use_aggregator else "off (use_aggregator=False)"
    head = children["head"]
    out = getattr(head, "out_features", getattr(model, "num_classes", "?"))
    return [
        Stage("images", "data", "images\n(B, 3, S, S)", (0, 1)),
        Stage("encoder", "module", f"encoder\n{enc}", (1, 1)),
        Stage("global_local_similarity", "function", f"{selector}\n({model.metric})", (2, 1)),
        Stage("select_boxes", "function", f"select_boxes\ntop-{model.top_o} box{rule}", (3, 1)),
        Stage("crop_and_resize", "function", "crop_and_resize\nto (S, S)", (4, 1)),
        Stage("encoder", "module", "encoder (shared)\n+ cls_token_crops", (4, 0), extra="cls_token_crops"),
        Stage("aggregator", "module", f"aggregator\n{agg}", (3, 0)),
        Stage("norm", "module", f"norm\n{type(children['norm']).__name__}", (2, 0)),
        Stage("head", "module", f"head\n{type(head).__name__} → {out}", (1, 0)),
        Stage("logits", "data", f"logits\n(B, {out})", (0, 0)),
    ]


def _box(ax, xy, text, color, width=0.86, height=0.5, fontsize=9, dashed=False):
    from matplotlib.patches import FancyBboxPatch

    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.02",
                                facecolor=color, edgecolor="0.3", linewidth=1.0, linestyle="--" if dashed else "-"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, text=None, rad=0.0, offset=(0, 0.06), fontsize=9):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.2,
                                                          shrinkA=0, shrinkB=0,
                                                          connectionstyle=f"arc3,rad={rad}"))
    if text:
        mx, my = (start[0] + end[0]) / 2 + offset[0], (start[1] + end[1]) / 2 + offset[1]
        ax.text(mx, my, text, ha="center", va="bottom", fontsize=fontsize, color="0.2")


def draw_glsim(model: Any = None, ax: Any = None):
    """Draw GLSim's architecture (Figure 1 of the paper) for ``model``; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    model = _default_glsim() if model is None else model
    stages = glsim_stages(model)
    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 3.8))
    fig = ax.figure
    w, h, sx = 0.86, 0.5, 1.3  # box size; sx spreads the columns so that arrow labels fit between boxes
    stages = [Stage(st.key, st.kind, st.label, (st.xy[0] * sx, st.xy[1]), st.extra) for st in stages]
    for st in stages:
        dashed = st.key == "aggregator" and "off" in st.label
        _box(ax, st.xy, st.label, KIND_COLORS[st.kind], w, h, dashed=dashed)
    pos = [st.xy for st in stages]
    # first pass, left to right
    for (x0, y0), (x1, y1), text in [(pos[0], pos[1], None), (pos[1], pos[2], "tokens f"),
                                     (pos[2], pos[3], "scores (B, N)"), (pos[3], pos[4], "box")]:
        _arrow(ax, (x0 + w / 2, y0), (x1 - w / 2, y1), text)
    # the crop goes down into the second pass; the second pass runs right to left
    _arrow(ax, (pos[4][0], pos[4][1] - h / 2), (pos[5][0], pos[5][1] + h / 2), "crops", offset=(0.28, -0.05))
    for (x0, y0), (x1, y1), text in [(pos[5], pos[6], "f⁰_crops"), (pos[6], pos[7], None),
                                     (pos[7], pos[8], "token 0"), (pos[8], pos[9], None)]:
        _arrow(ax, (x0 - w / 2, y0), (x1 + w / 2, y1), text)
    # the first pass's CLS token joins the crop's at the aggregator
    _arrow(ax, (pos[1][0] + 0.25, pos[1][1] - h / 2), (pos[6][0] - 0.2, pos[6][1] + h / 2), "f⁰ (CLS)",
           offset=(-0.15, 0.0))
    # the images also feed the crop
    _arrow(ax, (pos[0][0], pos[0][1] + h / 2), (pos[4][0], pos[4][1] + h / 2), "images", rad=-0.18,
           offset=(0, 0.32))
    ax.set_xlim(-0.6, 4 * sx + 0.6)
    ax.set_ylim(-0.45, 1.95)
    ax.axis("off")
    handles = [Patch(facecolor=KIND_COLORS[k], edgecolor="0.3", label=v) for k, v in KIND_LEGEND.items()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False, fontsize=9)
    backbone = getattr(model, "backbone_name", type(model).__name__)
    ax.set_title(f"GLSim on {backbone}: boxes named after the model's children and the selection functions it "
                 "calls", fontsize=10)
    return fig


@dataclass(frozen=True)
class PoolingStep:
    """One step of SimPool §3.1: its name, its equation, the ``PoolingProcess`` arguments that set it and the
    Table-1 column (of :func:`glsim_core.pooling.table1`) whose values the diagram lists under it."""

    name: str
    equation: str
    arguments: tuple[str, ...]
    column: str


POOLING_STEPS: tuple[PoolingStep, ...] = (
    PoolingStep("initialisation", "U⁰ = π₀(X)", ("init", "k"), "U0"),
    PoolingStep("pairwise interaction", "Q = φ_Q(U), K = φ_K(X)\nS = s(K, Q)", ("phi_q", "phi_k", "similarity",
                                                                                "scale", "num_heads"), "s"),
    PoolingStep("attention", "A = h(S)", ("attention",), "h"),
    PoolingStep("weighted average", "V = φ_V(X)\nZ = f⁻¹(f(V) A)", ("phi_v", "f"), "f"),
    PoolingStep("output", "U¹ = φ_U(Z)\nX¹ = φ_X(X)", ("phi_u", "phi_x", "iterations"), "phi_U"),
)


def pooling_steps(dim: int = 16) -> list[tuple[PoolingStep, dict[str, list[str]]]]:
    """Each step with ``{value in Table 1: [methods]}`` for its column, read from the implemented Table 1."""

    table = table1(dim=dim)
    out = []
    for step in POOLING_STEPS:
        groups: dict[str, list[str]] = {}
        for method, value in table[step.column].items():
            groups.setdefault(str(value), []).append(str(method))
        out.append((step, groups))
    return out


def _plain(text: str) -> str:
    """A Table-1 label as plain text for the diagram: the labels keep the papers' TeX-like superscripts
    (``e^{rx}``), which matplotlib would print verbatim, so ``e^{x}`` becomes ``exp(x)`` and any other ``^{x}``
    becomes ``^(x)``."""
    text = re.sub(r"\be\^\{([^{}]*)\}", r"exp(\1)", text)
    return re.sub(r"\^\{([^{}]*)\}", r"^(\1)", text)


def _wrap_text(text: str, width: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` characters (a longer word stays whole)."""
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False) or [text]


def _wrap(names: list[str], width: int = 24) -> str:
    lines, line = [], ""
    for n in names:
        piece = n if not line else f", {n}"
        if len(line) + len(piece) > width and line:
            lines.append(line + ",")
            line = n
        else:
            line += piece
    return "\n    ".join(lines + [line])


#: The widest line of text under a step, in characters: wider values are wrapped at spaces so that a column never
#: runs into the next one (or past the figure's edge); checked by ``tests/test_diagrams.py`` on the rendered figure.
COLUMN_CHARS = 27


def draw_pooling_process(dim: int = 16, ax: Any = None, max_values: int = 6):
    """Draw SimPool §3.1's generic pooling process with, under each step, which Table-1 methods fill it (the
    ``max_values`` most common values of its column); returns the figure."""
    import matplotlib.pyplot as plt

    steps = pooling_steps(dim)
    iterations = table1(dim=dim)["iterations"]
    if ax is None:
        fig, ax = plt.subplots(figsize=(15, 5.8))
    fig = ax.figure
    w, h, gap, y = 2.35, 0.85, 0.55, 3.0
    cx = [1.9 + i * (w + gap) for i in range(len(steps))]
    _box(ax, (0.25, y), "X\n(B, p, d)", KIND_COLORS["data"], 0.8, 0.6)
    _arrow(ax, (0.65, y), (cx[0] - w / 2, y))
    for i, (step, groups) in enumerate(steps):
        _box(ax, (cx[i], y), f"{i + 1}. {step.name}\n{step.equation}", KIND_COLORS["module"], w, h)
        if i:
            _arrow(ax, (cx[i - 1] + w / 2, y), (cx[i] - w / 2, y))
        ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        lines = [f"{step.column} (Table 1):"]
        for value, methods in ranked[:max_values]:
            shown = "— (none)" if value == "—" else _plain(value)
            first, *rest = _wrap_text(f"{shown}:", COLUMN_CHARS - 2)
            lines += [first, *(f"  {line}" for line in rest), f"    {_wrap(methods)}"]  # continuation indented
        if len(ranked) > max_values:
            rest = [m for _, ms in ranked[max_values:] for m in ms]
            lines += [f"other values ({len(ranked) - max_values}):", f"    {_wrap(rest)}"]
        ax.text(cx[i] - w / 2, y - h / 2 - 0.2, "\n".join(lines), ha="left", va="top", fontsize=9)
    end = cx[-1] + w / 2
    _box(ax, (end + 0.95, y), "pooled\nU = π(X)", KIND_COLORS["data"], 0.9, 0.6)
    _arrow(ax, (end, y), (end + 0.5, y))
    looping = [f"{m} (T={int(t)})" for m, t in iterations.items() if int(t) > 1]
    _arrow(ax, (cx[-1], y + h / 2), (cx[1], y + h / 2), rad=0.12)
    ax.text((cx[-1] + cx[1]) / 2, y + h / 2 + 0.62, f"iterate: U ← U¹, X ← X¹ — {', '.join(looping)}",
            ha="center", va="bottom", fontsize=9)
    ax.set_xlim(-0.2, end + 1.5)
    ax.set_ylim(-1.5, y + 1.5)
    ax.axis("off")
    if ax is fig.axes[0] and len(fig.axes) == 1:
        fig.subplots_adjust(left=0.02, right=0.98)  # the columns' text needs the width the default margins take
    ax.set_title("SimPool §3.1: the generic pooling process (PoolingProcess); under each step, how the Table-1 "
                 "methods fill it (glsim_core.pooling.table1)", fontsize=10)
    return fig
