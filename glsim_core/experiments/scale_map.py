"""Where does GLSim's crop help? The offline benchmark's object scale swept, four models, five seeds a point.

GLSim (§3.2) crops the box around the O tokens most similar to the CLS token and sends the crop through the same
encoder again. A crop can only help where it *zooms*: where the object is small in the view, the crop is
tighter than the view and still holds the object. This module measures that as a map over the object's size:

* **Points** (:data:`SCALE_POINTS`): the benchmark's ``object_scale`` (the bird's body length as a fraction of the
  view) at four values, from objects whose box covers a few per cent of the 64-px view to the default benchmark
  (about 45 %). Each point is its own dataset (same classes, sizes and seed; only the scale differs), generated
  under ``data/cache/benchmark_scale_<point>``.
* **Models** (:func:`glsim_core.train.calibration.calibration_models`): ViT (CLS token), SimPool-ViT, GLSim (GLS
  crops, GLSim Eq. 1-6) and GLSim with random crops (GLSim Table 12's control), each fine-tuned from the shipped
  pretrained backbone with the profile's recipe; seeds 1-5.
* **Controls** (:data:`CONTROLS`, run only when named with ``--models``): ``ViT-scratch`` (the ViT without the
  pretrained backbone: the headline table's fifth row) and ``GLSim-full`` (GLSim whose second pass sees the whole
  view: it tells "a second pass and the aggregator" apart from "a second pass on another view", the question
  GLSim-random raises where it beats GLSim).
* **Headline** (:func:`choose_point`, :func:`headline`): ``collect`` picks the point where GLSim - ViT is clearest
  (most standard errors above 0, and more than 2) among the points where every model of the map reaches 3x chance
  - or keeps the default benchmark when no point shows the gain beyond 2 standard errors - and writes the table of
  all models there, with each difference and its reading, to ``data/results/headline_<profile>.json``.
* **Geometry** (:func:`crop_geometry`, for GLSim and for GLSim-random): for each point, on the test images, the
  share of the view the object's box covers, the share the crop covers, the crop's zoom (``sqrt(view area / crop
  area)``, the linear magnification the second pass sees) and the share of the object's box the crop keeps.

Run it (resumable; one process per core, each taking every other run)::

    python -m glsim_core scale-map run --shard 0/2 &  python -m glsim_core scale-map run --shard 1/2
    python -m glsim_core scale-map run --points l --models ViT-scratch,GLSim-full   # the controls, where wanted
    python -m glsim_core scale-map collect            # data/results/scale_map_cpu.{csv,json}, headline_cpu.*

``--points digits`` runs the same four models with the same recipe on the held-out boxed-digits dataset
(:mod:`glsim_core.data.boxed_digits`): the check that the recipe was not tuned to the benchmark alone.

Every run is an ordinary :func:`glsim_core.train.fit` run in ``data/runs/scale_map/<point>/<model>/seed_<s>``
(``metrics.json``, ``history.csv``, ``checkpoint.pt``); a finished run is read back, an interrupted one resumes. The
runs' metrics and curves are committed (not their checkpoints), so the map grows across sessions and machines.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from filelock import FileLock

from ..analysis.accuracy import difference
from ..data.boxed_digits import default_digits_path, ensure_boxed_digits
from ..data.hf import collate_images
from ..data.synthetic import BenchmarkSpec, default_benchmark_path, ensure_benchmark
from ..notebook import _jsonable
from ..paths import cache_dir, data_dir
from ..profiles import get_profile
from ..train import TrainConfig
from ..train.calibration import calibration_models
from ..train.engine import load_data, load_trained_model
from ..train.protocol import _run, _slug
from ..weights.shipped import sha256

__all__ = ["point_table", "reading", "plot_scale_map", "MIN_SEEDS_TO_READ", "SCALE_POINTS", "SEEDS",
           "SHIPPED_CSV", "default_out", "benchmark_spec", "ensure_point_data", "plan",
           "run_scale_map", "crop_geometry", "collect_runs", "summarize", "differences", "load_scale_map",
           "choose_point", "choice_reason", "DEFAULT_POINT", "headline", "load_headline", "SCRATCH", "FULL_VIEW",
           "CONTROLS"]

#: point name -> the benchmark's object_scale range (body length / view); box share of the view grows ~ scale^2
SCALE_POINTS: dict[str, tuple[float, float]] = {
    "xs": (0.13, 0.19),
    "s": (0.20, 0.28),
    "m": (0.29, 0.39),
    "l": (0.40, 0.55),  # the default benchmark's scale
}
#: the profile's default benchmark (``l``): the headline stays here unless the map shows a clear gain elsewhere
DEFAULT_POINT = "l"
#: the held-out check: the same models and recipe on a dataset the recipe was never chosen on (boxed digits)
HELD_OUT = "digits"
SEEDS = (1, 2, 3, 4, 5)
SHIPPED_CSV = "results/scale_map_{profile}.csv"  # under data/


def default_out() -> Path:
    """The run folders, ``data/runs/scale_map``: their metrics.json / history.csv / config.json are committed
    (checkpoints are git-ignored), so a later session - or another machine - resumes the map where it stopped."""
    return data_dir() / "runs" / "scale_map"


def benchmark_spec(point: str):
    """The :class:`~glsim_core.data.synthetic.BenchmarkSpec` of a point: the default one at another scale."""
    if point not in SCALE_POINTS:
        raise ValueError(f"unknown scale point {point!r}; choose from {sorted(SCALE_POINTS)}")
    return BenchmarkSpec(object_scale=SCALE_POINTS[point])


def point_dataset_path(point: str) -> Path:
    if point == HELD_OUT:
        return default_digits_path()
    if point == DEFAULT_POINT:  # the default benchmark itself: no second copy
        return default_benchmark_path()
    return cache_dir() / f"benchmark_scale_{point}"


def ensure_point_data(point: str, progress: bool = True) -> Path:
    """Generate a point's dataset if missing (under a file lock: several processes may ask at once)."""
    path = point_dataset_path(point)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if point == HELD_OUT:
            return ensure_boxed_digits(path=path, progress=progress)
        return ensure_benchmark(benchmark_spec(point), path, progress=progress)


#: the headline table's fifth row (GLSim's "no pretraining" control), run only when asked for by name
SCRATCH = "ViT-scratch"
#: a control for GLSim-random, run only when asked for by name: GLSim whose second pass sees the *whole* view (O is
#: larger than any grid, so every token is selected and the crop box is the full image). Against GLSim-random it
#: separates "a second pass + the aggregator" from "a second pass on a jittered, slightly zoomed view".
FULL_VIEW = "GLSim-full"
FULL_VIEW_O = 1_000_000
#: models of the map that run only when named (``--models``)
CONTROLS = (SCRATCH, FULL_VIEW)


def _models(profile: str) -> list[dict[str, Any]]:
    p = get_profile(profile)
    return [*calibration_models(profile), {"name": SCRATCH, "model": p.model, "pretrained": False},
            {"name": FULL_VIEW, "model": p.glsim_model, "model_kwargs": {"top_o": FULL_VIEW_O}}]


def plan(seeds: Sequence[int] = SEEDS, points: Sequence[str] | None = None, models: Sequence[str] | None = None,
         profile: str = "cpu") -> list[tuple[int, str, dict[str, Any]]]:
    """The runs, seed-major (every point and model at seed 1 first): ``[(seed, point, model overrides)]``."""
    points = list(points or SCALE_POINTS)
    unknown = sorted(set(points) - set(SCALE_POINTS) - {HELD_OUT})
    if unknown:
        raise ValueError(f"unknown scale point(s) {unknown}; choose from {sorted(SCALE_POINTS)} or {HELD_OUT!r}")
    specs = _models(profile)
    names = [s["name"] for s in specs]
    bad = sorted(set(models or ()) - set(names))
    if bad:
        raise ValueError(f"unknown model(s) {bad}; choose from {names}")
    chosen = [s for s in specs if (s["name"] in models if models else s["name"] not in CONTROLS)]
    return [(int(seed), point, spec) for seed in seeds for point in points for spec in chosen]


def _run_dir(out: Path, point: str, name: str, seed: int) -> Path:
    return out / point / _slug(name) / f"seed_{seed}"


def _config(point: str, spec: dict[str, Any], seed: int, out: Path, profile: str, overrides: dict[str, Any]):
    cfg = TrainConfig.from_profile(profile, **{**overrides, **spec})
    return cfg.replace(dataset=str(point_dataset_path(point)), seed=int(seed), train_split="trainval",
                       eval_split="test", out_dir=str(_run_dir(out, point, spec["name"], seed)), resume=True)


def run_scale_map(seeds: Sequence[int] = SEEDS, points: Sequence[str] | None = None,
                  models: Sequence[str] | None = None, out: str | Path | None = None, profile: str = "cpu",
                  shard: tuple[int, int] = (0, 1), dry_run: bool = False, **overrides: Any) -> list[dict[str, Any]]:
    """Run (or read back) this shard's runs; return ``[{point, model, seed, status, top1, run_dir}]``.

    ``shard=(i, n)`` takes runs i, i+n, i+2n ... of :func:`plan`, so n processes share the work without overlap;
    ``overrides`` are :class:`~glsim_core.train.TrainConfig` fields for every run (e.g. ``epochs=1``).
    """
    index, count = int(shard[0]), int(shard[1])
    if not 0 <= index < count:
        raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
    out = Path(out) if out is not None else default_out()
    runs = plan(seeds, points, models, profile)[index::count]
    rows = []
    for point in dict.fromkeys(p for _, p, _ in runs):
        if not dry_run:
            ensure_point_data(point, progress=overrides.get("progress", True))
    for seed, point, spec in runs:
        cfg = _config(point, spec, seed, out, profile, overrides)
        row = {"point": point, "model": spec["name"], "seed": seed, "run_dir": cfg.out_dir}
        done = Path(cfg.out_dir) / "metrics.json"
        if dry_run:
            rows.append({**row, "status": "done" if done.is_file() else "planned"})
            continue
        print(f"scale map: point {point}, {spec['name']}, seed {seed}", flush=True)
        metrics = _run(cfg)
        rows.append({**row, "status": "ok", "top1": float(metrics["top1"])})
    return rows


# ---------------------------------------------------------------------------------------------- geometry
def _box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def crop_geometry(model, data, split: str = "test", max_samples: int | None = 400, batch_size: int = 100
                  ) -> dict[str, float]:
    """How a GLSim model's crops sit on the objects of a dataset with boxes.

    Returns medians (and the 10th / 90th percentiles of the box share) over the images of ``split``:
    ``box_share`` (object box area / view area, after the eval transform), ``crop_share`` (crop area / view area),
    ``zoom`` (``sqrt(view area / crop area)``: how much larger the second pass sees what the crop holds),
    ``kept`` (mean share of the object's box inside the crop), ``kept90`` (share of crops that keep ≥ 90 % of the
    box) and ``n``. Boxes are half-open pixel boxes ``(x0, y0, x1, y1)`` on the network's input.
    """
    if not hasattr(model, "forward_details"):
        raise ValueError("crop_geometry needs a GLSim model (one with forward_details)")
    ds = data.torch_split(split, train=False, with_boxes=True)
    n = len(ds) if max_samples is None else min(len(ds), int(max_samples))
    gts, crops, view = [], [], None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, n, batch_size):
                batch = collate_images(ds.__getitems__(list(range(start, min(n, start + batch_size)))))
                keep = [bx.reshape(-1, 4).shape[0] > 0 for bx in batch["boxes"]]
                if not any(keep):
                    continue
                x = batch["image"][torch.tensor(keep)]
                view = tuple(x.shape[-2:])
                details = model.forward_details(x)
                if details.boxes is None:
                    raise ValueError("the model makes no crops (use_crops=False)")
                crops.append(details.boxes.float().numpy())
                gts.append(torch.stack([bx.reshape(-1, 4)[0] for bx, ok in zip(batch["boxes"], keep) if ok])
                           .float().numpy())
    finally:
        model.train(was_training)
    if not gts:
        raise ValueError(f"no images with a box in split {split!r}")
    gt, crop = np.concatenate(gts), np.concatenate(crops)
    view_area = float(view[0] * view[1])
    inter = np.stack([np.maximum(gt[:, 0], crop[:, 0]), np.maximum(gt[:, 1], crop[:, 1]),
                      np.minimum(gt[:, 2], crop[:, 2]), np.minimum(gt[:, 3], crop[:, 3])], axis=1)
    gt_area = np.maximum(_box_area(gt), 1e-9)
    kept = _box_area(inter) / gt_area
    box_share, crop_share = _box_area(gt) / view_area, _box_area(crop) / view_area
    return {"box_share": float(np.median(box_share)), "box_share_p10": float(np.percentile(box_share, 10)),
            "box_share_p90": float(np.percentile(box_share, 90)), "crop_share": float(np.median(crop_share)),
            "zoom": float(np.median(np.sqrt(1.0 / np.maximum(crop_share, 1e-9)))), "kept": float(kept.mean()),
            "kept90": float((kept >= 0.9).mean()), "n": int(len(gt))}


# ------------------------------------------------------------------------------------------------ tables
def collect_runs(out: str | Path | None = None):
    """Every finished run under ``out`` as a table: point, object_scale, model, seed, top1, epochs, the curve."""
    rows = []
    for path in sorted(Path(out if out is not None else default_out()).glob("*/*/seed_*/metrics.json")):
        point = path.parents[2].name
        if point not in SCALE_POINTS and point != HELD_OUT:
            continue
        m = json.loads(path.read_text())
        cfg = m.get("config", {})
        split = m.get("eval_split", "test")
        curve = [round(float(h[f"{split}_top1"]), 2) for h in m.get("history", []) if f"{split}_top1" in h]
        scale = "-".join(f"{v:g}" for v in SCALE_POINTS[point]) if point in SCALE_POINTS else ""
        rows.append({"point": point, "object_scale": scale,
                     "model": cfg.get("name") or cfg.get("model"), "seed": int(cfg.get("seed")),
                     "top1": float(m["top1"]), "epochs": int(cfg.get("epochs")), "train_size": m.get("train_size"),
                     "n_eval": m.get("n_eval"), "num_classes": m.get("num_classes"), "seconds": m.get("seconds"),
                     "device": m.get("device"),
                     "curve": json.dumps(curve)})
    return pd.DataFrame(rows)


def differences(runs, a: str, b: str) -> dict[str, float]:
    """``a - b`` in top-1 at one point: mean difference, its standard error (Welch: independent seeds), the 95 %
    interval from Student's t and the number of standard errors it lies from 0 (NaN while a side has one run)."""
    xa = runs.loc[runs["model"] == a, "top1"].to_numpy()
    xb = runs.loc[runs["model"] == b, "top1"].to_numpy()
    if min(len(xa), len(xb)) < 2:  # no spread to measure yet: the difference only, no error bar
        nan = float("nan")
        return {"diff": float(xa.mean() - xb.mean()), "se": nan, "df": nan, "ci95_low": nan, "ci95_high": nan,
                "z": nan, "n_a": int(len(xa)), "n_b": int(len(xb))}
    return difference(xa, xb)


def summarize(runs, geometry: dict[str, dict[str, float]] | None = None, num_classes: int | None = None,
              geometry_random: dict[str, dict[str, float]] | None = None):
    """Per point and model: mean, std, n, and per point the differences that answer the questions of the map.

    Returns ``(table, diffs)``: ``table`` one row per (point, model) with ``top1_mean``, ``top1_std``, ``n``,
    ``x_chance`` (mean / chance), ``box_share`` (the point's object box, from ``geometry``) and, on the rows of the
    models that crop, their crops' ``crop_share``, ``zoom`` and ``kept`` (GLSim from ``geometry``, GLSim-random
    from ``geometry_random``; NaN elsewhere); ``diffs`` one row per (point, comparison) with :func:`differences`'
    columns.
    """
    table = (runs.groupby(["point", "model"], sort=False)["top1"]
             .agg(top1_mean="mean", top1_std="std", n="count").reset_index())
    if num_classes is None:  # per point, from the runs (the benchmark has 12 classes, the digits 10)
        classes = runs.groupby("point")["num_classes"].first()
        table["chance"] = table["point"].map(lambda p: 100.0 / float(classes[p]))
    else:
        table["chance"] = 100.0 / num_classes
    table["x_chance"] = table["top1_mean"] / table["chance"]
    if geometry:
        table["box_share"] = table["point"].map(lambda p: geometry.get(p, {}).get("box_share", math.nan))
        by_model = {"GLSim": geometry, "GLSim-random": geometry_random or {}}
        for key in ("crop_share", "zoom", "kept"):
            table[key] = [by_model.get(m, {}).get(p, {}).get(key, math.nan)
                          for p, m in zip(table["point"], table["model"])]
    comparisons = (("GLSim", "ViT"), ("GLSim", "GLSim-random"), ("SimPool-ViT", "ViT"), ("ViT", SCRATCH),
                   ("GLSim-random", FULL_VIEW), (FULL_VIEW, "ViT"))
    diffs = []
    for point, group in runs.groupby("point", sort=False):
        for a, b in comparisons:
            if {a, b} <= set(group["model"]):
                diffs.append({"point": point, "comparison": f"{a} - {b}", **differences(group, a, b)})
    return table, pd.DataFrame(diffs)


def load_scale_map(path: str | Path | None = None, profile: str = "cpu") -> dict[str, Any] | None:
    """The shipped scale map (``data/results/scale_map_<profile>.json``, which names its CSV), or None."""
    path = Path(path) if path is not None else data_dir() / SHIPPED_CSV.format(profile=profile)
    path = path.with_suffix(".json")
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    nan = float("nan")
    for key in ("table", "differences"):  # JSON has no NaN: a missing spread was written as null
        result[key] = [{k: nan if v is None else v for k, v in row.items()} for row in result.get(key, [])]
    result["runs"] = pd.read_csv(path.with_suffix(".csv"))
    return result


def _geometries(out: Path, model_name: str, seed: int, previous: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each point's crop geometry on the seed-``seed`` run of ``model_name`` (measured from its checkpoint, or kept
    from an earlier collect when the checkpoint is not on this machine)."""
    geometry = {}
    for point in (*SCALE_POINTS, HELD_OUT):
        run = _run_dir(out, point, model_name, seed)
        if (run / "checkpoint.pt").is_file() and (run / "metrics.json").is_file():  # a finished run only
            model, cfg, _ = load_trained_model(run)
            geometry[point] = crop_geometry(model, load_data(cfg))
        elif point in previous:
            geometry[point] = previous[point]
    return geometry


def _qualifying(result: dict[str, Any], comparison: str) -> dict[str, float]:
    """``{point: z}`` of ``comparison`` at the scale points where every model of the map reaches 3x chance and both
    sides have :data:`MIN_SEEDS_TO_READ` seeds."""
    table = pd.DataFrame(result["table"])
    out = {}
    for d in result["differences"]:
        point = d["point"]
        if d["comparison"] != comparison or point not in SCALE_POINTS or math.isnan(d["z"]):
            continue
        rows = table[(table["point"] == point) & ~table["model"].isin(CONTROLS)]
        if min(d["n_a"], d["n_b"]) < MIN_SEEDS_TO_READ or (rows["x_chance"] < 3.0).any():
            continue
        out[point] = float(d["z"])
    return out


def choose_point(result: dict[str, Any], comparison: str = "GLSim - ViT", default: str = DEFAULT_POINT) -> str | None:
    """The benchmark point where the crop's effect is largest and clearest: among the scale points where every
    model of the map reaches 3x chance and both sides have :data:`MIN_SEEDS_TO_READ` seeds, the one whose
    ``comparison`` has the largest z (standard errors above 0) - provided that z exceeds 2. When no qualifying point
    shows the gain beyond 2 standard errors the map gives no reason to move, so the choice is ``default`` (the
    profile's benchmark) if it qualifies, else the qualifying point with the largest z; None when no point
    qualifies. :func:`choice_reason` says which rule decided."""
    z = _qualifying(result, comparison)
    if not z:
        return None
    best = max(z, key=z.get)
    if z[best] > 2 or default not in z:
        return best
    return default


def choice_reason(result: dict[str, Any], comparison: str = "GLSim - ViT", default: str = DEFAULT_POINT) -> str:
    """One sentence: why :func:`choose_point` chose what it chose."""
    z = _qualifying(result, comparison)
    if not z:
        return (f"no point qualifies (every model >= 3x chance and >= {MIN_SEEDS_TO_READ} seeds a side), "
                f"so no headline point is chosen")
    listed = ", ".join(f"{p} {v:+.1f} SE" for p, v in z.items())
    best = max(z, key=z.get)
    if z[best] > 2:
        return f"{comparison} is clearest at {best} ({z[best]:+.1f} SE; qualifying points: {listed})"
    if default in z:
        return (f"no qualifying point shows {comparison} beyond 2 standard errors ({listed}), so the profile's "
                f"benchmark {default} stays the headline point")
    return (f"no qualifying point shows {comparison} beyond 2 standard errors ({listed}) and the default "
            f"{default} does not qualify, so the largest z ({best}) is taken")


def headline(result: dict[str, Any], point: str) -> dict[str, Any]:
    """The headline table at one point: every model (the four of the map and ViT from scratch) as mean ± std over
    its seeds with × chance, and each difference of the map at that point with its standard error and reading."""
    rows = point_table(result, point)
    order = {m: i for i, m in enumerate(("ViT", "SimPool-ViT", "GLSim", "GLSim-random", SCRATCH, FULL_VIEW))}
    rows = rows.sort_values("model", key=lambda c: c.map(lambda m: order.get(m, len(order)))).reset_index(drop=True)
    diffs = [d for d in result["differences"] if d["point"] == point]
    return {"point": point, "object_scale": list(SCALE_POINTS.get(point, ())),
            "geometry": result.get("geometry", {}).get(point, {}), "table": rows.to_dict("records"),
            "differences": diffs, "reading": reading(result, point)}


def _manifest(runs, command: str, profile: str, note: str, files: Sequence[Path]) -> dict[str, Any]:
    return {"command": command, "profile": profile, "seeds": sorted(set(map(int, runs["seed"]))),
            "runs": int(len(runs)), "epochs": sorted(set(map(int, runs["epochs"]))),
            "total_train_seconds": float(runs["seconds"].fillna(0).sum()), "note": note,
            "device": sorted(set(map(str, runs["device"]))),
            "machine": " ".join(x for x in (platform.machine(), f"{os.cpu_count()} CPUs") if x),
            "python": sys.version.split()[0], "torch": torch.__version__, "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": {p.name: sha256(p) for p in files}}


def load_headline(profile: str = "cpu", path: str | Path | None = None) -> dict[str, Any] | None:
    """The shipped headline table (``data/results/headline_<profile>.json``), or None."""
    path = Path(path) if path is not None else data_dir() / "results" / f"headline_{profile}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(), object_hook=lambda d: {k: math.nan if v is None else v for k, v in d.items()})


def collect(out: str | Path | None = None, csv: str | Path | None = None, profile: str = "cpu",
            command: str = "", geometry_seed: int = 1, note: str = "", headline_point: str | None = None) -> Path:
    """Gather the runs, measure each point's crop geometry on its seed-``geometry_seed`` GLSim and GLSim-random,
    write ``<csv>`` (one row per run), ``<csv>.json`` (summary, differences, geometry) and ``<csv>.manifest.json``;
    then the headline table at ``headline_point`` (default: :func:`choose_point`) as ``headline_<profile>.json``
    and ``.csv`` beside it, with its own manifest."""
    out = Path(out) if out is not None else default_out()
    runs = collect_runs(out)
    if runs.empty:
        raise FileNotFoundError(f"no finished scale-map runs under {out}; run `python -m glsim_core scale-map run`")
    if headline_point is not None and headline_point not in SCALE_POINTS and headline_point != HELD_OUT:
        raise ValueError(f"unknown headline point {headline_point!r}; choose from {[*SCALE_POINTS, HELD_OUT]}")
    csv = Path(csv) if csv is not None else data_dir() / SHIPPED_CSV.format(profile=profile)
    previous = json.loads(csv.with_suffix(".json").read_text()) if csv.with_suffix(".json").is_file() else {}
    geometry = _geometries(out, "GLSim", geometry_seed, previous.get("geometry", {}))
    geometry_random = _geometries(out, "GLSim-random", geometry_seed, previous.get("geometry_random", {}))
    table, diffs = summarize(runs, geometry, geometry_random=geometry_random)
    csv.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(csv, index=False)
    summary = {"points": {p: {"object_scale": list(s)} for p, s in SCALE_POINTS.items()}, "geometry": geometry,
               "geometry_random": geometry_random, "table": table.to_dict("records"),
               "differences": diffs.to_dict("records"), "held_out": HELD_OUT, "csv": csv.name}
    summary["chosen_point"] = choose_point(_readable(summary))
    summary["choice_reason"] = choice_reason(_readable(summary))
    csv.with_suffix(".json").write_text(json.dumps(_jsonable(summary), indent=2))
    path = csv.with_suffix(".manifest.json")
    path.write_text(json.dumps(_manifest(runs, command, profile, note, (csv, csv.with_suffix(".json"))), indent=2))
    point = headline_point or summary["chosen_point"]
    if point is not None and point in set(runs["point"]):
        head = headline(_readable(summary), point)
        head_json = csv.parent / f"headline_{profile}.json"
        head_json.write_text(json.dumps(_jsonable(head), indent=2))
        pd.DataFrame(head["table"]).to_csv(head_json.with_suffix(".csv"), index=False)
        chosen = runs[runs["point"] == point]
        head_json.with_suffix(".manifest.json").write_text(json.dumps(
            _manifest(chosen, command, profile, f"headline at point {point} "
                      f"({'chosen by choose_point' if headline_point is None else 'given'}); {note}".strip("; "),
                      (head_json, head_json.with_suffix(".csv"))), indent=2))
    return path


def _readable(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as :func:`load_scale_map` returns it (NaN where JSON has null), without the runs."""
    return json.loads(json.dumps(_jsonable(summary)), parse_constant=float,
                      object_hook=lambda d: {k: math.nan if v is None else v for k, v in d.items()})


# ------------------------------------------------------------------------------------------------ reading
#: a difference is read only with at least this many seeds on each side, and only beyond 2 standard errors
MIN_SEEDS_TO_READ = 3


def point_table(result: dict[str, Any], point: str):
    """One point's models from a loaded result (:func:`load_scale_map`): mean, std, n, chance, × chance."""
    table = pd.DataFrame(result["table"])
    out = table[table["point"] == point].drop(columns=["point"]).reset_index(drop=True)
    if out.empty:
        raise ValueError(f"no runs at point {point!r}; points with runs: {sorted(set(table['point']))}")
    return out


def reading(result: dict[str, Any], point: str) -> list[str]:
    """Plain sentences for one point: each model against chance, then each difference with its standard error,
    read as a direction only beyond 2 SE with >= :data:`MIN_SEEDS_TO_READ` seeds a side and a 95 % t-interval that
    excludes 0 (beyond 2 SE alone is called suggestive)."""
    lines = []
    for _, row in point_table(result, point).iterrows():
        std = 0.0 if math.isnan(row["top1_std"]) else row["top1_std"]
        lines.append(f"{row['model']}: {row['top1_mean']:.1f} ± {std:.1f} "
                     f"% over {int(row['n'])} seed(s), {row['x_chance']:.1f}× chance ({row['chance']:.1f} %)")
    for d in result["differences"]:
        if d["point"] != point:
            continue
        if math.isnan(d["se"]):
            head = f"{d['comparison']}: {d['diff']:+.1f} points (no standard error yet, n = {d['n_a']}, {d['n_b']})"
        else:
            head = (f"{d['comparison']}: {d['diff']:+.1f} points (SE {d['se']:.1f}, 95 % CI {d['ci95_low']:+.1f} … "
                    f"{d['ci95_high']:+.1f}, n = {d['n_a']}, {d['n_b']})")
        if min(d["n_a"], d["n_b"]) < MIN_SEEDS_TO_READ:
            verdict = f"too few seeds to read (fewer than {MIN_SEEDS_TO_READ} a side)"
        elif abs(d["z"]) > 2 and d["ci95_low"] * d["ci95_high"] > 0:
            verdict = f"a direction: beyond 2 standard errors ({d['z']:+.1f} SE) and the 95 % interval excludes 0"
        elif abs(d["z"]) > 2:
            verdict = (f"beyond 2 standard errors ({d['z']:+.1f} SE), but with these few seeds the 95 % interval "
                       f"still includes 0: suggestive, not established")
        else:
            verdict = f"within noise ({d['z']:+.1f} SE)"
        lines.append(f"{head}: {verdict}")
    return lines


def plot_scale_map(result: dict[str, Any], models: Sequence[str] = ("ViT", "SimPool-ViT", "GLSim", "GLSim-random")):
    """Two panels against the object's box share of the view: top-1 of each model (mean, 95 % t-interval over
    seeds, chance dashed) and GLSim − ViT / GLSim − GLSim-random with their 95 % intervals (0 dashed)."""
    import matplotlib.pyplot as plt
    from scipy import stats

    table = [r for r in result["table"] if r["point"] in SCALE_POINTS]
    geometry = result.get("geometry", {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))

    def share(point: str) -> float:  # x position: the measured median box share, else the scale's midpoint squared
        g = geometry.get(point, {})
        return 100 * g["box_share"] if "box_share" in g else 100 * (sum(SCALE_POINTS[point]) / 2) ** 2

    for k, model in enumerate(models):
        rows = sorted((r for r in table if r["model"] == model), key=lambda r: share(r["point"]))
        if not rows:
            continue
        x = [share(r["point"]) * (1 + 0.02 * (k - 1.5)) for r in rows]
        half = [stats.t.ppf(0.975, r["n"] - 1) * r["top1_std"] / math.sqrt(r["n"]) if r["n"] > 1 else 0.0
                for r in rows]
        axes[0].errorbar(x, [r["top1_mean"] for r in rows], yerr=half, marker="o", capsize=3, label=model)
    chance = [r["chance"] for r in table]
    if chance:
        axes[0].axhline(chance[0], color="k", ls="--", lw=1, label=f"chance ({chance[0]:.1f} %)")
    axes[0].set(xscale="log", xlabel="object box, % of the view (median)", ylabel="test top-1 (%)",
                title="accuracy (mean, 95 % CI over seeds)")
    axes[0].legend(fontsize=9)
    for comparison, marker in (("GLSim - ViT", "o"), ("GLSim - GLSim-random", "s")):
        rows = sorted((d for d in result["differences"] if d["comparison"] == comparison
                       and d["point"] in SCALE_POINTS and not math.isnan(d["se"])),
                      key=lambda d: share(d["point"]))
        if rows:
            axes[1].errorbar([share(d["point"]) for d in rows], [d["diff"] for d in rows],
                             yerr=[[d["diff"] - d["ci95_low"] for d in rows],
                                   [d["ci95_high"] - d["diff"] for d in rows]],
                             marker=marker, capsize=3, label=comparison.replace(" - ", " − "))
    axes[1].axhline(0, color="k", ls="--", lw=1)
    axes[1].set(xscale="log", xlabel="object box, % of the view (median)", ylabel="difference (points)",
                title="differences (95 % CI)")
    axes[1].legend(fontsize=9)
    points = sorted({r["point"] for r in table}, key=share)
    for ax in axes:  # one tick per point, at its measured box share, named
        ax.set_xticks([share(p) for p in points], [f"{share(p):.3g}\n{p}" for p in points])
        ax.set_xticks([], minor=True)
    fig.tight_layout()
    return fig
