"""Old import paths, kept so that notebooks and scripts written before the two-layer split keep working.

The methods layer (``pooling``, ``selection``, ``models``) holds the papers' methods only; what used to sit inside it
(cost tables, probes, shipped and fine-tuned weights, a demo image) moved up. Rather than leave files in the methods
folders that import upwards, the old paths are served from here: :data:`MOVED_MODULES` maps an old module path to
its new home (``import glsim_core.selection.flops`` gives ``glsim_core.analysis.cost`` itself, so patching one
patches the other), and :data:`MOVED_NAMES` lists names that a methods package used to export
(``from glsim_core.selection import token_scores``), resolved on first use. ``glsim_core/__init__.py`` installs
the finder before anything else is imported. New code imports from the new homes.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from typing import Any

__all__ = ["MOVED_MODULES", "MOVED_NAMES", "install"]

_COST, _PROBES, _ACCURACY = "glsim_core.analysis.cost", "glsim_core.analysis.probes", "glsim_core.analysis.accuracy"
_LOCALISATION = "glsim_core.analysis.localisation"

#: old module path -> new module(s); several: the names are looked up in each, in order.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "glsim_core.selection.flops": (_COST,),
    "glsim_core.selection.probe": (_PROBES,),
    "glsim_core.pooling.cost": (_COST,),
    "glsim_core.pooling.demo": ("glsim_core.data.demo",),
    "glsim_core.models.shipped": ("glsim_core.weights.shipped",),
    "glsim_core.models.pretrained": ("glsim_core.weights.pretrained",),
    "glsim_core.models.finetuned": ("glsim_core.train.finetuned",),
    "glsim_core.train.evaluation": (_PROBES,),
    "glsim_core.metrics": ("glsim_core.analysis",),
    "glsim_core.metrics.classification": (_ACCURACY,),
    "glsim_core.metrics.localization": (_LOCALISATION,),
    "glsim_core.metrics.flops": (_COST,),
    "glsim_core.metrics.efficiency": (_COST,),
    "glsim_core.metrics.timing": (_COST,),
    "glsim_core.metrics.tradeoff": (_COST, "glsim_core.train.engine"),
    "glsim_core.train.cli": ("glsim_core.cli.training",),
}

#: methods package -> {name it used to export: module that holds it now}.
MOVED_NAMES: dict[str, dict[str, str]] = {
    "glsim_core.selection": {
        "token_scores": _PROBES,
        **{name: _COST for name in ("DFSM_METHODS", "cost_table", "dfsm_flops", "dfsm_table", "measured_dfsm_flops",
                                    "paper_table", "time_dfsm")},
    },
    "glsim_core.models": {
        "BackboneWeights": "glsim_core.weights.pretrained",
        "best_available_backbone": "glsim_core.weights.pretrained",
        "load_finetuned": "glsim_core.train.finetuned",
        "FINETUNED": "glsim_core.train.finetuned",
        "finetuned_path": "glsim_core.train.finetuned",
    },
}


def _lookup(owner: str, homes: tuple[str, ...], name: str) -> Any:
    for home in homes:
        module = importlib.import_module(home)
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {owner!r} has no attribute {name!r}")


class _Alias(importlib.abc.Loader):
    """Loads an old path as its new module (one home) or as a module that forwards to its homes (several)."""

    def __init__(self, homes: tuple[str, ...]) -> None:
        self.homes = homes

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if len(self.homes) == 1:
            module = importlib.import_module(self.homes[0])
            self.home_spec = module.__spec__  # the import system overwrites it with the old path's spec
            return module
        module = types.ModuleType(spec.name, f"Moved: see {', '.join(self.homes)}.")
        module.__path__ = []  # a package, so that moved submodules below it resolve too
        module.__getattr__ = lambda name: _lookup(spec.name, self.homes, name)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        if getattr(self, "home_spec", None) is not None:
            module.__spec__ = self.home_spec


class _WithMovedNames(importlib.abc.Loader):
    """The package's own loader, plus a module ``__getattr__`` for the names that moved out of it."""

    def __init__(self, loader: importlib.abc.Loader, names: dict[str, str]) -> None:
        self.loader, self.names = loader, names

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        owner, names = module.__name__, self.names

        def __getattr__(name: str) -> Any:
            if name in names:
                return getattr(importlib.import_module(names[name]), name)
            raise AttributeError(f"module {owner!r} has no attribute {name!r}")

        module.__getattr__ = __getattr__

    def __getattr__(self, name: str) -> Any:  # get_source, get_code, is_package, ... of the real loader
        return getattr(self.loader, name)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, _Alias(MOVED_MODULES[fullname]),
                                                   is_package=len(MOVED_MODULES[fullname]) > 1)
        if fullname in MOVED_NAMES:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                spec.loader = _WithMovedNames(spec.loader, MOVED_NAMES[fullname])
            return spec
        return None


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
