"""Coursework: autograded self-checks for the exercise notebooks, and the generator of the student notebooks.

Every exercise has a check, ``check_<name>(student_fn_or_namespace)``, that runs hidden, deterministic CPU cases
against a reference of its own (closed forms, explicit loops: not the core, so a bug in the core cannot make it
accept the same wrong answer), prints a friendly verdict (which case failed, expected vs got, a hint — never the
solution) and returns a :class:`CheckResult`. While the student's code runs, the core's implementation of what the
exercise asks for raises (:func:`.grading.references_blocked`): a submission that calls it fails with a hint::

    >>> from glsim_core.exercises import check_f_alpha
    >>> result = check_f_alpha(weighted_power_mean)        # doctest: +SKIP
    ✅ f_alpha (Eq. 8: the pooling function f_α): all 8 hidden cases passed. Well done!
    >>> result.passed, [c.status for c in result.cases]   # doctest: +SKIP

A stub that still raises ``NotImplementedError`` gets a "not implemented yet" verdict; an exception in the student's
code becomes a verdict naming the exception, the case and the line. :func:`summary` returns the latest result of
every exercise checked in this process (the notebooks record it; CI asserts on it).

The solution notebooks (``notebooks/exercises/solutions/``) are the single source of truth;
``python -m glsim_core exercises generate`` writes the student notebooks from them (:mod:`.generate`).
The checks import torch lazily, so the generator runs without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import EXERCISES, NOTEBOOKS, PENDING, Exercise, exercises_in
from .grading import STUB_MESSAGE, CaseResult, CheckResult, reset, results, scoreboard, summary

_CHECKS = {
    "check_f_alpha": ".checks_pooling",
    "check_pooling_configs": ".checks_pooling",
    "check_simpool_forward": ".checks_pooling",
    "check_gamma_sharpness": ".checks_pooling",
    "check_gls": ".checks_selection",
    "check_enclosing_box": ".checks_selection",
    "check_box_rule_ablation": ".checks_selection",
    "check_attention_rollout": ".checks_selection",
    "check_dfsm_flops": ".checks_selection",
    "check_estimated_boxes": ".checks_localization",
    "check_maxboxacc": ".checks_localization",
}

__all__ = ["EXERCISES", "NOTEBOOKS", "PENDING", "Exercise", "exercises_in", "STUB_MESSAGE", "CaseResult",
           "CheckResult", "reset", "results", "scoreboard", "summary", "get_check", *_CHECKS]


def __getattr__(name: str) -> Any:
    if name in _CHECKS:
        return getattr(importlib.import_module(_CHECKS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CHECKS))


def get_check(name: str):
    """The check function of exercise ``name`` (e.g. ``"f_alpha"`` -> :func:`check_f_alpha`)."""
    key = name if name.startswith("check_") else f"check_{name}"
    if key not in _CHECKS:
        raise ValueError(f"no exercise {name!r}; exercises: {[e.name for e in EXERCISES]}")
    return __getattr__(key)
