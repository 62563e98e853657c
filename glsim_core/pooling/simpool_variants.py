"""SimPool's design ablations (SimPool Table 10) as options of one module: :class:`SimPoolVariant`.

Table 10 (right) places linear layers and LayerNorms on the query q, the keys k and the values v; SimPool's choice is
"linear on q, k; LN on k, v" (56.6 with f = f_{-1}). Table 10 (left) also ties the query and key maps, W_Q = W_K
(56.4, half the parameters). With its defaults, :class:`SimPoolVariant` *is* :class:`~glsim_core.pooling.SimPool`
(same parameters, same outputs); the options:

* ``linear``: subset of ``("q", "k", "v")`` with a linear map: q = W_Q u⁰ (Eq. 13), K = W_K ·, V = W_V ·.
* ``layernorm``: subset of ``("q", "k", "v")`` with a LayerNorm before the (optional) linear map: LN on q normalises
  the query seed u⁰; k and v share one LayerNorm (``norm``, SimPool's) when both have it, as in SimPool.
* ``shared_qk``: W_K is W_Q (one parameter); needs linear layers on both q and k.

The generalised mean (γ, Eq. 16–17) and the numerical guards are SimPool's. Not in the authors' release (it only
ships the chosen design); written from the paper's Table 10 description.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .framework import as_tokens, resolve_grid
from .simpool import _HUGE, SimPool, fp32_region

__all__ = ["SimPoolVariant", "SIMPOOL_DEFAULT_LINEAR", "SIMPOOL_DEFAULT_LAYERNORM"]

SIMPOOL_DEFAULT_LINEAR = ("q", "k")
SIMPOOL_DEFAULT_LAYERNORM = ("k", "v")
_PARTS = ("q", "k", "v")


def _parts(value, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = tuple(c for c in value.replace(",", "") if not c.isspace())
    parts = tuple(value)
    bad = [p for p in parts if p not in _PARTS]
    if bad or len(set(parts)) != len(parts):
        raise ValueError(f"{name} must be a subset of {_PARTS} (e.g. ('q', 'k') or 'qk'), got {value!r}")
    return tuple(p for p in _PARTS if p in parts)


class SimPoolVariant(SimPool):
    """SimPool with Table 10's options (see the module docstring); the defaults equal :class:`SimPool`."""

    def __init__(self, dim: int, gamma: float | None = None, num_heads: int = 1, qkv_bias: bool = False,
                 use_beta: bool = False, eps: float = 1e-6, min_over: str = "sample", qk_scale: float | None = None,
                 linear=SIMPOOL_DEFAULT_LINEAR, layernorm=SIMPOOL_DEFAULT_LAYERNORM, shared_qk: bool = False):
        super().__init__(dim, gamma=gamma, num_heads=num_heads, qkv_bias=qkv_bias, use_beta=use_beta, eps=eps,
                         min_over=min_over, qk_scale=qk_scale)
        self.linear, self.layernorm = _parts(linear, "linear"), _parts(layernorm, "layernorm")
        self.shared_qk = bool(shared_qk)
        if self.shared_qk and not {"q", "k"} <= set(self.linear):
            raise ValueError("shared_qk=True (W_Q = W_K) needs linear layers on q and k")
        if "q" not in self.linear:
            self.wq = None
        if "k" not in self.linear:
            self.wk = None
        elif self.shared_qk:
            self.wk = self.wq  # one parameter, registered under both names
        self.wv = nn.Linear(dim, dim, bias=qkv_bias) if "v" in self.linear else None
        self.norm_q = nn.LayerNorm(dim, eps=1e-6) if "q" in self.layernorm else None
        if not {"k", "v"} & set(self.layernorm):
            self.norm = None

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", linear={''.join(self.linear) or 'none'}, "
                f"layernorm={''.join(self.layernorm) or 'none'}, shared_qk={self.shared_qk}")

    def _ln(self, x: torch.Tensor, norm: nn.LayerNorm, cdt: torch.dtype) -> torch.Tensor:
        return F.layer_norm(x, (x.shape[-1],), self._w(norm.weight, cdt), self._w(norm.bias, cdt), norm.eps)

    def _lin(self, x: torch.Tensor, lin: nn.Linear | None, cdt: torch.dtype) -> torch.Tensor:
        return x if lin is None else F.linear(x, self._w(lin.weight, cdt), self._w(lin.bias, cdt))

    def forward(self, x: torch.Tensor, return_attention: bool = False, grid: tuple[int, int] | None = None):
        tokens, map_grid = as_tokens(x)
        grid = map_grid or (resolve_grid(tokens.shape[1], grid) if grid is not None else None)
        b, n, d = tokens.shape
        if d != self.dim:
            raise ValueError(f"SimPoolVariant(dim={self.dim}) got {d} channels (input shape {tuple(x.shape)})")
        if n < 1:
            raise ValueError("SimPool needs at least one token")
        out_dtype = tokens.dtype if tokens.is_floating_point() else torch.float32
        m, h = self.num_heads, self.head_dim
        cdt = torch.float64 if tokens.dtype == torch.float64 else torch.float32
        with fp32_region(tokens.device.type):
            xt = tokens.to(cdt)
            u0 = xt.mean(dim=1, keepdim=True)  # (12)
            peak = xt.detach().abs().amax(dim=-1, keepdim=True)
            xs = xt / torch.where(peak > _HUGE, peak, torch.ones_like(peak))
            xn = self._ln(xs, self.norm, cdt) if self.norm is not None else xt
            q_in = self._ln(u0, self.norm_q, cdt) if self.norm_q is not None else u0
            q = self._lin(q_in, self.wq, cdt)  # (13)
            k = self._lin(xn if "k" in self.layernorm else xt, self.wk, cdt)  # (14)
            v_in = xn if "v" in self.layernorm else xt
            v_all = self._lin(v_in, self.wv, cdt)
            q = q.reshape(b, 1, m, h).transpose(1, 2)
            k = k.reshape(b, n, m, h).transpose(1, 2)
            v = v_all.reshape(b, n, m, h).transpose(1, 2)
            logits = (q @ k.transpose(-2, -1)) * self.scale
            logits = torch.nan_to_num(logits, nan=0.0, posinf=torch.finfo(logits.dtype).max,
                                      neginf=torch.finfo(logits.dtype).min)
            attn = logits.softmax(dim=-1)  # (15)
            if self.gamma is None:
                z = attn @ v
            else:
                vmin = v_all.amin(dim=(1, 2)).reshape(b, 1, 1, 1) if self.min_over == "sample" else v_all.amin()
                shifted = v - vmin + self.eps  # (16)
                if self.gamma == 0:
                    z = torch.exp(attn @ torch.log(shifted))
                else:
                    z = (attn @ shifted.pow(self.gamma)).pow(1.0 / self.gamma)  # (17)
                if self.beta is not None:
                    z = z + self.beta.to(cdt)
            pooled = z.transpose(1, 2).reshape(b, d).to(out_dtype)
        if not return_attention:
            return pooled
        a = attn.mean(dim=1)[:, 0].to(out_dtype)
        if grid is not None:
            a = a.reshape(b, *grid)
        return pooled, a
