"""One configuration for every run: notebook parameters, CLI flags and sweeps all map onto :class:`TrainConfig`.

``TrainConfig()`` is the cpu profile's run (its sizes come from ``PROFILES["cpu"]``). The recipe's other defaults
are GLSim §4 / appendix C (Table 10) and the authors' released code: momentum 0.9 (Nesterov) for SGD, cosine schedule
stepped per iteration with a linear warm-up of 500 steps from 1e-6 (min LR 1e-5), gradient clipping at 1.0, mixed
precision on GPUs, resize to 1.34·S then random/centre crop. The warm-up is shortened for short runs: it never
exceeds 10 % of all steps (500 steps of a 300-step CPU run would never leave the warm-up). Label smoothing and
stochastic depth follow the AugReg level (Table 11) unless set.

Build one with ``TrainConfig.from_profile("gpu", epochs=2, lr=0.003)`` (sizes from :mod:`glsim_core.profiles`),
``TrainConfig(model=..., dataset=...)``, ``TrainConfig.from_dict(json)``, or from the command line
(:func:`add_config_arguments` adds one flag per field, its help the field's ``metadata["help"]``: ``--batch-size``,
``--augreg``, ``--no-amp`` ...). Unknown fields and invalid values are errors that list the valid choices. Which
value wins: :class:`TrainConfig`'s docstring.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.synthetic import default_benchmark_path
from ..data.transforms import AUGREG_LEVELS, augreg
from ..profiles import PROFILES, Profile, get_profile

__all__ = ["TrainConfig", "add_config_arguments", "config_from_args", "TRAIN_SPLITS", "EVAL_SPLITS"]

TRAIN_SPLITS = ("train", "trainval")
OPTIMIZERS = ("sgd", "adamw")
#: Stochastic-depth schedules (models.backbones.drop_path_rates; kept here so the config imports no timm).
DROP_PATH_SCHEDULES = ("uniform", "linear")
EVAL_SPLITS = ("val", "test")
#: The cpu profile's AugReg level: TrivialAugment and random erasing ("strong") recolour and erase the small
#: coloured parts the offline benchmark's classes are made of, so the cpu profile uses "medium"; the gpu profile
#: uses the paper's "strong".
PROFILE_AUGREG = {"cpu": "medium", "gpu": "strong"}


def _help(text: str) -> dict[str, str]:
    """A field's help text (the command line's ``--flag`` help and the documentation of the field)."""
    return {"help": text}


def _cpu_dataset() -> str:
    """The cpu profile's dataset as :meth:`TrainConfig.from_profile` resolves it (the offline benchmark's folder)."""
    dataset = PROFILES["cpu"].dataset
    return str(default_benchmark_path()) if dataset == _BENCHMARK else dataset


_BENCHMARK = "data/cache/finegrained_benchmark"  # the cpu profile's dataset, wherever data/cache is
_CPU = PROFILES["cpu"]


@dataclass
class TrainConfig:
    """Everything a run needs; each field's ``metadata["help"]`` is its documentation and its ``--flag``'s help.

    ``TrainConfig()`` **is the cpu profile's run**: the sizes (model, dataset, image size, epochs, batch size, LR,
    optimizer, weight decay, pretrained, workers, AugReg level) are read from ``PROFILES["cpu"]``, so that
    ``TrainConfig() == TrainConfig.from_profile("cpu")``. The recipe's other fields are GLSim appendix C's.

    Which value wins, lowest first: these class defaults < the profile named in :meth:`from_profile` (or, when none
    is named, the one ``GLSIM_PROFILE`` chooses) < the values given by name (a notebook's parameters cell, the
    command line's flags, a sweep's grid point).
    """

    # what to train, on what
    model: str = field(default=_CPU.model, metadata=_help("timm name (this project's names included)"))
    dataset: str = field(default_factory=_cpu_dataset, metadata=_help("hub id, registered name or local path"))
    out_dir: str | None = field(default=None, metadata=_help(
        "where metrics.json, history.csv and checkpoint.pt go (None: nothing written)"))
    dataset_config: str | None = field(default=None, metadata=_help("hub config name"))
    pretrained: bool = field(default=_CPU.pretrained, metadata=_help(
        "start from pretrained weights (shipped ones in the cpu profile)"))
    pooling: str | None = field(default=None, metadata=_help(
        'None: the model\'s own pooling; "simpool": SimPool (GLSim too: its pool="simpool"; SimPool\'s options, '
        'e.g. gamma, in model_kwargs)'))
    model_kwargs: dict[str, Any] = field(default_factory=dict, metadata=_help(
        "extra keyword arguments for the model"))
    # data
    img_size: int = field(default=_CPU.img_size, metadata=_help(
        "network input size S (images are resized to int(1.34 S) and cropped)"))
    augreg: str = field(default=PROFILE_AUGREG["cpu"], metadata=_help(
        "AugReg level of GLSim Table 11: minimal, weak, medium, strong"))
    train_split: str = field(default="trainval", metadata=_help("train (LR search) or trainval (final runs)"))
    eval_split: str = field(default="test", metadata=_help("val (LR search) or test (final runs)"))
    split_seed: int = field(default=0, metadata=_help(
        "seed of the train/val partition (fixed across training seeds)"))
    val_fraction: float | None = field(default=None, metadata=_help(
        "None: GLSim's 0.2 (0.8 above 50,000 images)"))
    max_train_samples: int | None = field(default=None, metadata=_help("keep a seeded subset (quick runs)"))
    max_eval_samples: int | None = field(default=None, metadata=_help("keep a seeded subset of the eval split"))
    on_bad_image: str = field(default="raise", metadata=_help("raise or skip undecodable images"))
    num_workers: int = field(default=_CPU.num_workers, metadata=_help("DataLoader worker processes"))
    # optimisation (GLSim appendix C)
    epochs: int = field(default=_CPU.epochs, metadata=_help("training epochs"))
    batch_size: int = field(default=_CPU.batch_size, metadata=_help("per process"))
    lr: float = field(default=_CPU.lr, metadata=_help("peak learning rate"))
    optimizer: str = field(default=_CPU.optimizer, metadata=_help(
        "sgd (the papers' fine-tuning recipe) or adamw (pretraining from scratch)"))
    momentum: float = field(default=0.9, metadata=_help("SGD momentum"))
    nesterov: bool = field(default=True, metadata=_help("Nesterov momentum (SGD)"))
    weight_decay: float = field(default=_CPU.weight_decay, metadata=_help("weight decay"))
    warmup_steps: int = field(default=500, metadata=_help("capped at 10 % of all steps"))
    warmup_lr: float = field(default=1e-6, metadata=_help("learning rate at the start of the warm-up"))
    min_lr: float = field(default=1e-5, metadata=_help("learning rate at the end of the cosine schedule"))
    grad_clip: float | None = field(default=1.0, metadata=_help("max gradient norm (None: no clipping)"))
    label_smoothing: float | None = field(default=None, metadata=_help("None: from the AugReg level"))
    drop_path_rate: float | None = field(default=None, metadata=_help("stochastic depth; None: from the AugReg level"))
    drop_path_schedule: str = field(default="uniform", metadata=_help(
        "uniform (the paper: the same rate in every ViT block) or linear (timm's)"))
    amp: bool = field(default=True, metadata=_help("mixed precision on GPUs (bf16 where supported); no effect on CPU"))
    # run
    seed: int = field(default=1, metadata=_help("training seed"))
    deterministic: bool = field(default=True, metadata=_help("deterministic kernels where they exist"))
    device: str = field(default="auto", metadata=_help("auto, cpu, cuda, cuda:1, mps"))
    resume: bool = field(default=False, metadata=_help("continue from out_dir/checkpoint.pt if it exists"))
    eval_every: int = field(default=1, metadata=_help("evaluate every N epochs (and always after the last)"))
    save_checkpoints: bool = field(default=True, metadata=_help("write out_dir/checkpoint.pt after every epoch"))
    progress: bool = field(default=True, metadata=_help("tqdm progress bars"))
    name: str | None = field(default=None, metadata=_help("a label for tables (default: the model name)"))


    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> TrainConfig:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ValueError(msg)

        need(isinstance(self.model, str) and self.model.strip() != "", "model must be a non-empty timm model name")
        need(isinstance(self.dataset, str) and self.dataset.strip() != "", "dataset must be a hub id or a path")
        augreg(self.augreg)  # raises with the valid levels
        need(self.train_split in TRAIN_SPLITS, f"train_split must be one of {TRAIN_SPLITS}, got {self.train_split!r}")
        need(self.eval_split in EVAL_SPLITS, f"eval_split must be one of {EVAL_SPLITS}, got {self.eval_split!r}")
        need(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        need(self.on_bad_image in ("raise", "skip"), f"on_bad_image must be 'raise' or 'skip', "
                                                      f"got {self.on_bad_image!r}")
        for name in ("img_size", "epochs", "batch_size", "eval_every"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "warmup_steps", "split_seed", "seed"):
            need(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0 <= self.warmup_lr and 0 <= self.min_lr, "warmup_lr and min_lr must be >= 0")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(not (self.optimizer == "sgd" and self.nesterov and self.momentum == 0), "nesterov needs momentum > 0")
        need(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip}")
        need(self.label_smoothing is None or 0 <= self.label_smoothing < 1, "label_smoothing must be in [0, 1)")
        need(self.drop_path_rate is None or 0 <= self.drop_path_rate < 1, "drop_path_rate must be in [0, 1)")
        need(self.drop_path_schedule in DROP_PATH_SCHEDULES, f"drop_path_schedule must be one of "
                                                              f"{DROP_PATH_SCHEDULES}, got {self.drop_path_schedule!r}")
        need(self.val_fraction is None or 0 < self.val_fraction < 1, "val_fraction must be in (0, 1)")
        for name in ("max_train_samples", "max_eval_samples"):
            v = getattr(self, name)
            need(v is None or int(v) >= 1, f"{name} must be >= 1 or None, got {v}")
        need(isinstance(self.model_kwargs, dict), "model_kwargs must be a dict")
        return self

    # ------------------------------------------------------------------ derived settings
    @property
    def effective_label_smoothing(self) -> float:
        return augreg(self.augreg).label_smoothing if self.label_smoothing is None else float(self.label_smoothing)

    @property
    def effective_drop_path_rate(self) -> float:
        return augreg(self.augreg).drop_path_rate if self.drop_path_rate is None else float(self.drop_path_rate)

    def effective_warmup(self, total_steps: int) -> int:
        """Warm-up steps actually used: ``min(warmup_steps, 10 % of total_steps)``."""
        return int(min(self.warmup_steps, max(0, total_steps // 10)))

    @property
    def label(self) -> str:
        return self.name or self.model

    # ------------------------------------------------------------------ construction
    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_profile(cls, profile: str | Profile | None = "cpu", **overrides: Any) -> TrainConfig:
        """Sizes from a profile (model, dataset, image size, epochs, batch size, LR, optimizer, weight decay,
        pretrained, workers, AugReg level), then ``overrides`` by field name."""
        p = get_profile(profile)
        base = dict(model=p.model, dataset=p.dataset, img_size=p.img_size, epochs=p.epochs,
                    batch_size=p.batch_size, lr=p.lr, pretrained=p.pretrained, num_workers=p.num_workers,
                    optimizer=p.optimizer, weight_decay=p.weight_decay,
                    augreg=PROFILE_AUGREG.get(p.name, "strong"))
        if p.name == "cpu":  # the benchmark lives under data/cache wherever the package runs from

            if p.dataset == _BENCHMARK:
                base["dataset"] = str(default_benchmark_path())
        return cls.from_dict({**base, **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid options: {cls.field_names()}")
        return cls(**values)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **overrides: Any) -> TrainConfig:
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; valid options: {self.field_names()}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_cli(self, command: str = "train", profile: str | None = None) -> str:
        """The command line that builds this config (fields that differ from the profile's / the defaults)."""
        import shlex

        base = TrainConfig.from_profile(profile) if profile else TrainConfig()
        parts = ["python", "-m", "glsim_core", command]
        if profile:
            parts += ["--profile", profile]
        if command == "train":
            parts += ["--out", self.out_dir or "DIR"]
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), getattr(base, f.name)
            if f.name in ("out_dir",) or value == default:
                continue
            flag = "--" + f.name.replace("_", "-")
            if f.name == "model_kwargs":
                parts += [flag, json.dumps(value)]
            elif isinstance(value, bool):
                parts.append(flag if value else "--no-" + f.name.replace("_", "-"))
            else:
                parts += [flag, "none" if value is None else str(value)]
        return " ".join(shlex.quote(p) for p in parts)


# ---------------------------------------------------------------------------------------------------- CLI mapping
def _base_type(tp: Any) -> tuple[type, bool]:
    """(underlying type, optional?) of an annotation such as ``int | None``."""
    args = typing.get_args(tp)
    if args:
        non_none = [a for a in args if a is not type(None)]
        return (non_none[0] if len(non_none) == 1 else str), type(None) in args
    return tp, False


def _optional(kind: type) -> Any:
    def parse(text: str):
        if text.strip().lower() in ("none", "null", ""):
            return None
        return kind(text)

    parse.__name__ = kind.__name__
    return parse


_SKIP_FLAGS = {"model_kwargs"}


def add_config_arguments(parser: argparse.ArgumentParser, skip: set[str] | None = None,
                         required: set[str] | None = None) -> None:
    """Add one ``--flag`` per :class:`TrainConfig` field (``--no-flag`` for booleans that default to True).

    Defaults are left as ``None`` (argparse.SUPPRESS) so that :func:`config_from_args` can tell set flags from
    unset ones and apply the profile's sizes underneath.
    """
    hints = typing.get_type_hints(TrainConfig)
    skip = set(skip or ()) | _SKIP_FLAGS
    required = set(required or ())
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind, optional = _base_type(hints[f.name])
        help_text = f.metadata.get("help", "").replace("%", "%%")
        default = getattr(defaults, f.name)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=f"{help_text} (default: {default})")
            continue
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "metavar": f.name.upper(),
                              "help": f"{help_text} (default: {default})".strip()}
        if f.name == "augreg":
            kw["choices"] = list(AUGREG_LEVELS)
            kw.pop("metavar")
        elif f.name == "train_split":
            kw["choices"] = list(TRAIN_SPLITS)
            kw.pop("metavar")
        elif f.name == "eval_split":
            kw["choices"] = list(EVAL_SPLITS)
            kw.pop("metavar")
        elif f.name == "optimizer":
            kw["choices"] = list(OPTIMIZERS)
            kw.pop("metavar")
        elif f.name == "drop_path_schedule":
            kw["choices"] = list(DROP_PATH_SCHEDULES)
            kw.pop("metavar")
        elif f.name == "on_bad_image":
            kw["choices"] = ["raise", "skip"]
            kw.pop("metavar")
        kw["type"] = _optional(kind) if optional else kind
        if f.name in required:
            kw["required"] = True
            kw.pop("default")
        parser.add_argument(flag, **kw)
    parser.add_argument("--model-kwargs", default=None, metavar="JSON",
                        help='extra model keyword arguments as JSON, e.g. \'{"top_o": 8}\'')
    parser.add_argument("--profile", default=None, choices=["cpu", "gpu"],
                        help="take sizes from a profile first (default: $GLSIM_PROFILE or cpu)")


def config_from_args(args: argparse.Namespace, **extra: Any) -> TrainConfig:
    """The config a parsed command line describes: the profile's sizes, then every flag that was given."""
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.field_names() and k != "model_kwargs"}
    if getattr(args, "model_kwargs", None):
        try:
            mk = json.loads(args.model_kwargs)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--model-kwargs is not valid JSON: {exc}") from None
        if not isinstance(mk, dict):
            raise ValueError("--model-kwargs must be a JSON object")
        given["model_kwargs"] = mk
    given.update(extra)
    return TrainConfig.from_profile(getattr(args, "profile", None), **given)
