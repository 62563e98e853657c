"""Discriminative feature selection: GLS (global-local similarity) and the attention-based mechanisms.

* :mod:`.gls` - :func:`global_local_similarity` (Eq. 1-2), :func:`select_boxes` (the top-O rectangle),
  :func:`crop_and_resize` (batched crop + bilinear resize).
* :mod:`.attention` - last-layer attention, FFVT's MAWS, TransFG's PSM, attention rollout, from recorded attention
  maps (:func:`glsim_core.models.record_attention`).

Part of the methods layer: imports torch and itself only. Running a mechanism on a model
(``glsim_core.analysis.probes.token_scores``) and the mechanisms' cost (``glsim_core.analysis.cost.dfsm_flops``) live
above it; ``from glsim_core.selection import token_scores, dfsm_flops`` keeps working (:mod:`glsim_core._compat`).
"""

from .attention import (
    ATTENTION_MECHANISMS,
    MECHANISMS,
    attention_kind,
    attention_layers,
    attention_rollout,
    last_layer_attention,
    maws,
    psm,
    scores_from_attention,
)
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
    "ATTENTION_MECHANISMS", "BOX_RULES", "MECHANISMS", "METRICS", "attention_kind", "attention_layers",
    "attention_rollout", "crop_and_resize", "crop_and_resize_reference", "global_local_similarity",
    "last_layer_attention", "maws", "psm", "scores_from_attention", "select_boxes", "top_o_indices",
]
