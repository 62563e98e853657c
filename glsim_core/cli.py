"""The command line: ``python -m glsim_core {env, run, notebooks, ...}``.

Each sub-command lives beside the code it drives and registers itself here through ``COMMANDS``: a mapping from
the command's name to ``"module:function"``, where the function takes the sub-parsers object and adds its parser
(with ``set_defaults(func=...)``). Modules are imported lazily, so ``env`` works even when torch is broken.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence

COMMANDS: dict[str, str] = {
    "env": "glsim_core.cli:add_env",
    "run": "glsim_core.cli:add_run",
    "notebooks": "glsim_core.cli:add_notebooks",
    "train": "glsim_core.train.cli:add_train",
    "eval": "glsim_core.train.cli:add_eval",
    "bench": "glsim_core.train.cli:add_bench",
    "data": "glsim_core.train.cli:add_data",
    "pretrain": "glsim_core.train.cli:add_pretrain",
    "compare": "glsim_core.train.cli:add_compare",
    "calibrate": "glsim_core.train.cli:add_calibrate",
    "flops": "glsim_core.selection.flops:add_cli",
    "exercises": "glsim_core.exercises.generate:add_cli",
    "sweep": "glsim_core.experiments.sweep:add_cli",
    "report": "glsim_core.experiments.report:add_cli",
    "finetune": "glsim_core.models.finetuned:add_cli",
    "scale-map": "glsim_core.experiments.scale_map:add_cli",
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
    import json

    from .envinfo import collect, format_report

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
    from pathlib import Path

    from .paths import build_dir
    from .profiles import get_profile
    from .series import format_summary, run_series

    profile = get_profile(args.profile).name
    out = Path(args.out) if args.out else build_dir()
    if args.out:
        from .safety import ensure_writable_dir

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
    from . import series

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


def _resolve(target: str) -> Callable[[argparse._SubParsersAction], None]:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

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
