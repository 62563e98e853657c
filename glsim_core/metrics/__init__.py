"""Metrics: accuracy and its protocol statistics, localisation (MaxBoxAccV2, token hit rates), cost and speed."""

from .classification import (
    accuracy_from_confusion,
    confusion_matrix,
    format_mean_std,
    mean_std,
    per_class_accuracy,
    relative_error,
    top1_accuracy,
)
from .efficiency import benchmark_inference
from .flops import count_parameters, measure_flops
from .localization import MaxBoxAccV2, box_iou, boxes_from_mask, max_box_acc, token_box_hits

__all__ = [
    "count_parameters", "measure_flops", "top1_accuracy", "confusion_matrix", "per_class_accuracy",
    "accuracy_from_confusion", "relative_error", "mean_std", "format_mean_std", "MaxBoxAccV2", "max_box_acc",
    "boxes_from_mask", "box_iou", "token_box_hits", "benchmark_inference",
]
