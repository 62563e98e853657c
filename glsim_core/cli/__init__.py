"""The command line: ``python -m glsim_core {env, run, notebooks, train, flops, sweep, ...}``.

The CLI layer, at the top of the package: the parsers live here (the training commands' in
:mod:`glsim_core.cli.training`), never in the modules they drive - ``flops`` calls :mod:`glsim_core.analysis.cost`,
``finetune`` :mod:`glsim_core.train.finetuned`, ``sweep`` and ``report`` :mod:`glsim_core.experiments`. Each command
registers through ``COMMANDS``: its name -> ``"module:function"``, where the function takes the sub-parsers object
and adds its parser (with ``set_defaults(func=...)``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__, series
from ..analysis import cost
from ..envinfo import collect, format_report
from ..exercises.catalog import EXERCISES, PENDING
from ..exercises.generate import generate as generate_exercises
from ..exercises.generate import out_of_sync, solution_paths, solutions_dir
from ..exercises.grade import format_grades, grade
from ..experiments import ablations, report, scale_map, sweep
from ..paths import build_dir
from ..profiles import get_profile
from ..runtime import profile_name
from ..safety import ensure_writable_dir
from ..series import format_summary, run_series
from ..train import finetuned

COMMANDS: dict[str, str] = {
    "env": "glsim_core.cli:add_env",
    "run": "glsim_core.cli:add_run",
    "notebooks": "glsim_core.cli:add_notebooks",
    "train": "glsim_core.cli.training:add_train",
    "eval": "glsim_core.cli.training:add_eval",
    "bench": "glsim_core.cli.training:add_bench",
    "data": "glsim_core.cli.training:add_data",
    "pretrain": "glsim_core.cli.training:add_pretrain",
    "compare": "glsim_core.cli.training:add_compare",
    "calibrate": "glsim_core.cli.training:add_calibrate",
    "flops": "glsim_core.cli:add_flops",
    "exercises": "glsim_core.cli:add_exercises",
    "sweep": "glsim_core.cli:add_sweep",
    "report": "glsim_core.cli:add_report",
    "finetune": "glsim_core.cli:add_finetune",
    "scale-map": "glsim_core.cli:add_scale_map",
    "ablations": "glsim_core.cli:add_ablations",
}


class CliError(Exception):
    """An error to show the user as one line (exit code 2), not as a traceback."""


def add_env(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("env", help="print versions, the device, and whether the stack (torch/torchvision) works")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-hub", action="store_true", help="do not try to reach the Hugging Face hub")
    p.add_argument("--hub-timeout", type=float, default=3.0, help="seconds to wait for the hub (default 3)")
    p.set_defaults(func=_env)


def _env(args: argparse.Namespace) -> int:
    report = collect(check_hub=not args.no_hub, hub_timeout=args.hub_timeout)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="execute the notebook series headless with papermill into build/")
    p.add_argument("--profile", default=None, choices=["cpu", "gpu"], help="profile (default: $GLSIM_PROFILE or cpu)")
    p.add_argument("--out", default=None, help="output folder (default: build/)")
    p.add_argument("--smoke", action="store_true", help="shrink every notebook's work (what CI does)")
    p.add_argument("--only", nargs="*", default=None, help="notebook numbers or stems to run (default: all)")
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile).name
    out = Path(args.out) if args.out else build_dir()
    if args.out:
        ensure_writable_dir(out, "--out")
    rows = run_series(profile=profile, out=out, smoke=args.smoke, only=args.only, timeout=args.timeout)
    print(format_summary(rows, profile=profile, smoke=args.smoke, out=out))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


def add_notebooks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notebooks", help="maintain the notebooks: execute in place, index, stamp, check")
    nsub = p.add_subparsers(dest="action", required=True)
    e = nsub.add_parser("execute", help="re-execute notebooks in place in a fresh kernel (what gets committed)")
    e.add_argument("paths", nargs="*", help="notebooks (default: every numbered notebook)")
    e.add_argument("--timeout", type=int, default=1800)
    e.add_argument("--smoke", action="store_true")
    nsub.add_parser("index", help="regenerate the table of contents in README.md and 00_index.ipynb")
    s = nsub.add_parser("stamp", help="write the Colab install cell into every notebook")
    s.add_argument("paths", nargs="*")
    c = nsub.add_parser("check", help="check every notebook against the series' conventions")
    c.add_argument("paths", nargs="*")
    p.set_defaults(func=_notebooks)


def _notebooks(args: argparse.Namespace) -> int:
    paths = getattr(args, "paths", None) or [nb.path for nb in series.discover()]
    if args.action == "execute":
        series.execute_inplace(paths, timeout=args.timeout, smoke=args.smoke)
    elif args.action == "index":
        changed = series.update_index()
        print("updated: " + ", ".join(map(str, changed)) if changed else "index up to date")
    elif args.action == "stamp":
        changed = series.stamp(paths)
        print("stamped: " + ", ".join(map(str, changed)) if changed else "all notebooks already stamped")
    elif args.action == "check":
        bad = {str(p): series.check_conventions(p) for p in paths}
        bad = {k: v for k, v in bad.items() if v}
        for path, problems in bad.items():
            for problem in problems:
                print(f"{path}: {problem}")
        print(f"{len(paths) - len(bad)}/{len(paths)} notebooks follow the conventions")
        return 1 if bad else 0
    return 0


# -------------------------------------------------------------------------------------------------- flops
def add_flops(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="cost of the discriminative feature selection mechanisms (GLSim Tables 1/7/8)")
    p.add_argument("--model", default="vit_base_patch16_224",
                   help="timm ViT name (vit_base_patch16_224 = Table 1, vit_base_patch14_224 = Table 7, "
                        "vit_tiny_patch16_224 = Table 8, vit_nano_patch8_64 = the cpu profile)")
    p.add_argument("--img-size", type=int, nargs="+", default=[224], help="image size(s), e.g. 224 448 768 1024")
    p.add_argument("--methods", nargs="+", default=list(cost.DFSM_METHODS), choices=list(cost.DFSM_METHODS))
    p.add_argument("--paper", action="store_true", help="print the table laid out as in the paper")
    p.add_argument("--no-measured", action="store_true", help="skip the torch.utils.flop_counter column")
    p.add_argument("--time", action="store_true", help="also time this project's implementations on the CPU")
    p.set_defaults(func=_flops)


def _flops(args: argparse.Namespace) -> int:
    import pandas as pd

    try:
        cost.vit_spec(args.model)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    for size in args.img_size:
        if size < 16 or size > 4096:
            raise ValueError(f"--img-size must be between 16 and 4096, got {size}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        if args.paper:
            print(f"{args.model}: MFLOPs of each DFSM and % of the backbone's FLOPs (release's counting)")
            print(cost.paper_table(args.model, args.img_size, args.methods).to_string())
            return 0
        for size in args.img_size:
            table = cost.cost_table(args.model, size, measured=not args.no_measured, methods=args.methods)
            line = f"{args.model} @ {size}px: backbone {table.attrs['backbone_mflops']:.2f} MFLOPs (analytic)"
            if not args.no_measured:
                line += f", {table.attrs['measured_backbone_mflops']:.2f} MFLOPs (torch.utils.flop_counter)"
            print(line)
            print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
            if args.time:
                timed = cost.time_dfsm(args.model, [size], [m for m in args.methods if m != "sacm"], progress=False)
                print(timed[["method", "tokens", "seconds", "skipped"]].to_string(index=False))
            print()
    return 0


# ----------------------------------------------------------------------------------------------- finetune
def add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune the shipped checkpoints (ViT, SimPool-ViT, GLSim, ResNet ± "
                                        "SimPool) into data/finetuned with a manifest")
    p.add_argument("--names", default=",".join(finetuned.FINETUNED),
                   help=f"comma-separated recipes (default: {','.join(finetuned.FINETUNED)})")
    p.add_argument("--profile", default="cpu", choices=["cpu", "gpu"], help="profile whose sizes to use (cpu)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default: the profile's)")
    p.add_argument("--max-train", type=int, default=None, help="keep a seeded subset of the training split")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the profile's)")
    p.add_argument("--seed", type=int, default=1, help="training seed (default 1)")
    p.add_argument("--dataset", default=None, help="dataset (default: the profile's offline benchmark)")
    p.add_argument("--out", default=None, help="output folder (default: data/finetuned)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--from-run", action="append", default=[], metavar="NAME=DIR",
                   help="export a finished run with the recipe's network instead of training it again (e.g. "
                        "vit=build/calibration/ViT/seed_1 after `python -m glsim_core calibrate`); repeatable")
    p.set_defaults(func=_finetune)


def _finetune(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.names.split(",") if n.strip()]
    if not names:
        raise ValueError("--names is empty; choose from " + ",".join(finetuned.FINETUNED))
    for n in names:
        finetuned._check_name(n)
    if args.out:
        ensure_writable_dir(args.out, "--out")
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    if args.max_train is not None:
        overrides["max_train_samples"] = args.max_train
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.dataset is not None:
        overrides["dataset"] = args.dataset
    if args.no_progress:
        overrides["progress"] = False
    command = "python -m glsim_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
        if sys.argv[1:2] == ["finetune"] else None
    if command is None:
        parts = ["python", "-m", "glsim_core", "finetune", "--names", ",".join(names), "--seed", str(args.seed)]
        for flag, value in (("--epochs", args.epochs), ("--max-train", args.max_train), ("--lr", args.lr),
                            ("--dataset", args.dataset), ("--out", args.out), ("--profile", args.profile)):
            if value is not None:
                parts += [flag, str(value)]
        command = " ".join(shlex.quote(p) for p in parts)
    from_runs = {}
    for item in args.from_run:
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in names:
            raise ValueError(f"--from-run takes NAME=DIR with NAME among --names {names}, got {item!r}")
        from_runs[key.strip()] = value.strip()
    finetuned.finetune(names, profile=args.profile, out=args.out, command=command, from_runs=from_runs, **overrides)
    return 0


# -------------------------------------------------------------------------------------------------- sweep
def add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", allow_abbrev=False,
        help="run a notebook or a training config once per grid point and seed; collect one tidy table",
        description="Run TARGET (a notebook .ipynb, 'train', or a TrainConfig .json/.yaml) once per point of the "
                    "grid and per seed into OUT/<point>/seed_<s>/, skipping runs already done, continuing past "
                    "failures, and collect every run into OUT/results.csv.")
    p.add_argument("target", help="notebook (.ipynb), 'train', or a TrainConfig .json/.yaml file")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a swept key and its values (repeat for a cartesian product); model_kwargs.top_o=4,8 sets "
                        "one model keyword")
    p.add_argument("--seeds", default="1,10,100", help="comma-separated seeds (default 1,10,100)")
    p.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every run (repeatable)")
    p.add_argument("--out", default=None, help="output folder (default build/runs/<target name>)")
    p.add_argument("--profile", default=None, choices=["cpu", "gpu"], help="profile of a 'train' target's sizes")
    p.add_argument("--isolate", action="store_true", help="run each training run in its own process")
    p.add_argument("--timeout", type=int, default=None, help="seconds per run (notebook cells / subprocess)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done; run nothing")
    p.set_defaults(func=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    if args.out and not args.dry_run:
        ensure_writable_dir(args.out, "--out")
    grid = sweep.parse_grid(args.grid)
    fixed = sweep.parse_assignments(args.fixed)
    table = sweep.run_sweep(args.target, grid, seeds=sweep.parse_seeds(args.seeds), out=args.out, fixed=fixed,
                      profile=args.profile, isolate=args.isolate, dry_run=args.dry_run, timeout=args.timeout)
    out = table.attrs["out"]
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    if args.dry_run:
        for _, r in table.iterrows():
            print(f"{r['status']:8s} {r['run_dir']}")
        print(f"{len(table)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return 0
    print(f"{len(table)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f"; table in {out}/{sweep.RESULTS_CSV}")
    return 1 if len(table.attrs["failed"]) else 0


# ------------------------------------------------------------------------------------------------- report
def add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", allow_abbrev=False,
                       help="render the reproduction report: claim, paper number, this repo's number, hardware",
                       description="Render a markdown table of every claim this repository checks, with the "
                                   "paper's number beside this repository's (from shipped results, sweeps under "
                                   "--runs and notebook results under --build).")
    p.add_argument("--runs", default=None, help="sweep folders (default build/runs)")
    p.add_argument("--build", default=None, help="notebook outputs (default build/)")
    p.add_argument("--data", default=None, help="shipped files (default data/)")
    p.add_argument("--out", default=None, help="write the markdown here (default build/report.md); '-' prints it")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    text = report.build_report(runs=args.runs, build=args.build, data=args.data)
    if args.out == "-":
        print(text)
        return 0
    out = Path(args.out) if args.out else build_dir() / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    n_not_run = text.count(f"| {report.NOT_RUN} |")
    print(f"wrote {out} ({n_not_run} paper rows not run)")
    return 0


# ---------------------------------------------------------------------------------------------- the parser
def _resolve(target: str) -> Callable[[argparse._SubParsersAction], None]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m glsim_core",
        description="GLSim and SimPool on timm: notebooks, training, evaluation, benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"glsim_core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in COMMANDS.items():
        try:
            _resolve(target)(sub)
        except ImportError as exc:  # a broken optional stack must not take the whole CLI down
            p = sub.add_parser(name, help=f"(unavailable: {exc})")
            p.set_defaults(func=lambda _args, _exc=exc: _unavailable(_exc))
    return parser


def _unavailable(exc: Exception) -> int:
    print(f"error: this command cannot run: {exc}. Run `python -m glsim_core env` to check the stack.",
          file=sys.stderr)
    return 1


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings (dropped boxes, re-encoded labels ...) as one ``warning:`` line each."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except (CliError, ValueError, FileNotFoundError, FloatingPointError, PermissionError, NotADirectoryError,
            IsADirectoryError, FileExistsError) as exc:  # FloatingPointError: training diverged (NaN / inf)
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------------------------- scale map
def add_scale_map(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scale-map", allow_abbrev=False,
                       help="where GLSim's crop helps: the benchmark's object scale x 4 models x 5 seeds")
    act = p.add_subparsers(dest="action", required=True)
    r = act.add_parser("run", allow_abbrev=False, help="run (or resume) this shard's fine-tunes")
    r.add_argument("--seeds", default=",".join(map(str, scale_map.SEEDS)), help="comma-separated seeds (default 1-5)")
    r.add_argument("--points", default=None,
                   help=f"comma-separated points (default all: {', '.join(scale_map.SCALE_POINTS)}; or digits)")
    r.add_argument("--models", default=None,
                   help="comma-separated model labels (default: the four of the map; the controls ViT-scratch and "
                        "GLSim-full run only when named)")
    r.add_argument("--shard", default="0/1", metavar="I/N", help="take runs I, I+N, ... (one process per core)")
    r.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig field for every run (repeatable), e.g. epochs=1")
    r.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    c = act.add_parser("collect", allow_abbrev=False, help="summarise the runs into data/results/ with a manifest")
    c.add_argument("--note", default="", help="a remark stored in the manifest")
    c.add_argument("--headline", default=None, metavar="POINT",
                   help="the headline table's point (default: see choose_point - where GLSim - ViT is clearest "
                        "beyond 2 SE, else the default benchmark)")
    for q in (r, c):
        q.add_argument("--out", default=None, help="run folders (default data/runs/scale_map)")
        q.add_argument("--profile", default="cpu", choices=["cpu", "gpu"])
    c.add_argument("--csv", default=None, help="where to write (default data/results/scale_map_<profile>.csv)")
    p.set_defaults(func=_scale_map)


def _scale_map(args: argparse.Namespace) -> int:
    if args.action == "collect":
        command = "python -m glsim_core scale-map " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        path = scale_map.collect(args.out, args.csv, args.profile, command=command, note=args.note,
                                 headline_point=args.headline)
        print(f"wrote {path.with_suffix('').with_suffix('.csv')} and {path}")
        summary = json.loads(path.with_suffix("").with_suffix(".json").read_text())
        print(f"chosen point: {summary.get('chosen_point') or 'none'} - {summary.get('choice_reason', '')}")
        return 0
    index, _, count = args.shard.partition("/")
    try:
        shard = (int(index), int(count or 1))
    except ValueError:
        raise ValueError(f"--shard must be I/N, e.g. 0/2, got {args.shard!r}") from None

    def split(text):
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    rows = scale_map.run_scale_map(sweep.parse_seeds(args.seeds), split(args.points), split(args.models), args.out,
                                   args.profile, shard=shard, dry_run=args.dry_run,
                                   **sweep.parse_assignments(args.fixed))
    for row in rows:
        print(f"{row['point']:>3} {row['model']:<13} seed {row['seed']:<3} {row['status']:<8} "
              + (f"{row['top1']:.2f}" if "top1" in row else ""))
    return 0


# ---------------------------------------------------------------------------------------------- exercises
def add_exercises(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exercises", help="exercise notebooks: generate the student versions, check they are in sync")
    esub = p.add_subparsers(dest="action", required=True)
    g = esub.add_parser("generate", help="write notebooks/exercises/NN.ipynb from notebooks/exercises/solutions/")
    g.add_argument("--solutions", default=None, help="folder of the solution notebooks")
    g.add_argument("--out", default=None, help="where the student notebooks go (default: the solutions' parent)")
    c = esub.add_parser("check", help="exit 1 when the student notebooks are not what the solutions generate")
    c.add_argument("--solutions", default=None)
    c.add_argument("--students", default=None)
    esub.add_parser("list", help="the exercises, their notebooks and expected times")
    gr = esub.add_parser("grade", help="execute submitted exercise notebooks and print what their checks recorded")
    gr.add_argument("paths", nargs="+", help="notebooks to grade")
    gr.add_argument("--out", default="build/grading", help="where executed copies and results go")
    gr.add_argument("--json", action="store_true", help="print the rows as JSON")
    gr.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    p.set_defaults(func=_exercises)


def _exercises(args: argparse.Namespace) -> int:
    if args.action == "generate":
        changed = generate_exercises(args.solutions, args.out)
        print("generated: " + ", ".join(map(str, changed)) if changed else "student notebooks up to date")
        return 0
    if args.action == "check":
        problems = out_of_sync(args.solutions, args.students)
        for problem in problems:
            print(problem)
        if problems:
            print("student notebooks are out of sync: run `python -m glsim_core exercises generate` (make exercises)")
            return 1
        print(f"{len(solution_paths(args.solutions or solutions_dir()))} student notebooks in sync with their "
              "solutions")
        return 0
    if args.action == "grade":
        missing = [p for p in args.paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"no such notebook: {', '.join(missing)}")
        rows = grade(args.paths, args.out, timeout=args.timeout)
        print(json.dumps(rows, indent=2) if args.json else format_grades(rows))
        return 0

    for e in EXERCISES:
        print(f"{e.notebook:34s} {e.check:26s} {e.minutes:3d} min  {e.title}")
    for name, why in PENDING.items():
        print(f"{'(pending)':34s} check_{name:20s}      {why}")
    return 0


# ---------------------------------------------------------------------------------------------- ablations
def add_ablations(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ablations", allow_abbrev=False,
                       help="run the papers' ablations (notebook 07) as sweeps and write one table")
    p.add_argument("--tables", default="all",
                   help=f"comma-separated ablation names or 'all' ({', '.join(ablations.ABLATION_NAMES)})")
    p.add_argument("--profile", default=profile_name(), choices=sorted(ablations.BACKBONES))
    p.add_argument("--seeds", default="1,10,100")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (default: the profile's)")
    p.add_argument("--max-train", type=int, default=None, help="max_train_samples per run (default: all)")
    p.add_argument("--set", dest="fixed", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TrainConfig field for every run (repeatable)")
    p.add_argument("--out", default=None, help="run folders (default build/runs/ablations)")
    p.add_argument("--csv", default=None, help="write the table here with a manifest (e.g. "
                                               "data/results/ablations_cpu.csv)")
    p.add_argument("--note", default="", help="a remark stored in the manifest (why / what this table is)")
    p.add_argument("--isolate", action="store_true", help="each run in its own process")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_ablations)


def _ablations(args: argparse.Namespace) -> int:
    settings = ablations.ablation_settings(args.profile, epochs=args.epochs, max_train=args.max_train,
                                           **sweep.parse_assignments(args.fixed))
    if args.profile == "cpu" and not settings.get("pretrained", True):
        print("note: no shipped pretrained backbone in data/pretrained: every run starts from scratch "
              "(pretrained=False); `python -m glsim_core pretrain` builds it", file=sys.stderr)
    names = None if args.tables == "all" else [t.strip() for t in args.tables.split(",") if t.strip()]
    seeds = sweep.parse_seeds(args.seeds)
    table = ablations.run_ablations(names, seeds=seeds, profile=args.profile, out=args.out, settings=settings,
                                    isolate=args.isolate, dry_run=args.dry_run)
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    print(f"{len(table)} rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if args.csv and not args.dry_run:
        command = "python -m glsim_core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        manifest = ablations.write_results(table, args.csv, command, settings, args.profile, seeds, note=args.note)
        print(f"wrote {args.csv} and {manifest}")
    return 1 if len(table.attrs["failed"]) else 0
