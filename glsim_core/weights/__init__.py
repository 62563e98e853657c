"""Weights this repository ships for the small backbones: manifest, sha256, and which weights a profile can load.

* :mod:`.shipped` - the cpu profile's pretrained backbones under ``data/pretrained`` (manifest, sha256) and the
  resolver that makes ``create_model(name, pretrained=True)`` load them offline (installed on import).
* :mod:`.pretrained` - :func:`best_available_backbone`: the best weights available now (shipped file, hub cache,
  download, or random initialisation, said out loud).

Fine-tuned checkpoints (load, else train) need the training engine: :mod:`glsim_core.train.finetuned`.
"""

from .pretrained import BackboneWeights, best_available_backbone
from .shipped import SHIPPED, has_shipped_weights, shipped_weights_path, verify_shipped_weights

__all__ = ["BackboneWeights", "best_available_backbone", "SHIPPED", "has_shipped_weights", "shipped_weights_path",
           "verify_shipped_weights"]
