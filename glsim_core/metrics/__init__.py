"""Metrics: measured FLOPs and parameter counts (more land with the data/training work)."""

from .flops import count_parameters, measure_flops

__all__ = ["count_parameters", "measure_flops"]
