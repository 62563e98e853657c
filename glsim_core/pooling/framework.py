"""The generic pooling process of SimPool §3.1 (Psomas et al., Eq. 1–7), with every parameter of Table 1.

The paper writes the feature matrix as X ∈ R^{d×p} (columns are the p spatial locations) and the pooled vectors as
U ∈ R^{d'×k}. This module keeps the same objects but stores them batch-first with locations as rows, the layout of
timm tokens::

    X  (B, p, d)   features, one row per location        U  (B, k, d)   the k pooled vectors
    Q  (B, k, n)   queries  φ_Q(U)               (Eq. 1)  K  (B, p, n)   keys     φ_K(X)               (Eq. 2)
    S  (B, p, k)   pairwise similarities s(k_i, q_j)       A  (B, p, k)   attention h(S)                (Eq. 3)
    V  (B, p, n)   values   φ_V(X)               (Eq. 4)  Z  (B, k, n)   f⁻¹(f(V) A) (here: f⁻¹(Aᵀ f(V)))(Eq. 5)
    X ← φ_X(X)                                   (Eq. 6)  U ← φ_U(Z)                                    (Eq. 7)

With ``num_heads = m > 1`` the queries, keys and values are split into m groups of n/m channels (the paper's g_m);
similarities, attention and pooling run per group and the groups are concatenated again (g_m⁻¹) before φ_U.

Every component is a plain callable on tensors (``nn.Module`` included, e.g. ``nn.Linear``). A component that also
needs the current state (the grid of a feature map, the previous U, the queries, the attention of this iteration)
sets ``uses_state = True`` and is called as ``fn(tensor, state)`` with a :class:`PoolState`; see
:func:`stateful`. A list of components gives one per iteration (φ^t in the paper); a single one is shared.

Pooling functions f (Eq. 5, 8): :class:`FAlpha` is Amari's f_α, including its limits α → ∓∞ (max / min over the
locations with positive weight) and ln at α = 1; :class:`Exp` is e^{r x} (log-sum-exp pooling). Attention
functions h are listed in :data:`ATTENTIONS` (softmax over locations σ₂ or over queries σ₁, sigmoid, Sinkhorn,
arg-max assignment, ℓ1 normalisations η₁/η₂, uniform 1_p/p, ...), similarities s in :data:`SIMILARITIES` (dot
product, cosine, negative squared Euclidean distance).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "PoolState", "PoolingResult", "PoolingProcess", "stateful", "ref", "label",
    "as_tokens", "resolve_grid", "tokens_to_map",
    "f_alpha", "f_alpha_inverse", "alpha_to_gamma", "gamma_to_alpha", "PoolingFunction", "FAlpha", "Exp",
    "make_pooling_function", "weighted_pool",
    "SIMILARITIES", "similarity_dot", "similarity_cosine", "similarity_neg_sqdist",
    "ATTENTIONS", "sinkhorn", "eta1", "eta2", "gap", "implied_weights", "distortion",
]


# --------------------------------------------------------------------------------------------------------------
# Layout helpers
# --------------------------------------------------------------------------------------------------------------
def as_tokens(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int] | None]:
    """(B, N, D) tokens stay as they are; a (B, D, H, W) map becomes (B, H·W, D) tokens (index h·W + w).

    Returns the tokens and the grid ``(H, W)`` of a map (``None`` for tokens).
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        return x, None
    if x.ndim == 4:
        b, d, h, w = x.shape
        return x.flatten(2).transpose(1, 2), (h, w)
    raise ValueError(f"expected tokens (B, N, D) or a feature map (B, D, H, W), got shape {tuple(x.shape)}")


def resolve_grid(p: int, grid: Sequence[int] | None) -> tuple[int, int] | None:
    """The (H, W) grid of p locations: ``grid`` if given (checked), else a square grid if p is a square, else None."""
    if grid is not None:
        h, w = int(grid[0]), int(grid[1])
        if h * w != p:
            raise ValueError(f"grid {h}x{w} does not hold the {p} tokens")
        return h, w
    side = math.isqrt(p)
    return (side, side) if side * side == p else None


def tokens_to_map(x: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """(B, p, n) tokens -> (B, n, H, W) map (inverse of :func:`as_tokens`)."""
    h, w = grid
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def gap(x: torch.Tensor) -> torch.Tensor:
    """π_A(X) = X 1_p / p (Eq. 9) on (B, p, d) tokens -> (B, 1, d)."""
    return x.mean(dim=1, keepdim=True)


def distortion(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """J(u) = ½ Σ_i ‖x_i − u‖² (Eq. 10) for tokens (..., p, d) and vectors u (..., d); GAP is its unique minimiser."""
    return 0.5 * (x - u.unsqueeze(-2)).pow(2).sum(dim=(-2, -1))


# --------------------------------------------------------------------------------------------------------------
# Pooling functions f (Eq. 5 and 8)
# --------------------------------------------------------------------------------------------------------------
def alpha_to_gamma(alpha: float) -> float:
    """γ = (1 − α)/2, the exponent of f_α (GeM's p)."""
    return (1.0 - alpha) / 2.0


def gamma_to_alpha(gamma: float) -> float:
    """α = 1 − 2γ."""
    return 1.0 - 2.0 * gamma


def f_alpha(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Amari's f_α (Eq. 8): x^{(1−α)/2} for α ≠ 1, ln x for α = 1; defined for x ≥ 0 (x > 0 at α = 1).

    The limits α = ±∞ have no element-wise form; :class:`FAlpha` pools them as max / min.
    """
    if math.isinf(alpha):
        raise ValueError("f_alpha at alpha=±inf is a limit (max/min), use FAlpha(alpha) to pool with it")
    if alpha == 1:
        return torch.log(x)
    return x.pow(alpha_to_gamma(alpha))


def f_alpha_inverse(y: torch.Tensor, alpha: float) -> torch.Tensor:
    """f_α⁻¹: y^{2/(1−α)} for α ≠ 1, e^y for α = 1."""
    if math.isinf(alpha):
        raise ValueError("f_alpha at alpha=±inf is a limit (max/min), use FAlpha(alpha) to pool with it")
    if alpha == 1:
        return torch.exp(y)
    return y.pow(1.0 / alpha_to_gamma(alpha))


def _aggregate(a: torch.Tensor, fv: torch.Tensor) -> torch.Tensor:
    """Aᵀ f(V): (..., p, k) and (..., p, n) -> (..., k, n)."""
    return a.transpose(-1, -2).to(fv.dtype) @ fv


class PoolingFunction(nn.Module):
    """Base class of the pooling functions f: ``forward(V, A)`` returns Z = f⁻¹(Aᵀ f(V)) (Eq. 5)."""

    def f(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def f_inverse(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.f_inverse(_aggregate(a, self.f(v)))


class FAlpha(PoolingFunction):
    """f = f_α (Eq. 8): Z = (Aᵀ V^γ)^{1/γ} with γ = (1 − α)/2 — a weighted power (generalised) mean.

    Special cases (weights A ≥ 0 summing to one per column): α = −∞ max, −3 quadratic mean (RMS), −1 arithmetic
    mean, 1 geometric mean (f = ln), 3 harmonic mean, +∞ min. The limits α = ∓∞ are computed exactly as the max /
    min over the locations with positive weight (the limit of the formula for any weights A ≥ 0). Give either
    ``alpha`` or ``gamma``; ``learnable=True`` makes γ a parameter (GeM with learnable p, then γ must stay > 0).
    V must be ≥ 0 (> 0 where γ ≤ 0). For γ > 0 the power is taken on V divided by its per-channel maximum (an exact
    rescaling, so large activations do not overflow).
    """

    def __init__(self, alpha: float | None = None, *, gamma: float | None = None, learnable: bool = False):
        super().__init__()
        if (alpha is None) == (gamma is None):
            if alpha is None and gamma is None:
                alpha = -1.0
            else:
                raise ValueError("give either alpha or gamma, not both")
        if gamma is None:
            gamma = math.inf if alpha == -math.inf else (-math.inf if alpha == math.inf else alpha_to_gamma(alpha))
        gamma = float(gamma)
        if learnable:
            if not (0 < gamma < math.inf):
                raise ValueError(f"a learnable exponent needs a finite gamma > 0, got {gamma}")
            self.gamma_param = nn.Parameter(torch.tensor(gamma))
        else:
            self.register_buffer("gamma_param", None)
            self._gamma = gamma
        self.learnable = learnable

    @property
    def gamma(self) -> float:
        return float(self.gamma_param.detach()) if self.learnable else self._gamma

    @property
    def alpha(self) -> float:
        g = self.gamma
        return -math.inf if g == math.inf else (math.inf if g == -math.inf else gamma_to_alpha(g))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}, gamma={self.gamma:g}, learnable={self.learnable}"

    @property
    def label(self) -> str:
        if self.learnable:
            return "f_α (γ learnable)"
        names = {-math.inf: "f₋∞ (max)", math.inf: "f₊∞ (min)", -1.0: "f₋₁ (mean)"}
        return names.get(self.alpha, f"f_α, α={self.alpha:g}")

    def f(self, x: torch.Tensor) -> torch.Tensor:
        g = self.gamma_param if self.learnable else self._gamma
        if not self.learnable and g == 0:
            return torch.log(x)
        return x.pow(g)

    def f_inverse(self, y: torch.Tensor) -> torch.Tensor:
        g = self.gamma_param if self.learnable else self._gamma
        if not self.learnable and g == 0:
            return torch.exp(y)
        return y.pow(1.0 / g)

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        if not self.learnable and math.isinf(self._gamma):
            return _masked_extreme(v, a, largest=self._gamma > 0)
        if not self.learnable and self._gamma == 0:
            return torch.exp(_aggregate(a, torch.log(v)))
        if self.learnable or self._gamma > 0:
            scale = v.detach().amax(dim=-2, keepdim=True)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            return self.f_inverse(_aggregate(a, self.f(v / scale))) * scale
        return self.f_inverse(_aggregate(a, self.f(v)))


def _masked_extreme(v: torch.Tensor, a: torch.Tensor, largest: bool) -> torch.Tensor:
    """max (or min) of V over the locations where A > 0, per column of A: (..., p, n), (..., p, k) -> (..., k, n)."""
    fill = -math.inf if largest else math.inf
    if bool((a > 0).all()):
        z = v.amax(dim=-2, keepdim=True) if largest else v.amin(dim=-2, keepdim=True)
        return z.expand(*v.shape[:-2], a.shape[-1], v.shape[-1])
    masked = v.unsqueeze(-2).masked_fill(~(a > 0).unsqueeze(-1), fill)  # (..., p, k, n)
    return masked.amax(dim=-3) if largest else masked.amin(dim=-3)


class Exp(PoolingFunction):
    """f(x) = e^{r x}: Z = (1/r) ln(Aᵀ e^{rV}) — log-sum-exp pooling (Pinheiro & Collobert), computed stably.

    With A = 1_p/p this is (1/r) ln((1/p) Σ_j e^{r v_j}); r → ∞ gives max, r → 0 the mean. ``learnable=True``
    makes r a parameter (the paper: "learnable scale r").
    """

    def __init__(self, r: float = 1.0, learnable: bool = False):
        super().__init__()
        if r <= 0:
            raise ValueError(f"r must be > 0, got {r}")
        self.r = nn.Parameter(torch.tensor(float(r))) if learnable else float(r)

    label = "e^{rx} (LSE)"

    def f(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.r * x)

    def f_inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.log(y) / self.r

    def forward(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        # log(Σ_j a_jk e^{r v_jn}) = logsumexp_j(r v_jn + log a_jk)
        logits = self.r * v.unsqueeze(-2) + torch.log(a).to(v.dtype).unsqueeze(-1)  # (..., p, k, n)
        return torch.logsumexp(logits, dim=-3) / self.r


def make_pooling_function(f: float | str | PoolingFunction) -> PoolingFunction:
    """A number is α of f_α; names: 'mean' (α=−1), 'max' (−∞), 'min' (+∞), 'rms' (−3), 'geometric' (1),
    'harmonic' (3), 'lse' (e^x)."""
    if isinstance(f, PoolingFunction):
        return f
    names = {"mean": -1.0, "avg": -1.0, "max": -math.inf, "min": math.inf, "rms": -3.0, "geometric": 1.0,
             "harmonic": 3.0}
    if isinstance(f, str):
        if f == "lse":
            return Exp()
        if f not in names:
            raise ValueError(f"unknown pooling function {f!r}; use a number (alpha), one of {sorted(names)} or 'lse'")
        return FAlpha(names[f])
    if isinstance(f, (int, float)):
        return FAlpha(float(f))
    raise TypeError(f"f must be a number (alpha), a name or a PoolingFunction, got {type(f).__name__}")


def weighted_pool(v: torch.Tensor, a: torch.Tensor, f: float | str | PoolingFunction = -1.0) -> torch.Tensor:
    """Eq. 5 on its own: Z = f⁻¹(Aᵀ f(V)) for V (..., p, n) and A (..., p, k) -> (..., k, n)."""
    return make_pooling_function(f)(v, a)


# --------------------------------------------------------------------------------------------------------------
# Similarities s (pairwise interaction)
# --------------------------------------------------------------------------------------------------------------
def similarity_dot(k: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """s(x, y) = xᵀy: S = Kᵀ Q, (..., p, n), (..., k, n) -> (..., p, k)."""
    return k @ q.transpose(-1, -2)


def similarity_cosine(k: torch.Tensor, q: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """s(x, y) = xᵀy / (‖x‖‖y‖)."""
    return F.normalize(k, dim=-1, eps=eps) @ F.normalize(q, dim=-1, eps=eps).transpose(-1, -2)


def similarity_neg_sqdist(k: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """s(x, y) = −‖x − y‖² (expanded: −‖x‖² + 2xᵀy − ‖y‖²)."""
    return 2 * (k @ q.transpose(-1, -2)) - k.pow(2).sum(-1, keepdim=True) - q.pow(2).sum(-1).unsqueeze(-2)


SIMILARITIES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "dot": similarity_dot, "cosine": similarity_cosine, "neg_sqdist": similarity_neg_sqdist,
}


def _self_similarity(name: str, k: torch.Tensor) -> torch.Tensor:
    """s(k_j, k_j) for every location — e.g. diag(XᵀX) for the dot product (HOW's attention); (..., p, 1)."""
    if name == "dot":
        return k.pow(2).sum(-1, keepdim=True)
    if name == "cosine":
        return torch.ones_like(k[..., :1])
    if name == "neg_sqdist":
        return torch.zeros_like(k[..., :1])
    raise ValueError(f"no self-similarity for {name!r}")


# --------------------------------------------------------------------------------------------------------------
# Attention functions h
# --------------------------------------------------------------------------------------------------------------
def eta1(a: torch.Tensor) -> torch.Tensor:
    """η₁: ℓ1-normalise each location's row over the k queries (rows of an all-zero row stay zero)."""
    s = a.sum(-1, keepdim=True)
    return a / torch.where(s > 0, s, torch.ones_like(s))


def eta2(a: torch.Tensor) -> torch.Tensor:
    """η₂: ℓ1-normalise each query's column over the p locations (an all-zero column stays zero)."""
    s = a.sum(-2, keepdim=True)
    return a / torch.where(s > 0, s, torch.ones_like(s))


def sinkhorn(logits: torch.Tensor, iters: int = 10, row_marginal: torch.Tensor | None = None,
             col_marginal: torch.Tensor | None = None) -> torch.Tensor:
    """Sinkhorn-Knopp in the log domain: the plan P = diag(e^f) e^{logits} diag(e^g) (..., p, k) whose rows sum to
    ``row_marginal`` (default 1/p) and columns to ``col_marginal`` (default 1/k). The last half-step fixes the
    columns exactly; the rows converge with ``iters``. Table 1's SINKHORN(e^{S/ε}) is ``sinkhorn(S / ε)``."""
    p, k = logits.shape[-2:]
    log_r = (torch.full((p,), -math.log(p), dtype=logits.dtype, device=logits.device)
             if row_marginal is None else torch.log(row_marginal).to(logits))
    log_c = (torch.full((k,), -math.log(k), dtype=logits.dtype, device=logits.device)
             if col_marginal is None else torch.log(col_marginal).to(logits))
    f = torch.zeros_like(logits[..., :1])
    g = torch.zeros_like(logits[..., :1, :])
    for _ in range(iters):
        f = log_r.unsqueeze(-1) - torch.logsumexp(logits + g, dim=-1, keepdim=True)
        g = log_c - torch.logsumexp(logits + f, dim=-2, keepdim=True)
    return torch.exp(logits + f + g)


def _argmax_assign(s: torch.Tensor) -> torch.Tensor:
    """argmax₁: one-hot of the best query for each location (hard assignment, k-means)."""
    return F.one_hot(s.argmax(dim=-1), s.shape[-1]).to(s.dtype)


def softmax_locations(s: torch.Tensor) -> torch.Tensor:
    """σ₂ = η₂∘exp: softmax over the p locations, for each query."""
    return s.softmax(dim=-2)


def softmax_queries(s: torch.Tensor) -> torch.Tensor:
    """σ₁ = η₁∘exp: softmax over the k queries, for each location."""
    return s.softmax(dim=-1)


def uniform(s: torch.Tensor) -> torch.Tensor:
    """1_p / p, whatever S is."""
    return torch.full_like(s, 1.0 / s.shape[-2])


def identity(s: torch.Tensor) -> torch.Tensor:
    return s


ATTENTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "softmax_locations": softmax_locations,
    "softmax_queries": softmax_queries,
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "relu": torch.relu,
    "identity": identity,
    "eta1": eta1,
    "eta2": eta2,
    "argmax": _argmax_assign,
    "sinkhorn": sinkhorn,
    "uniform": uniform,  # 1_p / p
    "ones": torch.ones_like,  # 1_p
}
ATTENTIONS["sigma2"] = ATTENTIONS["softmax_locations"]
ATTENTIONS["sigma1"] = ATTENTIONS["softmax_queries"]


# --------------------------------------------------------------------------------------------------------------
# The process
# --------------------------------------------------------------------------------------------------------------
@dataclass
class PoolState:
    """What a stateful component may read: the input X⁰, the current Xᵗ, Uᵗ, and this iteration's Q, K, S, A."""

    x0: torch.Tensor
    x: torch.Tensor
    u: torch.Tensor | None
    t: int
    grid: tuple[int, int] | None
    num_heads: int = 1
    q: torch.Tensor | None = None
    k: torch.Tensor | None = None
    s: torch.Tensor | None = None
    a: torch.Tensor | None = None


class PoolingResult(NamedTuple):
    """U (B, k, d') the pooled vectors; A (B, p, k) the last attention over X's locations (mean over heads);
    A_heads (B, m, p, k) per head."""

    u: torch.Tensor
    a: torch.Tensor
    a_heads: torch.Tensor


def stateful(fn: Callable) -> Callable:
    """Mark a plain function ``fn(tensor, state)`` as a stateful component."""
    fn.uses_state = True
    return fn


def _invoke(module: Callable, *args: Any) -> Any:
    return module(*args)


def ref(module: Callable) -> Callable:
    """Use ``module`` as a component without registering it inside the process (its owner keeps the parameters,
    so state dicts have one key per tensor); keeps ``uses_state``. Tensors (e.g. a learned U⁰) work too."""
    if isinstance(module, torch.Tensor):
        return functools.partial(_expand_tensor, module)
    part = functools.partial(_invoke, module)
    if getattr(module, "uses_state", False):
        part.uses_state = True
    return part


def _expand_tensor(u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A learned U⁰ (k, d) or (1, k, d), broadcast over the batch of x."""
    u = u.unsqueeze(0) if u.ndim == 2 else u
    return u.expand(x.shape[0], -1, -1)


_SIM_LABELS = {"dot": "xᵀy", "cosine": "cos(x, y)", "neg_sqdist": "−‖x − y‖²"}
_ATT_LABELS = {"softmax_locations": "σ₂", "sigma2": "σ₂", "softmax_queries": "σ₁", "sigma1": "σ₁",
               "sigmoid": "σ", "uniform": "1_p/p", "ones": "1_p", "argmax": "argmax₁", "eta1": "η₁",
               "eta2": "η₂", "sinkhorn": "SINKHORN", "exp": "exp", "relu": "relu", "identity": "S"}


def label(component: Any) -> str:
    """A short, readable name of a component (its ``label`` attribute, else its class or function name)."""
    if component is None:
        return "identity"
    if isinstance(component, functools.partial):
        if component.func is _invoke:
            return label(component.args[0])
        if component.func is _expand_tensor:
            return "learned U"
        return label(component.func)
    lab = getattr(component, "label", None)
    if isinstance(lab, str):
        return lab
    if isinstance(component, nn.Sequential):
        return "∘".join(label(m) for m in reversed(component))
    if isinstance(component, nn.Linear):
        return "W"
    if isinstance(component, nn.LayerNorm):
        return "LN"
    if isinstance(component, nn.Module):
        return type(component).__name__
    return getattr(component, "__name__", type(component).__name__).strip("_")


def _call(fn: Callable | None, x: torch.Tensor, state: PoolState) -> torch.Tensor:
    if fn is None:
        return x
    return fn(x, state) if getattr(fn, "uses_state", False) else fn(x)


class PoolingProcess(nn.Module):
    """π: X ↦ U, the generic (iterative) pooling process of §3.1 (Eq. 1–7), one parameter per column of Table 1.

    Args:
        k: number of pooled vectors.
        init: U⁰ — ``"gap"`` (π_A, Eq. 9, repeated k times), ``None``/``"none"`` (no query: S is the
            self-similarity s(k_j, k_j), e.g. diag(XᵀX)), a tensor (k, d) (learned, shared over the batch), or a
            callable of X (B, p, d) -> (B, k, d⁰). ``forward(x, u0=...)`` overrides it.
        phi_q, phi_k, phi_v: φ_Q (Eq. 1), φ_K (Eq. 2), φ_V (Eq. 4); ``None`` is the identity.
        similarity: s — ``"dot"``, ``"cosine"``, ``"neg_sqdist"`` or a callable (K, Q) -> S; ``None`` skips it
            (for attentions that ignore S, like ``"uniform"``).
        scale: multiplies S before h: a number (e.g. 1/ε), ``"sqrt"`` for 1/√(n/m), or ``None``.
        attention: h (Eq. 3) — a name of :data:`ATTENTIONS`, a callable, or a sequence of them applied in order
            (e.g. ``("argmax", "eta2")`` for k-means' η₂(argmax₁(S))).
        f: the pooling function (Eq. 5): α of f_α (Eq. 8), a name, or a :class:`PoolingFunction`.
        phi_x, phi_u: φ_X (Eq. 6) and φ_U (Eq. 7); ``None`` is the identity. φ_X is not applied after the last
            iteration (its output would be unused).
        iterations: number of iterations T.
        num_heads: m, the g_m split of queries / keys / values into groups (multi-head attention).
        attend_to_queries: keys and values are computed on [U; X] (queries first), as the CLS token of ViT and
            CaiT also attends to itself; Table 1 drops this ("simplified"). The returned attention keeps X's rows.

    Each φ may be a list with one entry per iteration. ``forward(x)`` takes X (B, p, d) and returns a
    :class:`PoolingResult`.
    """

    _COMPONENTS = ("phi_q", "phi_k", "phi_v", "phi_x", "phi_u")

    def __init__(self, *, k: int = 1, init: Any = "gap", phi_q: Any = None, phi_k: Any = None,
                 similarity: str | Callable | None = "dot", scale: float | str | None = None,
                 attention: str | Callable | Sequence = "softmax_locations", phi_v: Any = None,
                 f: float | str | PoolingFunction = -1.0, phi_x: Any = None, phi_u: Any = None,
                 iterations: int = 1, num_heads: int = 1, attend_to_queries: bool = False):
        super().__init__()
        if k < 1 or iterations < 1 or num_heads < 1:
            raise ValueError("k, iterations and num_heads must be >= 1")
        self.k, self.iterations, self.num_heads = int(k), int(iterations), int(num_heads)
        self.attend_to_queries = bool(attend_to_queries)
        if isinstance(init, str):
            if init not in ("gap", "none"):
                raise ValueError(f"init must be 'gap', 'none', a tensor or a callable, got {init!r}")
            init = None if init == "none" else init
        if isinstance(init, torch.Tensor) and not isinstance(init, nn.Parameter):
            self.register_buffer("init_u", init)
            init = "tensor"
        elif isinstance(init, nn.Parameter):
            self.init_u = init
            init = "tensor"
        elif isinstance(init, nn.Module):
            self.init_module = init
        self.init = init
        if init is None and (k != 1 or attend_to_queries):
            raise ValueError("init=None (no query) needs k=1 and attend_to_queries=False")
        self._components: dict[str, list] = {}
        for name, value in zip(self._COMPONENTS, (phi_q, phi_k, phi_v, phi_x, phi_u)):
            values = list(value) if isinstance(value, (list, tuple, nn.ModuleList)) else [value] * self.iterations
            if len(values) != self.iterations:
                raise ValueError(f"{name} has {len(values)} entries for {self.iterations} iterations")
            for t, comp in enumerate(values):
                if comp is not None and not callable(comp):
                    raise TypeError(f"{name}[{t}] must be callable or None, got {type(comp).__name__}")
                if isinstance(comp, nn.Module) and comp not in list(self.children()):
                    self.add_module(f"{name}_{t}", comp)
            self._components[name] = values
        if isinstance(similarity, str) and similarity not in SIMILARITIES:
            raise ValueError(f"unknown similarity {similarity!r}; choose from {sorted(SIMILARITIES)} or a callable")
        if isinstance(similarity, nn.Module):
            self.similarity_module = similarity
        self.similarity = similarity
        if isinstance(scale, str) and scale != "sqrt":
            raise ValueError(f"scale must be a number, 'sqrt' or None, got {scale!r}")
        self.scale = scale
        steps = [attention] if isinstance(attention, str) or callable(attention) else list(attention)
        resolved = []
        for i, step in enumerate(steps):
            if isinstance(step, str):
                if step not in ATTENTIONS:
                    raise ValueError(f"unknown attention {step!r}; choose from {sorted(ATTENTIONS)} or a callable")
                resolved.append(ATTENTIONS[step])
            elif callable(step):
                if isinstance(step, nn.Module):
                    self.add_module(f"attention_{i}", step)
                resolved.append(step)
            else:
                raise TypeError(f"attention steps must be names or callables, got {type(step).__name__}")
        self.attention = resolved
        self.attention_names = [s if isinstance(s, str) else getattr(s, "__name__", type(s).__name__)
                                for s in steps]
        self.f = make_pooling_function(f)

    # -- helpers -------------------------------------------------------------------------------------------
    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """g_m: (B, r, n) -> (B, m, r, n/m)."""
        b, r, n = x.shape
        m = self.num_heads
        if n % m:
            raise ValueError(f"{n} channels cannot be split into {m} heads")
        return x.reshape(b, r, m, n // m).transpose(1, 2)

    @staticmethod
    def _merge(z: torch.Tensor) -> torch.Tensor:
        """g_m⁻¹: (B, m, k, n/m) -> (B, k, n)."""
        b, m, k, n = z.shape
        return z.transpose(1, 2).reshape(b, k, m * n)

    def initial_u(self, x: torch.Tensor) -> torch.Tensor | None:
        """U⁰ for tokens x (B, p, d)."""
        if self.init is None:
            return None
        if self.init == "gap":
            return gap(x).expand(-1, self.k, -1)
        if self.init == "tensor":
            u = self.init_u
            return u.unsqueeze(0).expand(x.shape[0], -1, -1) if u.ndim == 2 else u.expand(x.shape[0], -1, -1)
        return self.init(x)

    def _similarity(self, k: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
        b, m, p, n = k.shape
        if self.similarity is None:
            return k.new_zeros(b, m, p, 1 if q is None else q.shape[-2])
        if q is None:
            if not isinstance(self.similarity, str):
                raise ValueError("a custom similarity needs queries (init is None)")
            s = _self_similarity(self.similarity, k)
        else:
            fn = SIMILARITIES[self.similarity] if isinstance(self.similarity, str) else self.similarity
            s = fn(k, q)
        if self.scale == "sqrt":
            s = s * n ** -0.5
        elif self.scale is not None:
            s = s * self.scale
        return s

    def describe(self) -> dict[str, str]:
        """This configuration as a row of Table 1 (k, iterations, U⁰, φ_Q, φ_K, s, h, φ_V, f, φ_X, φ_U, heads)."""
        comps = self._components
        if self.init is None:
            u0 = "—"
        elif self.init == "gap":
            u0 = "π_A(X)"
        elif self.init == "tensor":
            u0 = "learned U"
        else:
            u0 = label(self.init)

        def per_iter(name: str, idle: str) -> str:
            names = {label(c) if c is not None else idle for c in comps[name]}
            return " / ".join(sorted(names))

        if self.similarity is None:
            sim = "—"
        else:
            sim = _SIM_LABELS.get(self.similarity, None) if isinstance(self.similarity, str) else label(self.similarity)
            if self.scale == "sqrt":
                sim += ", S/√n"
            elif self.scale is not None:
                sim += f", S·{self.scale:.3g}"
        h = "∘".join(reversed([_ATT_LABELS.get(n, label(fn)) for n, fn in zip(self.attention_names, self.attention)]))
        no_query = self.init is None
        return {
            "k": str(self.k), "iterations": str(self.iterations), "U0": u0,
            "phi_Q": "—" if no_query else per_iter("phi_q", "U"),
            "phi_K": per_iter("phi_k", "X") + (" on [U; X]" if self.attend_to_queries else ""),
            "s": sim, "h": h,
            "phi_V": per_iter("phi_v", "X"), "f": label(self.f),
            "phi_X": "—" if self.iterations == 1 else per_iter("phi_x", "X"),
            "phi_U": per_iter("phi_u", "Z"), "heads": str(self.num_heads),
        }

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, u0: torch.Tensor | None = None,
                grid: Sequence[int] | None = None) -> PoolingResult:
        if x.ndim != 3:
            raise ValueError(f"PoolingProcess expects tokens (B, p, d), got shape {tuple(x.shape)}; "
                             "use as_tokens() for feature maps")
        grid = resolve_grid(x.shape[1], grid)
        u = self.initial_u(x) if u0 is None else u0
        xt = x
        state = PoolState(x0=x, x=xt, u=u, t=0, grid=grid, num_heads=self.num_heads)
        a = None
        for t in range(self.iterations):
            state = PoolState(x0=x, x=xt, u=u, t=t, grid=grid, num_heads=self.num_heads)
            kv_in = torch.cat([u, xt], dim=1) if self.attend_to_queries else xt
            q = _call(self._components["phi_q"][t], u, state) if u is not None else None
            state.q = q
            key = _call(self._components["phi_k"][t], kv_in, state)
            state.k = key
            s = self._similarity(self._split(key), self._split(q) if q is not None else None)
            state.s = s
            a = s
            for step in self.attention:
                a = step(a, state) if getattr(step, "uses_state", False) else step(a)
            state.a = a
            v = _call(self._components["phi_v"][t], kv_in, state)
            z = self._merge(self.f(self._split(v), a))  # Eq. 5 per head, then g_m⁻¹
            if t < self.iterations - 1:
                xt = _call(self._components["phi_x"][t], xt, state)
            u = _call(self._components["phi_u"][t], z, state)
        a_x = a[..., -x.shape[1]:, :] if self.attend_to_queries else a  # X's rows (queries came first)
        return PoolingResult(u=u, a=a_x.mean(dim=1), a_heads=a_x)


# --------------------------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------------------------
def implied_weights(pooling: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The weights a pooling implicitly gives each location: w_j = (1/d) Σ_i ∂(1ᵀu)/∂x_ij, for tokens (B, p, d).

    For pooling that acts on each channel separately (any f_α, LSE) this is the mean over channels of ∂u_i/∂x_ij:
    1/p for GAP, the fraction of channels whose maximum sits at j for max pooling, (1/p)(x_ij/u_i)^{γ−1} averaged
    for GeM, the softmax weights for log-sum-exp. For methods that mix channels it is a gradient saliency.
    Returns (B, p), computed with autograd (no parameter changes).
    """
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        u = pooling(x)
        (grad,) = torch.autograd.grad(u.sum(), x)
    return grad.mean(-1)
