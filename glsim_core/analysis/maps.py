"""Summaries of spatial maps (attention, pooling weights, token scores) used across the notebooks."""

from __future__ import annotations

import math

import torch

from ..selection.gls import top_o_indices

__all__ = ["map_entropy", "uniform_entropy", "top_o_overlap", "rank_correlation"]


def map_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each non-negative map of ``maps`` (B, ...), **renormalised to sum 1 first**.

    A map that is a slice of a distribution — e.g. the CLS → patch row of an attention matrix, which leaves out the
    CLS token's attention to itself — does not sum to 1; its plain ``−Σ a log a`` is then not an entropy (it
    approaches 0 when the slice's mass is small, however spread the map is). After renormalising, 0 means one
    location holds everything and ``ln N`` (:func:`uniform_entropy`) means a uniform map. Returns (B,), float64.
    """
    m = maps.detach().reshape(maps.shape[0], -1).to(torch.float64)
    if (m < 0).any():
        raise ValueError("maps must be non-negative (shift or take the absolute value first)")
    total = m.sum(1, keepdim=True)
    if (total <= 0).any():
        raise ValueError("every map needs a positive sum")
    p = m / total
    return -(p * p.clamp_min(1e-300).log()).sum(1)


def uniform_entropy(n: int) -> float:
    """``ln n``: the largest entropy of a map over ``n`` locations (the uniform map's)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    return math.log(n)


def top_o_overlap(a: torch.Tensor, b: torch.Tensor, o: int) -> float:
    """Mean share of the top-``o`` tokens that two (B, N) score maps have in common (1: the same selection)."""

    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (B, N) score maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    ta, tb = top_o_indices(a, o), top_o_indices(b, o)
    shared = [len(set(p.tolist()) & set(q.tolist())) / o for p, q in zip(ta, tb)]
    return float(sum(shared) / len(shared))


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two (B, N) score maps, per row, averaged over the rows (ties broken by
    position)."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"need two (B, N) score maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    ra, rb = (t.argsort(1).argsort(1).to(torch.float64) for t in (a, b))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return float(((ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))).mean())
