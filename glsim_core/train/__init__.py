"""Training: one config dataclass, one engine (``fit``), the papers' protocol (LR search, seeds, comparisons)."""

from .config import TrainConfig, add_config_arguments, config_from_args
from .engine import (
    FitResult,
    NonFiniteLossError,
    build_model,
    evaluate,
    fit,
    load_checkpoint,
    load_data,
    load_trained_model,
    lr_at,
)

__all__ = [
    "TrainConfig", "add_config_arguments", "config_from_args", "fit", "evaluate", "FitResult",
    "NonFiniteLossError", "build_model", "load_data", "load_checkpoint", "load_trained_model", "lr_at",
]
