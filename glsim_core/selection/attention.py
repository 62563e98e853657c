"""Attention-based discriminative feature selection mechanisms (GLSim Table 1, Figure 2), as (B, N) token scores.

Every mechanism maps a timm ViT's per-layer attention probabilities ``A_l`` (B, heads, T, T), T = prefix + N
tokens (collected with :func:`glsim_core.models.record_attention`, no fork of timm), to one score per patch
token, larger = more important, so that any of them can drive the GLSim crop or be drawn as a heatmap:

* :func:`last_layer_attention` - the CLS row of the last layer, averaged over heads (Figure 2, 2nd column).
* :func:`maws` - FFVT's mutual attention weight selection (Wang et al., 2021), from one layer's **pre-softmax**
  scores ``S = q k^T / sqrt(d)`` (recorded with ``record_attention(..., kind="logits")``): the head mean of the
  CLS row of ``softmax_keys(S)`` times the head mean of the CLS column of ``softmax_queries(S)``, patch tokens.
* :func:`psm` - TransFG's part selection module (He et al., 2022): the matrix product of the raw per-head
  attention of all layers **before the last**, ``A_{L-1} ... A_1`` (L-2 products), CLS row.
* :func:`attention_rollout` - Abnar & Zuidema (2020): ``Ã_l = norm_rows(mean_h A_l + I)`` (the identity accounts
  for the residual connection), ``R = Ã_L ... Ã_1``, CLS row.
* ``"gls"`` - global-local similarity (:func:`glsim_core.selection.global_local_similarity`), from the output tokens.
* ``"simpool"`` - SimPool's attention map (Eq. 15) when the model pools with SimPool.

``glsim_core.analysis.probes.token_scores`` runs a model on images and returns any of them. Differences from the
original methods, deliberate so that all mechanisms give one (B, N) map: TransFG picks the argmax token of *each
head* (and FFVT the top-k tokens of each layer) to feed a final transformer layer; here the per-head PSM maps are
averaged (``head_reduce="max"`` keeps the largest per-head value instead) and MAWS is one layer's map. Products run
in float32 (or float64) whatever the recorded dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["MECHANISMS", "ATTENTION_MECHANISMS", "last_layer_attention", "maws", "psm", "attention_rollout",
           "scores_from_attention", "attention_layers", "attention_kind"]

#: Mechanisms computed from recorded attention maps, and the blocks each one reads.
ATTENTION_MECHANISMS = ("attention", "maws", "psm", "rollout")
#: What each attention mechanism reads (``record_attention``'s ``kind``): MAWS needs the pre-softmax scores.
ATTENTION_KINDS = {"attention": "probs", "maws": "logits", "psm": "probs", "rollout": "probs"}
#: Every mechanism that scores tokens (``glsim_core.analysis.probes.token_scores`` runs any of them on a model).
MECHANISMS = ATTENTION_MECHANISMS + ("gls", "simpool")


def _stack(attentions: Sequence[torch.Tensor] | torch.Tensor, num_prefix_tokens: int) -> list[torch.Tensor]:
    if isinstance(attentions, torch.Tensor):
        attentions = [attentions] if attentions.ndim == 4 else list(attentions.unbind(0))
    attentions = list(attentions)
    if not attentions:
        raise ValueError("no attention maps given: record them with glsim_core.models.record_attention(model)")
    for a in attentions:
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"each attention map must be (batch, heads, T, T), got shape {tuple(a.shape)}")
    if attentions[0].shape[-1] <= num_prefix_tokens:
        raise ValueError(f"{attentions[0].shape[-1]} tokens but num_prefix_tokens={num_prefix_tokens}")
    dtype = torch.promote_types(attentions[0].dtype, torch.float32)
    return [a.detach().to(dtype) for a in attentions]


def last_layer_attention(attentions: Sequence[torch.Tensor], num_prefix_tokens: int = 1) -> torch.Tensor:
    """Head-mean CLS-row attention of the last map given: ``mean_h A_L[h, 0, prefix:]`` -> (B, N)."""
    a = _stack(attentions, num_prefix_tokens)[-1]
    return a[:, :, 0, num_prefix_tokens:].mean(1)


def maws(scores: Sequence[torch.Tensor], num_prefix_tokens: int = 1, layer: int = -1) -> torch.Tensor:
    """FFVT's MAWS score of one layer (default: the last), (B, N), from **pre-softmax** scores ``S`` (B, H, T, T).

    ``a = mean_h softmax_j(S)[h, 0, prefix:]`` (the attention probabilities of the CLS query over the patches) and
    ``b = mean_h softmax_i(S)[h, prefix:, 0]`` (the CLS key's scores normalised over **all queries** i, the CLS
    query included, then read at the patch rows); the score is ``a * b``. Record ``S`` with
    ``record_attention(model, kind="logits")``: a softmax over probabilities would flatten ``b`` and make MAWS
    almost the last-layer attention.
    """
    s = _stack(scores, num_prefix_tokens)[layer]
    row = s.softmax(dim=-1)[:, :, 0, num_prefix_tokens:].mean(1)
    col = s.softmax(dim=-2)[:, :, num_prefix_tokens:, 0].mean(1)
    return row * col


def psm(attentions: Sequence[torch.Tensor], num_prefix_tokens: int = 1, head_reduce: str = "mean",
        exclude_last: bool = True) -> torch.Tensor:
    """TransFG's part selection: CLS row of ``A_{L-1} @ ... @ A_1`` per head, reduced over heads -> (B, N).

    ``exclude_last=True`` (TransFG) uses every map but the last one given (the last layer is the one the selected
    tokens are fed to), i.e. L-2 (B, H, T, T) matrix products for L maps; ``head_reduce`` "mean" or "max".
    """
    if head_reduce not in ("mean", "max"):
        raise ValueError(f"head_reduce must be 'mean' or 'max', got {head_reduce!r}")
    maps = _stack(attentions, num_prefix_tokens)
    if exclude_last:
        if len(maps) < 2:
            raise ValueError("psm needs at least 2 attention maps (it excludes the last layer)")
        maps = maps[:-1]
    joint = maps[0]
    for a in maps[1:]:
        joint = a @ joint
    cls_row = joint[:, :, 0, num_prefix_tokens:]
    return cls_row.mean(1) if head_reduce == "mean" else cls_row.amax(1)


def attention_rollout(attentions: Sequence[torch.Tensor], num_prefix_tokens: int = 1,
                      residual: bool = True) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020) over all maps given: CLS row of ``Ã_L ... Ã_1`` -> (B, N).

    ``Ã_l = (mean_h A_l + I) / rowsum`` with ``residual=True`` (the paper's treatment of the skip connection:
    equivalent to ``0.5 A + 0.5 I``), else ``mean_h A_l``. L-1 (B, T, T) matrix products.
    """
    maps = _stack(attentions, num_prefix_tokens)
    joint = None
    for a in maps:
        a = a.mean(1)
        if residual:
            a = a + torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
            a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    return joint[:, 0, num_prefix_tokens:]


def attention_layers(method: str, depth: int) -> list[int]:
    """Which blocks' attention a mechanism reads (so only those are recorded)."""
    if method in ("attention", "maws"):
        return [depth - 1]
    if method in ("psm", "rollout"):
        return list(range(depth))
    raise ValueError(f"{method!r} does not read attention maps; attention mechanisms: {ATTENTION_MECHANISMS}")


def attention_kind(method: str) -> str:
    """``"probs"`` or ``"logits"``: what :func:`glsim_core.models.record_attention` must record for ``method``."""
    if method not in ATTENTION_KINDS:
        raise ValueError(f"{method!r} does not read attention maps; attention mechanisms: {ATTENTION_MECHANISMS}")
    return ATTENTION_KINDS[method]


def scores_from_attention(method: str, attentions: Sequence[torch.Tensor], num_prefix_tokens: int = 1,
                          **kwargs) -> torch.Tensor:
    """Dispatch an attention mechanism by name ("attention", "maws", "psm", "rollout")."""
    fns = {"attention": last_layer_attention, "maws": maws, "psm": psm, "rollout": attention_rollout}
    if method not in fns:
        raise ValueError(f"unknown attention mechanism {method!r}; choose one of {ATTENTION_MECHANISMS}")
    return fns[method](attentions, num_prefix_tokens, **kwargs)
