"""Every row of SimPool's Table 1 as a configuration of the generic process (:class:`~.framework.PoolingProcess`).

``pool(name, dim=..., **kw)`` builds the method as an ``nn.Module``: ``forward(x)`` accepts tokens (B, N, D) or
maps (B, D, H, W) and returns (B, D'); ``forward(x, return_attention=True)`` returns ``(pooled, attn)`` with the
framework's attention A: (B, N) / (B, H, W) for k = 1, (B, k, N) / (B, k, H, W) for k > 1 (mean over heads).
``forward(tokens, grid=(H, W))`` tells methods that need the spatial layout (HOW, CBAM) the grid of a token input
(square token counts are inferred) and returns the attention as a map.

Group 1 (k = 1, no query): ``gap``, ``max``, ``gem``, ``lse``, ``how``.
Group 2 (k > 1, default k = 3): ``otk``, ``kmeans``, ``slot``.
Group 3 (GAP query, gates; adapted to pooling by GAP at the end, §4.2): ``se``, ``cbam``.
Group 4 (CLS token, iterative): ``vit``, ``cait``.
Group 5: ``simpool`` (the dedicated :class:`~.simpool.SimPool` module; :func:`simpool_process` is the same
method written as a framework configuration, and the tests assert they agree).

**k > 1 → one vector** (``reduce``): ``"concat"`` (default; D' = k·d, what OTK does; the order of k-means
clusters and slots follows their random initialisation), ``"mean"``, ``"max"`` (element-wise), or ``"none"``
(returns (B, k, d) — :func:`glsim_core.models.heads.create_with_pooling` then takes the maximum of the k logits
per class, the paper's choice in §4.2).

Where Table 1 simplifies a method (marked * there), the module implements the original method and says how it
maps onto the framework: CBAM uses max- as well as average-pooling in both gates (``simplified=True`` gives
Table 1's row), ViT's and CaiT's CLS token also attends to itself. Details and any other choice are in each
class's docstring.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.cait import LayerScaleBlockClassAttn
from timm.models.vision_transformer import Block
from torch import nn

from .framework import (
    Exp,
    FAlpha,
    PoolingProcess,
    PoolingResult,
    PoolState,
    as_tokens,
    gap,
    ref,
    resolve_grid,
    sinkhorn,
    stateful,
    tokens_to_map,
)
from .simpool import SimPool

__all__ = [
    "POOLING_METHODS", "pool", "Pooling", "GAP", "MaxPool", "GeM", "LSE", "HOW", "OTK", "KMeans", "SlotAttention",
    "SE", "CBAM", "ViTPool", "CaiTPool", "SimPool", "simpool_process", "table1",
]

_REDUCE = ("concat", "mean", "max", "none")


def _reduce(u: torch.Tensor, how: str) -> torch.Tensor:
    if u.shape[1] == 1 and how != "none":
        return u[:, 0]
    if how == "concat":
        return u.flatten(1)
    if how == "mean":
        return u.mean(1)
    if how == "max":
        return u.amax(1)
    return u


class Pooling(nn.Module):
    """Base of the Table-1 methods: layout handling, the k → 1 reduction and the attention output.

    Subclasses build ``self.process`` (a :class:`PoolingProcess`) or override :meth:`pool_tokens`.
    ``out_dim`` is D' (the width of the pooled vector).
    """

    name = "pooling"

    def __init__(self, dim: int | None, k: int = 1, reduce: str = "concat", feat_dim: int | None = None):
        super().__init__()
        if reduce not in _REDUCE:
            raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
        self.dim, self.k, self.reduce = dim, int(k), reduce
        self.feat_dim = feat_dim if feat_dim is not None else dim

    @property
    def out_dim(self) -> int | None:
        if self.feat_dim is None:
            return None
        return self.feat_dim * self.k if (self.reduce == "concat" and self.k > 1) else self.feat_dim

    def extra_repr(self) -> str:
        return f"dim={self.dim}, k={self.k}, reduce={self.reduce!r}"

    def pool_tokens(self, x: torch.Tensor, grid: tuple[int, int] | None = None,
                    u0: torch.Tensor | None = None) -> PoolingResult:
        return self.process(x, u0=u0, grid=grid)

    def describe(self) -> dict[str, str]:
        """The method's Table-1 row, read from its configuration (see :meth:`PoolingProcess.describe`)."""
        return {"method": self.name, **self.process.describe()}

    def forward(self, x: torch.Tensor, return_attention: bool = False, grid: Sequence[int] | None = None,
                u0: torch.Tensor | None = None):
        tokens, map_grid = as_tokens(x)
        if self.dim is not None and tokens.shape[-1] != self.dim:
            raise ValueError(f"{type(self).__name__}(dim={self.dim}) got {tokens.shape[-1]} channels "
                             f"(input shape {tuple(x.shape)})")
        grid = map_grid or (resolve_grid(tokens.shape[1], grid) if grid is not None else None)
        res = self.pool_tokens(tokens, grid=grid, u0=u0)
        out = _reduce(res.u, self.reduce)
        if not return_attention:
            return out
        a = res.a[..., 0] if res.a.shape[-1] == 1 else res.a.transpose(1, 2)  # (B, p) or (B, k, p)
        if grid is not None:
            a = a.reshape(*a.shape[:-1], *grid)
        return out, a


# ----------------------------------------------------------------------------------------------------------------
# small picklable components
# ----------------------------------------------------------------------------------------------------------------
class ClampMin(nn.Module):
    """max(x, ε) — GeM's guard that keeps f_α on non-negative numbers."""

    label = "max(X, ε)"

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps)


def _l2_normalize(z: torch.Tensor) -> torch.Tensor:
    """η²: ℓ2 normalisation of each pooled vector."""
    return F.normalize(z, dim=-1)


_l2_normalize.label = "ℓ2-normalise(Z)"


def _require_grid(state: PoolState, who: str) -> tuple[int, int]:
    if state.grid is None:
        raise ValueError(f"{who} needs the spatial grid: pass a feature map (B, D, H, W), square tokens, "
                         "or grid=(H, W)")
    return state.grid


# ----------------------------------------------------------------------------------------------------------------
# Group 1
# ----------------------------------------------------------------------------------------------------------------
class GAP(Pooling):
    """Global average pooling [He et al.]: A = 1_p/p, V = X, f = f₋₁ — u = π_A(X) (Eq. 9)."""

    name = "gap"

    def __init__(self, dim: int | None = None):
        super().__init__(dim)
        self.process = PoolingProcess(init=None, similarity=None, attention="uniform", f=-1.0)


class MaxPool(Pooling):
    """Global max pooling [Tolias et al.]: A = 1_p, f = f₋∞ (the limit α → −∞ of Eq. 8)."""

    name = "max"

    def __init__(self, dim: int | None = None):
        super().__init__(dim)
        self.process = PoolingProcess(init=None, similarity=None, attention="ones", f=-math.inf)


class GeM(Pooling):
    """Generalised mean [Radenović et al.]: A = 1_p/p, f = f_α with γ = p = (1−α)/2 (learnable by default, p₀=3).

    u = ((1/p) Σ_j max(x_j, ε)^p)^{1/p}: like GeM's reference implementation the values are clamped at ε
    (φ_V(X) = max(X, ε)) so that f_α sees non-negative numbers.
    """

    name = "gem"

    def __init__(self, dim: int | None = None, p: float = 3.0, learnable: bool = True, eps: float = 1e-6):
        super().__init__(dim)
        self.process = PoolingProcess(init=None, similarity=None, attention="uniform", phi_v=ClampMin(eps),
                                      f=FAlpha(gamma=p, learnable=learnable))

    @property
    def p(self) -> float:
        return self.process.f.gamma


class LSE(Pooling):
    """Log-sum-exp pooling [Pinheiro & Collobert]: A = 1_p/p, f(x) = e^{rx} — u = (1/r) ln((1/p) Σ_j e^{r x_j}).

    r is learnable by default (the paper: "learnable scale r"), initial value ``r``.
    """

    name = "lse"

    def __init__(self, dim: int | None = None, r: float = 1.0, learnable: bool = True):
        super().__init__(dim)
        self.process = PoolingProcess(init=None, similarity=None, attention="uniform", f=Exp(r, learnable))


class _PowerHalf(nn.Module):
    """h(S) = S^{power/2} on the self-similarity S = diag(XᵀX)."""

    def __init__(self, power: float):
        super().__init__()
        self.power = power
        self.label = "diag(XᵀX)" if power == 2 else f"diag(XᵀX)^{power / 2:g}"

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s if self.power == 2 else s.clamp_min(0).pow(self.power / 2)


class _SmoothReduce(nn.Module):
    """HOW's φ_V = FC(avg₃(X)): 3×3 average pooling (stride 1, zero padding counted) then a linear layer."""

    label = "FC(avg₃(X))"

    uses_state = True

    def __init__(self, dim: int, out_dim: int, kernel_size: int = 3):
        super().__init__()
        self.kernel_size = kernel_size
        self.fc = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, state: PoolState) -> torch.Tensor:
        grid = _require_grid(state, "HOW's 3x3 smoothing")
        smooth = F.avg_pool2d(tokens_to_map(x, grid), self.kernel_size, stride=1, padding=self.kernel_size // 2)
        return self.fc(smooth.flatten(2).transpose(1, 2))


class HOW(Pooling):
    """HOW [Tolias et al. 2020]: A = diag(XᵀX) (no query: the dot-product self-similarity ‖x_j‖²),
    V = FC(avg₃(X)), f = f₋₁ (weighted sum), φ_U = η² (ℓ2 normalisation).

    ``power`` is the exponent on ‖x_j‖: 2 is Table 1's diag(XᵀX); HOW's own paper weights by the ℓ2 norm
    (``power=1``). ``out_dim`` is the FC's output (HOW reduces to 128; default: ``dim``).
    """

    name = "how"

    def __init__(self, dim: int, out_dim: int | None = None, power: float = 2.0, kernel_size: int = 3):
        out_dim = out_dim or dim
        super().__init__(dim, feat_dim=out_dim)
        self.smooth_reduce = _SmoothReduce(dim, out_dim, kernel_size)
        self.process = PoolingProcess(init=None, similarity="dot", attention=_PowerHalf(power),
                                      phi_v=ref(self.smooth_reduce), f=-1.0, phi_u=_l2_normalize)


# ----------------------------------------------------------------------------------------------------------------
# Group 2
# ----------------------------------------------------------------------------------------------------------------
class _ScaledSinkhorn(nn.Module):
    """k · SINKHORN(e^{S}): the transport plan with columns rescaled to sum to one (weighted averages)."""

    label = "k·SINKHORN(e^{S/ε})"

    def __init__(self, iters: int):
        super().__init__()
        self.iters = iters

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return sinkhorn(s, self.iters) * s.shape[-1]


class OTK(Pooling):
    """Optimal transport kernel embedding [Mialon et al.]: k learnable references U (U⁰ = U, φ_Q = identity),
    s = −‖x − y‖², A = SINKHORN(e^{S/ε}) (rows sum to 1/p, columns to 1/k; we multiply by k so each column is a
    convex combination), V = ψ(X) (``psi``, default identity), f = f₋₁; the k vectors are concatenated.
    """

    name = "otk"

    def __init__(self, dim: int, k: int = 3, eps: float = 0.1, sinkhorn_iters: int = 10,
                 psi: nn.Module | None = None, reduce: str = "concat"):
        super().__init__(dim, k=k, reduce=reduce)
        self.eps = eps
        self.references = nn.Parameter(torch.randn(k, dim))
        self.psi = psi
        self.process = PoolingProcess(k=k, init=ref(self.references), similarity="neg_sqdist", scale=1.0 / eps,
                                      attention=_ScaledSinkhorn(sinkhorn_iters),
                                      phi_v=None if psi is None else ref(psi), f=-1.0)


class ForgyInit(nn.Module):
    """k-means' "random" U⁰ (Forgy): the features at k distinct random locations, drawn from a generator seeded with
    ``seed``. The same locations are used for every sample and every call, so the pooling is deterministic and a
    sample's result does not depend on its batch-mates."""

    label = "random (Forgy)"

    def __init__(self, k: int, seed: int = 0):
        super().__init__()
        self.k, self.seed = k, seed

    def indices(self, batch: int, p: int) -> torch.Tensor:
        if p < self.k:
            raise ValueError(f"k-means with k={self.k} needs at least {self.k} locations, got {p}")
        g = torch.Generator().manual_seed(self.seed)
        return torch.randperm(p, generator=g)[: self.k].expand(batch, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = self.indices(x.shape[0], x.shape[1]).to(x.device)
        return torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


@stateful
def _keep_empty_centroids(z: torch.Tensor, state: PoolState) -> torch.Tensor:
    """φ_U for k-means: the new centroids Z, except that a cluster with no point keeps its previous centroid."""
    empty = (state.a.sum(dim=-2) == 0).all(dim=1).unsqueeze(-1)  # (B, k, 1)
    return torch.where(empty, state.u, z)


_keep_empty_centroids.label = "Z (empty cluster: keep U)"


class KMeans(Pooling):
    """k-means (Lloyd): U⁰ random locations (Forgy, seeded), s = −‖x − y‖², A = η₂(argmax₁(S)) (each location
    assigned to its nearest centroid, each column normalised), V = X, f = f₋₁ (cluster means), φ_X = X,
    φ_U = Z (an empty cluster keeps its centroid), ``iterations`` Lloyd steps."""

    name = "kmeans"

    def __init__(self, dim: int | None = None, k: int = 3, iterations: int = 10, seed: int = 0,
                 reduce: str = "concat"):
        super().__init__(dim, k=k, reduce=reduce)
        self.init = ForgyInit(k, seed)
        self.process = PoolingProcess(k=k, init=ref(self.init), similarity="neg_sqdist", attention=("argmax", "eta2"),
                                      f=-1.0, phi_u=_keep_empty_centroids, iterations=iterations)


class _SlotInit(nn.Module):
    """Slot attention's U⁰ = μ + σ ⊙ N(0, I): fresh noise per sample in training; in eval mode, one draw from a
    generator seeded with ``eval_seed`` shared by all samples (deterministic and independent of batch-mates)."""

    label = "random: μ + σ⊙N(0, I)"

    def __init__(self, k: int, dim: int, eval_seed: int = 0):
        super().__init__()
        self.k, self.eval_seed = k, eval_seed
        self.mu = nn.Parameter(torch.empty(1, 1, dim))
        self.log_sigma = nn.Parameter(torch.empty(1, 1, dim))
        nn.init.xavier_uniform_(self.mu)
        nn.init.xavier_uniform_(self.log_sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0], self.k, self.mu.shape[-1])
        if self.training:
            noise = torch.randn(shape, device=x.device, dtype=x.dtype)
        else:
            noise = torch.randn((1, *shape[1:]), generator=torch.Generator().manual_seed(self.eval_seed)).to(x)
        return (self.mu + self.log_sigma.exp() * noise).expand(shape)


class _SlotWeights(nn.Module):
    """Slot attention's h: softmax over the slots, + ε, then a weighted mean over locations (η₂)."""

    label = "η₂(σ₁(S/√n) + ε)"

    def __init__(self, eps: float):
        super().__init__()
        self.eps = eps

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        a = s.softmax(dim=-1) + self.eps
        return a / a.sum(dim=-2, keepdim=True)


class _SlotUpdate(nn.Module):
    """φ_U(Z) = MLP(GRU(Z)): U ← GRU(Z, U); U ← U + MLP(LN(U))."""

    label = "MLP(GRU(Z))"

    uses_state = True

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.gru = nn.GRUCell(dim, dim)
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, dim))

    def forward(self, z: torch.Tensor, state: PoolState) -> torch.Tensor:
        b, k, d = z.shape
        u = self.gru(z.reshape(b * k, d), state.u.reshape(b * k, d)).reshape(b, k, d)
        return u + self.mlp(self.norm_mlp(u))


class SlotAttention(Pooling):
    """Slot attention [Locatello et al.]: U⁰ random (learned μ, σ), φ_Q = W_Q LN(U), φ_K = W_K LN(X),
    φ_V = W_V LN(X), s = dot, S/√d, h = softmax over the k slots then (+ε) normalised over locations,
    f = f₋₁, φ_X = X, φ_U = MLP(GRU(Z)) with residual, ``iterations`` = 3 shared-weight iterations.

    Table 1 prints h as η₁(σ₂(S/√n)); we follow the original algorithm (softmax over slots, then a weighted mean over
    locations), i.e. η₂(σ₁(S/√n)) in the framework's notation.
    """

    name = "slot"

    def __init__(self, dim: int, k: int = 3, iterations: int = 3, hidden_dim: int | None = None, eps: float = 1e-8,
                 eval_seed: int = 0, reduce: str = "concat"):
        super().__init__(dim, k=k, reduce=reduce)
        hidden_dim = hidden_dim or dim
        self.init = _SlotInit(k, dim, eval_seed)
        self.norm_input = nn.LayerNorm(dim)
        self.norm_slots = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, dim, bias=False)
        self.update = _SlotUpdate(dim, hidden_dim)
        self.process = PoolingProcess(
            k=k, init=ref(self.init), phi_q=ref(nn.Sequential(self.norm_slots, self.to_q)),
            phi_k=ref(nn.Sequential(self.norm_input, self.to_k)), similarity="dot", scale="sqrt",
            attention=_SlotWeights(eps), phi_v=ref(nn.Sequential(self.norm_input, self.to_v)), f=-1.0,
            phi_u=ref(self.update), iterations=iterations)


# ----------------------------------------------------------------------------------------------------------------
# Group 3
# ----------------------------------------------------------------------------------------------------------------
def _mlp(dim: int, reduction: int) -> nn.Sequential:
    hidden = max(1, dim // reduction)
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))


class _Gate(nn.Module):
    """σ(MLP(u))."""

    label = "σ(MLP(U))"

    def __init__(self, mlp: nn.Module):
        super().__init__()
        self.mlp = mlp

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(u))


@stateful
def _gated_values(x: torch.Tensor, state: PoolState) -> torch.Tensor:
    """φ_V(X) = diag(q) X: the channel gate q (the query) re-weights every location."""
    return x * state.q


_gated_values.label = "diag(q)X"


class SE(Pooling):
    """Squeeze-and-excitation [Hu et al.], adapted to pooling by GAP at the end (§4.2): U⁰ = π_A(X),
    q = φ_Q(U) = σ(MLP(U)) (reduction ``reduction``), A = 1_p/p, V = diag(q) X, f = f₋₁ — u = q ⊙ π_A(X),
    the GAP of the SE block's output."""

    name = "se"

    def __init__(self, dim: int, reduction: int = 16):
        super().__init__(dim)
        self.gate = _Gate(_mlp(dim, reduction))
        self.process = PoolingProcess(init="gap", phi_q=ref(self.gate), similarity=None, attention="uniform",
                                      phi_v=_gated_values, f=-1.0)


def _gap_and_max(x: torch.Tensor) -> torch.Tensor:
    """CBAM's U⁰: [π_A(X); max over locations] stacked along channels, (B, 1, 2d)."""
    return torch.cat([gap(x), x.amax(dim=1, keepdim=True)], dim=-1)


_gap_and_max.label = "[π_A(X); max(X)]"


class _CbamChannelGate(nn.Module):
    """q = σ(MLP(u_avg) + MLP(u_max)) with a shared MLP."""

    label = "σ(MLP(u_avg) + MLP(u_max))"

    def __init__(self, mlp: nn.Module, dim: int):
        super().__init__()
        self.mlp, self.dim = mlp, dim

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(u[..., : self.dim]) + self.mlp(u[..., self.dim:]))


def _cbam_similarity(k: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Two similarities per location: xᵀq/d (the channel mean of diag(q)X) and max_i x_i q_i (its channel max)."""
    prod = k.unsqueeze(-2) * q.unsqueeze(-3)  # (..., p, k, n)
    return torch.stack([prod.mean(-1), prod.amax(-1)], dim=-1)  # (..., p, k, 2)


_cbam_similarity.label = "(xᵀy/d, maxᵢ xᵢyᵢ)"


class _SpatialGate(nn.Module):
    """CBAM's h: A = σ(conv₇(S)) / p on the spatial grid."""

    label = "σ(conv₇(S))/p"

    uses_state = True

    def __init__(self, in_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, s: torch.Tensor, state: PoolState) -> torch.Tensor:
        h, w = _require_grid(state, "CBAM's spatial attention")
        b, m, p, k = s.shape[:4]
        maps = s.reshape(b, p, -1).transpose(1, 2).reshape(b, -1, h, w)  # (B, channels, H, W)
        a = torch.sigmoid(self.conv(maps)).reshape(b, 1, p, 1)
        return a / p


class CBAM(Pooling):
    """CBAM [Woo et al.], adapted to pooling by GAP at the end (§4.2). In the framework:
    U⁰ = [π_A(X); max_j x_j], q = φ_Q(U) = σ(MLP(u_avg) + MLP(u_max)) (channel attention), φ_K = X,
    S = (xᵀq/d, max_i x_i q_i) — the channel mean and max of diag(q)X, a pairwise interaction of q and X —,
    A = σ(conv₇(S))/p (spatial attention), V = diag(q) X, f = f₋₁: u = π_A(CBAM(X)).

    ``simplified=True`` is Table 1's row: average branches only (U⁰ = π_A(X), q = σ(MLP(U)), S = xᵀq/d).
    The spatial convolution has no BatchNorm (CBAM's equations; its code adds one).
    """

    name = "cbam"

    def __init__(self, dim: int, reduction: int = 16, kernel_size: int = 7, simplified: bool = False):
        super().__init__(dim)
        self.simplified = simplified
        self.mlp = _mlp(dim, reduction)
        self.spatial = _SpatialGate(1 if simplified else 2, kernel_size)
        if simplified:
            self.process = PoolingProcess(init="gap", phi_q=ref(_Gate(self.mlp)), similarity="dot",
                                          scale=1.0 / dim, attention=ref(self.spatial), phi_v=_gated_values, f=-1.0)
        else:
            self.process = PoolingProcess(init=_gap_and_max, phi_q=ref(_CbamChannelGate(self.mlp, dim)),
                                          similarity=_cbam_similarity, attention=ref(self.spatial),
                                          phi_v=_gated_values, f=-1.0)


# ----------------------------------------------------------------------------------------------------------------
# Group 4: transformers (timm blocks; the framework reads their weights, timm's own forward is the reference)
# ----------------------------------------------------------------------------------------------------------------
def _qkv_slice(blk: Block, x: torch.Tensor, which: int) -> torch.Tensor:
    d = blk.attn.qkv.in_features
    w = blk.attn.qkv.weight[which * d:(which + 1) * d]
    b = None if blk.attn.qkv.bias is None else blk.attn.qkv.bias[which * d:(which + 1) * d]
    return F.linear(blk.norm1(x), w, b)


def _vit_update(blk: Block, z: torch.Tensor, state: PoolState) -> torch.Tensor:
    """φ_U: U ← U + W_U g_m⁻¹(Z) (attention output projection), U ← U + MLP(LN(U))."""
    u = state.u + blk.drop_path1(blk.ls1(blk.attn.proj_drop(blk.attn.proj(blk.attn.norm(z)))))
    return u + blk.drop_path2(blk.ls2(blk.mlp(blk.norm2(u))))


def _vit_patch_stream(blk: Block, x: torch.Tensor, state: PoolState) -> torch.Tensor:
    """φ_X = MLP(MSA(X)): the block's update of the patch tokens (which also attend to the CLS token)."""
    k = state.u.shape[1]
    return blk(torch.cat([state.u, x], dim=1))[:, k:]


def _bind(fn, blk, uses_state: bool = False):
    part = functools.partial(fn, blk)
    if uses_state:
        part.uses_state = True
    return part


class ViTPool(Pooling):
    """ViT's CLS-token pooling [Dosovitskiy et al.] as a pooling head: a learnable CLS token U⁰ and ``depth``
    pre-norm transformer blocks (timm ``Block``: m = ``num_heads`` heads, MLP ratio 4) over [CLS; X], then a
    LayerNorm — the §4.2 experiment ("ViT: multi-head self-attention, learnable CLS and four heads, a single layer at
    the end"). Framework: φ_Q = g_m(W_Q LN(U)), φ_K = g_m(W_K LN(·)), φ_V = g_m(W_V LN(·)) on [U; X] (the CLS token
    also attends to itself, which Table 1's simplification drops), h = σ₂(S/√(d/m)) per head, f = f₋₁,
    φ_U = residual W_U g_m⁻¹(Z) then residual MLP, φ_X = the block's patch update (depth > 1).
    Attention: the last block's CLS → patch weights, mean over heads.
    """

    name = "vit"

    def __init__(self, dim: int, num_heads: int = 4, depth: int = 1, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList([Block(dim, num_heads, mlp_ratio, qkv_bias=qkv_bias) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        blocks = list(self.blocks)
        self.process = PoolingProcess(
            init=ref(self.cls_token),
            phi_q=[functools.partial(_qkv_slice_q, b) for b in blocks],
            phi_k=[functools.partial(_qkv_slice_k, b) for b in blocks],
            phi_v=[functools.partial(_qkv_slice_v, b) for b in blocks],
            similarity="dot", scale="sqrt", attention="softmax_locations", f=-1.0,
            phi_x=[_bind(_vit_patch_stream, b, True) for b in blocks],
            phi_u=[_bind(_vit_update, b, True) for b in blocks],
            iterations=depth, num_heads=num_heads, attend_to_queries=True)

    def pool_tokens(self, x, grid=None, u0=None) -> PoolingResult:
        res = self.process(x, u0=u0, grid=grid)
        return PoolingResult(self.norm(res.u), res.a, res.a_heads)


def _qkv_slice_q(blk, x):
    return _qkv_slice(blk, x, 0)


def _qkv_slice_k(blk, x):
    return _qkv_slice(blk, x, 1)


def _qkv_slice_v(blk, x):
    return _qkv_slice(blk, x, 2)


_qkv_slice_q.label = "g_m(W_Q LN(U))"
_qkv_slice_k.label = "g_m(W_K LN(·))"
_qkv_slice_v.label = "g_m(W_V LN(·))"
_vit_patch_stream.label = "MLP(MSA([U; X]))"
_vit_update.label = "MLP(W_U g_m⁻¹(Z)) + residuals"


def _cait_q(blk, u):
    return blk.attn.q(blk.norm1(u))


def _cait_k(blk, x):
    return blk.attn.k(blk.norm1(x))


def _cait_v(blk, x):
    return blk.attn.v(blk.norm1(x))


def _cait_update(blk, z: torch.Tensor, state: PoolState) -> torch.Tensor:
    u = state.u + blk.drop_path(blk.gamma_1 * blk.attn.proj_drop(blk.attn.proj(z)))
    return u + blk.drop_path(blk.gamma_2 * blk.mlp(blk.norm2(u)))


_cait_q.label = "g_m(W_Q LN(U))"
_cait_k.label = "g_m(W_K LN(·))"
_cait_v.label = "g_m(W_V LN(·))"
_cait_update.label = "MLP(W_U g_m⁻¹(Z)) + LayerScale residuals"


class CaiTPool(Pooling):
    """CaiT's class-attention pooling [Touvron et al.]: a learnable CLS token and ``depth`` class-attention blocks
    (timm ``LayerScaleBlockClassAttn``) in which only the CLS token is updated, attending to [CLS; X] while the
    patch embeddings stay fixed (φ_X = X), then a LayerNorm. Same φ_Q, φ_K, φ_V, h, f, φ_U as :class:`ViTPool`
    with LayerScale (``init_values``). Attention: the last block's CLS → patch weights, mean over heads.
    """

    name = "cait"

    def __init__(self, dim: int, num_heads: int = 4, depth: int = 2, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 init_values: float = 1e-5):
        super().__init__(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.ModuleList([
            LayerScaleBlockClassAttn(dim, num_heads, mlp_ratio, qkv_bias=qkv_bias, init_values=init_values)
            for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        blocks = list(self.blocks)
        self.process = PoolingProcess(
            init=ref(self.cls_token),
            phi_q=[functools.partial(_cait_q, b) for b in blocks],
            phi_k=[functools.partial(_cait_k, b) for b in blocks],
            phi_v=[functools.partial(_cait_v, b) for b in blocks],
            similarity="dot", scale="sqrt", attention="softmax_locations", f=-1.0,
            phi_u=[_bind(_cait_update, b, True) for b in blocks],
            iterations=depth, num_heads=num_heads, attend_to_queries=True)

    def pool_tokens(self, x, grid=None, u0=None) -> PoolingResult:
        res = self.process(x, u0=u0, grid=grid)
        return PoolingResult(self.norm(res.u), res.a, res.a_heads)


# ----------------------------------------------------------------------------------------------------------------
# Group 5: SimPool as a configuration (the module itself lives in simpool.py)
# ----------------------------------------------------------------------------------------------------------------
class _SimPoolValues(nn.Module):
    """φ_V(X) = LN(X) − min LN(X) + ε (Eq. 16; min per sample or per batch), or LN(X) when γ is None."""

    label = "LN(X) − min LN(X) + ε"

    def __init__(self, sp: SimPool):
        super().__init__()
        object.__setattr__(self, "_sp", sp)  # not registered: the parameters belong to the SimPool module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sp = self._sp
        v = sp.norm(x)
        if sp.gamma is None:
            return v
        vmin = v.amin(dim=(1, 2), keepdim=True) if sp.min_over == "sample" else v.amin()
        return v - vmin + sp.eps


def simpool_process(sp: SimPool) -> PoolingProcess:
    """SimPool (Eq. 12–17) written as a framework configuration that shares ``sp``'s parameters:
    U⁰ = π_A(X), φ_Q = W_Q, φ_K = W_K∘LN, s = dot, h = σ₂(S/√(d/m)), φ_V = LN(X) − min + ε, f = f_α with
    α = 1 − 2γ (f₋₁ when γ is None), φ_U = identity (+ β). ``simpool_process(sp)(x).u[:, 0]`` equals ``sp(x)``."""
    f = -1.0 if sp.gamma is None else FAlpha(gamma=sp.gamma)
    phi_u = None
    if sp.beta is not None:
        beta = sp.beta

        def phi_u(z: torch.Tensor) -> torch.Tensor:
            return z + beta

        phi_u.label = "Z + β"
    return PoolingProcess(init="gap", phi_q=ref(sp.wq), phi_k=ref(nn.Sequential(sp.norm, sp.wk)),
                          similarity="dot", scale="sqrt" if sp.scale == sp.head_dim ** -0.5 else sp.scale,
                          attention="softmax_locations",
                          phi_v=ref(_SimPoolValues(sp)), f=f, phi_u=phi_u, num_heads=sp.num_heads)


# ----------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------
POOLING_METHODS: dict[str, type[nn.Module]] = {
    "gap": GAP, "max": MaxPool, "gem": GeM, "lse": LSE, "how": HOW,
    "otk": OTK, "kmeans": KMeans, "slot": SlotAttention,
    "se": SE, "cbam": CBAM,
    "vit": ViTPool, "cait": CaiTPool,
    "simpool": SimPool,
}
_NEEDS_DIM = {"how", "otk", "slot", "se", "cbam", "vit", "cait", "simpool"}


def table1(dim: int = 16):
    """Table 1 as implemented: one row per method, read from each module's configuration (a pandas DataFrame;
    SimPool shown with γ = 2)."""
    import pandas as pd

    rows = []
    for name in POOLING_METHODS:
        module = pool(name, dim=dim, **({"gamma": 2.0} if name == "simpool" else {}))
        row = {"method": name, **simpool_process(module).describe()} if isinstance(module, SimPool) \
            else module.describe()
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def pool(name: str, dim: int | None = None, **kwargs) -> nn.Module:
    """The Table-1 pooling method ``name`` as a module (see the module docstring); ``dim`` is the channel count D
    (required by the methods with parameters). Extra keywords go to the method's class."""
    key = name.lower()
    if key not in POOLING_METHODS:
        raise ValueError(f"unknown pooling {name!r}; choose from {sorted(POOLING_METHODS)}")
    if key in _NEEDS_DIM and dim is None:
        raise ValueError(f"pool({name!r}) needs dim=<number of channels>")
    return POOLING_METHODS[key](dim, **kwargs)
