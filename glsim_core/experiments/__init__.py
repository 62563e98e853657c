"""Experiments: sweeps over notebooks or training configs, aggregation into mean ± std tables beside the papers'
numbers, the ablation grids of notebook 07, and the reproduction report.

* :mod:`.sweep` — :func:`run_sweep`, :func:`collect` (``python -m glsim_core sweep``)
* :mod:`.aggregate` — :func:`summarize`, :func:`plot_summary`, :data:`PAPER_REFERENCE`
* :mod:`.ablations` — :data:`ABLATIONS` (one entry per paper table), :func:`run_ablations`
* :mod:`.report` — :func:`build_report` (``python -m glsim_core report``)
"""

from .sweep import collect, expand_grid, parse_grid, parse_value, run_sweep

__all__ = ["run_sweep", "collect", "expand_grid", "parse_grid", "parse_value"]
