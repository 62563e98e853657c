"""Notebook-level analyses built on the methods (models, pooling, selection): what a notebook would otherwise
define inline. Each module is small and tested; notebooks import from here instead of carrying the logic."""

from .maps import map_entropy, rank_correlation, top_o_overlap, uniform_entropy
from .pooling_maps import POOLING_MAP_RECIPES, load_pooling_map_models

__all__ = ["POOLING_MAP_RECIPES", "load_pooling_map_models", "map_entropy", "rank_correlation", "top_o_overlap",
           "uniform_entropy"]
