"""The papers' ablations as sweep definitions, shared by notebook 07, the command line and the report.

Each entry of :func:`ablations` (one per paper table) has a ``name``, the ``paper`` / ``table`` it reproduces, the
``points`` (``{variant label: TrainConfig overrides}``; dotted keys set model keywords), the ``fixed`` overrides of
the whole table, the paper's numbers (:data:`glsim_core.experiments.aggregate.PAPER_REFERENCE`) and a ``note``.
Every GLSim point spells out all of GLSim's switches (:data:`GLSIM_DEFAULTS` plus the point's changes), so the same
model in two tables is the same full configuration and is trained once (the sweep runner reuses a finished run
of an identical configuration and seed).

Produce the table that notebook 07 reads (``data/results/ablations_cpu.csv`` with a manifest beside it)::

    python -m glsim_core ablations --profile cpu --seeds 1,10,100 --epochs 8 \\
        --csv data/results/ablations_cpu.csv

(``--tables glsim_table5,glsim_table13`` for a subset, ``--max-train N`` for a quicker pass, ``--set key=value``
for any other TrainConfig field; interrupted runs resume from ``--out``, default ``build/runs/ablations``.)

Deviations from the papers' set-ups, by necessity of the cpu profile: the offline benchmark instead of CUB, the
nano ViTs at 64 px instead of ViT B-16 at 224 px; Table 15 compares patch 8 with patch 16 (the paper: 16 and 32)
and trains both from scratch in the cpu profile (only the patch-8 backbone is shipped pretrained); SimPool's
Table 10 was measured with ResNet-18 on ImageNet-20 %, here SimPool heads a nano ViT.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.synthetic import BenchmarkSpec, ensure_benchmark
from ..paths import build_dir, cache_dir, repo_root
from ..profiles import get_profile
from ..weights.shipped import has_shipped_weights, sha256
from .aggregate import PAPER_REFERENCE, parse_reference, summarize, with_reference
from .sweep import resolve_target, run_sweep

__all__ = ["Ablation", "ablations", "ABLATION_NAMES", "GLSIM_DEFAULTS", "run_ablations", "BACKBONES",
           "DEFAULT_CSV", "load_ablation_results", "ablation_settings", "ablation_summary", "reading", "SMOKE_POINTS"]

#: every GLSim switch, spelled out in every GLSim point (see the module docstring)
GLSIM_DEFAULTS = {"selector": "gls", "top_o": 8, "metric": "cosine", "use_crops": True, "use_aggregator": True}

#: per profile: the plain ViT, GLSim on it, and the coarse-patch pair of Table 15
BACKBONES: dict[str, dict[str, str]] = {
    "cpu": {"vit": "vit_nano_convstem_patch8_64", "glsim": "glsim_vit_nano_convstem_patch8_64",
            "vit_coarse": "vit_nano_convstem_patch16_64", "glsim_coarse": "glsim_vit_nano_convstem_patch16_64"},
    "gpu": {"vit": "vit_base_patch16_224.orig_in21k", "glsim": "glsim_vit_base_patch16_224",
            "vit_coarse": "vit_base_patch32_224.orig_in21k", "glsim_coarse": "glsim_vit_base_patch32_224"},
}

DEFAULT_CSV = "data/results/ablations_{profile}.csv"
#: the handful of runs a smoke (CI) execution of notebook 07 makes: {ablation: variants}
SMOKE_POINTS = {"glsim_table5": ["no crops, no aggregator (ViT)", "GLS crops + aggregator (GLSim)"],
                "simpool_gamma": ["CLS token (ViT)", "γ=1.25"]}


@dataclass
class Ablation:
    name: str
    paper: str
    table: str
    title: str
    points: dict[str, dict[str, Any]]
    fixed: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    baseline: str = ""  # the variant differences are read against (default: the first point)

    @property
    def reference_variant(self) -> str:
        return self.baseline or next(iter(self.points))

    @property
    def reference(self) -> dict[str, Any]:
        return PAPER_REFERENCE.get(self.name, {})


def _glsim(model: str, **switches: Any) -> dict[str, Any]:
    kw = {**GLSIM_DEFAULTS, **switches}
    return {"model": model, **{f"model_kwargs.{k}": v for k, v in kw.items()}}


def ablations(profile: str = "cpu") -> dict[str, Ablation]:
    """The ablation definitions for a profile's backbones (``cpu``: nano ViTs at 64 px; ``gpu``: ViT B-16/B-32)."""
    if profile not in BACKBONES:
        raise ValueError(f"profile must be one of {sorted(BACKBONES)}, got {profile!r}")
    b = BACKBONES[profile]
    vit, glsim = {"model": b["vit"]}, lambda **kw: _glsim(b["glsim"], **kw)
    out = [
        Ablation("glsim_table5", "GLSim", "Table 5", "GLS crops × aggregator", {
            "no crops, no aggregator (ViT)": glsim(use_crops=False, use_aggregator=False),
            "aggregator only": glsim(use_crops=False, use_aggregator=True),
            "GLS crops, no aggregator": glsim(use_crops=True, use_aggregator=False),
            "GLS crops + aggregator (GLSim)": glsim(),
        }, note="GLSim with use_crops=False, use_aggregator=False is the plain ViT (head on f^0)."),
        Ablation("glsim_table12", "GLSim", "Table 12", "random crops with / without the aggregator", {
            "baseline (ViT)": glsim(use_crops=False, use_aggregator=False),
            "random crops, no aggregator": glsim(selector="random", use_aggregator=False),
            "random crops + aggregator": glsim(selector="random"),
            "GLS crops + aggregator (GLSim)": glsim(),
        }),
        Ablation("glsim_table13", "GLSim", "Table 13", "top-O tokens for the crop",
                 {f"O={o}": glsim(top_o=o) for o in (4, 8, 16, 32)}, baseline="O=8",
                 note="O counts tokens of the grid: 64 tokens (8×8) in the cpu profile, 196 (14×14) in the paper, "
                      "so O=32 keeps half the cpu grid."),
        Ablation("glsim_table14", "GLSim", "Table 14", "similarity metric of GLS",
                 {m: glsim(metric=m) for m in ("cosine", "l1", "l2")}),
        Ablation("glsim_table15", "GLSim", "Table 15", "patch size", {
            "ViT / fine patches": {"model": b["vit"]},
            "GLSim / fine patches": glsim(),
            "ViT / coarse patches": {"model": b["vit_coarse"]},
            "GLSim / coarse patches": _glsim(b["glsim_coarse"]),
        }, fixed={"pretrained": False} if profile == "cpu" else {},
            note="cpu: patch 8 (8×8 grid) vs patch 16 (4×4 grid) at 64 px, the same conv-stem ViT (the coarse stem has "
                 "one more stride-2 stage), both from scratch (no shipped patch-16 backbone); paper: patch 16 vs 32 "
                 "at 224 px, both ImageNet-21k pretrained."),
        Ablation("glsim_table11", "GLSim", "Table 11", "AugReg levels", {
            f"{who} / {level}": {**model, "augreg": level}
            for who, model in (("ViT", vit), ("GLSim", glsim())) for level in ("minimal", "weak", "medium",
                                                                                 "strong")}),
        Ablation("glsim_selectors", "GLSim", "Table 12 (+ this repo)", "selection mechanism (with aggregator)",
                 {s: glsim(selector=s) for s in ("gls", "rollout", "attention", "simpool", "random")},
                 note="selector='simpool' pools with SimPool and crops from its attention map (pool='simpool')."),
        Ablation("simpool_gamma", "SimPool", "§4.4", "SimPool γ on the ViT", {
            "CLS token (ViT)": vit,
            "γ=None": {**vit, "pooling": "simpool", "model_kwargs.gamma": False},
            "γ=1.25": {**vit, "pooling": "simpool", "model_kwargs.gamma": 1.25},
            "γ=2": {**vit, "pooling": "simpool", "model_kwargs.gamma": 2.0},
            "γ=3": {**vit, "pooling": "simpool", "model_kwargs.gamma": 3.0},
        }, note="γ=None is the plain attention-weighted average u = LN(X) a (no shift, no power)."),
        Ablation("simpool_table10", "SimPool", "Table 10", "SimPool design choices", {
            "SimPool (default)": {**vit, "pooling": "simpool"},
            "multi-head (m=4)": {**vit, "pooling": "simpool", "model_kwargs.pool_kwargs.num_heads": 4},
            "W_Q = W_K": {**vit, "pooling": "simpool", "model_kwargs.pool_kwargs.shared_qk": True},
            "f_-1: linear q,k; LN k,v (chosen)": {**vit, "pooling": "simpool", "model_kwargs.gamma": False},
            "f_-1: linear q,k,v; LN q,k,v": {**vit, "pooling": "simpool", "model_kwargs.gamma": False,
                                             "model_kwargs.pool_kwargs.linear": "qkv",
                                             "model_kwargs.pool_kwargs.layernorm": "qkv"},
            "f_-1: no linear; LN k,v": {**vit, "pooling": "simpool", "model_kwargs.gamma": False,
                                        "model_kwargs.pool_kwargs.linear": ""},
            "GAP": {**vit, "pooling": "gap"},
        }, note="the design options are glsim_core.pooling.simpool_variants.SimPoolVariant; the 'f_-1' rows use the "
                "plain weighted average (γ = None) like Table 10 (right)."),
    ]
    return {a.name: a for a in out}


ABLATION_NAMES = tuple(ablations("cpu"))


def run_ablations(names: list[str] | tuple[str, ...] | None = None, seeds=(1, 10, 100), profile: str = "cpu",
                  out: str | os.PathLike | None = None, settings: dict[str, Any] | None = None,
                  progress: bool = True, isolate: bool = False, dry_run: bool = False,
                  variants: dict[str, list[str]] | None = None):
    """Run the named ablations (default: all) and return one tidy table with ``ablation``, ``paper_table`` and
    ``variant`` columns (a run shared by two tables appears in both). ``settings``: TrainConfig overrides for
    every run (``epochs``, ``max_train_samples``, ``dataset``, ``pretrained`` ...); ``variants``: run only these
    variants of the named tables (``{name: [variant, ...]}``, e.g. :data:`SMOKE_POINTS`)."""
    import pandas as pd

    defs = ablations(profile)
    names = list(names or (variants or defs))
    unknown = [n for n in names if n not in defs]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; valid: {', '.join(defs)}")
    out = Path(out) if out is not None else build_dir() / "runs" / "ablations"
    target = resolve_target("train", profile=profile)
    settings = dict(settings or {})
    tables = []
    chosen = {}
    for name in names:
        keep = (variants or {}).get(name)
        bad = [v for v in keep or () if v not in defs[name].points]
        if bad:
            raise ValueError(f"{name} has no variant(s) {bad}; its variants: {list(defs[name].points)}")
        chosen[name] = {v: p for v, p in defs[name].points.items() if keep is None or v in keep}
    total = sum(len(c) for c in chosen.values()) * len(list(seeds))
    done = 0
    failed: list[dict[str, Any]] = []
    for name in names:
        ab = defs[name]
        for variant, point in chosen[name].items():
            fixed = {k: v for k, v in {**settings, **ab.fixed}.items() if k not in point}
            if progress:
                print(f"[{done}/{total}] {name}: {variant}", flush=True)
            df = run_sweep(target, {k: [v] for k, v in point.items()}, seeds=seeds, out=out, fixed=fixed,
                           progress=progress, isolate=isolate, dry_run=dry_run, keep_checkpoints=False,
                           tags={"ablation": name, "paper_table": f"{ab.paper} {ab.table}", "variant": variant})
            failed += df.attrs.get("failed", [])
            df.attrs = {}
            tables.append(df)
            done += len(df)
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not dry_run and len(table):
        table.to_csv(out / "ablations.csv", index=False)  # what the report finds under build/runs
    table.attrs["out"] = str(out)
    table.attrs["failed"] = failed
    return table


def ablation_settings(profile: str = "cpu", smoke: bool = False, epochs: int | None = None,
                      max_train: int | None = None, **extra: Any) -> dict[str, Any]:
    """TrainConfig overrides for every ablation run of notebook 07 / the producing command.

    ``smoke``: one epoch on 64 training images of a small benchmark (300/120 images, generated on first use, shared
    with notebook 06), 60 test images. In the cpu profile the shipped pretrained backbone is used when it is present
    (``data/pretrained``), otherwise the runs start from scratch (``pretrained=False``, noted in the table).
    """

    prof = get_profile(profile)
    settings: dict[str, Any] = {}
    if smoke:
        if prof.name == "cpu":
            settings["dataset"] = str(ensure_benchmark(BenchmarkSpec(train_size=300, test_size=120),
                                                       cache_dir() / "finegrained_benchmark_smoke", progress=False))
        settings.update(epochs=1, max_train_samples=64, max_eval_samples=60)
    else:
        if epochs is not None:
            settings["epochs"] = int(epochs)
        if max_train is not None:
            settings["max_train_samples"] = int(max_train)
    if prof.name == "cpu":
        settings["pretrained"] = bool(prof.pretrained and has_shipped_weights(BACKBONES["cpu"]["vit"]))
    settings.update(extra)
    return settings


def ablation_summary(table, name: str, metric: str = "top1", profile: str = "cpu"):
    """One ablation as a table: ``variant``, this repository's mean ± std (and n), the paper's number; the paper's
    rows that were not run say "not run"."""

    ab = ablations(profile)[name]
    sub = table[table["ablation"] == name] if len(table) and "ablation" in table.columns else table.iloc[0:0]
    if len(sub) == 0:
        import pandas as pd

        sub = pd.DataFrame({"variant": [], metric: [], "status": []})
    summary = summarize(sub, by="variant", metrics=[metric])
    order = [v for v in ab.points if v in set(summary["variant"])]
    summary = summary.set_index("variant").loc[order].reset_index() if order else summary
    out = with_reference(summary, name if name in PAPER_REFERENCE else {"rows": {}}, key="variant", metric=metric)
    return out[["variant", metric, f"{metric}_n", "paper", f"{metric}_mean", f"{metric}_std"]].rename(
        columns={metric: "this repo", f"{metric}_n": "n"})


def reading(table, name: str, metric: str = "top1", profile: str = "cpu"):
    """Each variant's difference from the table's reference variant, in the paper and here, with a verdict.

    ``here Δ`` is the difference of the means; ``± se`` its standard error sqrt(s1²/n1 + s2²/n2) (NaN with one
    seed). Verdict: "same direction" / "opposite direction" when |Δ| > 2·se (or > 0 with one seed: no noise
    estimate, read it with care), "within noise" when |Δ| <= 2·se, "paper: no difference", "no paper number" or
    "not run" otherwise.
    """
    import math

    import pandas as pd

    ab = ablations(profile)[name]
    s = ablation_summary(table, name, metric, profile)
    by = {r["variant"]: r for _, r in s.iterrows()}
    base = ab.reference_variant
    rows = []
    for variant in ab.points:
        if variant == base:
            continue
        r, b = by.get(variant), by.get(base)
        pm, _ = parse_reference(r["paper"]) if r is not None and r["paper"] else (math.nan, math.nan)
        pb, _ = parse_reference(b["paper"]) if b is not None and b["paper"] else (math.nan, math.nan)
        paper_d = pm - pb
        ran = all(x is not None and pd.notna(x["n"]) and x["n"] > 0 for x in (r, b))
        here = float(r[f"{metric}_mean"] - b[f"{metric}_mean"]) if ran else math.nan
        se = math.nan
        if ran and r["n"] > 1 and b["n"] > 1:
            se = math.sqrt(r[f"{metric}_std"] ** 2 / r["n"] + b[f"{metric}_std"] ** 2 / b["n"])
        if not ran:
            verdict = "not run"
        elif math.isnan(paper_d):
            verdict = "no paper number"
        elif paper_d == 0:
            verdict = "paper: no difference"
        elif abs(here) <= (2 * se if not math.isnan(se) else 0.0):
            verdict = "within noise"
        else:
            verdict = "same direction" if (here > 0) == (paper_d > 0) and paper_d != 0 else "opposite direction"
        rows.append({"variant": variant, "vs": base, "paper Δ": paper_d, "here Δ": here, "± se": se,
                     "verdict": verdict})
    return pd.DataFrame(rows, columns=["variant", "vs", "paper Δ", "here Δ", "± se", "verdict"])


def load_ablation_results(path: str | os.PathLike | None = None, profile: str = "cpu"):
    """The shipped ablation table (``data/results/ablations_<profile>.csv``) as a DataFrame, or None if absent."""
    import pandas as pd

    path = Path(path) if path is not None else repo_root() / DEFAULT_CSV.format(profile=profile)
    return pd.read_csv(path) if path.is_file() else None


_TIDY_COLUMNS = ("ablation", "paper_table", "variant", "seed", "top1", "eval_loss", "train_top1", "n_eval",
                 "num_classes", "train_size", "epochs_run", "model", "pooling", "augreg", "pretrained", "epochs",
                 "max_train_samples", "wall_s", "seconds", "train_img_per_s", "device", "status", "error")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    except Exception:  # not a checkout
        return ""


def write_results(table, csv: str | os.PathLike, command: str, settings: dict[str, Any], profile: str,
                  seeds, note: str = "") -> Path:
    """Write the shipped CSV (selected columns) and ``<csv stem>.manifest.json`` beside it."""
    csv = Path(csv)
    csv.parent.mkdir(parents=True, exist_ok=True)
    cols = [c for c in _TIDY_COLUMNS if c in table.columns]
    cols += sorted(c for c in table.columns if c.startswith("model_kwargs.") and c not in cols)
    table[cols].to_csv(csv, index=False)
    ok = table[table["status"] == "ok"] if len(table) else table
    manifest = {
        "command": command, "profile": profile, "seeds": list(seeds), "settings": settings,
        "runs": int(len(table)), "ok": int(len(ok)), "failed": int(len(table) - len(ok)),
        "note": note,
        # each run once (a run shared by two tables appears in both)
        "total_train_seconds": float(ok.drop_duplicates("run_dir")["wall_s"].sum()) if len(ok) else 0.0,
        "device": sorted(set(map(str, ok["device"]))) if len(ok) else [],
        "machine": " ".join(x for x in (platform.machine(), platform.processor(), f"{os.cpu_count()} CPUs") if x),
        "python": sys.version.split()[0], "git_commit": _git_commit(),
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "files": {csv.name: sha256(csv)},
    }
    try:
        import torch

        manifest["torch"] = torch.__version__
        manifest["threads"] = torch.get_num_threads()
    except Exception:
        pass
    path = csv.with_suffix(".manifest.json")
    path.write_text(json.dumps(manifest, indent=2))
    return path
