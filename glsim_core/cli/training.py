"""Command-line front ends of the engine: ``train``, ``eval``, ``bench``, ``data``, ``pretrain``, ``compare``.

All training flags come from :class:`glsim_core.train.config.TrainConfig` (one flag per field), so the CLI, the
notebooks and the sweeps share one set of names. Errors are ``ValueError``/``CliError``: one line, exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..analysis.cost import benchmark_inference, count_parameters
from ..analysis.probes import localization_scores
from ..data import synthetic as syn
from ..data.boxed_digits import DigitsSpec, ensure_boxed_digits, generate_boxed_digits
from ..data.hf import collate_images, load_image_dataset
from ..models import create_model
from ..safety import ensure_writable_dir
from ..train import engine, pretrain
from ..train.calibration import calibrate, localization_frame
from ..train.config import TrainConfig, add_config_arguments, config_from_args
from ..train.protocol import LR_GRID, compare
from ..train.speed import training_throughput

__all__ = ["add_train", "add_eval", "add_bench", "add_data", "add_pretrain", "add_compare"]


# ------------------------------------------------------------------------------------------------------ train
def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", allow_abbrev=False, help="train a model on an HF dataset with the GLSim recipe (writes metrics.json, "
                                     "history.csv, checkpoint.pt)",
                       description="Train with the recipe of GLSim §4 / appendix C. Every option is a field of "
                                   "glsim_core.train.TrainConfig; sizes default to the profile's.")
    p.add_argument("--out", dest="out_dir", required=True, metavar="DIR", help="output directory")
    add_config_arguments(p, skip={"out_dir"})
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    ensure_writable_dir(args.out_dir, "--out")  # before any work
    result = engine.fit(config)
    if config.out_dir:
        print(f"top-1 ({config.eval_split}) {result.top1:.2f} %; metrics in {Path(config.out_dir) / 'metrics.json'}")
    return 0


# ------------------------------------------------------------------------------------------------------ eval
def add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", allow_abbrev=False, help="evaluate a trained checkpoint: top-1, per-class accuracy, confusion matrix, "
                                    "and MaxBoxAccV2 of its maps when the dataset has boxes")
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="checkpoint.pt or the run directory")
    p.add_argument("--dataset", default=None, help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "trainval"])
    p.add_argument("--out", default=None, metavar="DIR", help="write DIR/eval.json")
    p.add_argument("--maps", nargs="*", default=[], choices=["attention", "rollout", "gls"],
                   help="score these token maps with MaxBoxAccV2 (ViTs; the dataset needs boxes)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-samples", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    import math

    import torch

    if args.out:  # before any work: a bad --out must not cost a whole evaluation

        ensure_writable_dir(args.out, "--out")
    model, config, ckpt = engine.load_trained_model(args.checkpoint, device=args.device)
    overrides = {"dataset": args.dataset} if args.dataset else {}
    if args.max_samples:
        overrides["max_eval_samples"] = args.max_samples
    split = args.split
    config = config.replace(eval_split=split if split in ("val", "test") else "test", progress=False, **overrides)
    data = engine.load_data(config)
    trained_on = list(ckpt.get("class_names") or [])
    if trained_on and list(data.class_names) != trained_on:
        only_ckpt = [c for c in trained_on if c not in data.class_names]
        only_data = [c for c in data.class_names if c not in trained_on]
        detail = (f"only in the checkpoint: {only_ckpt[:8]}, only in the dataset: {only_data[:8]}"
                  if only_ckpt or only_data else "same names in another order")
        raise ValueError(f"dataset {data.name!r} has other classes than checkpoint {args.checkpoint} was trained on "
                         f"({len(data.class_names)} vs {len(trained_on)}; {detail}): its accuracy would be "
                         f"meaningless. Evaluate on a dataset with the checkpoint's classes")
    engine.align_normalization(data, model)  # the same inputs `train` fed it
    ds = data.torch_split(split, train=False, with_boxes=False)
    if args.max_samples and len(ds) > args.max_samples:
        ds = torch.utils.data.Subset(ds, range(args.max_samples))
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, collate_fn=collate_images)
    device = next(model.parameters()).device
    res = engine.evaluate(model, loader, data.num_classes, device=device, amp=config.amp)
    if not math.isfinite(res["loss"]):
        raise FloatingPointError(f"the loss of checkpoint {args.checkpoint} on {split} is {res['loss']}: its "
                                 f"weights are broken (a diverged run?); retrain it, e.g. with a lower --lr")
    res.update({"split": split, "dataset": data.name, "checkpoint": str(args.checkpoint),
                "class_names": data.class_names,
                "weights": ckpt.get("weights", engine.weights_of(model, config.pretrained))})
    if args.maps:
        if not data.has_boxes:
            raise ValueError(f"--maps needs a dataset with boxes; {data.name!r} has none")
        res["localization"] = localization_scores(model, data, split, args.maps, batch_size=args.batch_size,
                                                  max_samples=args.max_samples)
    if args.out:
        engine._write_json(Path(args.out) / "eval.json", res)
    print(f"top-1 ({split}) {res['top1']:.2f} % on {res['n']} images")
    for name, loc in res.get("localization", {}).items():
        print(f"MaxBoxAccV2 ({name}) {loc['maxboxacc_v2']:.2f} %")
    return 0


# ------------------------------------------------------------------------------------------------------ bench
def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", allow_abbrev=False, help="inference throughput at the best batch size and peak memory (GLSim D.1)")
    p.add_argument("--model", required=True, help="timm model name (this project's names included)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the model's)")
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128,256", help="comma-separated batch sizes")
    p.add_argument("--num-classes", type=int, default=None)
    p.add_argument("--model-kwargs", default=None, metavar="JSON")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="no autocast on GPUs")
    p.add_argument("--max-seconds", type=float, default=None, help="stop trying larger batches after this")
    p.add_argument("--out", default=None, metavar="DIR", help="write DIR/bench.json")
    p.add_argument("--training", action="store_true",
                   help="measure training img/s instead: the engine against a bare timm loop on the same data")
    p.add_argument("--dataset", default=None, help="(--training) dataset, default: the profile's")
    p.add_argument("--batch-size", type=int, default=None, help="(--training) default: the profile's")
    p.add_argument("--batches", type=int, default=20, help="(--training) batches per round")
    p.add_argument("--repeats", type=int, default=3, help="(--training) alternating rounds")
    p.add_argument("--profile", default=None, choices=["cpu", "gpu"])
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.out:
        ensure_writable_dir(args.out, "--out")
    try:
        sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}") from None
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    if args.training:
        return _bench_training(args, kwargs)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.img_size is not None:
        kwargs["img_size"] = args.img_size
    try:
        model = create_model(args.model, **kwargs)
    except RuntimeError as exc:
        raise ValueError(f"cannot build {args.model!r}: {exc}") from None
    size = args.img_size or int(model.pretrained_cfg.get("input_size", (3, 224, 224))[-1])
    res = benchmark_inference(model, size, sizes, device=args.device, amp=args.amp, max_seconds=args.max_seconds)
    res.update({"model": args.model, "img_size": size, "params": count_parameters(model)})
    for row in res["rows"]:
        print(f"batch {row['batch_size']:>4}: {row['img_per_s']:9.1f} img/s  peak {row['peak_mem_mib']:8.1f} MiB")
    b = res["best"]
    print(f"best: batch {b['batch_size']}, {b['img_per_s']:.1f} img/s, peak memory {b['peak_mem_mib']:.1f} MiB "
          f"({res['device']})")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)

        engine._write_json(Path(args.out) / "bench.json", res)
    return 0


def _bench_training(args: argparse.Namespace, model_kwargs: dict) -> int:
    over = {"model": args.model, "model_kwargs": model_kwargs, "device": args.device, "amp": args.amp}
    for key in ("dataset", "batch_size", "img_size"):
        if getattr(args, key, None) is not None:
            over[key] = getattr(args, key)
    config = TrainConfig.from_profile(args.profile, **over)
    res = training_throughput(config, batches=args.batches, repeats=args.repeats)
    print(f"training img/s ({res['device']}, {res['threads']} threads, batch {res['batch_size']}, "
          f"{res['batches']} batches x {len(res['engine'])} rounds): engine {res['engine_median']:.1f} "
          f"(rounds {', '.join(f'{v:.1f}' for v in res['engine'])}), bare timm loop {res['bare_median']:.1f} "
          f"(rounds {', '.join(f'{v:.1f}' for v in res['bare'])}); engine/bare = {res['ratio']:.2f}")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)

        engine._write_json(Path(args.out) / "bench_training.json", res)
    return 0


# ------------------------------------------------------------------------------------------------------ data
def add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data", allow_abbrev=False, help="generate the offline benchmark or pretraining corpus; describe a dataset")
    dsub = p.add_subparsers(dest="action", required=True)
    b = dsub.add_parser(
        "benchmark", allow_abbrev=False, help="generate the cluttered fine-grained benchmark (with boxes) in "
                                          "data/cache/finegrained_benchmark")
    b.add_argument("--num-classes", type=int, default=None)
    b.add_argument("--train-size", type=int, default=None)
    b.add_argument("--test-size", type=int, default=None)
    b.add_argument("--view-size", type=int, default=None, help="network input size the images are drawn for")
    b.add_argument("--object-scale", type=float, nargs=2, default=None, metavar=("MIN", "MAX"))
    b.add_argument("--clutter", type=int, nargs=2, default=None, metavar=("MIN", "MAX"))
    b.add_argument("--decoys", type=int, nargs=2, default=None, metavar=("MIN", "MAX"))
    b.add_argument("--seed", type=int, default=None)
    c = dsub.add_parser(
        "corpus", allow_abbrev=False, help="generate the generic pretraining corpus in data/cache/pretrain_corpus")
    c.add_argument("--train-size", type=int, default=None)
    c.add_argument("--val-size", type=int, default=None)
    c.add_argument("--seed", type=int, default=None)
    for q in (b, c):
        q.add_argument("--out", default=None, metavar="DIR", help="where to write (default: under data/cache)")
        q.add_argument("--force", action="store_true", help="regenerate even if an identical copy exists")
        q.add_argument("--workers", type=int, default=None)
    g = dsub.add_parser("digits", allow_abbrev=False,
                        help="generate the held-out boxed-digits dataset in data/cache/boxed_digits")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--out", default=None, metavar="DIR", help="where to write (default: data/cache/boxed_digits)")
    g.add_argument("--force", action="store_true", help="regenerate even if an identical copy exists")
    i = dsub.add_parser("info", allow_abbrev=False,
                        help="load a dataset (hub id or path) and describe its splits and columns")
    i.add_argument("dataset")
    i.add_argument("--config", default=None)
    p.set_defaults(func=_data)


def _data(args: argparse.Namespace) -> int:
    import time

    if args.action == "info":
        print(load_image_dataset(args.dataset, args.config).describe())
        return 0
    if args.action == "digits":
        spec = DigitsSpec(**({"seed": args.seed} if args.seed is not None else {}))
        t0 = time.perf_counter()
        path = (generate_boxed_digits if args.force else ensure_boxed_digits)(spec, args.out)
        print(f"boxed digits ready in {path} ({time.perf_counter() - t0:.1f} s)")
        return 0
    fields = ("num_classes", "train_size", "test_size", "view_size", "val_size", "seed")
    given = {k: getattr(args, k) for k in fields if getattr(args, k, None) is not None}
    for k in ("object_scale", "clutter", "decoys"):
        if getattr(args, k, None) is not None:
            given[k] = tuple(getattr(args, k))
    t0 = time.perf_counter()
    if args.action == "benchmark":
        spec = syn.BenchmarkSpec(**given)
        make, ensure = syn.generate_benchmark, syn.ensure_benchmark
    else:
        spec = syn.CorpusSpec(**given)
        make, ensure = syn.generate_corpus, syn.ensure_corpus
    kw = {"workers": args.workers} if args.workers else {}
    path = make(spec, args.out, **kw) if args.force else ensure(spec, args.out, **kw)
    print(f"{args.action} ready in {path} ({time.perf_counter() - t0:.1f} s)")
    return 0


# ------------------------------------------------------------------------------------------------------ pretrain
def add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", allow_abbrev=False, help="pretrain the cpu profile's backbones on the generic corpus and write "
                                        "data/pretrained/ (weights + manifest.json)")
    p.add_argument("--models", nargs="*", default=None, help="only these backbones (default: all of the recipe)")
    p.add_argument("--out", default=None, metavar="DIR", help="default: data/pretrained")
    p.add_argument("--max-train-samples", type=int, default=None, help="quick check only (recorded)")
    p.add_argument("--half", action="store_true", help="store fp16 weights")
    p.add_argument("--num-workers", type=int, default=1,
                   help="DataLoader worker processes (1: one process renders fresh corpus images while one trains)")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="where the per-epoch checkpoints go (default: build/pretrain)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in --work-dir")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_pretrain)


def _pretrain(args: argparse.Namespace) -> int:
    import dataclasses

    recipe = dataclasses.replace(pretrain.DEFAULT_RECIPE, half=args.half) if args.half else pretrain.DEFAULT_RECIPE
    flags = sys.argv[2:] if sys.argv[1:2] == ["pretrain"] else []
    command = " ".join(["python -m glsim_core pretrain", *flags])
    manifest = pretrain.pretrain_backbones(recipe, out_dir=args.out, models=args.models, progress=args.progress,
                                  max_train_samples=args.max_train_samples, num_workers=args.num_workers,
                                  command=command, work_dir=args.work_dir, resume=args.resume)
    for name, entry in manifest["backbones"].items():
        print(f"{name}: corpus val top-1 {entry['corpus_val_top1']:.2f} %, {entry['bytes'] / 2**20:.2f} MiB, "
              f"sha256 {entry['sha256'][:12]}…, {entry['train_seconds'] / 60:.1f} min")
    print(f"total {manifest['total_seconds'] / 60:.1f} min")
    return 0


# ------------------------------------------------------------------------------------------------------ compare
def add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", allow_abbrev=False, help="the papers' protocol for several models: [LR search on train/val], seeds "
                                       "on trainval/test, mean ± std and relative error (GLSim footnote 1)")
    p.add_argument("--models", nargs="+", required=True, metavar="SPEC",
                   help="NAME[:key=value,...], e.g. glsim_vit_nano_patch8_64:selector=random,name=random")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--reference", default=None, help="label of the reference model (default: the first)")
    p.add_argument("--lr-search", nargs="*", type=float, default=None, metavar="LR",
                   help="search the LR per model first (no values: 0.03 0.01 0.003 0.001)")
    p.add_argument("--on-val", action="store_true", help="compare on train/val instead of trainval/test")
    p.add_argument("--out", required=True, metavar="DIR", help="runs and comparison.csv go here")
    add_config_arguments(p, skip={"out_dir", "seed", "model", "train_split", "eval_split", "resume", "name"})
    p.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    base = config_from_args(args)
    ensure_writable_dir(args.out, "--out")
    grid = None if args.lr_search is None else (tuple(args.lr_search) or LR_GRID)
    table = compare(args.models, base, seeds=args.seeds, reference=args.reference, lr_search_grid=grid,
                    out_root=args.out, eval_split="val" if args.on_val else "test")
    cols = [c for c in ("label", "lr", "top1", "rel_error") if c in table]
    print(table[cols].to_string(index=False))
    print(f"(reference {table.attrs['reference']}; {Path(args.out) / 'comparison.csv'})")
    return 0


# ---------------------------------------------------------------------------------------------------- calibrate
def add_calibrate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate", allow_abbrev=False, help="does GLS localise at this scale, and do its crops help? (maps vs "
                                         "chance before/after fine-tuning; ViT / SimPool-ViT / GLSim / random crops)")
    p.add_argument("--profile", default="cpu", choices=["cpu", "gpu"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 10, 100])
    p.add_argument("--out", default="build/calibration", metavar="DIR")
    p.add_argument("--models", nargs="+", default=None, metavar="NAME",
                   help="only run these models' fine-tunes (to fill --out in parallel); no summary")
    p.add_argument("--max-samples", type=int, default=500, help="test images scored for localisation")
    p.add_argument("--epochs", type=int, default=None, help="override the profile's fine-tuning epochs")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    ensure_writable_dir(args.out, "--out")
    extra = {"epochs": args.epochs} if args.epochs else {}
    res = calibrate(args.profile, seeds=args.seeds, out_root=args.out, models=args.models,
                    max_samples=args.max_samples, progress=args.progress, **extra)
    if args.models is not None:
        print(f"runs of {args.models} are in {args.out}")
        return 0
    for row in res["accuracy"]:
        print(f"{row['label']:>14}: top-1 {row['top1']}  rel. error {row['rel_error']:+.2f} %")
    loc = localization_frame(res)
    k = res["top_o"]
    print(loc[["model", "map", "top1", f"top{k}", "bottom1", f"bottom{k}", "chance", "maxboxacc_v2"]]
          .round(3).to_string(index=False))
    print(f"-> {Path(args.out) / 'calibration.json'}")
    return 0
