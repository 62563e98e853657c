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

from .simpool import SimPool

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

    def _lin(self, x: torch.Tensor, lin: nn.Linear | None, cdt: torch.dtype) -> torch.Tensor:
        return x if lin is None else F.linear(x, self._w(lin.weight, cdt), self._w(lin.bias, cdt))

    def _qkv(self, xt: torch.Tensor, cdt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query, keys and values with Table 10's choice of linear maps and LayerNorms (attention and the
        generalised mean are :meth:`SimPool.forward`'s)."""
        u0 = xt.mean(dim=1, keepdim=True)  # (12)
        xn = self._layer_norm(xt, self.norm, cdt) if self.norm is not None else xt
        q_in = self._layer_norm(u0, self.norm_q, cdt) if self.norm_q is not None else u0
        q = self._lin(q_in, self.wq, cdt)  # (13)
        k = self._lin(xn if "k" in self.layernorm else xt, self.wk, cdt)  # (14)
        v = self._lin(xn if "v" in self.layernorm else xt, self.wv, cdt)
        return q, k, v
