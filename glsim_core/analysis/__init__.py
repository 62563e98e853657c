"""Analysis above the methods layer: accuracy statistics, cost, localisation, and probes of trained models.

* :mod:`.accuracy` - top-1, confusion matrix, per-class accuracy, mean ± std over seeds, relative error.
* :mod:`.cost` - analytic FLOPs (GLSim Tables 1/7/8, SimPool Table 8), measured FLOPs (``torch.utils.flop_counter``),
  parameters, and one timer for throughput and the selection mechanisms.
* :mod:`.localisation` - MaxBoxAccV2 and token-in-box hit rates (numbers from maps and boxes).
* :mod:`.maps` - statistics of one token map (entropy after renormalising, top-O overlap, rank correlation).
* :mod:`.probes` - maps from models: :func:`~.probes.token_scores` for any mechanism, per-layer GLS probes,
  :func:`~.probes.localization_scores` / :func:`~.probes.localization_table` on a dataset.
"""

from .accuracy import (
    accuracy_from_confusion,
    confusion_matrix,
    format_mean_std,
    mean_std,
    per_class_accuracy,
    relative_error,
    top1_accuracy,
)
from .cost import benchmark_inference, count_parameters, dfsm_flops, measure_flops, throughput, time_call
from .localisation import MaxBoxAccV2, box_iou, boxes_from_mask, max_box_acc, token_box_hits
from .maps import map_entropy, rank_correlation, top_o_overlap, uniform_entropy
from .probes import localization_scores, token_scores

__all__ = [
    "accuracy_from_confusion", "confusion_matrix", "format_mean_std", "mean_std", "per_class_accuracy",
    "relative_error", "top1_accuracy", "benchmark_inference", "count_parameters", "dfsm_flops", "measure_flops",
    "throughput", "time_call", "MaxBoxAccV2", "box_iou", "boxes_from_mask", "max_box_acc", "token_box_hits",
    "localization_scores", "token_scores", "map_entropy", "rank_correlation", "top_o_overlap", "uniform_entropy",
]
