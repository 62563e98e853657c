"""Cost of the discriminative feature selection mechanisms (GLSim Table 1, Tables 7-8): analytic and measured.

**Analytic counts** (:func:`dfsm_flops`) follow the conventions of the authors' release, which reproduce every
number of Tables 1, 7 and 8 (ViT B-16, B-14, T-16 at 224/448/768/1024 px). With ``D`` channels, ``H = D/64`` heads
(the models' own head count for the paper's models), ``L`` blocks, patch ``P``:

* tokens ``N = int((S - P)/stride + 1)^2 + 1`` (with the CLS token); ``stride = P`` except for the two methods
  whose models use **overlapping** patches, TransFG's PSM and AF-Trans's SACM: ``stride = P - 4`` (12 for
  P = 16, hence 325 tokens at 224 px).
* a product of two N x N matrices costs ``N * N * (2N - 1)`` FLOPs (N multiplications and N-1 additions each).
* **PSM** (TransFG; its part-selection layer is the last block, so L-1 attention maps, L-2 products, per head):
  ``H * (L - 2) * N^2 (2N - 1)``.
* **Rollout** (RAMS-Trans, DCAL, TPSKG; the release's DCAL variant): per layer a head mean plus identity
  ``H N^2 + N^2``, a normalisation ``N + 1``; then L-1 products: ``L (H N^2 + N^2 + N + 1) + (L - 1) N^2 (2N - 1)``.
* **MAWS** (FFVT; L-1 layers): per layer a softmax over the CLS column of every head ``5 N H``, two head means
  ``2 H``, one elementwise product ``N``: ``(L - 1)(5 N H + 2 H + N)``.
* **SACM** (AF-Trans; overlapping patches): head-wise elementwise products ``L (H - 1) N^2``, a squeeze
  ``N^2 + 1``, an excitation MLP ``2 * 3L`` and the re-weighting ``L (N - 1)``.
* **GLS** (ours): one cosine per patch token, ``D`` products + ``2 (D + 1)`` for the two norms + 1 division:
  ``(3D + 3)(N - 1)``.
* **Backbone** (the release's count for the ViT, 200 classes): patch embedding ``2 (N-1) P^2 3 D`` plus per block
  ``4 N D^2 + 2 N^2 D`` (attention) ``+ 8 N D^2`` (MLP), plus the head ``D * classes``. Note that it counts the
  patch embedding in FLOPs but the blocks in multiply-accumulates; ``measured_backbone_flops`` shows the
  difference from torch's count.

The release rounds MFLOPs to 4 decimals, the backbone's MFLOPs to 2, and the percentage (computed from the rounded
values) to 4; :func:`dfsm_flops` returns those values, and :func:`format_mflops` / :func:`format_percent` print
them the way the paper's tables do.

**Measured** (:func:`measured_dfsm_flops`, :func:`measured_backbone_flops`): ``torch.utils.flop_counter`` run on
this project's implementations (:mod:`glsim_core.selection.attention`, :mod:`~glsim_core.selection.gls`) and on the
timm backbone, on the ``meta`` device (shapes only: free at any image size). Torch counts matmuls/convolutions
only, at 2 FLOPs per multiply-add; elementwise work (softmax, MAWS, normalisation) counts 0. **Timed**
(:func:`time_dfsm`): CPU wall clock of the same implementations on random attention maps.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

__all__ = ["DFSM_METHODS", "PAPER_MODELS", "PAPER_IMG_SIZES", "PAPER_TABLES", "compare_with_paper", "ViTSpec",
           "vit_spec", "num_tokens", "backbone_flops", "dfsm_flops", "dfsm_table", "paper_table", "format_mflops",
           "format_percent", "measured_dfsm_flops", "measured_backbone_flops", "time_dfsm", "cost_table", "add_cli"]

DFSM_METHODS = ("psm", "rollout", "maws", "sacm", "gls")
#: The paper's three cost tables: model -> (label, table).
PAPER_MODELS = {"vit_base_patch16_224": ("ViT B-16", "Table 1"), "vit_base_patch14_224": ("ViT B-14", "Table 7"),
                "vit_tiny_patch16_224": ("ViT T-16", "Table 8")}
PAPER_IMG_SIZES = (224, 448, 768, 1024)
#: Methods whose models use overlapping patches (stride P - 4) in the release's count.
_OVERLAPPING = ("psm", "sacm")
#: Which model each method belongs to (Table 1's header).
METHOD_MODELS = {"psm": "TransFG", "rollout": "RAMS-Trans / DCAL / TPSKG", "maws": "FFVT", "sacm": "AF-Trans",
                 "gls": "GLSim"}


# The numbers printed in GLSim Tables 1 (B-16), 7 (B-14) and 8 (T-16): per image size, MFLOPs then "% of Backbone"
# for PSM, Rollout, MAWS, SACM, GLS.
_PAPER_TEXT = {
    "vit_base_patch16_224": """
224  8.2e3 1.7e2 1.3e-1 1.4e1 4.5e-1 | 46.531 0.9833 0.0007 0.0795 0.0026
448  6.2e5 1.1e4 5.3e-1 2.5e2 1.8e0  | 781.31 13.592 0.0007 0.3162 0.0023
768  1.5e7 2.7e5 1.5e0  2.1e3 5.3e0  | 5065.4 91.152 0.0005 0.7072 0.0018
1024 9.1e7 1.5e6 2.7e0  6.9e3 9.4e0  | 13674  228.84 0.0004 1.0487 0.0014""",
    "vit_base_patch14_224": """
224  2.7e4 3.8e2 1.7e-1 3.1e1 5.9e-1 | 117.51 1.6455 0.0007 0.1344 0.0025
448  1.7e6 2.4e4 6.9e-1 5.0e2 2.4e0  | 1624.4 22.212 0.0006 0.4649 0.0022
768  4.6e7 5.5e5 2.0e0  4.4e3 6.7e0  | 11362  134.39 0.0005 1.09   0.0017
1024 2.7e8 3.3e6 3.6e0  1.4e4 1.2e1  | 27554  339.94 0.0004 1.4676 0.0013""",
    "vit_tiny_patch16_224": """
224  2.1e3 1.7e2 3.5e-2 2.6e0 1.1e-1 | 160.36 13.228 0.0027 0.2062 0.0089
448  1.5e5 1.1e4 1.4e-1 4.7e1 4.5e-1 | 2130.8 147.35 0.0019 0.6485 0.0063
768  3.8e6 2.7e5 4.1e-1 3.9e2 1.3e0  | 10037  720.95 0.0011 1.0537 0.0036
1024 2.3e7 1.5e6 7.2e-1 1.3e3 2.4e0  | 22568  1509.0 0.0007 1.3015 0.0024""",
}


def _parse_paper(text: str) -> dict[int, dict[str, tuple[str, str]]]:
    table = {}
    for line in text.strip().splitlines():
        left, right = line.split("|")
        size, *mflops = left.split()
        table[int(size)] = {m: (f"{f.split('e')[0]} × 10^{int(f.split('e')[1])}", p)
                            for m, f, p in zip(DFSM_METHODS, mflops, right.split())}
    return table


#: model -> image size -> method -> (MFLOPs as printed, % of backbone as printed).
PAPER_TABLES: dict[str, dict[int, dict[str, tuple[str, str]]]] = {m: _parse_paper(t) for m, t in _PAPER_TEXT.items()}


@dataclass(frozen=True)
class ViTSpec:
    """What the cost formulas need from a ViT."""

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int


_KNOWN: dict[str, ViTSpec] = {
    "vit_base_patch16_224": ViTSpec(768, 12, 12, 16),
    "vit_base_patch14_224": ViTSpec(768, 12, 12, 14),  # the paper's B-14 (e.g. DINOv2 B-14 without registers)
    "vit_base_patch14_dinov2": ViTSpec(768, 12, 12, 14),
    "vit_small_patch16_224": ViTSpec(384, 12, 6, 16),
    "vit_tiny_patch16_224": ViTSpec(192, 12, 3, 16),
    "vit_base_patch32_224": ViTSpec(768, 12, 12, 32),
}


def vit_spec(model: str | ViTSpec | torch.nn.Module) -> ViTSpec:
    """The (D, L, H, P) of a model name (timm names, with or without a pretrained tag), a module, or a spec."""
    if isinstance(model, ViTSpec):
        return model
    if isinstance(model, torch.nn.Module):
        enc = getattr(model, "encoder", model)  # a GLSim model -> its encoder
        return ViTSpec(int(enc.embed_dim), len(enc.blocks), int(enc.blocks[0].attn.num_heads),
                       int(enc.patch_embed.patch_size[0]))
    name = str(model).split(".", 1)[0]
    if name.startswith("glsim_"):
        name = name[len("glsim_"):]
    if name in _KNOWN:
        return _KNOWN[name]
    from ..models.backbones import SMALL_VITS

    if name in SMALL_VITS:
        a = SMALL_VITS[name]
        return ViTSpec(a["embed_dim"], a["depth"], a["num_heads"], a["patch_size"])
    import timm

    if not timm.is_model(name):
        raise ValueError(f"unknown model {model!r}: give a timm ViT name (e.g. vit_base_patch16_224) or a ViTSpec")
    with torch.device("meta"):
        m = timm.create_model(name)
    if not hasattr(m, "blocks") or not hasattr(m, "patch_embed"):
        raise ValueError(f"{model!r} is not a plain ViT (no blocks / patch_embed); the DFSM counts need one")
    return vit_spec(m)


def num_tokens(img_size: int, patch_size: int, stride: int | None = None, cls_token: bool = True) -> int:
    """Sequence length of a square image: ``int((S - P)/stride + 1)^2`` patches (+1 CLS), as the release counts."""
    stride = patch_size if stride is None else stride
    if img_size < patch_size or stride < 1:
        raise ValueError(f"image size {img_size} smaller than the patch {patch_size}, or stride {stride} < 1")
    return int((img_size - patch_size) / stride + 1) ** 2 + int(cls_token)


def _stride(method: str, patch_size: int) -> int:
    return patch_size - 4 if method in _OVERLAPPING and patch_size > 4 else patch_size


def backbone_flops(model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224,
                   num_classes: int = 200) -> int:
    """The release's analytic FLOPs of the ViT forward pass (see the module docstring)."""
    s = vit_spec(model)
    n, d = num_tokens(img_size, s.patch_size), s.embed_dim
    patch = 2 * (n - 1) * s.patch_size ** 2 * 3 * d
    block = 4 * n * d * d + 2 * n * n * d + 8 * n * d * d
    return patch + s.depth * block + d * num_classes


def _method_flops(method: str, s: ViTSpec, img_size: int) -> tuple[int, int]:
    n = num_tokens(img_size, s.patch_size, _stride(method, s.patch_size))
    h, depth, d = s.num_heads, s.depth, s.embed_dim
    matmul = n * n * (2 * n - 1)
    if method == "psm":
        flops = h * (depth - 2) * matmul
    elif method == "rollout":
        flops = depth * (h * n * n + n * n + n + 1) + (depth - 1) * matmul
    elif method == "maws":
        flops = (depth - 1) * (5 * n * h + 2 * h + n)
    elif method == "sacm":
        flops = depth * (h - 1) * n * n + (n * n + 1) + 2 * (3 * depth) + depth * (n - 1)
    elif method == "gls":
        flops = (d + 2 * (d + 1) + 1) * (n - 1)
    else:
        raise ValueError(f"unknown method {method!r}; choose one of {DFSM_METHODS}")
    return flops, n


def dfsm_flops(method: str, model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224,
               num_classes: int = 200) -> dict:
    """Analytic cost of one DFSM (Table 1 / 7 / 8): ``mflops``, ``backbone_mflops``, ``percent`` (and details).

    ``method`` in {"psm", "rollout", "maws", "sacm", "gls"}; ``model`` a timm ViT name (the paper's:
    ``vit_base_patch16_224`` = Table 1, ``vit_base_patch14_224`` = Table 7, ``vit_tiny_patch16_224`` = Table 8;
    any ViT works, e.g. the cpu profile's ``vit_nano_patch8_64``). Values are rounded as the release rounds them
    (MFLOPs 4 decimals, backbone MFLOPs 2, percent 4); ``flops`` / ``backbone_flops`` are the exact integers.
    """
    if method not in DFSM_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {DFSM_METHODS}")
    s = vit_spec(model)
    flops, n = _method_flops(method, s, int(img_size))
    bb = backbone_flops(s, int(img_size), num_classes)
    mflops, bb_m = round(flops / 1e6, 4), round(bb / 1e6, 2)
    return dict(method=method, model=str(model) if not isinstance(model, ViTSpec) else repr(model),
                img_size=int(img_size), tokens=n, flops=flops, backbone_flops=bb, mflops=mflops,
                backbone_mflops=bb_m, percent=round(100 * mflops / bb_m, 4))


def dfsm_table(models: Iterable[str] = tuple(PAPER_MODELS), img_sizes: Iterable[int] = PAPER_IMG_SIZES,
               methods: Iterable[str] = DFSM_METHODS, num_classes: int = 200):
    """Long-format DataFrame of :func:`dfsm_flops` over models x image sizes x methods."""
    import pandas as pd

    rows = [dfsm_flops(m, model, s, num_classes) for model in models for s in img_sizes for m in methods]
    return pd.DataFrame(rows)


def format_mflops(mflops: float, latex: bool = False) -> str:
    """MFLOPs the way the paper prints them: two significant digits, ``8.2 × 10^3`` (or LaTeX)."""
    base, exp = f"{mflops:.1E}".split("E")
    return f"${base}\\times 10^{{{int(exp)}}}$" if latex else f"{base} × 10^{int(exp)}"


def format_percent(percent: float) -> str:
    """A percentage the way the paper prints it: 5 significant digits of the value rounded to 4 decimals."""
    p = round(float(percent), 4)
    if p == 0:
        return "0"
    if abs(p) >= 1e4:
        return str(int(round(p)))
    digits = min(4, 5 - int(math.floor(math.log10(abs(p)))) - 1)
    return str(round(p, digits))


def paper_table(model: str = "vit_base_patch16_224", img_sizes: Iterable[int] = PAPER_IMG_SIZES,
                methods: Sequence[str] = DFSM_METHODS, num_classes: int = 200):
    """A DataFrame laid out like Table 1: rows "FLOPs (IS=S)" / "% of Backbone", one column per method."""
    import pandas as pd

    rows, index = [], []
    for s in img_sizes:
        costs = [dfsm_flops(m, model, s, num_classes) for m in methods]
        rows += [[format_mflops(c["mflops"]) for c in costs], [format_percent(c["percent"]) for c in costs]]
        index += [f"FLOPs (IS={s})", "% of Backbone"]
    columns = [{"rollout": "Rollout"}.get(m, m.upper()) for m in methods]
    table = pd.DataFrame(rows, index=index, columns=columns)
    return table


def compare_with_paper(model: str = "vit_base_patch16_224"):
    """Ours vs the paper's printed values for one of the paper's models: one row per (size, method), with
    ``match`` True when both the MFLOPs and the percentage print identically."""
    import pandas as pd

    if model not in PAPER_TABLES:
        raise ValueError(f"the paper has cost tables for {sorted(PAPER_TABLES)}, not {model!r}")
    rows = []
    for size, methods in PAPER_TABLES[model].items():
        for method, (paper_f, paper_p) in methods.items():
            c = dfsm_flops(method, model, size)
            ours_f, ours_p = format_mflops(c["mflops"]), format_percent(c["percent"])
            rows.append(dict(img_size=size, method=method, mflops=ours_f, paper_mflops=paper_f, percent=ours_p,
                             paper_percent=paper_p, match=(ours_f, ours_p) == (paper_f, paper_p)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- measured on our code
def _random_attention(batch: int, heads: int, n: int, device: str | torch.device, generator=None) -> torch.Tensor:
    if torch.device(device).type == "meta":
        return torch.empty(batch, heads, n, n, device=device)
    return torch.rand(batch, heads, n, n, generator=generator, device=device).softmax(-1)


def _inputs(method: str, s: ViTSpec, img_size: int, device: str | torch.device, batch: int = 1, generator=None):
    """The arguments our implementation of ``method`` takes, at the token count the analytic formula assumes."""
    n = num_tokens(img_size, s.patch_size, _stride(method, s.patch_size))
    if method == "gls":
        shape = (batch, n, s.embed_dim)
        tokens = torch.empty(shape, device=device) if torch.device(device).type == "meta" else \
            torch.randn(shape, generator=generator, device=device)
        return (tokens,), n
    layers = {"attention": 1, "maws": 1, "psm": s.depth, "rollout": s.depth}[method]
    return ([_random_attention(batch, s.num_heads, n, device, generator) for _ in range(layers)],), n


def _implementation(method: str):
    from .attention import scores_from_attention
    from .gls import global_local_similarity

    if method == "gls":
        return global_local_similarity
    return lambda maps: scores_from_attention(method, maps, 1)


def measured_dfsm_flops(method: str, model: str | ViTSpec = "vit_base_patch16_224", img_size: int = 224) -> dict:
    """FLOPs that ``torch.utils.flop_counter`` counts when this project's implementation of ``method`` runs.

    Runs on the ``meta`` device (shapes only), with the token count of the analytic formula (overlapping patches
    for psm). ``method`` in {"psm", "rollout", "maws", "gls", "attention"}; "sacm" is not implemented here (it
    needs AF-Trans's learned excitation MLP) and returns None. Torch counts 2 FLOPs per multiply-add and nothing
    for elementwise work, so MAWS (and last-layer attention) count 0.
    """
    from ..metrics import measure_flops

    s = vit_spec(model)
    if method == "sacm":
        return dict(method=method, img_size=int(img_size), measured_flops=None, measured_mflops=None)
    if method not in ("psm", "rollout", "maws", "gls", "attention"):
        raise ValueError(f"unknown method {method!r}")
    args, n = _inputs(method, s, int(img_size), "meta")
    flops = measure_flops(_implementation(method), *args)
    return dict(method=method, img_size=int(img_size), tokens=n, measured_flops=flops, measured_mflops=flops / 1e6)


def measured_backbone_flops(model: str = "vit_base_patch16_224", img_size: int = 224, num_classes: int = 200,
                            unit: str = "flop") -> int:
    """``torch.utils.flop_counter`` count of the timm ViT's forward pass at ``img_size`` (on the meta device)."""
    import timm

    from .. import models as _models  # noqa: F401 - registers this project's names
    from ..metrics import measure_flops

    name = str(model).split(".", 1)[0]
    with torch.device("meta"):
        m = timm.create_model(name, img_size=int(img_size), num_classes=num_classes)
        x = torch.empty(1, 3, int(img_size), int(img_size))
    return measure_flops(m, x, unit=unit)


def time_dfsm(model: str | ViTSpec = "vit_base_patch16_224", img_sizes: Iterable[int] = PAPER_IMG_SIZES,
              methods: Iterable[str] = ("psm", "rollout", "maws", "gls"), repeats: int = 3, batch: int = 1,
              max_mflops: float = 2e4, max_memory_mb: float = 1024, device: str | torch.device = "cpu",
              seed: int = 0, num_threads: int | None = None, progress: bool = True):
    """Wall clock (median of ``repeats``, seconds) of this project's implementation of each mechanism.

    Random softmax attention maps / tokens of the analytic formula's sizes. Configurations whose analytic cost
    exceeds ``max_mflops`` or whose attention maps exceed ``max_memory_mb`` are skipped (``seconds`` NaN,
    ``skipped`` says why) - PSM at 1024 px on ViT B-16 is 9e7 MFLOPs, hours on a laptop CPU. ``num_threads``:
    torch CPU threads while timing (1 gives stable numbers on a shared machine; None keeps torch's setting).
    Returns a DataFrame: method, img_size, tokens, analytic mflops, seconds, skipped.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    s = vit_spec(model)
    device = torch.device(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    jobs = [(m, size) for size in img_sizes for m in methods]
    rows = []
    for method, size in tqdm(jobs, desc="timing DFSMs", disable=not progress, leave=False):
        analytic = dfsm_flops(method, s, size)["mflops"] if method in DFSM_METHODS else float("nan")
        n = num_tokens(size, s.patch_size, _stride(method, s.patch_size))
        layers = {"psm": s.depth, "rollout": s.depth}.get(method, 1) if method != "gls" else 0
        memory = layers * batch * s.num_heads * n * n * 4 / 2 ** 20
        row = dict(method=method, img_size=int(size), tokens=n, mflops=analytic, seconds=float("nan"), skipped="")
        if analytic > max_mflops:
            row["skipped"] = f"> {max_mflops:g} MFLOPs"
        elif memory > max_memory_mb:
            row["skipped"] = f"attention maps {memory:.0f} MB > {max_memory_mb:g} MB"
        else:
            args, _ = _inputs(method, s, int(size), device, batch, gen)
            fn = _implementation(method)
            from ..metrics.timing import torch_threads

            with torch.no_grad(), torch_threads(num_threads):
                fn(*args)  # warm-up
                times = []
                for _ in range(max(1, repeats)):
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    t0 = time.perf_counter()
                    fn(*args)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    times.append(time.perf_counter() - t0)
            row["seconds"] = statistics.median(times)
            del args
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(model: str = "vit_base_patch16_224", img_size: int = 224, measured: bool = True,
               methods: Sequence[str] = DFSM_METHODS, num_classes: int = 200):
    """Analytic cost (the paper's convention) beside the FLOPs torch counts on this project's implementations."""
    import pandas as pd

    rows = []
    for m in methods:
        a = dfsm_flops(m, model, img_size, num_classes)
        row = dict(method=m, model_family=METHOD_MODELS[m], tokens=a["tokens"], mflops=a["mflops"],
                   paper_style=format_mflops(a["mflops"]), percent_of_backbone=a["percent"])
        if measured:
            meas = measured_dfsm_flops(m, model, img_size)
            row["measured_mflops"] = meas["measured_mflops"]
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["backbone_mflops"] = dfsm_flops("gls", model, img_size, num_classes)["backbone_mflops"]
    if measured:
        table.attrs["measured_backbone_mflops"] = measured_backbone_flops(model, img_size, num_classes) / 1e6
    return table


# ---------------------------------------------------------------------------------------------------------- CLI
def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("flops", help="cost of the discriminative feature selection mechanisms (GLSim Tables 1/7/8)")
    p.add_argument("--model", default="vit_base_patch16_224",
                   help="timm ViT name (vit_base_patch16_224 = Table 1, vit_base_patch14_224 = Table 7, "
                        "vit_tiny_patch16_224 = Table 8, vit_nano_patch8_64 = the cpu profile)")
    p.add_argument("--img-size", type=int, nargs="+", default=[224], help="image size(s), e.g. 224 448 768 1024")
    p.add_argument("--methods", nargs="+", default=list(DFSM_METHODS), choices=list(DFSM_METHODS))
    p.add_argument("--paper", action="store_true", help="print the table laid out as in the paper")
    p.add_argument("--no-measured", action="store_true", help="skip the torch.utils.flop_counter column")
    p.add_argument("--time", action="store_true", help="also time this project's implementations on the CPU")
    p.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    import pandas as pd

    try:
        vit_spec(args.model)
    except ValueError as exc:
        from ..cli import CliError

        raise CliError(str(exc)) from None
    for size in args.img_size:
        if size < 16 or size > 4096:
            raise ValueError(f"--img-size must be between 16 and 4096, got {size}")
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        if args.paper:
            print(f"{args.model}: MFLOPs of each DFSM and % of the backbone's FLOPs (release's counting)")
            print(paper_table(args.model, args.img_size, args.methods).to_string())
            return 0
        for size in args.img_size:
            table = cost_table(args.model, size, measured=not args.no_measured, methods=args.methods)
            line = f"{args.model} @ {size}px: backbone {table.attrs['backbone_mflops']:.2f} MFLOPs (analytic)"
            if not args.no_measured:
                line += f", {table.attrs['measured_backbone_mflops']:.2f} MFLOPs (torch.utils.flop_counter)"
            print(line)
            print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
            if args.time:
                timed = time_dfsm(args.model, [size], [m for m in args.methods if m != "sacm"], progress=False)
                print(timed[["method", "tokens", "seconds", "skipped"]].to_string(index=False))
            print()
    return 0
