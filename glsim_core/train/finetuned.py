"""Shipped fine-tuned checkpoints, "load else train": :func:`load_finetuned`, ``python -m glsim_core finetune``.

The notebooks that draw attention maps (08) and measure efficiency against accuracy (09) need *trained* models.
Small ones (ViT, SimPool-ViT, GLSim; and the profile's ResNet with GAP or SimPool for notebook 02) are fine-tuned
from the cpu profile's shipped pretrained backbones
(``data/pretrained``, the stand-in for ImageNet-21k weights) on the offline benchmark with the GLSim recipe
(:mod:`glsim_core.train`), and shipped as fp16 state dicts in ``data/finetuned/<name>.pth`` with
``data/finetuned/manifest.json`` (command, seed, config, metrics incl. test top-1, wall time, sha256 of each file);
a fourth, ``vit_scratch``, is the same ViT trained from random initialisation (the "no pretraining" point of
notebook 08's probe). They are produced by one command::

    python -m glsim_core finetune                      # all of FINETUNED, the recipes' sizes, seed 1
    python -m glsim_core finetune --names glsim --epochs 4 --max-train 1000

:func:`load_finetuned` returns a model in this order:

1. the shipped checkpoint, when ``data/finetuned/<name>.pth`` exists, its sha256 matches the manifest and the
   architecture of the manifest's config matches the one asked for (overrides of training-only fields such as
   ``epochs`` do not matter: they say how to train *if* nothing can be loaded);
2. a model trained earlier with the same resolved config and cached in ``data/cache/finetuned/`` (git-ignored);
3. a model trained now with :func:`glsim_core.train.fit` (and cached), when ``train_if_missing`` is True;
4. otherwise a ``FileNotFoundError`` that says which command produces the file.

A checksum mismatch (a file edited or truncated) is reported and treated as missing. Where the shipped pretrained
backbone is absent (before ``python -m glsim_core pretrain`` has been run), the recipe falls back to random
initialisation and says so.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..paths import cache_dir, data_dir, display_path
from ..profiles import get_profile
from ..runtime import get_device
from ..safety import CheckpointError, load_plain
from ..train import TrainConfig, fit
from ..train.engine import build_model, load_trained_model
from ..weights.shipped import ShippedFileError, check_sha256, has_shipped_weights, sha256, shipped_weights_path

__all__ = ["FINETUNED", "FINETUNED_DIR", "ARCH_FIELDS", "finetuned_path", "finetuned_manifest_path",
           "read_finetuned_manifest", "finetuned_config", "load_finetuned", "finetune"]

FINETUNED_DIR = "finetuned"

#: name -> recipe: :class:`~glsim_core.train.TrainConfig` fields on top of ``TrainConfig.from_profile(profile)``.
#: ``"{profile.model}"`` / ``"{profile.glsim_model}"`` / ``"{profile.top_o}"`` are filled from the profile.
FINETUNED: dict[str, dict[str, Any]] = {
    # the plain ViT: CLS token pooling (GLSim Table 5, last row)
    "vit": {"model": "{profile.model}", "name": "vit"},
    # SimPool-ViT: the CLS token is replaced by SimPool (SimPool §3.3; gamma 1.25 for transformers)
    "simpool_vit": {"model": "{profile.model}", "pooling": "simpool", "name": "simpool_vit"},
    # GLSim: GLS crop (top-O) + second pass + aggregator (GLSim §3.3)
    "glsim": {"model": "{profile.glsim_model}", "model_kwargs": {"top_o": "{profile.top_o}"}, "name": "glsim"},
    # the ViT trained from scratch (random initialisation, same recipe): the "no pretraining" point of notebook 08's
    # probe of GLS against backbone strength
    "vit_scratch": {"model": "{profile.model}", "pretrained": False, "name": "vit_scratch"},
    # the CNN side of SimPool's Figure 1 / notebook 02: the profile's ResNet with its global average pooling ...
    "resnet": {"model": "{profile.cnn_model}", "name": "resnet"},
    # ... and with SimPool in place of GAP (gamma 2.0 for CNNs)
    "simpool_resnet": {"model": "{profile.cnn_model}", "pooling": "simpool", "name": "simpool_resnet"},
}

#: Config fields that define the network: a checkpoint only loads into a config that agrees on all of them.
ARCH_FIELDS = ("model", "pooling", "model_kwargs", "img_size")
#: Fields that must also match when the caller sets them (``pretrained=False``: trained from scratch, another model).
_IDENTITY_IF_GIVEN = ("pretrained", "dataset", "dataset_config")
#: Config fields that do not change what is trained (left out of the cache key).
_RUN_ONLY = ("progress", "device", "num_workers", "out_dir", "resume", "save_checkpoints", "eval_every")


def finetuned_dir() -> Path:
    return data_dir() / FINETUNED_DIR


def finetuned_path(name: str) -> Path:
    """``data/finetuned/<name>.pth`` (it may not exist before ``python -m glsim_core finetune``)."""
    _check_name(name)
    return finetuned_dir() / f"{name}.pth"


def finetuned_manifest_path() -> Path:
    return finetuned_dir() / "manifest.json"


def read_finetuned_manifest() -> dict[str, Any]:
    """The manifest of the shipped fine-tuned checkpoints (``{"models": {}}`` if none was written yet)."""
    path = finetuned_manifest_path()
    if not path.is_file():
        return {"models": {}}
    manifest = json.loads(path.read_text())
    manifest.setdefault("models", {})
    return manifest


def _check_name(name: str) -> None:
    if name not in FINETUNED:
        raise ValueError(f"unknown fine-tuned model {name!r}; choose one of {sorted(FINETUNED)}")


def _fill(value: Any, profile: Any) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, profile) for k, v in value.items()}
    if isinstance(value, str) and value.startswith("{profile.") and value.endswith("}"):
        return getattr(profile, value[len("{profile."):-1])
    return value


def finetuned_config(name: str, profile: str | None = "cpu", quiet: bool = False, **overrides: Any):
    """The :class:`~glsim_core.train.TrainConfig` of a recipe: the profile's sizes, the recipe, then ``overrides``.

    ``pretrained`` is resolved now: in the cpu profile the shipped backbone if its file exists, else random
    initialisation (printed unless ``quiet``); in the gpu profile timm's weights.
    """

    _check_name(name)
    prof = get_profile(profile)
    recipe = _fill(FINETUNED[name], prof)
    cfg = TrainConfig.from_profile(prof, **{**recipe, **overrides})
    backbone = prof.cnn_model if cfg.model == prof.cnn_model else prof.model  # GLSim: the ViT it is built on
    if cfg.pretrained and prof.name == "cpu" and not has_shipped_weights(backbone):
        if not quiet:
            print(f"note: {name}: the shipped pretrained backbone {shipped_weights_path(backbone)} is missing; "
                  f"starting from random initialisation (`python -m glsim_core pretrain` makes it)")
        cfg = cfg.replace(pretrained=False)
    return cfg


def _arch(config: dict[str, Any], fields: tuple[str, ...] = ARCH_FIELDS) -> dict[str, Any]:
    return {k: config.get(k) for k in fields}


def _config_key(config) -> str:
    d = {k: v for k, v in config.to_dict().items() if k not in _RUN_ONLY}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _cache_path(name: str, config) -> Path:
    return cache_dir() / FINETUNED_DIR / f"{name}-{_config_key(config)}.pth"


def _half_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
            for k, v in model.state_dict().items()}


def _save(path: Path, model: nn.Module, config, num_classes: int, class_names: list[str],
          metrics: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": _half_state(model), "num_classes": int(num_classes), "config": config.to_dict(),
                "class_names": list(class_names), "metrics": metrics}, tmp)
    tmp.replace(path)


def _build_and_load(path: Path, device: str | torch.device | None = None) -> tuple[nn.Module, dict[str, Any]]:
    remedy = "delete it (it is retrained on the next call) or restore it with git"
    blob = load_plain(path, "fine-tuned checkpoint", remedy)
    if not isinstance(blob, dict) or not {"config", "num_classes", "state_dict"} <= set(blob):
        raise CheckpointError(f"fine-tuned checkpoint {path} is corrupt or incomplete (missing keys); {remedy}")
    config = TrainConfig.from_dict({**blob["config"], "pretrained": False})  # the weights come from the file
    model = build_model(config, int(blob["num_classes"]))
    try:
        model.load_state_dict(blob["state_dict"])  # fp16 -> the parameters' float32 (copy_ casts)
    except RuntimeError as exc:
        raise CheckpointError(f"fine-tuned checkpoint {path} does not fit its own config "
                              f"({str(exc).splitlines()[0][:160]}); {remedy}") from None
    return model.to(get_device(device)).eval(), blob


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keep = ("top1", "eval_split", "eval_loss", "n_eval", "train_size", "dataset", "num_classes", "seconds",
            "train_img_per_s", "device", "weights", "top_o", "dataset_revision")
    out = {k: metrics[k] for k in keep if k in metrics}
    out["history"] = [{k: v for k, v in row.items() if k != "step"} for row in metrics.get("history", [])]
    return out


def _shipped_entry(name: str, config, given: Any = None) -> tuple[Path | None, dict[str, Any] | None, str]:
    """``(path, manifest entry, why not)``: the shipped checkpoint if it can be loaded for ``config``."""
    path = finetuned_path(name)
    entry = read_finetuned_manifest()["models"].get(name)
    if not path.is_file():
        return None, None, f"no shipped checkpoint at {path}"
    if entry is None:
        return None, None, f"{path} is not listed in {finetuned_manifest_path()}"
    try:
        check_sha256(path, entry.get("sha256"), f"restore it with `git checkout -- data/{FINETUNED_DIR}/{path.name}` "
                     f"or rebuild it with `python -m glsim_core finetune --names {name}`", finetuned_manifest_path())
    except ShippedFileError as exc:
        return None, None, str(exc)
    fields = ARCH_FIELDS + tuple(k for k in _IDENTITY_IF_GIVEN if k in (given or ()))
    want, have = _arch(config.to_dict(), fields), _arch(entry.get("config", {}), fields)
    if json.loads(json.dumps(want)) != json.loads(json.dumps(have)):
        return None, None, f"the shipped {name!r} was trained as {have}, not {want}"
    return path, entry, ""


def load_finetuned(name: str, train_if_missing: bool = True, profile: str | None = "cpu",
                   return_info: bool = False, cache: bool = True, device: str | torch.device | None = None,
                   **overrides: Any):
    """A fine-tuned model of :data:`FINETUNED` (eval mode): shipped checkpoint, else cached, else trained now.

    ``overrides`` are :class:`~glsim_core.train.TrainConfig` fields (``epochs=1, max_train_samples=256`` for a
    quick run); only :data:`ARCH_FIELDS` among them - and ``pretrained`` / ``dataset`` when given:
    ``pretrained=False`` asks for a model trained from scratch - decide whether the shipped checkpoint fits. With
    ``train_if_missing=False`` a missing (or mismatching) checkpoint raises ``FileNotFoundError``. ``cache``: keep
    a model trained here in ``data/cache/finetuned`` for the next call. ``return_info=True`` returns
    ``(model, info)`` with ``source`` ("shipped", "cache" or "trained"), ``top1`` (test top-1 of that model),
    ``config`` (dict), ``path`` and ``reason``.
    """
    config = finetuned_config(name, profile, **overrides)
    path, entry, why = _shipped_entry(name, config, overrides)
    info: dict[str, Any]
    if path is not None:
        model, blob = _build_and_load(path, device)
        info = {"source": "shipped", "path": str(path), "reason": "shipped checkpoint, sha256 verified",
                "top1": entry.get("metrics", {}).get("top1"), "config": entry["config"], "metrics": entry["metrics"]}
    else:
        cached = _cache_path(name, config)
        if cache and cached.is_file():
            model, blob = _build_and_load(cached, device)
            info = {"source": "cache", "path": str(cached), "reason": f"{why}; trained earlier with this config",
                    "top1": blob["metrics"].get("top1"), "config": blob["config"], "metrics": blob["metrics"]}
        elif not train_if_missing:
            raise FileNotFoundError(f"{why}; produce it with `python -m glsim_core finetune --names {name}` "
                                    f"(or call load_finetuned({name!r}, train_if_missing=True))")
        else:
            print(f"{name}: {why}; training it now ({config.epochs} epochs on {config.dataset})")

            res = fit(config)
            metrics = _summary(res.metrics)
            if cache:
                _save(cached, res.model, config, res.metrics["num_classes"], res.metrics["class_names"], metrics)

            model = res.model.to(get_device(device)).eval()
            info = {"source": "trained", "path": str(cached) if cache else None, "reason": why,
                    "top1": metrics["top1"], "config": config.to_dict(), "metrics": metrics}
    info["name"] = name
    where = display_path(info["path"]) if info["path"] else "not saved"
    print(f"{name}: {info['source']} ({where}), test top-1 {info['top1']:.2f}"
          if info.get("top1") is not None else f"{name}: {info['source']}")
    return (model, info) if return_info else model


def _from_run(name: str, run_dir: str | Path, config):
    """``(model, config, metrics)`` of a finished :func:`~glsim_core.train.fit` run whose network is ``name``'s
    recipe (e.g. the seed-1 runs of ``python -m glsim_core calibrate``), so that it need not be trained twice."""

    run = Path(run_dir)
    metrics_file = run / "metrics.json"
    if not metrics_file.is_file():
        raise FileNotFoundError(f"{run} holds no finished run (no metrics.json)")
    model, run_config, _ = load_trained_model(run)
    metrics = json.loads(metrics_file.read_text())
    fields = ARCH_FIELDS + ("pretrained", "epochs", "dataset")
    want = _arch(config.to_dict(), fields)
    have = _arch({**run_config.to_dict(), "pretrained": metrics.get("config", {}).get("pretrained")}, fields)
    want["dataset"], have["dataset"] = Path(want["dataset"]).name, Path(have["dataset"]).name  # any checkout
    if json.loads(json.dumps(want)) != json.loads(json.dumps(have)):
        raise ValueError(f"the run in {run} trained {have}, not the {name!r} recipe {want}")
    return model, run_config, metrics


def finetune(names: list[str] | tuple[str, ...] = tuple(FINETUNED), profile: str | None = "cpu",
             out: str | Path | None = None, command: str | None = None,
             from_runs: dict[str, str | Path] | None = None, **overrides: Any) -> dict[str, Any]:
    """Train each recipe and write ``<out>/<name>.pth`` (fp16 state dict) and ``<out>/manifest.json``.

    ``out`` defaults to ``data/finetuned``. Entries of other names already in the manifest are kept. ``from_runs``
    maps names to finished run directories whose network matches the recipe (architecture, pretrained start,
    epochs, dataset): those are exported instead of trained again. Returns the manifest.
    """

    from_runs = dict(from_runs or {})

    names = list(names)
    for n in names:
        _check_name(n)
    out = Path(out) if out is not None else finetuned_dir()
    out.mkdir(parents=True, exist_ok=True)
    manifest_file = out / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    manifest.setdefault("models", {})
    manifest["description"] = ("Fine-tuned checkpoints (fp16 state dicts) of glsim_core.train.finetuned.FINETUNED, "
                               "trained on the offline benchmark from the shipped pretrained backbone; loaded by "
                               "glsim_core.train.finetuned.load_finetuned.")
    command = command or "python -m glsim_core finetune " + " ".join(
        shlex.quote(a) for a in ["--names", ",".join(names)] + [f"{k}={v}" for k, v in overrides.items()])
    for name in names:
        config = finetuned_config(name, profile, **overrides)
        path = out / f"{name}.pth"
        source = None
        if name in from_runs:
            model, config, raw = _from_run(name, from_runs[name], config)
            wall, source = float(raw.get("seconds", float("nan"))), str(from_runs[name])
        else:
            t0 = time.perf_counter()
            res = fit(config)
            model, raw, wall = res.model, res.metrics, time.perf_counter() - t0
        metrics = _summary(raw)
        _save(path, model, config, raw["num_classes"], raw["class_names"], metrics)
        manifest["models"][name] = {
            "file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "command": command,
            "seed": config.seed, "profile": profile, "config": config.to_dict(), "metrics": metrics,
            "wall_seconds": round(wall, 1), "num_classes": raw["num_classes"],
            "class_names": raw["class_names"], "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "torch": torch.__version__, **({"exported_from_run": source} if source else {})}
        manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        tmp = manifest_file.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2, default=str))
        tmp.replace(manifest_file)
        print(f"{name}: test top-1 {metrics['top1']:.2f} in {wall:.0f} s -> {path} "
              f"({path.stat().st_size / 2**20:.2f} MiB)")
    return manifest
