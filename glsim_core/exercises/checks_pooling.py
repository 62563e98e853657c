"""Checks for the SimPool exercises (notebooks 01 and 02): f_α, three poolings given as formulas and written as
configurations of the framework, SimPool's forward pass, and γ against the sharpness of the pooling.

The expected values are computed here, independently of the core: f_α by an explicit loop over the pooled entries
(Eq. 5 and 8), the p-norm and the norm-weighted average by their closed forms, mean shift by a loop over its steps,
SimPool by Eq. 12–17 written out (LayerNorm included), the shares by their closed form. While the student's code
runs, the core's pooling code (the references :class:`glsim_core.pooling.FAlpha`, :func:`~glsim_core.pooling.pool`,
:class:`~glsim_core.pooling.SimPool`, ...) is unavailable, so a submission that delegates to it fails with a hint
that says so.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..pooling import PoolingProcess, PoolingResult
from .grading import Case, CheckResult, Mismatch, call, compare, core_functions, get_part, run_check

__all__ = ["check_f_alpha", "check_pooling_configs", "check_simpool_forward", "check_gamma_sharpness",
           "power_mean_reference", "mean_shift_reference", "simpool_params", "simpool_reference", "reference_shares"]

_F64 = torch.float64
_POOLING = ("glsim_core.pooling.framework", "glsim_core.pooling.methods", "glsim_core.pooling.simpool",
            "glsim_core.pooling.simpool_variants")


def _blocked_pooling() -> dict:
    """Every function of the core's pooling code: what f_α, SimPool and the shares must not delegate to."""
    return {**core_functions(*_POOLING), **_grader_references()}


def _grader_references() -> dict:
    return core_functions("glsim_core.exercises.checks_pooling", "glsim_core.exercises.checks_selection",
                          "glsim_core.exercises.checks_localization",
                          only=("power_mean_reference", "mean_shift_reference", "simpool_reference",
                                "reference_shares", "selected_inside_reference", "gls_reference",
                                "enclosing_box_reference", "rollout_reference", "flops_reference",
                                "estimated_boxes_reference", "maxboxacc_reference"))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------------ f_alpha
def _power_mean_inputs(seed: int, b: int = 2, p: int = 6, n: int = 5, k: int = 1, weights: str = "uniform"):
    g = _gen(seed)
    v = torch.rand(b, p, n, generator=g, dtype=_F64) * 3 + 0.1
    if weights == "uniform":
        a = torch.full((b, p, k), 1.0 / p, dtype=_F64)
    elif weights == "softmax":
        a = torch.randn(b, p, k, generator=g, dtype=_F64).softmax(dim=1)
    else:  # some zero weights: a 0/1 mask normalised per column
        mask = (torch.rand(b, p, k, generator=g) > 0.5).to(_F64)
        mask[:, 0] = 1.0
        a = mask / mask.sum(1, keepdim=True)
    return v, a


def power_mean_reference(v: torch.Tensor, a: torch.Tensor, alpha: float) -> torch.Tensor:
    """Z = f_α⁻¹(Aᵀ f_α(V)) (Eq. 5 with Eq. 8) by an explicit loop over (b, k, n): (B, p, n), (B, p, k) ->
    (B, k, n). α = 1 is the weighted geometric mean, α = −∞ / +∞ the max / min over the locations of positive
    weight (the reference of :func:`check_f_alpha`)."""
    b_, p_, n_ = v.shape
    k_ = a.shape[2]
    out = torch.empty(b_, k_, n_, dtype=_F64)
    for b in range(b_):
        for k in range(k_):
            for n in range(n_):
                pairs = [(float(a[b, j, k]), float(v[b, j, n])) for j in range(p_)]
                if alpha == -math.inf:
                    z = max(x for w, x in pairs if w > 0)
                elif alpha == math.inf:
                    z = min(x for w, x in pairs if w > 0)
                elif alpha == 1:
                    z = math.exp(sum(w * math.log(x) for w, x in pairs))
                else:
                    g = (1 - alpha) / 2
                    z = sum(w * x ** g for w, x in pairs) ** (1 / g)
                out[b, k, n] = z
    return out


def check_f_alpha(weighted_power_mean, *, quiet: bool = False) -> CheckResult:
    """Exercise ``f_alpha``: ``weighted_power_mean(v, a, alpha)`` returns Z = f_α⁻¹(Aᵀ f_α(V)) (Eq. 5 with Eq. 8)
    for V (B, p, n) ≥ 0 and weights A (B, p, k) → (B, k, n), including the limits α = ±∞."""

    def case(alpha: float, seed: int, hint: str, **kw):
        def run(fn):
            v, a = _power_mean_inputs(seed, **kw)
            expected = power_mean_reference(v, a, alpha)
            got = call(fn, v.clone(), a.clone(), alpha)
            mistakes = {}
            if math.isfinite(alpha) and alpha not in (1.0, -1.0):
                mistakes["f_α with the sign of α flipped"] = (
                    power_mean_reference(v, a, -alpha),
                    "Re-read the exponent of Eq. 8: which sign does α enter it with?")
            if math.isfinite(alpha):
                mistakes["the unweighted mean"] = (
                    power_mean_reference(v, torch.full_like(a, 1.0 / a.shape[1]), alpha),
                    "The weights A must enter the mean: each column of A weighs the p locations.")
            compare(got, expected, what="Z", rtol=1e-6, atol=1e-9, hint=hint, mistakes=mistakes)
        return run

    cases = [
        Case("α = −1: the arithmetic mean (uniform weights)",
             case(-1.0, 1, "At α = −1 Eq. 5 must give the plain (weighted) average of V.")),
        Case("α = −3: the quadratic mean (RMS)",
             case(-3.0, 2, "Eq. 8 gives the exponent γ as a function of α; Eq. 5 applies f, averages, inverts f.")),
        Case("α = 3: the harmonic mean", case(3.0, 3, "A negative exponent is fine for V > 0: check f_α⁻¹.")),
        Case("α = 1: the geometric mean",
             case(1.0, 4, "Eq. 8 treats α = 1 separately. Why can the general case not be used there, and what is "
                          "the inverse of the function used instead?")),
        Case("α = 0.5, softmax weights, k = 2 queries",
             case(0.5, 5, "Each of the k columns of A weighs the p locations: Z is (B, k, n).", k=2,
                  weights="softmax")),
        Case("α = −∞: the maximum over the locations",
             case(-math.inf, 6, "No power can be computed at α = ±∞: treat the limit separately (notebook 01 §3).")),
        Case("α = +∞: the minimum over the locations",
             case(math.inf, 7, "No power can be computed at α = ±∞: treat the limit separately (notebook 01 §3).")),
        Case("α = −∞ with zero weights: only locations with positive weight count",
             case(-math.inf, 8, "A location with weight 0 takes no part in the mean, so it takes no part in its "
                                "limit either: the maximum runs over the locations with a > 0, per query.",
                  k=2, weights="mask")),
    ]
    return run_check("f_alpha", "Eq. 8: the pooling function f_α", weighted_power_mean, cases,
                     blocked=_blocked_pooling(), quiet=quiet)


# ------------------------------------------------------------------------------------------------ pooling configs
def _pooled(process: Any, x: torch.Tensor, name: str) -> torch.Tensor:
    out = call(process, x)
    if isinstance(out, PoolingResult):
        return out.u
    if isinstance(out, tuple) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return out


def _build(ns: Any, maker: str, *args) -> PoolingProcess:
    fn = get_part(ns, maker)
    process = call(fn, *args)
    if not isinstance(process, PoolingProcess):
        raise Mismatch(f"`{maker}({', '.join(map(str, args))})` to return a PoolingProcess",
                       "None" if process is None else f"a {type(process).__name__}",
                       "Build it with glsim_core.pooling.PoolingProcess(...): the exercise is to choose the "
                       "framework's components (U⁰, s, h, f, ...), not to write the pooling by hand.")
    return process


def _tokens(seed: int, b: int = 2, p: int = 49, d: int = 8, positive: bool = True) -> torch.Tensor:
    g = _gen(seed)
    x = torch.randn(b, p, d, generator=g, dtype=_F64)
    return x.abs() + 0.05 if positive else x


def mean_shift_reference(x: torch.Tensor, sigma: float, steps: int) -> torch.Tensor:
    """Gaussian mean shift of one query started at the mean of the tokens, by its definition, an explicit loop over
    the images: u ← Σ_j k_j x_j / Σ_j k_j with k_j = exp(−‖x_j − u‖² / (2σ²)), ``steps`` times. (B, p, d) -> (B, d)
    (the reference of :func:`check_pooling_configs`)."""
    out = []
    for tokens in x:
        u = tokens.mean(0)
        for _ in range(steps):
            d2 = ((tokens - u) ** 2).sum(1)
            k = torch.exp(-(d2 - d2.min()) / (2 * sigma ** 2))  # a common factor cancels in the ratio
            u = (k[:, None] * tokens).sum(0) / k.sum()
        out.append(u)
    return torch.stack(out)


def check_pooling_configs(namespace, *, quiet: bool = False) -> CheckResult:
    """Exercise ``pooling_configs``: ``make_pnorm(p)``, ``make_norm_weighted()`` and ``make_mean_shift(sigma,
    steps)`` each return a :class:`~glsim_core.pooling.PoolingProcess`: the p-norm over the locations
    (Σ_j x_j^p)^{1/p} (a sum, with p given as an exponent), the average weighted by each location's squared norm
    Σ_j ‖x_j‖² x_j / Σ_j ‖x_j‖², and ``steps`` iterations of Gaussian mean shift of bandwidth σ started at GAP —
    three poolings given as formulas, none of them a row of Table 1 or built in notebook 01.

    Pass a dict (``dict(make_pnorm=make_pnorm, ...)`` or ``globals()``) or any object with those attributes."""
    shapes = lambda x: [(x.shape[0], 1, x.shape[2])]  # noqa: E731

    def pnorm_case(p: float, seed: int):
        def run(ns):
            x = _tokens(seed)
            got = _pooled(_build(ns, "make_pnorm", p), x, "make_pnorm")
            expected = x.pow(p).sum(1).pow(1 / p)  # (Σ_j x_j^p)^(1/p): a sum over the locations
            gamma = (1 - p) / 2  # the exponent if p were passed as α
            as_alpha = x.log().sum(1).exp() if gamma == 0 else x.pow(gamma).sum(1).pow(1 / gamma)
            compare(got, expected, what="pooled U", rtol=1e-8, allow_shapes=shapes(x),
                    hint="Two choices make this pooling: the weights A (which ones give a sum?) and f (which α "
                         "has the exponent p in Eq. 8?).",
                    mistakes={"GeM, the p-mean (weights 1_p/p)": (
                        x.pow(p).mean(1).pow(1 / p),
                        "Every value is off by the same factor, (number of locations)^(1/p): that is GeM, a mean. "
                        "This pooling sums: which weights A do that?"),
                              "f_α with α = p": (as_alpha, "You passed p as α. The exponent of Eq. 8 is (1 − α)/2: "
                                                           "solve it for α.")})
        return run

    def weighted_case(seed: int, positive: bool):
        def run(ns):
            x = _tokens(seed, positive=positive)
            got = _pooled(_build(ns, "make_norm_weighted"), x, "make_norm_weighted")
            w = x.pow(2).sum(-1, keepdim=True)  # (B, p, 1): ‖x_j‖²
            expected = (w * x).sum(1) / w.sum(1)
            compare(got, expected, what="pooled U", rtol=1e-8, allow_shapes=shapes(x),
                    hint="The weights come from each location alone, with no query: which initialisation gives "
                         "S = s(x_j, x_j), and which attention turns S into weights that sum to one?",
                    mistakes={"HOW's unnormalised weights": (
                        (w * x).sum(1), "The weights ‖x_j‖² are used as they are (HOW's A = diag(XᵀX)): they must "
                                        "be normalised to sum to one over the locations."),
                              "GAP": (x.mean(1), "Uniform weights give GAP: the weights must depend on ‖x_j‖².")})
        return run

    def shift_case(sigma: float, steps: int, seed: int):
        def run(ns):
            x = _tokens(seed, positive=False)
            got = _pooled(_build(ns, "make_mean_shift", sigma, steps), x, "make_mean_shift")
            expected = mean_shift_reference(x, sigma, steps)
            mistakes = {"the kernel exp(−‖x − u‖²/σ²)": (
                mean_shift_reference(x, sigma / math.sqrt(2), steps),
                "The Gaussian kernel divides the squared distance by 2σ², not σ²: check `scale`.")}
            if steps > 1:
                mistakes["a single step"] = (mean_shift_reference(x, sigma, 1),
                                             "Mean shift repeats the step: how many iterations does the process run?")
                mistakes[f"{steps + 1} steps"] = (mean_shift_reference(x, sigma, steps + 1),
                                                  "One step too many: U⁰ (the GAP) is not a step.")
            compare(got, expected, what="pooled U", rtol=1e-7, atol=1e-10, allow_shapes=shapes(x),
                    hint="A mean-shift step is an attention-weighted mean whose weights are a normalised Gaussian "
                         "kernel around the current query: which similarity, scale and attention give them, and "
                         "what feeds the new mean back as the next query?", mistakes=mistakes)
        return run

    cases = [
        Case("make_pnorm(2.0): the 2-norm over the locations, 2 × 49 positive tokens", pnorm_case(2.0, 12)),
        Case("make_pnorm(1.0): p = 1 is sum pooling", pnorm_case(1.0, 13)),
        Case("make_pnorm(5.0): p = 5 leans towards max pooling", pnorm_case(5.0, 14)),
        Case("make_norm_weighted(): weights ‖x_j‖², positive tokens", weighted_case(15, True)),
        Case("make_norm_weighted(): tokens with negative values", weighted_case(16, False)),
        Case("make_mean_shift(2.0, 1): one step", shift_case(2.0, 1, 17)),
        Case("make_mean_shift(1.0, 5): five steps", shift_case(1.0, 5, 18)),
        Case("make_mean_shift(0.5, 10): a narrow kernel, ten steps", shift_case(0.5, 10, 19)),
    ]
    blocked = {**core_functions("glsim_core.pooling.methods", "glsim_core.pooling.simpool",
                                "glsim_core.pooling.simpool_variants"), **_grader_references()}
    return run_check("pooling_configs", "p-norm, norm-weighted average and mean shift as configurations of the "
                     "framework", namespace, cases, expects="namespace", blocked=blocked, quiet=quiet)


# ------------------------------------------------------------------------------------------------ SimPool forward
def simpool_params(d: int, gamma: float | None, seed: int) -> dict[str, Any]:
    """Random single-head SimPool parameters as plain tensors (float64): the LayerNorm's ``ln_weight``, ``ln_bias``
    and ``ln_eps``, the projections ``wq`` and ``wk`` (D, D) applied as ``x @ w.T``, ``gamma`` and ``eps``."""
    g = _gen(seed)
    bound = 1 / math.sqrt(d)  # the initialisation of nn.Linear
    return dict(ln_weight=torch.rand(d, generator=g, dtype=_F64) + 0.5,
                ln_bias=torch.randn(d, generator=g, dtype=_F64) * 0.1, ln_eps=1e-6,
                wq=(torch.rand(d, d, generator=g, dtype=_F64) * 2 - 1) * bound,
                wk=(torch.rand(d, d, generator=g, dtype=_F64) * 2 - 1) * bound, gamma=gamma, eps=1e-6)


def simpool_reference(x: torch.Tensor, params: dict[str, Any], *, min_over: str = "image",
                      query_from: str = "x") -> tuple[torch.Tensor, torch.Tensor]:
    """SimPool's Eq. 12–17 written out (the reference of :func:`check_simpool_forward`): (u (B, D), a (B, N)).
    ``min_over="batch"`` and ``query_from="ln"`` give two known mistakes."""
    d = x.shape[-1]
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)  # the biased variance, as LayerNorm
    xn = (x - mu) / torch.sqrt(var + params["ln_eps"]) * params["ln_weight"] + params["ln_bias"]
    u0 = (xn if query_from == "ln" else x).mean(1)  # (12) (B, D)
    q = u0 @ params["wq"].T  # (13)
    k = xn @ params["wk"].T  # (14) (B, N, D)
    a = torch.softmax(torch.einsum("bd,bnd->bn", q, k) / math.sqrt(d), dim=-1)  # (15)
    gamma = params["gamma"]
    if gamma is None:
        return torch.einsum("bn,bnd->bd", a, xn), a
    low = xn.amin() if min_over == "batch" else xn.amin(dim=(1, 2), keepdim=True)
    v = xn - low + params["eps"]  # (16)
    return torch.einsum("bn,bnd->bd", a, v.pow(gamma)).pow(1 / gamma), a  # (17)


def _split_output(out: Any) -> tuple[Any, Any]:
    if isinstance(out, (tuple, list)) and len(out) == 2:
        return out[0], out[1]
    raise Mismatch("a pair (pooled u of shape (B, D), attention a of shape (B, N))",
                   "None" if out is None else (f"a {type(out).__name__}" if not isinstance(out, torch.Tensor)
                                               else f"a single tensor of shape {tuple(out.shape)}"),
                   "Return both: `return u, a`.")


def check_simpool_forward(simpool_forward, *, quiet: bool = False) -> CheckResult:
    """Exercise ``simpool_forward``: ``simpool_forward(x, params)`` returns ``(u, a)`` for tokens x (B, N, D) and
    the parameters of a single-head SimPool as plain tensors (:func:`simpool_params`: ``ln_weight``, ``ln_bias``,
    ``ln_eps``, ``wq``, ``wk``, ``gamma``, ``eps``): u (B, D) as in Eq. 12–17, a (B, N) the attention of Eq. 15."""
    d = 8

    def tokens(seed: int, b: int = 2, n: int = 16, spread: bool = False) -> torch.Tensor:
        g = _gen(seed)
        x = torch.randn(b, n, d, generator=g, dtype=_F64) * 1.5 + 0.7
        if spread:  # images with very different ranges: the minimum of one image is not the batch's
            x = x * torch.tensor([0.5, 4.0, 1.0][:b], dtype=_F64).view(b, 1, 1) + torch.tensor(
                [2.0, -3.0, 0.0][:b], dtype=_F64).view(b, 1, 1)
        return x

    def run_case(gamma, seed, check: str, b: int = 2, spread: bool = False):
        def run(fn):
            params = simpool_params(d, gamma, seed)
            x = tokens(seed, b=b, spread=spread)
            exp_u, exp_a = simpool_reference(x, params)
            given = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in params.items()}
            u, a = _split_output(call(fn, x.clone(), given))
            shape_hint = ("Keep the batch dimension, also for B = 1 (the release squeezes it; Eq. 12–17 and this "
                          "repository do not)." if b == 1 else "")
            if check in ("a", "both"):
                compare(a, exp_a, what="attention a", rtol=1e-6, atol=1e-10,
                        allow_shapes=[(b, 1, x.shape[1])],
                        hint=shape_hint or "Eq. 15: the query comes from Eq. 12–13, the keys from Eq. 14, the "
                                           "softmax runs over the N locations with the scaling 1/√D.",
                        mistakes={"a query seeded with the GAP of LN(X)": (
                            simpool_reference(x, params, query_from="ln")[1],
                            "Eq. 12 seeds the query with the GAP of the raw features X; only the keys and values "
                            "see the LayerNorm.")})
            if check in ("u", "both"):
                mistakes = {}
                if gamma is not None:
                    mistakes["the minimum over the whole batch (the release's rule)"] = (
                        simpool_reference(x, params, min_over="batch")[0],
                        "Eq. 16 takes the minimum over the elements of one image's LN(X), so that an image's "
                        "descriptor does not depend on the other images of its batch.")
                else:
                    mistakes["a shifted weighted mean"] = (
                        simpool_reference(x, {**params, "gamma": 1.0})[0],
                        "Without γ SimPool pools LN(X) itself: the shift of Eq. 16 is only needed for the power "
                        "of Eq. 17.")
                compare(u, exp_u, what="pooled u", rtol=1e-6, atol=1e-10, mistakes=mistakes,
                        hint=shape_hint or "Eq. 16–17: values from the LayerNorm'd features, shifted to be "
                                           "positive, then the weighted power mean with exponent γ.")
        return run

    cases = [
        Case("γ = 2: the attention a (Eq. 12–15)", run_case(2.0, 21, "a")),
        Case("γ = 2: the pooled vector u (Eq. 16–17)", run_case(2.0, 22, "u")),
        Case("γ = 1.25 (the paper's default for transformers)", run_case(1.25, 23, "both")),
        Case("γ = None: a weighted average of LN(X), no shift", run_case(None, 24, "both")),
        Case("images with different ranges: the minimum is per image", run_case(2.0, 25, "both", b=3,
                                                                                 spread=True)),
        Case("one image (B = 1) keeps its batch dimension", run_case(1.25, 26, "both", b=1)),
    ]
    return run_check("simpool_forward", "SimPool's forward pass, Eq. 12–17", simpool_forward, cases,
                     blocked=_blocked_pooling(), quiet=quiet)


# ------------------------------------------------------------------------------------------------ γ vs sharpness
def reference_shares(v: torch.Tensor, a: torch.Tensor, gamma: float) -> torch.Tensor:
    """The share of each location in each pooled channel, v_jc ∂u_c/∂v_jc / u_c, by its closed form
    a_j v_jc^γ / Σ_i a_i v_ic^γ (the reference of :func:`check_gamma_sharpness`)."""
    tilted = a.unsqueeze(-1) * v.pow(gamma)
    return tilted / tilted.sum(dim=1, keepdim=True)


def check_gamma_sharpness(pooling_shares, *, quiet: bool = False) -> CheckResult:
    """Exercise ``gamma_sharpness``: ``pooling_shares(v, a, gamma)`` returns, for values v (B, N, D) > 0 and an
    attention a (B, N), the share w (B, N, D) of each location j in each channel c of SimPool's
    u_c = (Σ_j a_j v_jc^γ)^{1/γ} (Eq. 17): w_jc = v_jc · ∂u_c/∂v_jc / u_c (the shares sum to one over j)."""

    def run_case(gamma: float, seed: int, b: int = 2, n: int = 12, dim: int = 6):
        def run(fn):
            g = _gen(seed)
            v = torch.rand(b, n, dim, generator=g, dtype=_F64) * 2.9 + 0.1
            a = torch.randn(b, n, generator=g, dtype=_F64).mul(1.5).softmax(-1)
            expected = reference_shares(v, a, gamma)
            got = call(fn, v.clone(), a.clone(), gamma)
            u = (a.unsqueeze(-1) * v.pow(gamma)).sum(1, keepdim=True).pow(1 / gamma)
            gradient = a.unsqueeze(-1) * v.pow(gamma - 1) * u.pow(1 - gamma)  # ∂u_c/∂v_jc
            compare(got, expected, what="shares w", rtol=1e-6, atol=1e-10,
                    hint="The share of location j in u_c is v_jc ∂u_c/∂v_jc / u_c: differentiate Eq. 17 by hand, "
                         "or let torch.autograd.grad do it. Each channel's shares sum to one over the locations.",
                    mistakes={"the gradient ∂u_c/∂v_jc itself": (
                        gradient, "That is the derivative only: multiply by v_jc and divide by u_c to get a share "
                                  "(then each channel's shares sum to one)."),
                        "the attention a": (a.unsqueeze(-1).expand_as(v),
                                            "The shares depend on the values too (unless γ = 0): differentiate "
                                            "Eq. 17 with respect to v_jc.")})
        return run

    cases = [
        Case("γ = 1: the a-weighted mean", run_case(1.0, 31)),
        Case("γ = 2 (the paper's default for CNNs)", run_case(2.0, 32)),
        Case("γ = 0.5", run_case(0.5, 33)),
        Case("γ = 25, a batch of 3: one location takes over", run_case(25.0, 34, b=3)),
    ]
    return run_check("gamma_sharpness", "γ against the sharpness of SimPool's pooling", pooling_shares, cases,
                     blocked=_blocked_pooling(), quiet=quiet)


def share_entropy(w: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of the shares over the locations, per sample and channel: (B, N, D) -> (B, D)."""
    return -(w * w.clamp_min(1e-300).log()).sum(1)

