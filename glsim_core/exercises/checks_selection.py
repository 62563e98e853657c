"""Checks for the GLSim exercises (notebooks 03 and 05): GLS scores, the enclosing box, the box-rule ablation,
attention rollout, and the FLOPs of a discriminative feature selection mechanism (Table 1).

The expected values are computed here, independently of the core: GLS by a loop over the tokens (dot product over
the two norms, Eq. 1–2), the boxes by scanning the tokens in score order, rollout by its definition, the FLOPs by
the counting rules the notebook states. While the student's code runs, the core's references
(:func:`glsim_core.selection.global_local_similarity`, :func:`~glsim_core.selection.select_boxes`,
:func:`~glsim_core.selection.top_o_indices`, :func:`~glsim_core.selection.attention_rollout`,
:func:`~glsim_core.selection.dfsm_flops`, ...) are unavailable, so a submission that delegates to them fails with a
hint that says so.
"""

from __future__ import annotations

import math

import torch

from ..analysis.cost import ViTSpec, format_mflops
from .checks_pooling import _grader_references
from .grading import Case, CheckResult, Mismatch, call, compare, compare_exact, core_functions, run_check

__all__ = ["check_gls", "check_enclosing_box", "check_box_rule_ablation", "check_attention_rollout",
           "check_dfsm_flops", "gls_reference", "enclosing_box_reference", "selected_inside_reference",
           "rollout_reference", "flops_reference"]

_F64 = torch.float64
_SELECTION = ("glsim_core.selection.gls", "glsim_core.selection.attention", "glsim_core.analysis.cost",
              "glsim_core.analysis.probes")


def _blocked(*extra: str, skip: tuple[str, ...] = ()) -> dict:
    """The core's selection code (and the graders' references): what the student must not delegate to."""

    return {**core_functions(*_SELECTION, *extra, skip=skip), **_grader_references()}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------------ GLS
def _layer_norm_loop(t: list[float], weight: list[float], bias: list[float], eps: float) -> list[float]:
    mu = sum(t) / len(t)
    var = sum((v - mu) ** 2 for v in t) / len(t)  # the biased variance, as LayerNorm
    return [(v - mu) / math.sqrt(var + eps) * w + b for v, w, b in zip(t, weight, bias)]


def gls_reference(block_outputs, norm_weight=None, norm_bias=None, num_prefix_tokens: int = 1, eps: float = 1e-6,
                  *, norm: bool = True, affine: bool = True, cosine: bool = True) -> torch.Tensor:
    """GLS at every layer by explicit loops (the reference of :func:`check_gls`): each token of each (B, T, D)
    block output through the final LayerNorm (``norm_weight``, ``norm_bias``, ``eps``), then
    cos(f⁰, fⁱ) = f⁰·fⁱ / (‖f⁰‖ ‖fⁱ‖) between the CLS token and every patch token (GLSim Eq. 1–2) -> (L, B, N).
    ``norm=False``, ``affine=False`` and ``cosine=False`` give known mistakes. A single (B, T, D) tensor without
    norm parameters gives the cosine of those tokens, (B, N)."""
    if isinstance(block_outputs, torch.Tensor):
        return gls_reference([block_outputs], None, None, num_prefix_tokens, norm=False)[0]
    d = block_outputs[0].shape[-1]
    weight = [float(v) for v in norm_weight] if affine and norm_weight is not None else [1.0] * d
    bias = [float(v) for v in norm_bias] if affine and norm_bias is not None else [0.0] * d
    out = torch.empty(len(block_outputs), block_outputs[0].shape[0], block_outputs[0].shape[1] - num_prefix_tokens,
                      dtype=_F64)
    for layer, tokens in enumerate(block_outputs):
        for b in range(tokens.shape[0]):
            rows = [[float(v) for v in tok] for tok in tokens[b]]
            if norm:
                rows = [_layer_norm_loop(r, weight, bias, eps) for r in rows]
            g = rows[0]
            g_norm = math.sqrt(sum(v * v for v in g))
            for i in range(num_prefix_tokens, len(rows)):
                f = rows[i]
                dot = sum(x * y for x, y in zip(g, f))
                out[layer, b, i - num_prefix_tokens] = (dot / (g_norm * math.sqrt(sum(v * v for v in f))) if cosine
                                                        else dot)
    return out


def check_gls(gls_scores, *, quiet: bool = False) -> CheckResult:
    """Exercise ``gls``: ``gls_scores(block_outputs, norm_weight, norm_bias, num_prefix_tokens, eps)`` returns the
    (L, B, N) GLS map of every layer: each of the L block outputs (B, T, D) — the residual stream, before the ViT's
    final norm — is passed through that final LayerNorm (``norm_weight``, ``norm_bias``, ``eps``: on the last block
    this gives the tokens Eq. 1–2 scores), then the cosine between the CLS token and each patch token; the patch
    tokens follow the ``num_prefix_tokens`` prefix tokens (CLS, then any register tokens)."""

    def run_case(seed: int, layers: int = 1, b: int = 1, n: int = 16, d: int = 8, prefix: int = 1,
                 offset: float = 0.0, rescale: bool = False, affine: bool = True):
        def run(fn):
            g = _gen(seed)
            outs = []
            for _ in range(layers):
                t = torch.randn(b, prefix + n, d, generator=g, dtype=_F64)
                if offset:  # a large value shared by the channels of each token: the norm's mean removes it
                    t = t + offset * torch.randn(b, prefix + n, 1, generator=g, dtype=_F64)
                if rescale:
                    t = t * (torch.rand(b, prefix + n, 1, generator=g, dtype=_F64) * 100 + 0.01)
                outs.append(t)
            weight = (torch.rand(d, generator=g, dtype=_F64) * 1.5 + 0.25 if affine
                      else torch.ones(d, dtype=_F64))
            bias = torch.randn(d, generator=g, dtype=_F64) * 0.5 if affine else torch.zeros(d, dtype=_F64)
            expected = gls_reference(outs, weight, bias, prefix)
            got = call(fn, [o.clone() for o in outs], weight.clone(), bias.clone(), prefix, 1e-6)
            if isinstance(got, torch.Tensor) and got.ndim >= 2 and got.shape[-1] == n + prefix - 1 and prefix > 1:
                raise Mismatch(f"scores: tensor of shape {tuple(expected.shape)}",
                               f"scores: tensor of shape {tuple(got.shape)}",
                               "The patch tokens start after all num_prefix_tokens prefix tokens (the CLS token "
                               "first, then the register tokens): registers are not patches.")
            mistakes = {
                "the GLS of the block outputs without the final norm": (
                    gls_reference(outs, weight, bias, prefix, norm=False),
                    "Eq. 1–2 scores the encoder's output, which has been through the final LayerNorm: pass every "
                    "block output through it before comparing (the norm's mean subtraction changes the angles)."),
                "the plain dot product": (
                    gls_reference(outs, weight, bias, prefix, cosine=False),
                    "A dot product depends on the lengths of the vectors; Eq. 1–2 divides them out.")}
            if affine:
                mistakes["the final norm without its weight and bias"] = (
                    gls_reference(outs, weight, bias, prefix, affine=False),
                    "The final LayerNorm has learnt parameters: apply its weight and bias too.")
            compare(got, expected, what="scores", rtol=1e-5, atol=1e-7, mistakes=mistakes,
                    allow_shapes=[(b, n)] if layers == 1 else [],
                    hint="Each layer: the final LayerNorm (weight, bias, eps) on every token, then the cosine "
                         "between the CLS token and each patch token; stack the layers first: (L, B, N).")
        return run

    cases = [
        Case("one layer, one image: CLS + 16 patch tokens, D = 8, a plain norm", run_case(41, affine=False)),
        Case("3 layers, a batch of 2, the norm's weight and bias", run_case(42, layers=3, b=2)),
        Case("tokens with large per-token offsets (what the norm's mean removes)", run_case(43, layers=2, b=2,
                                                                                            offset=20.0)),
        Case("tokens of very different lengths (scores must not change)", run_case(44, layers=2, b=2, rescale=True)),
        Case("4 register tokens after the CLS token (num_prefix_tokens = 5)", run_case(45, layers=2, b=2, prefix=5)),
    ]
    blocked = _blocked()
    blocked.update(core_functions("glsim_core.pooling.framework", only=("similarity_cosine", "similarity_dot")))
    return run_check("gls", "global-local similarity at every layer, GLSim Eq. 1–2", gls_scores, cases,
                     blocked=blocked, quiet=quiet)


# ------------------------------------------------------------------------------------------------------ boxes
def _scores_selecting(cells: list[tuple[int, int]], grid: tuple[int, int]) -> torch.Tensor:
    s = torch.zeros(1, grid[0] * grid[1], dtype=_F64)
    for rank, (r, c) in enumerate(cells):
        s[0, r * grid[1] + c] = 10.0 - rank
    return s


def _boxes_text(b) -> str:
    t = torch.as_tensor(b)
    if t.ndim == 2 and t.shape[1] == 4:
        rows = t.tolist()
        shown = ", ".join(str([int(v) if float(v).is_integer() else round(float(v), 3) for v in r]) for r in rows[:2])
        more = f" (+{len(rows) - 2} more)" if len(rows) > 2 else ""
        return f"{len(rows)} box{'es' if len(rows) != 1 else ''} (x0, y0, x1, y1): {shown}{more}"
    return f"a tensor of shape {tuple(t.shape)}"


def _top_tokens(scores: torch.Tensor, top_o: int) -> list[list[int]]:
    """The indices of the top-O scores of each row, by scanning the tokens in score order (ties: lower index)."""
    return [sorted(range(len(row)), key=lambda i: (-float(row[i]), i))[:top_o] for row in scores]


def enclosing_box_reference(scores: torch.Tensor, grid_size: tuple[int, int], patch_size: int, top_o: int,
                            box_rule: str = "paper", *, transposed: bool = False) -> torch.Tensor:
    """(B, 4) int64 half-open pixel boxes around the top-O tokens (the reference of :func:`check_enclosing_box`):
    ``box_rule="paper"`` encloses every selected patch (GLSim §3.2); ``"reference"`` is the authors' release, which
    ends the box at ``max(max_row, min_row + 1)`` patches (columns alike). ``transposed`` reads the grid with its
    sides swapped (a known mistake)."""
    rows, cols = grid_size
    step = rows if transposed else cols
    boxes = []
    for top in _top_tokens(scores, top_o):
        r = [i // step for i in top]
        c = [i % step for i in top]
        if box_rule == "paper":
            r1, c1 = max(r) + 1, max(c) + 1
        else:
            r1, c1 = max(max(r), min(r) + 1), max(max(c), min(c) + 1)
        boxes.append([min(c) * patch_size, min(r) * patch_size, c1 * patch_size, r1 * patch_size])
    return torch.tensor(boxes, dtype=torch.int64)


def check_enclosing_box(enclosing_box, *, quiet: bool = False) -> CheckResult:
    """Exercise ``enclosing_box``: ``enclosing_box(scores, grid_size, patch_size, top_o)`` returns (B, 4) integer
    pixel boxes ``(x0, y0, x1, y1)``, half-open, enclosing the top-O tokens of ``scores`` (B, N) on a
    ``grid_size = (rows, cols)`` grid of ``patch_size``-pixel patches (GLSim §3.2, Figure 1); ties between equal
    scores go to the lower token index."""

    def run_case(make_scores, grid: tuple[int, int], patch: int, top_o: int, hint: str = ""):
        def run(fn):
            scores = make_scores()
            expected = enclosing_box_reference(scores, grid, patch, top_o, "paper")
            got = call(fn, scores.clone(), grid, patch, top_o)
            mistakes = {
                "the release's box rule": (enclosing_box_reference(scores, grid, patch, top_o, "reference"),
                                           "The release drops the last selected row and column; the paper's "
                                           "rectangle *encloses* every selected token (notebook 03 §4 and §7)."),
                "boxes written (y0, x0, y1, x1)": (expected[:, [1, 0, 3, 2]],
                                                   "x runs along the columns and y along the rows: the order is "
                                                   "(x0, y0, x1, y1)."),
            }
            if grid[0] != grid[1]:
                mistakes["a grid read with its sides swapped"] = (
                    enclosing_box_reference(scores, grid, patch, top_o, transposed=True),
                    "timm flattens the grid row by row: how many tokens does one row hold?")
            compare_exact(got, expected, what="boxes", show=_boxes_text, mistakes=mistakes,
                          hint=hint or "Find the rows and columns of the top-O tokens, then the smallest "
                                       "half-open pixel rectangle that contains all their patches.")
        return run

    def rand(seed: int, b: int, n: int):
        return lambda: torch.rand(b, n, generator=_gen(seed), dtype=_F64)

    cases = [
        Case("one selected token (O = 1), 14 × 14 grid, P = 16", run_case(rand(51, 2, 196), (14, 14), 16, 1)),
        Case("tokens (3, 4) and (5, 6) of a 14 × 14 grid, O = 2",
             run_case(lambda: _scores_selecting([(3, 4), (5, 6)], (14, 14)), (14, 14), 16, 2)),
        Case("tokens (13, 13), (13, 12), (12, 13): the image's corner, O = 3",
             run_case(lambda: _scores_selecting([(13, 13), (13, 12), (12, 13)], (14, 14)), (14, 14), 16, 3,
                      hint="The box may reach the image's edge: 14 patches of 16 px end at pixel 224.")),
        Case("a 4 × 6 grid (rows ≠ cols), P = 8, O = 3",
             run_case(lambda: _scores_selecting([(1, 5), (3, 2), (2, 4)], (4, 6)), (4, 6), 8, 3)),
        Case("ties: equal scores go to the lower token index",
             run_case(lambda: torch.zeros(1, 64, dtype=_F64), (8, 8), 8, 3,
                      hint="With equal scores, sort stably (torch.sort(..., stable=True)) so that the lower token "
                           "index wins, as on every device.")),
        Case("a batch of 5 random maps, O = 8", run_case(rand(52, 5, 196), (14, 14), 16, 8)),
    ]
    return run_check("enclosing_box", "the rectangle around the top-O tokens", enclosing_box, cases,
                     blocked=_blocked("glsim_core.analysis.localisation"), quiet=quiet)


# ------------------------------------------------------------------------------------------------------ ablation
def selected_inside_reference(scores: torch.Tensor, grid_size: tuple[int, int], patch_size: int, top_o: int,
                              box_rule: str) -> torch.Tensor:
    """Fraction (B,) of the top-O tokens whose whole patch lies inside the box ``box_rule`` ("paper" or
    "reference") draws around them, token by token (the reference of :func:`check_box_rule_ablation`)."""
    cols, p = grid_size[1], patch_size
    boxes = enclosing_box_reference(scores, grid_size, patch_size, top_o, box_rule).tolist()
    out = []
    for (x0, y0, x1, y1), top in zip(boxes, _top_tokens(scores, top_o)):
        inside = [x0 <= (i % cols) * p and (i % cols + 1) * p <= x1 and y0 <= (i // cols) * p
                  and (i // cols + 1) * p <= y1 for i in top]
        out.append(sum(inside) / len(inside))
    return torch.tensor(out, dtype=_F64)


def check_box_rule_ablation(selected_inside, *, quiet: bool = False) -> CheckResult:
    """Exercise ``box_rule_ablation``: ``selected_inside(scores, grid_size, patch_size, top_o, box_rule)`` returns
    the fraction (B,) of the top-O tokens whose patch lies entirely inside the box drawn with ``box_rule``:
    "paper" (the student's ``enclosing_box``) or "reference" (the release's rule, which the student writes)."""

    def block(r0: int, c0: int, h: int, w: int, grid=(14, 14)):
        return lambda: _scores_selecting([(r0 + i, c0 + j) for i in range(h) for j in range(w)], grid)

    def run_case(make_scores, grid, patch: int, top_o: int, rule: str):
        def run(fn):
            scores = make_scores()
            expected = selected_inside_reference(scores, grid, patch, top_o, rule)
            got = call(fn, scores.clone(), grid, patch, top_o, rule)
            compare(got, expected, what="fraction inside", rtol=1e-6, atol=1e-9,
                    allow_shapes=[(scores.shape[0], 1)] + ([()] if scores.shape[0] == 1 else []),
                    hint="Draw the box with the rule asked for (your enclosing_box for the paper's, your "
                         "release_box for the release's) and count the selected tokens whose whole patch is inside "
                         "the half-open box.")
        return run

    def rand(seed: int, b: int, n: int):
        return lambda: torch.rand(b, n, generator=_gen(seed), dtype=_F64)

    cases = [
        Case("a compact 3 × 3 block, the paper's rule", run_case(block(4, 5, 3, 3), (14, 14), 16, 9, "paper")),
        Case("a compact 3 × 3 block, the release's rule", run_case(block(4, 5, 3, 3), (14, 14), 16, 9,
                                                                   "reference")),
        Case("the corner tokens (13, 13), (13, 12), (12, 13), the release's rule",
             run_case(lambda: _scores_selecting([(13, 13), (13, 12), (12, 13)], (14, 14)), (14, 14), 16, 3,
                      "reference")),
        Case("a 2 × 4 block on a 4 × 6 grid, the release's rule",
             run_case(block(1, 1, 2, 4, grid=(4, 6)), (4, 6), 8, 8, "reference")),
        Case("a batch of 6 random maps, O = 8, the release's rule", run_case(rand(61, 6, 196), (14, 14), 16, 8,
                                                                             "reference")),
    ]
    return run_check("box_rule_ablation", "predict, then measure: the paper's box vs the release's", selected_inside,
                     cases, blocked=_blocked("glsim_core.analysis.localisation"), quiet=quiet)


# ------------------------------------------------------------------------------------------------------ rollout
def _random_attention(g: torch.Generator, b: int, h: int, t: int, sharp: float = 2.0) -> torch.Tensor:
    return (torch.randn(b, h, t, t, generator=g, dtype=_F64) * sharp).softmax(-1)


def rollout_reference(maps: list[torch.Tensor], prefix: int, order: str = "right", per_head: bool = False,
                      residual: bool = True) -> torch.Tensor:
    """Attention rollout by its definition (the reference of :func:`check_attention_rollout`): head mean, identity
    added and rows re-normalised, later layers multiplied on the left, the CLS row at the patch tokens. The flags
    give known mistakes: ``order="left"``, ``per_head=True`` (heads averaged at the end), ``residual=False``."""
    joint = None
    for a in maps:
        if not per_head:
            a = a.mean(1)
        if residual:
            a = a + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else (joint @ a if order == "left" else a @ joint)
    if per_head:
        joint = joint.mean(1)
    return joint[..., 0, prefix:]


def check_attention_rollout(rollout, *, quiet: bool = False) -> CheckResult:
    """Exercise ``attention_rollout``: ``rollout(attentions, num_prefix_tokens)`` returns the (B, N) attention
    rollout (Abnar & Zuidema 2020) of a list of per-layer attention maps (B, heads, T, T), first layer first: the
    CLS row of the product of the layers' head-averaged maps with the identity added for the residual connection
    (rows re-normalised), restricted to the N patch tokens."""

    def run_case(seed: int, layers: int, heads: int, b: int = 1, n: int = 9, prefix: int = 1,
                 identity: bool = False):
        def run(fn):
            g = _gen(seed)
            t = prefix + n
            if identity:
                maps = [torch.eye(t, dtype=_F64).expand(b, heads, t, t).clone() for _ in range(layers)]
            else:
                maps = [_random_attention(g, b, heads, t) for _ in range(layers)]
            expected = rollout_reference(maps, prefix)
            got = call(fn, [m.clone() for m in maps], prefix)
            mistakes = {"the rollout without the residual identity": (
                rollout_reference(maps, prefix, residual=False),
                "The residual connection carries each token to the next layer too: the rollout accounts for it "
                "before multiplying (see the rollout line in notebook 05 §1).")}
            if layers > 1:
                mistakes["the product in the opposite order"] = (
                    rollout_reference(maps, prefix, order="left"),
                    "Matrix products do not commute: a later layer mixes what the earlier layers produced.")
                if heads > 1:
                    mistakes["per-head rollouts averaged at the end"] = (
                        rollout_reference(maps, prefix, per_head=True),
                        "Average each layer's heads first, then multiply the layers.")
            compare(got, expected, what="rollout scores", rtol=1e-6, atol=1e-10, mistakes=mistakes,
                    hint="Re-read what rollout does to each layer's map before multiplying (notebook 05 §1, the "
                         "'Rollout' row) and which row and columns of the product it keeps.")
        return run

    cases = [
        Case("one layer, one head, CLS + 9 patches", run_case(71, 1, 1)),
        Case("identity attention in every layer: nothing flows to the patches", run_case(72, 3, 2,
                                                                                          identity=True)),
        Case("2 layers, 2 heads", run_case(73, 2, 2)),
        Case("6 layers, 4 heads, a batch of 2", run_case(74, 6, 4, b=2)),
        Case("4 layers, 3 heads, CLS + 1 register token (num_prefix_tokens = 2)", run_case(75, 4, 3, b=2,
                                                                                            prefix=2)),
    ]
    return run_check("attention_rollout", "attention rollout (Abnar & Zuidema), as GLSim Table 1 counts it", rollout,
                     cases, blocked=_blocked(), quiet=quiet)


# ------------------------------------------------------------------------------------------------------ FLOPs
_MODELS = {"ViT B-16": ViTSpec(768, 12, 12, 16), "ViT B-14": ViTSpec(768, 12, 12, 14),
           "ViT T-16": ViTSpec(192, 12, 3, 16), "vit_nano_patch8_64": ViTSpec(128, 4, 4, 8)}


def _tokens(img: int, patch: int, stride: int) -> int:
    return int((img - patch) / stride + 1) ** 2 + 1


def flops_reference(method: str, s: ViTSpec, img: int) -> int:
    """The FLOPs of one DFSM by the counting rules of exercise 9 (the reference of :func:`check_dfsm_flops`):
    Table 1's four, and ``"rollout_per_head"``, rollout with the head mean taken after the products (each head
    rolled out on its own), which no table prints."""
    d, depth, h, p = s.embed_dim, s.depth, s.num_heads, s.patch_size
    n = _tokens(img, p, p - 4 if method == "psm" else p)
    product = n * n * (2 * n - 1)  # an N × N matrix product: N multiplications and N − 1 additions per entry
    if method == "psm":  # per head, chaining the L − 1 maps before the part-selection layer: L − 2 products
        return h * (depth - 2) * product
    if method == "rollout":  # per layer: head mean, identity, row normalisation; then L − 1 products
        return depth * (h * n * n + n * n + n + 1) + (depth - 1) * product
    if method == "rollout_per_head":  # per layer and head: identity, row normalisation; per head L − 1 products;
        return depth * h * (n * n + n + 1) + h * (depth - 1) * product + h * n * n  # one head mean at the end
    if method == "maws":  # L − 1 layers: a softmax of the CLS column per head, two head means, one product
        return (depth - 1) * (5 * n * h + 2 * h + n)
    if method == "gls":  # per patch token: a D-term dot product, two norms (D + 1 each), one division
        return (d + 2 * (d + 1) + 1) * (n - 1)
    raise ValueError(f"unknown method {method!r}")


def _flops_variants(method: str, s: ViTSpec, img: int) -> dict[str, tuple[int, str]]:
    """Known mistakes (label -> (count, hint))."""
    d, depth, h, p = s.embed_dim, s.depth, s.num_heads, s.patch_size
    n = _tokens(img, p, p)
    out: dict[str, tuple[int, str]] = {}
    if method == "psm":
        out["the count without overlapping patches"] = (
            h * (depth - 2) * n * n * (2 * n - 1),
            "TransFG splits the image into overlapping patches (notebook 05 §1): how many tokens does that give?")
        no = _tokens(img, p, p - 4)
        out["2N³ FLOPs per matrix product"] = (
            h * (depth - 2) * 2 * no ** 3,
            "Count one entry of an N × N product: how many multiplications, how many additions?")
    if method == "rollout":
        out["2N³ FLOPs per matrix product"] = (
            depth * (h * n * n + n * n + n + 1) + (depth - 1) * 2 * n ** 3,
            "Count one entry of an N × N product: how many multiplications, how many additions?")
    if method == "rollout_per_head":
        product = n * n * (2 * n - 1)
        out["Table 1's rollout (head mean before the products)"] = (
            depth * (h * n * n + n * n + n + 1) + (depth - 1) * product,
            "That is Table 1's rollout. Here the heads stay apart until the end: which steps now run once per "
            "head, and how many head means are left?")
        out["a head mean in every layer as well"] = (
            depth * h * (n * n + n + 1) + h * (depth - 1) * product + depth * h * n * n,
            "The heads are averaged once, after the products, not in every layer.")
        out["without the final head mean"] = (
            depth * h * (n * n + n + 1) + h * (depth - 1) * product,
            "The H rolled-out maps still have to be averaged into one map at the end (count it like rollout's "
            "head mean).")
    if method == "gls":
        out["one cosine per token, CLS included"] = (
            (3 * d + 3) * n, "GLS scores the patch tokens only: N counts the CLS token too.")
    return out


def check_dfsm_flops(dfsm_flops_fn, *, quiet: bool = False) -> CheckResult:
    """Exercise ``dfsm_flops``: ``count_flops(method, embed_dim, depth, num_heads, patch_size, img_size)`` returns
    the FLOPs (an int) of a discriminative feature selection mechanism, method in {"psm", "rollout", "maws",
    "gls"}, counted with the conventions that reproduce GLSim Tables 1, 7 and 8, and in "rollout_per_head"
    (rollout with the head mean after the products, a count no table prints) with the same conventions."""

    def show(v) -> str:
        try:
            v = int(v)
        except (TypeError, ValueError):
            return repr(v)
        return f"{v:,} FLOPs ({format_mflops(v / 1e6)} MFLOPs as the paper prints it)"

    def run_case(method: str, model: str, img: int):
        def run(fn):
            s = _MODELS[model]
            expected = flops_reference(method, s, img)
            got = call(fn, method, s.embed_dim, s.depth, s.num_heads, s.patch_size, img)
            mistakes = {label: (v, hint) for label, (v, hint) in _flops_variants(method, s, img).items()}
            if isinstance(got, (int, float)) and not isinstance(got, bool) and got > 0 and got != expected:
                ratio = f" Your count is off by {got - expected:+,.0f} FLOPs ({got / expected:.6g} × the expected)."
            else:
                ratio = ""
            if method == "rollout_per_head":
                hint = ("No table prints this count: build it from exercise 9's rules (tokens with the CLS token): "
                        "which steps run once per head and layer, how many N × N products, how many head means?")
            else:
                hint = ("Count as notebook 05 §1 explains (tokens with the CLS token, the release's conventions); "
                        "the paper's tables print two significant digits of this count.")
            compare_exact(got, expected, what="FLOPs", show=show, mistakes=mistakes, hint=hint + ratio)
        return run

    cases = [
        Case("GLS, ViT B-16 at 224 px (Table 1)", run_case("gls", "ViT B-16", 224)),
        Case("MAWS, ViT B-16 at 224 px (Table 1)", run_case("maws", "ViT B-16", 224)),
        Case("Rollout, ViT B-16 at 224 px (Table 1)", run_case("rollout", "ViT B-16", 224)),
        Case("PSM, ViT B-16 at 224 px (Table 1)", run_case("psm", "ViT B-16", 224)),
        Case("Rollout, ViT T-16 at 448 px (Table 8)", run_case("rollout", "ViT T-16", 448)),
        Case("PSM, ViT B-14 at 768 px (Table 7)", run_case("psm", "ViT B-14", 768)),
        Case("GLS, ViT B-14 at 1024 px (Table 7)", run_case("gls", "ViT B-14", 1024)),
        Case("MAWS, the cpu profile's vit_nano_patch8_64 at 64 px", run_case("maws", "vit_nano_patch8_64", 64)),
        Case("Rollout per head (head mean after the products), ViT B-16 at 224 px",
             run_case("rollout_per_head", "ViT B-16", 224)),
        Case("Rollout per head, ViT T-16 at 448 px", run_case("rollout_per_head", "ViT T-16", 448)),
    ]
    return run_check("dfsm_flops", "the FLOPs of a DFSM, GLSim Table 1", dfsm_flops_fn, cases,
                     blocked=_blocked(skip=("ViTSpec.__init__", "format_mflops")),
                     quiet=quiet)
