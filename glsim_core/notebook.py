"""Small helpers every notebook calls: the environment line, the smoke switch, recording results, saving figures.

A notebook records what it measured with :func:`record`; the values land in ``OUT_DIR/results.json``, which is
what ``make run`` summarises, what sweeps collect into tables and what the papermill test reads back.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import __version__
from .runtime import describe_device, get_device, smoke_mode

__all__ = ["show_env", "setup_figures", "smoke_mode", "record", "load_results", "savefig", "out_dir",
           "FIGURE_DPI", "MIN_FONT_PT"]

#: The resolution of every figure a notebook shows or saves (PNG), and the smallest font size on them.
FIGURE_DPI = 110
MIN_FONT_PT = 9


def setup_figures(dpi: int = FIGURE_DPI) -> None:
    """The series' figure conventions, set once: PNG at ``dpi`` (inline and saved), fonts of at least
    :data:`MIN_FONT_PT` pt. :func:`show_env` calls it, so every notebook gets it from its environment cell."""
    try:
        import matplotlib
        import matplotlib.pyplot  # noqa: F401  (loads the backend first: its own defaults must not override ours)
    except ImportError:  # without matplotlib there are no figures to configure
        return
    matplotlib.rcParams.update({
        "figure.dpi": dpi, "savefig.dpi": dpi, "savefig.format": "png",
        "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
        "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 11,
    })
    if "IPython" in sys.modules:  # inside a kernel: inline figures as PNG (never JPEG), at the dpi above
        try:
            from matplotlib_inline.backend_inline import set_matplotlib_formats

            set_matplotlib_formats("png")
        except Exception:  # no inline backend (plain Python): the rcParams above still apply
            pass


def show_env() -> dict[str, str]:
    """Print one line of versions and the device a notebook will use; return them as a dict.

    Also applies the figure conventions (:func:`setup_figures`)."""
    import timm
    import torch

    try:
        import torchvision

        tv = torchvision.__version__
    except Exception as exc:  # report, the notebook's own imports will fail clearly later
        tv = f"BROKEN ({type(exc).__name__})"
    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": tv,
        "timm": timm.__version__,
        "glsim_core": __version__,
        "device": describe_device(get_device()),
        "smoke": str(smoke_mode()),
    }
    print(" | ".join(f"{k} {v}" for k, v in info.items()))
    setup_figures()
    return info


def out_dir(path: str | os.PathLike) -> Path:
    """Create (if needed) and return an output directory."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    """Tensors, NumPy scalars/arrays and paths to plain JSON values; non-finite floats to None."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        value = value.item() if value.numel() == 1 else value.tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def record(out: str | os.PathLike, **values: Any) -> dict[str, Any]:
    """Merge ``values`` into ``out/results.json`` and return the whole record.

    >>> record("../build/00_quickstart", num_patches=64)  # doctest: +SKIP
    """
    path = out_dir(out) / "results.json"
    results = load_results(out)
    results.update({k: _jsonable(v) for k, v in values.items()})
    results["_updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=True))
    tmp.replace(path)
    return results


def load_results(out: str | os.PathLike) -> dict[str, Any]:
    """The values recorded so far in ``out/results.json`` (empty if none)."""
    path = Path(out) / "results.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def savefig(fig: Any, out: str | os.PathLike, name: str, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib figure as ``out/figures/name.png`` (figures are build outputs, not committed)."""
    folder = out_dir(Path(out) / "figures")
    path = folder / (name if name.endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
