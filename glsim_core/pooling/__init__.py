"""Pooling: SimPool's generic framework (§3.1), every Table-1 method as a configuration, and SimPool itself.

>>> from glsim_core.pooling import SimPool, pool
>>> sp = SimPool(384, gamma=1.25)            # doctest: +SKIP
>>> head = pool("gem", dim=2048)             # any Table-1 name: gap, max, gem, lse, how, otk, kmeans, slot, se,
...                                          # cbam, vit, cait, simpool   # doctest: +SKIP
"""

from .framework import (
    ATTENTIONS,
    SIMILARITIES,
    Exp,
    FAlpha,
    PoolingProcess,
    PoolingResult,
    PoolState,
    as_tokens,
    distortion,
    f_alpha,
    f_alpha_inverse,
    implied_weights,
    sinkhorn,
    weighted_pool,
)
from .methods import POOLING_METHODS, Pooling, pool, simpool_process, table1
from .simpool import SimPool

__all__ = [
    "SimPool", "pool", "POOLING_METHODS", "Pooling", "simpool_process", "table1",
    "PoolingProcess", "PoolingResult", "PoolState", "FAlpha", "Exp", "ATTENTIONS", "SIMILARITIES",
    "as_tokens", "distortion", "f_alpha", "f_alpha_inverse", "implied_weights", "sinkhorn", "weighted_pool",
]
