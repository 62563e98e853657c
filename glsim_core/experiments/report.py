"""The reproduction report: every claim this repository checks, the paper's number beside this repository's.

``python -m glsim_core report [--runs build/runs] [--build build] [--out build/report.md]`` renders markdown:

0. **The headline** (``data/results/headline_<profile>.json`` from ``python -m glsim_core scale-map collect``): each
   model's top-1 over five seeds at the point the scale map chose, and each difference with its standard error.
1. **Ablations** (one section per entry of :data:`~glsim_core.experiments.aggregate.PAPER_REFERENCE`): a table
   ``claim · paper · this repo · profile / hardware / time`` per ablation table, from every ablation table found -
   the shipped ``data/results/ablations_<profile>.csv`` (with its manifest) and any ``ablations.csv`` that
   ``python -m glsim_core ablations`` left under ``--runs``. A paper row without runs says
   "not run"; a variant the paper has no number for shows "-" as the paper's number. Numbers are mean ± sample
   std over seeds (n = number of seeds).
2. **Other sweeps**: every ``results.csv`` under ``--runs`` (``python -m glsim_core sweep``), summarised by its
   swept parameters.
3. **Notebooks**: every ``results.json`` under ``--build`` (what notebooks ``record``), its scalar values.

Nothing is invented: a number appears only if a file under the given folders holds it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..paths import build_dir, data_dir
from .ablations import ablations
from .aggregate import PAPER_REFERENCE, format_mean_std
from .scale_map import load_headline

__all__ = ["build_report", "ablation_rows", "find_ablation_tables", "NOT_RUN"]

NOT_RUN = "not run"


def _manifest_of(csv: Path) -> dict[str, Any]:
    path = csv.with_suffix(".manifest.json")
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def find_ablation_tables(runs: Path | None, data: Path | None) -> list[tuple[str, Path, dict[str, Any]]]:
    """``(source label, csv path, manifest)`` of each ablation table: shipped ones first, then local runs."""
    found = []
    if data is not None and (data / "results").is_dir():
        for csv in sorted((data / "results").glob("ablations_*.csv")):
            found.append((f"shipped {csv.name}", csv, _manifest_of(csv)))
    if runs is not None and runs.is_dir():
        for csv in sorted(runs.rglob("ablations.csv")):
            found.append((f"local runs {csv.parent}", csv, _manifest_of(csv)))
    return found


def _hardware(group, manifest: dict[str, Any]) -> str:
    parts = []
    profile = manifest.get("profile")
    if profile:
        parts.append(f"profile {profile}")
    devices = sorted({str(d) for d in group.get("device", []) if isinstance(d, str) and d})
    if devices:
        parts.append("device " + "/".join(devices))
    if manifest.get("machine"):
        parts.append(str(manifest["machine"]))
    settings = []
    for col in ("epochs", "max_train_samples"):
        if col in group.columns:
            vals = sorted({v for v in group[col].dropna().tolist()})
            if vals:
                settings.append(f"{col}={'/'.join(str(int(v)) if float(v).is_integer() else str(v) for v in vals)}")
    if "pretrained" in group.columns:
        vals = sorted({str(v) for v in group["pretrained"].dropna().tolist()})
        if vals:
            settings.append(f"pretrained={'/'.join(vals)}")
    if settings:
        parts.append(", ".join(settings))
    if "wall_s" in group.columns:
        wall = group["wall_s"].dropna()
        if len(wall):
            mean = float(wall.mean())
            parts.append(f"{len(wall)} run(s) × {mean:.1f} s" if mean < 10 else f"{len(wall)} run(s) × {mean:.0f} s")
    return " · ".join(parts) or "-"


def ablation_rows(table, name: str, manifest: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Rows ``{claim, paper, repo, hardware}`` for one ablation from a tidy ablation table (``None``: not run)."""
    import pandas as pd

    ref = PAPER_REFERENCE.get(name, {})
    paper_rows = ref.get("rows", {})
    manifest = manifest or {}
    sub = pd.DataFrame() if table is None else table[table["ablation"] == name]
    if "status" in sub.columns:
        sub = sub[sub["status"] == "ok"]
    variants = list(paper_rows) + [v for v in dict.fromkeys(sub.get("variant", [])) if v not in paper_rows]
    rows = []
    for variant in variants:
        group = sub[sub["variant"] == variant] if len(sub) else sub
        values = pd.to_numeric(group["top1"], errors="coerce").dropna() if len(group) else pd.Series(dtype=float)
        n = int(values.size)
        mean = float(values.mean()) if n else math.nan
        std = float(values.std(ddof=1)) if n > 1 else math.nan
        repo = format_mean_std(mean, std, n) if n else NOT_RUN
        if n > 1:
            repo += f" (n={n})"
        rows.append({"claim": variant, "paper": paper_rows.get(variant, "-"), "repo": repo,
                     "hardware": _hardware(group, manifest) if n else "-"})
    return rows


def _md_table(rows: list[dict[str, str]], header=("claim", "paper", "this repo", "profile / hardware / time")) -> str:
    keys = ("claim", "paper", "repo", "hardware")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[k]).replace("|", "\\|") for k in keys) + " |")
    return "\n".join(lines)


def _headline_section(data: Path) -> list[str]:
    """The headline table of each shipped ``headline_<profile>.json`` (five seeds a model at the point the scale
    map chose) with its differences, read as the scale map reads them."""
    out = ["## The headline: ViT, SimPool-ViT, GLSim, random crops, no pretraining (notebooks 06 and 07)", ""]
    found = sorted(p for p in (data / "results").glob("headline_*.json") if not p.name.endswith(".manifest.json")) \
        if (data / "results").is_dir() else []
    if not found:
        return out + ["No headline table found (`data/results/headline_<profile>.json`); produce it with "
                      "`python -m glsim_core scale-map run` and `python -m glsim_core scale-map collect`.", ""]
    for path in found:
        head = load_headline(path=path)
        profile = path.stem.removeprefix("headline_")
        manifest = _manifest_of(path.with_suffix(".csv"))
        scale_json = data / "results" / f"scale_map_{profile}.json"
        try:
            reason = json.loads(scale_json.read_text()).get("choice_reason", "") if scale_json.is_file() else ""
        except (OSError, json.JSONDecodeError):
            reason = ""
        out += [f"### Profile `{profile}`, point `{head.get('point', '?')}` (object_scale {head.get('object_scale')})",
                ""]
        if reason:
            out += [f"Why this point: {reason}.", ""]
        if manifest.get("command"):
            out += [f"Produced by `{manifest['command']}` ({manifest.get('written', '')}; "
                    f"{manifest.get('machine', '?')}, {manifest.get('total_train_seconds', 0) / 3600:.1f} h of "
                    "training).", ""]
        rows = []
        for r in head.get("table", []):
            repo = format_mean_std(r["top1_mean"], r["top1_std"], int(r["n"]))
            repo += (f" (n={int(r['n'])})" if r["n"] > 1 else "") + f", {r['x_chance']:.1f}× chance"
            rows.append({"claim": r["model"], "paper": "-", "repo": repo, "hardware": profile})
        out += [_md_table(rows), ""]
        out += [f"- {line}" for line in head.get("reading", []) if " - " in line] + [""]
    return out


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) <= 60)


def build_report(runs: str | os.PathLike | None = None, build: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None) -> str:
    """The report as markdown (see the module docstring). Folders default to ``build/runs``, ``build``, ``data``."""
    import pandas as pd

    runs = Path(runs) if runs is not None else build_dir() / "runs"
    build = Path(build) if build is not None else build_dir()
    data = Path(data) if data is not None else data_dir()
    out = ["# Reproduction report", "",
           f"glsim_core {__version__}; generated {time.strftime('%Y-%m-%d %H:%M')}. Paper numbers are copied from "
           "the papers' tables; this repository's numbers are mean ± sample std over seeds, read from the files "
           "named in each section. \"not run\" means no file here holds that number.", ""]

    # ---- 0. the headline of the scale map
    out += _headline_section(data)

    # ---- 1. ablations
    out += ["## Ablations (notebook 07)", ""]
    sources = find_ablation_tables(runs, data)
    if not sources:
        out += ["No ablation table found (`data/results/ablations_<profile>.csv` or `ablations.csv` under "
                f"`{runs}`): every row below is \"not run\". Produce one with "
                "`python -m glsim_core ablations --csv data/results/ablations_cpu.csv`.", ""]
        sources = [("none", None, {})]
    defs = ablations("cpu")
    for label, csv, manifest in sources:
        table = pd.read_csv(csv) if csv is not None else None
        if csv is not None:
            out += [f"### Source: {label}", ""]
            if manifest.get("command"):
                out += [f"Produced by `{manifest['command']}` ({manifest.get('written', '')}; "
                        f"{manifest.get('ok', '?')} ok / {manifest.get('failed', '?')} failed runs).", ""]
            if manifest.get("note"):
                out += [f"Note: {manifest['note']}", ""]
            if manifest.get("superseded"):
                out += [f"**Superseded — read nothing from this table:** {manifest['superseded']}", ""]
        for name, ref in PAPER_REFERENCE.items():
            title = ref.get("title", name)
            out += [f"#### {ref['paper']} {ref['table']}: {title}", "",
                    f"Paper setting: {ref.get('setting', '-')}."]
            notes = " ".join(x for x in (ref.get("notes", ""), defs[name].note if name in defs else "") if x)
            if notes:
                out += [f"Notes: {notes}"]
            out += ["", _md_table(ablation_rows(table, name, manifest)), ""]

    # ---- 2. other sweeps
    sweep_csvs = [p for p in sorted(runs.rglob("results.csv")) if runs.is_dir()] if runs.is_dir() else []
    sweep_csvs = [p for p in sweep_csvs if not (p.parent / "ablations.csv").exists()]
    out += ["## Other sweeps", ""]
    if not sweep_csvs:
        out += [f"No sweep results under `{runs}`.", ""]
    for csv in sweep_csvs:
        df = pd.read_csv(csv)
        if df.empty or "seed" not in df.columns:
            continue
        params = [c for c in df.columns[: list(df.columns).index("seed")] if df[c].nunique(dropna=False) > 1]
        metric = "top1" if "top1" in df.columns else next(
            (c for c in df.columns[list(df.columns).index("seed") + 1:]
             if pd.api.types.is_numeric_dtype(df[c]) and c not in ("wall_s",)), None)
        out += [f"### {csv.parent}", ""]
        if metric is None:
            out += ["(no numeric metric)", ""]
            continue
        ok = df[df["status"] == "ok"] if "status" in df.columns else df
        groups = ok.groupby(params, sort=False, dropna=False) if params else [((), ok)]
        rows = []
        for key, group in groups:
            key = key if isinstance(key, tuple) else (key,)
            vals = pd.to_numeric(group[metric], errors="coerce").dropna()
            n = int(vals.size)
            rows.append({"claim": ", ".join(f"{p}={k}" for p, k in zip(params, key)) or "all runs",
                         "paper": "-",
                         "repo": f"{metric} " + (format_mean_std(float(vals.mean()),
                                                                 float(vals.std(ddof=1)) if n > 1 else math.nan,
                                                                 n) if n else NOT_RUN),
                         "hardware": _hardware(group, {})})
        failed = int((df.get("status") == "failed").sum()) if "status" in df.columns else 0
        out += [_md_table(rows), ""] + ([f"{failed} failed run(s).", ""] if failed else [])

    # ---- 3. notebooks
    out += ["## Notebooks (recorded results)", ""]
    found = False
    if build.is_dir():
        for path in sorted(build.glob("*/results.json")):
            try:
                results = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            values = {k: v for k, v in results.items() if not k.startswith("_") and _scalar(v)}
            if not values:
                continue
            found = True
            hw = " · ".join(str(results[k]) for k in ("profile", "device") if k in results) or "-"
            if results.get("_updated"):
                hw += f" · {results['_updated']}"
            rows = [{"claim": f"{path.parent.name}: {k}", "paper": "-",
                     "repo": f"{v:.4g}" if isinstance(v, float) else str(v), "hardware": hw}
                    for k, v in values.items() if k not in ("profile", "device")]
            out += [f"### {path.parent.name}", "", _md_table(rows), ""]
    if not found:
        out += [f"No notebook results under `{build}` (run `python -m glsim_core run`).", ""]
    return "\n".join(out).rstrip() + "\n"
