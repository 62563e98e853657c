"""Discriminative feature selection: GLS (global-local similarity), attention-based mechanisms, their cost.

* :mod:`.gls` - :func:`global_local_similarity` (Eq. 1-2), :func:`select_boxes` (the top-O rectangle),
  :func:`crop_and_resize` (batched crop + bilinear resize).
* :mod:`.attention` - last-layer attention, FFVT's MAWS, TransFG's PSM, attention rollout, and
  :func:`token_scores` for any mechanism (GLS and SimPool's attention included) on a model.
* :mod:`.flops` - :func:`dfsm_flops` (Tables 1, 7, 8), measured FLOPs and CPU time.
* :mod:`.probe` (import it from there) - :func:`~.probe.gls_layer_probe` (per-layer top-O / bottom-O tokens inside the
  object box for GLS, attention and rollout) and :func:`~.probe.localization_table` (MaxBoxAccV2 of every map).
"""

from .attention import (
    ATTENTION_MECHANISMS,
    MECHANISMS,
    attention_rollout,
    last_layer_attention,
    maws,
    psm,
    scores_from_attention,
    token_scores,
)
from .flops import DFSM_METHODS, cost_table, dfsm_flops, dfsm_table, measured_dfsm_flops, paper_table, time_dfsm
from .gls import (
    BOX_RULES,
    METRICS,
    crop_and_resize,
    crop_and_resize_reference,
    global_local_similarity,
    select_boxes,
    top_o_indices,
)

__all__ = [
    "ATTENTION_MECHANISMS", "BOX_RULES", "DFSM_METHODS", "MECHANISMS", "METRICS",
    "attention_rollout", "cost_table", "crop_and_resize", "crop_and_resize_reference", "dfsm_flops", "dfsm_table",
    "global_local_similarity", "last_layer_attention", "maws", "measured_dfsm_flops", "paper_table", "psm",
    "scores_from_attention", "select_boxes", "time_dfsm", "token_scores", "top_o_indices",
]
