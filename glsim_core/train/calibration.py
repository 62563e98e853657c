"""Calibration of the cpu profile: does the GLSim mechanism show at this scale?

Two measurements, both on the offline benchmark's **test** split with its ground-truth boxes, nothing tuned on it:

1. *Where the maps look.* For each token-score map (GLS — GLSim Eq. 1 —, last-layer head-mean CLS attention,
   rollout, and SimPool's attention for the SimPool-pooled ViT) the fraction of its top-1 / top-O and bottom-1 /
   bottom-O tokens whose centre lies inside the object box, against chance (the share of tokens inside the box),
   and MaxBoxAccV2. Measured for a randomly initialised ViT, the shipped pretrained backbone (before fine-tuning)
   and the fine-tuned models (seed 1).
2. *Whether crops help.* ViT vs SimPool-ViT vs GLSim vs GLSim with random crops (GLSim Table 12), fine-tuned from
   the shipped backbone with the profile's recipe over seeds (1, 10, 100): top-1 mean ± std and the relative error
   against the ViT (GLSim footnote 1), via :func:`glsim_core.train.protocol.compare`.

``python -m glsim_core calibrate [--out build/calibration] [--seeds 1 10 100]`` writes ``calibration.json``; runs
already finished in ``--out`` are reused, so ``--models`` can fill it in parallel processes first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import paths
from ..analysis.probes import localization_scores
from ..models import create_model
from ..notebook import _jsonable
from ..paths import display_path
from ..profiles import get_profile
from .config import TrainConfig
from .engine import load_data, load_trained_model
from .protocol import SEEDS, _slug, compare

__all__ = ["CALIBRATION_MODELS", "calibration_models", "calibrate", "MAP_METHODS", "load_calibration",
           "localization_frame", "SHIPPED_CALIBRATION"]

#: where the shipped result lives (relative to the data directory)
SHIPPED_CALIBRATION = "results/calibration_cpu.json"
#: the maps scored on a plain ViT (SimPool's attention needs the SimPool-pooled model)
MAP_METHODS = ("gls", "attention", "rollout")


def calibration_models(profile: str = "cpu") -> list[dict[str, Any]]:
    """The compared models as :class:`TrainConfig` overrides (``name`` is the table label)."""
    p = get_profile(profile)
    return [
        {"name": "ViT", "model": p.model},
        {"name": "SimPool-ViT", "model": p.model, "pooling": "simpool"},
        {"name": "GLSim", "model": p.glsim_model, "model_kwargs": {"top_o": p.o_for()}},
        {"name": "GLSim-random", "model": p.glsim_model, "model_kwargs": {"top_o": p.o_for(), "selector": "random"}},
    ]


CALIBRATION_MODELS = tuple(m["name"] for m in calibration_models())


def _encoder(model):
    """The ViT whose tokens a map reads: GLSim's shared encoder, else the model itself."""
    return getattr(model, "encoder", model)


def calibrate(profile: str = "cpu", seeds: Sequence[int] = SEEDS, out_root: str | Path = "build/calibration",
              models: Sequence[str] | None = None, max_samples: int | None = 500, progress: bool = True,
              **overrides: Any) -> dict[str, Any]:
    """Run (or reuse) the fine-tunes and the localisation measurements; write and return ``calibration.json``.

    ``models``: a subset of :data:`CALIBRATION_MODELS` (then only their runs happen, no summary file);
    ``overrides``: :class:`TrainConfig` fields for every run (e.g. ``epochs=1`` for a quick check).
    """

    specs = calibration_models(profile)
    unknown = sorted(set(models or ()) - {s["name"] for s in specs})
    if unknown:
        raise ValueError(f"unknown calibration model(s) {unknown}; choose from {[s['name'] for s in specs]}")
    chosen = [s for s in specs if models is None or s["name"] in models]
    base = TrainConfig.from_profile(profile, progress=progress, **overrides)
    out = Path(out_root)
    t0 = time.perf_counter()
    table = compare(chosen, base, seeds=seeds, out_root=out)
    if models is not None:
        return {"table": table.to_dict("records")}
    top_o = get_profile(profile).o_for()
    data = load_data(base)
    loc: dict[str, dict[str, Any]] = {}
    for tag, pretrained in (("ViT, random init", False), ("ViT, shipped pretrained backbone", True)):
        m = create_model(base.model, pretrained=pretrained, num_classes=data.num_classes).eval()
        loc[tag] = localization_scores(m, data, "test", MAP_METHODS, max_samples=max_samples, top_o=top_o)
    first = int(seeds[0])
    for name, methods in (("ViT", MAP_METHODS), ("SimPool-ViT", ("simpool",)),  # no CLS token: its own map
                          ("GLSim", MAP_METHODS)):
        model, _, _ = load_trained_model(out / _slug(name) / f"seed_{first}")
        net = model if name == "SimPool-ViT" else _encoder(model)
        loc[f"{name}, fine-tuned (seed {first})"] = localization_scores(net, data, "test", methods,
                                                                       max_samples=max_samples, top_o=top_o)
    result = {
        "profile": profile, "seeds": [int(s) for s in seeds], "config": json.loads(base.to_json()),
        "accuracy": table.drop(columns=[c for c in ("lr_search",) if c in table]).to_dict("records"),
        "localization": loc, "top_o": top_o, "test_images_scored": max_samples,
        "seconds": round(time.perf_counter() - t0, 1),
    }

    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(_jsonable(result), indent=2))
    return result


def localization_frame(result: dict[str, Any]):
    """``calibration.json``'s localisation part as a long pandas table (model, map, statistic, value)."""
    import pandas as pd

    rows = [{"model": model, "map": method, **stats} for model, per in result["localization"].items()
            for method, stats in per.items()]
    return pd.DataFrame(rows)


def load_calibration(path: str | Path | None = None) -> dict[str, Any] | None:
    """A calibration result: ``path``, else ``build/calibration/calibration.json``, else the shipped
    ``data/results/calibration_cpu.json``; None if there is none. The dict gains ``source`` (the file read)."""

    candidates = [Path(path)] if path is not None else [paths.build_dir() / "calibration" / "calibration.json",
                                                        paths.data_dir() / SHIPPED_CALIBRATION]
    for candidate in candidates:
        if candidate.is_file():
            result = json.loads(candidate.read_text())
            result["source"] = display_path(candidate)
            return result
    if path is not None:
        raise FileNotFoundError(f"no calibration result at {path}; run `python -m glsim_core calibrate`")
    return None
