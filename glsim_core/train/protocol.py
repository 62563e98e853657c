"""The papers' evaluation protocol as functions (GLSim §4 and appendix C).

1. **LR search** (:func:`lr_search`): for a model, train on the ``train`` part and evaluate on the ``val`` part of
   the train-val partition (80/20, or 20/80 above 50,000 images) for each LR in {0.03, 0.01, 0.003, 0.001}; keep the
   best val top-1. The test split is never looked at.
2. **Seeds** (:func:`run_seeds`): train on all of ``trainval`` and test on ``test`` with seeds 1, 10, 100; report
   mean ± sample std (Gwilliam et al., as cited by GLSim §4).
3. **Comparison** (:func:`compare`): several models (or variants of one) through 1-2 with the same budget, in one
   table with mean ± std and the relative error against a reference model (GLSim footnote 1).

Each run goes through :func:`glsim_core.train.fit`, so everything a run records (history, checkpoint, metrics.json)
lands in ``out_root/<label>/lr_<lr>`` or ``out_root/<label>/seed_<seed>``; a finished run (its ``metrics.json``
exists with the same config) is read back instead of trained again, so an interrupted comparison resumes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..analysis.accuracy import mean_std, relative_error
from ..notebook import _jsonable
from ..paths import display_path
from .config import TrainConfig
from .engine import METRICS, RESUME_MAY_CHANGE, fit

#: config fields that do not change what a finished run computed: a finished run that differs from the requested
#: config only in these is read back, not re-entered (re-entering re-scores it and overwrites its timing). The
#: number of epochs is not among them: a finished run asked for more epochs is extended.
_SAME_RESULT_FIELDS = tuple(k for k in RESUME_MAY_CHANGE if k != "epochs")

__all__ = ["LR_GRID", "SEEDS", "lr_search", "run_seeds", "compare", "parse_model_spec", "CONFIG_KEYS"]

LR_GRID = (0.03, 0.01, 0.003, 0.001)
SEEDS = (1, 10, 100)
#: keys of a model spec that set config fields; any other key goes to model_kwargs
CONFIG_KEYS = ("pooling", "lr", "name", "augreg", "pretrained", "img_size", "batch_size", "epochs",
               "drop_path_rate", "label_smoothing")


def parse_model_spec(spec: str) -> dict[str, Any]:
    """``"NAME[:key=value,key=value]"`` -> overrides for :class:`TrainConfig`.

    Keys in :data:`CONFIG_KEYS` set config fields, others become ``model_kwargs``; values are parsed as JSON where
    possible (``top_o=8``, ``pretrained=true``), else kept as strings. Example:
    ``"glsim_vit_nano_patch8_64:selector=random,name=glsim-random"``.
    """
    name, _, rest = spec.partition(":")
    if not name.strip():
        raise ValueError(f"empty model name in spec {spec!r}")
    out: dict[str, Any] = {"model": name.strip()}
    kwargs: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        if "=" not in item:
            raise ValueError(f"bad option {item!r} in model spec {spec!r}: expected key=value")
        key, value = (s.strip() for s in item.split("=", 1))
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if key in CONFIG_KEYS:
            out[key] = parsed
        else:
            kwargs[key] = parsed
    if kwargs:
        out["model_kwargs"] = kwargs
    return out


def _run(config: TrainConfig) -> dict[str, Any]:
    """fit(), or the metrics of a finished run in the same out_dir whose config differs from ``config`` only in
    fields that do not change the result (:data:`_SAME_RESULT_FIELDS`: where the run folder is, progress bars,
    workers, the device...)."""
    if config.out_dir:
        path = Path(config.out_dir) / METRICS
        if path.is_file():
            done = json.loads(path.read_text())
            same, want = (_comparable(c) for c in (done.get("config", {}), json.loads(config.to_json())))
            if same == want:
                return done
    return fit(config).metrics


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A config as compared with a finished run's: without :data:`_SAME_RESULT_FIELDS`, and with a dataset that
    lives in a data cache named by its place in that cache (``cache/<name>``) - the same checkout on another machine
    (or a moved ``GLSIM_DATA``) has another absolute path to the same generated dataset."""
    out = {k: v for k, v in config.items() if k not in _SAME_RESULT_FIELDS}
    dataset = out.get("dataset")
    if isinstance(dataset, str) and Path(dataset).is_absolute():
        parts = Path(dataset).parts
        if "cache" in parts:
            last = len(parts) - 1 - parts[::-1].index("cache")
            out["dataset"] = "/".join(parts[last:])
        else:
            out["dataset"] = display_path(dataset)
    return out


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def lr_search(config: TrainConfig, lrs: Sequence[float] = LR_GRID, out_root: str | Path | None = None
              ) -> dict[str, Any]:
    """Train on train, evaluate on val, for each LR; return ``{"best_lr", "rows": [{"lr", "val_top1"}]}``."""
    if not lrs:
        raise ValueError("lrs is empty")
    rows = []
    for lr in lrs:
        out = str(Path(out_root) / _slug(config.label) / f"lr_{lr:g}") if out_root else None
        cfg = config.replace(lr=float(lr), train_split="train", eval_split="val", out_dir=out, resume=bool(out))
        m = _run(cfg)
        rows.append({"lr": float(lr), "val_top1": float(m["top1"])})
    best = max(rows, key=lambda r: r["val_top1"])
    return {"best_lr": best["lr"], "best_val_top1": best["val_top1"], "rows": rows, "label": config.label}


def run_seeds(config: TrainConfig, seeds: Sequence[int] = SEEDS, out_root: str | Path | None = None,
              train_split: str = "trainval", eval_split: str = "test") -> dict[str, Any]:
    """Train once per seed (trainval -> test by default); return per-seed top-1 and mean ± std."""
    if not seeds:
        raise ValueError("seeds is empty")
    rows = []
    for seed in seeds:
        out = str(Path(out_root) / _slug(config.label) / f"seed_{seed}") if out_root else None
        cfg = config.replace(seed=int(seed), train_split=train_split, eval_split=eval_split, out_dir=out,
                             resume=bool(out))
        m = _run(cfg)
        rows.append({"seed": int(seed), "top1": float(m["top1"]),
                     "train_img_per_s": float(m.get("train_img_per_s", float("nan")))})
    mean, std = mean_std([r["top1"] for r in rows])
    return {"label": config.label, "model": config.model, "lr": config.lr, "rows": rows, "mean": mean, "std": std}


def compare(models: Sequence[str | dict[str, Any]], base: TrainConfig, seeds: Sequence[int] = SEEDS,
            reference: str | None = None, lr_search_grid: Sequence[float] | None = None,
            out_root: str | Path | None = None, eval_split: str = "test"):
    """Run several models through the protocol and return a pandas table (one row per model).

    ``models``: specs (``"NAME[:key=value,...]"``, see :func:`parse_model_spec`) or dicts of config overrides.
    ``lr_search_grid``: search each model's LR first (on train/val) and use the best; None keeps ``base.lr``
    (or the spec's ``lr``). ``reference``: the label (or model name) whose mean is the reference of the relative
    error (default: the first model). ``eval_split="val"`` runs the whole comparison on train/val (for choosing
    settings without touching the test split).
    Columns: label, model, lr, top1_mean, top1_std, top1 (mean ± std), per-seed values, rel_error.
    """
    import pandas as pd

    if not models:
        raise ValueError("no models to compare")
    results = []
    for spec in models:
        overrides = parse_model_spec(spec) if isinstance(spec, str) else dict(spec)
        cfg = base.replace(**overrides)
        search = None
        if lr_search_grid:
            search = lr_search(cfg, lr_search_grid, out_root=Path(out_root) / "lr_search" if out_root else None)
            cfg = cfg.replace(lr=search["best_lr"])
        train_split = "train" if eval_split == "val" else "trainval"
        res = run_seeds(cfg, seeds, out_root=out_root, train_split=train_split, eval_split=eval_split)
        res["search"] = search
        results.append(res)
    labels = [r["label"] for r in results]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two entries share a label {labels}; give variants distinct names (name=...)")
    ref_label = reference or labels[0]
    ref = next((r for r in results if r["label"] == ref_label or r["model"] == ref_label), None)
    if ref is None:
        raise ValueError(f"reference {ref_label!r} is not among the compared models {labels}")
    rows = []
    for r in results:
        row = {"label": r["label"], "model": r["model"], "lr": r["lr"], "top1_mean": r["mean"], "top1_std": r["std"],
               "top1": f"{r['mean']:.2f} ± {r['std']:.2f}", "n_seeds": len(r["rows"]),
               "rel_error": relative_error(r["mean"], ref["mean"]) if ref["mean"] < 100 else float("nan")}
        for s in r["rows"]:
            row[f"seed_{s['seed']}"] = s["top1"]
        if r["search"] is not None:
            row["lr_search"] = {x["lr"]: x["val_top1"] for x in r["search"]["rows"]}
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["reference"] = ref["label"]
    table.attrs["eval_split"] = eval_split
    if out_root:
        Path(out_root).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(out_root) / "comparison.csv", index=False)

        (Path(out_root) / "comparison.json").write_text(json.dumps(_jsonable(rows), indent=2))
    return table
