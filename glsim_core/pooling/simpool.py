"""SimPool (Psomas et al., §3.3, Eq. 12–17): attention-based pooling with a GAP query and a generalised mean.

    u⁰ = π_A(X) = X 1_p / p                      (12)  query seed: GAP of the *raw* features
    q  = W_Q u⁰                                  (13)
    K  = W_K LN(X)                               (14)
    a  = softmax(Kᵀ q / √(d/m)) over locations   (15)  (m heads: one softmax per head)
    V  = LN(X) − min LN(X) + ε                   (16)  only with γ; min per sample (paper) or per batch (release)
    u  = (V^γ a)^{1/γ}   (γ = (1 − α)/2)         (17)  γ = None: u = LN(X) a (plain weighted average, no shift)

The LayerNorm (``norm``) on the patch tokens is shared by keys and values, there is no W_V and no output
projection (Table 10, right: "linear on q, k; LN on k, v").
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from .framework import as_tokens, resolve_grid

__all__ = ["SimPool", "fp32_region"]

_AUTOCAST_DEVICES = ("cpu", "cuda", "mps", "xpu")
_HUGE = 1e15


def fp32_region(device_type: str) -> contextlib.AbstractContextManager:
    """A context that switches autocast off on ``device_type`` (a no-op where autocast does not exist)."""
    if device_type not in _AUTOCAST_DEVICES:
        return contextlib.nullcontext()
    try:
        return torch.autocast(device_type=device_type, enabled=False)
    except (RuntimeError, ValueError):  # pragma: no cover - autocast unsupported for this device in this torch
        return contextlib.nullcontext()


class SimPool(nn.Module):
    """SimPool: ``forward(x)`` with patch tokens (B, N, D) or a map (B, D, H, W) returns (B, D).

    Pass patch tokens only (drop a ViT's CLS / register tokens first: SimPool replaces the CLS token).

    ``forward(x, return_attention=True)`` returns ``(pooled, attn)``: the attention map a (Eq. 15), (B, N) for tokens
    or (B, H, W) for maps (the mean over heads when ``num_heads > 1``). Maps are flattened as token h·W + w.

    Args:
        dim: channels D.
        gamma: γ of the generalised mean (Eq. 17; α = 1 − 2γ); ``None`` is the plain weighted average
            u = LN(X) a (no shift, no power). The paper uses 2.0 for CNNs and 1.25 for transformers. ``gamma=0`` is
            the geometric mean. **This is what ``gamma`` means wherever SimPool can be chosen**: ``pool("simpool",
            dim, gamma=...)``, ``GLSim(pool="simpool", gamma=...)``, ``create_model(name, pooling="simpool",
            gamma=...)`` and ``TrainConfig(pooling="simpool", model_kwargs={"gamma": ...})``. ``False`` is accepted
            as ``None`` (``timm.create_model`` drops keywords whose value is None, so pass ``False`` there). Left
            out, this class and ``pool`` use ``None``; the model-level entry points (GLSim, ``create_model``,
            ``TrainConfig``) use the paper's γ for the backbone's family (1.25 for a ViT, 2.0 for a CNN;
            ``glsim_core.models.heads.simpool_gamma``).
        num_heads: m; the per-head outputs are concatenated to (B, D).
        qkv_bias: bias in W_Q and W_K (the release has none).
        use_beta: add a learnable scalar ``beta`` (initialised to 0) after the inverse power; needs ``gamma``.
        eps: ε added with the minimum shift before the power (Eq. 16).
        min_over: ``"sample"`` (default, Eq. 16: the minimum over all elements of one image's values, so a
            sample's output never depends on its batch-mates) or ``"batch"`` (the release: one scalar over the
            whole batch tensor).
        qk_scale: overrides the attention scale (default (D/m)^-½).

    Parameters ``norm`` (LayerNorm, eps 1e-6), ``wq``, ``wk`` (Linear D→D) and ``beta`` carry the release's names.

    Equality with the authors' release (billpsomas/simpool ``sp.py``): with ``min_over="batch"`` and the same
    weights, ``gamma``, ``use_beta``, ``num_heads`` and inputs, the output equals the release's to float precision
    (the tests check 1e-5 against an independent re-implementation of the release's documented behaviour). What
    makes that true: the query seed is the GAP of the un-normalised input; one LayerNorm with eps 1e-6 feeds keys
    and values; no W_V; scale (D/m)^-½; softmax over tokens; with γ the values are shifted by the batch minimum plus
    eps = 1e-6 before the power and the shift is not removed; ``beta`` is added after the inverse power.

    Deliberate differences from the release: per-sample minimum by default; B = 1 keeps its
    batch dimension (the release squeezes it); heads are merged to (B, D) also with γ (the release returns
    (B, m, D/m) there); attention maps are returned; construction and computation follow the input's device (the
    release creates its eps/beta tensors on 'cuda'); ``use_beta`` without ``gamma`` is an error (the release ignores
    it). The head computes in float32 with autocast switched off (fp16/bf16 inputs and weights are upcast for this
    small head; float64 stays float64), divides tokens whose largest entry exceeds 1e15 by that entry before the
    LayerNorm (which is scale-invariant; its eps is negligible at that size) and guards non-finite attention
    logits, so constant inputs, all-zero maps and huge activations give finite outputs and gradients; the output
    has the input's floating dtype.
    """

    def __init__(self, dim: int, gamma: float | None = None, num_heads: int = 1, qkv_bias: bool = False,
                 use_beta: bool = False, eps: float = 1e-6, min_over: str = "sample", qk_scale: float | None = None):
        super().__init__()
        if dim < 1 or num_heads < 1 or dim % num_heads:
            raise ValueError(f"dim={dim} must be a positive multiple of num_heads={num_heads}")
        if min_over not in ("sample", "batch"):
            raise ValueError(f"min_over must be 'sample' (paper) or 'batch' (release), got {min_over!r}")
        if gamma is False:  # the same as None, wherever SimPool can be chosen (see ``gamma`` above)
            gamma = None
        if gamma is not None and not math.isfinite(float(gamma)):
            raise ValueError(f"gamma must be a finite number or None, got {gamma}")
        if use_beta and gamma is None:
            raise ValueError("use_beta=True needs gamma (beta is added after the inverse power of Eq. 17)")
        self.dim, self.num_heads = dim, num_heads
        self.gamma = None if gamma is None else float(gamma)
        self.eps, self.min_over, self.use_beta = float(eps), min_over, use_beta
        self.head_dim = dim // num_heads
        self.scale = qk_scale if qk_scale is not None else self.head_dim ** -0.5
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.wq = nn.Linear(dim, dim, bias=qkv_bias)
        self.wk = nn.Linear(dim, dim, bias=qkv_bias)
        self.beta = nn.Parameter(torch.zeros(1)) if use_beta else None
        self.k = 1
        self.out_dim = dim

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, gamma={self.gamma}, num_heads={self.num_heads}, eps={self.eps:g}, "
                f"min_over={self.min_over!r}, use_beta={self.use_beta}")

    @staticmethod
    def _w(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        return None if t is None else t.to(dtype)

    @staticmethod
    def _layer_norm(x: torch.Tensor, norm: nn.LayerNorm, cdt: torch.dtype) -> torch.Tensor:
        """``norm`` in ``cdt``. LayerNorm is scale-invariant: tokens beyond 1e15 are divided by their max |x| first,
        so that the variance cannot overflow float32 (a no-op for every token below that)."""
        peak = x.detach().abs().amax(dim=-1, keepdim=True)
        xs = x / torch.where(peak > _HUGE, peak, torch.ones_like(peak))
        return F.layer_norm(xs, (x.shape[-1],), SimPool._w(norm.weight, cdt), SimPool._w(norm.bias, cdt), norm.eps)

    def _qkv(self, xt: torch.Tensor, cdt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query (B, 1, D), keys and values (B, N, D) from the tokens: Eq. 12–14, values LN(X) (no W_V)."""
        u0 = xt.mean(dim=1, keepdim=True)  # (12) GAP of the raw features, (B, 1, D)
        xn = self._layer_norm(xt, self.norm, cdt)
        q = F.linear(u0, self._w(self.wq.weight, cdt), self._w(self.wq.bias, cdt))  # (13)
        k = F.linear(xn, self._w(self.wk.weight, cdt), self._w(self.wk.bias, cdt))  # (14)
        return q, k, xn

    def forward(self, x: torch.Tensor, return_attention: bool = False, grid: tuple[int, int] | None = None):
        """``grid=(H, W)`` reshapes the attention of token inputs to (B, H, W) (maps are reshaped anyway)."""
        tokens, map_grid = as_tokens(x)
        grid = map_grid or (resolve_grid(tokens.shape[1], grid) if grid is not None else None)
        b, n, d = tokens.shape
        if d != self.dim:
            raise ValueError(f"{type(self).__name__}(dim={self.dim}) got {d} channels (input shape "
                             f"{tuple(x.shape)})")
        if n < 1:
            raise ValueError("SimPool needs at least one token")
        out_dtype = tokens.dtype if tokens.is_floating_point() else torch.float32
        m, h = self.num_heads, self.head_dim
        cdt = torch.float64 if tokens.dtype == torch.float64 else torch.float32  # at least float32
        with fp32_region(tokens.device.type):
            q, k, values = self._qkv(tokens.to(cdt), cdt)
            q = q.reshape(b, 1, m, h).transpose(1, 2)  # (B, m, 1, h)
            k = k.reshape(b, n, m, h).transpose(1, 2)  # (B, m, N, h)
            v = values.reshape(b, n, m, h).transpose(1, 2)
            logits = (q @ k.transpose(-2, -1)) * self.scale
            logits = torch.nan_to_num(logits, nan=0.0, posinf=torch.finfo(logits.dtype).max,
                                      neginf=torch.finfo(logits.dtype).min)
            attn = logits.softmax(dim=-1)  # (15) over locations, (B, m, 1, N)
            if self.gamma is None:
                z = attn @ v
            else:
                if self.min_over == "sample":
                    vmin = values.amin(dim=(1, 2)).reshape(b, 1, 1, 1)
                else:
                    vmin = values.amin()
                shifted = v - vmin + self.eps  # (16)
                if self.gamma == 0:  # f = ln: weighted geometric mean
                    z = torch.exp(attn @ torch.log(shifted))
                else:
                    z = (attn @ shifted.pow(self.gamma)).pow(1.0 / self.gamma)  # (17)
                if self.beta is not None:
                    z = z + self.beta.to(cdt)
            pooled = z.transpose(1, 2).reshape(b, d)  # heads merged
        pooled = pooled.to(out_dtype)
        if not return_attention:
            return pooled
        a = attn.mean(dim=1)[:, 0].to(out_dtype)  # (B, N)
        if grid is not None:
            a = a.reshape(b, *grid)
        return pooled, a
