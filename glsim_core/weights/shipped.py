"""The cpu profile's shipped pretrained backbones: where their weights live and how timm finds them.

The weights are produced by ``python -m glsim_core pretrain`` (:mod:`glsim_core.train.pretrain`) on the offline
generic corpus (:mod:`glsim_core.data.synthetic`) and stored under ``data/pretrained/`` with a ``manifest.json``
(command, seed, data recipe, metrics, sha256). Importing this module (``import glsim_core`` does) installs
:func:`resolve_weights` as the small backbones' weights resolver
(:func:`glsim_core.models.backbones.set_weights_resolver`), so ``timm.create_model(name, pretrained=True)`` and
``glsim_core.models.create_model(name, pretrained=True)`` load the shipped file offline; timm drops the corpus
classifier when ``num_classes`` differs and resamples the position embedding when ``img_size`` differs.

Before timm reads a shipped file, :func:`verify_shipped_weights` checks its sha256 against the manifest: a file
that was changed, truncated or replaced is a :class:`ShippedFileError` naming the file, both hashes and the fix.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..models.backbones import set_weights_resolver
from ..paths import data_dir
from ..safety import load_plain

__all__ = ["SHIPPED", "shipped_weights_path", "has_shipped_weights", "read_manifest", "manifest_path", "sha256",
           "PRETRAINED_DIR", "ShippedFileError", "check_sha256", "verify_shipped_weights", "resolve_weights"]

PRETRAINED_DIR = "pretrained"

#: name -> file name under data/pretrained and the number of classifier outputs of the shipped weights
#: (the corpus' 61 categories + 1 background class used by the token-level pretraining loss).
SHIPPED: dict[str, dict[str, Any]] = {
    "vit_nano_patch8_64": {"file": "vit_nano_patch8_64.corpus.pth", "num_classes": 62},
    "resnet_nano_64": {"file": "resnet_nano_64.corpus.pth", "num_classes": 62},
    "vit_nano_convstem_patch8_64": {"file": "vit_nano_convstem_patch8_64.corpus.pth", "num_classes": 62},
}


def shipped_weights_path(name: str) -> Path:
    """Absolute path of a shipped backbone's weights (it may not exist before ``python -m glsim_core pretrain``)."""
    base = name.split(".")[0]
    if base not in SHIPPED:
        raise ValueError(f"no shipped weights for {name!r}; shipped backbones: {sorted(SHIPPED)}")
    return (data_dir() / PRETRAINED_DIR / SHIPPED[base]["file"]).resolve()


def has_shipped_weights(name: str) -> bool:
    base = name.split(".")[0]
    return base in SHIPPED and shipped_weights_path(base).is_file()


def manifest_path() -> Path:
    return data_dir() / PRETRAINED_DIR / "manifest.json"


def read_manifest() -> dict[str, Any]:
    """The shipped backbones' manifest (empty dict if none was written yet)."""
    path = manifest_path()
    return json.loads(path.read_text()) if path.is_file() else {}


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ShippedFileError(ValueError):
    """A shipped file whose sha256 does not match its manifest (or that the manifest does not list)."""


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256(path)
    return _DIGESTS[key]


def check_sha256(path: str | Path, expected: str | None, remedy: str, manifest: str | Path | None = None) -> None:
    """Raise :class:`ShippedFileError` unless the sha256 of ``path`` is ``expected``."""
    path = Path(path)
    where = f" in {manifest}" if manifest else ""
    if not expected:
        raise ShippedFileError(f"{path} has no sha256{where}, so it cannot be checked; {remedy}")
    actual = _digest(path)
    if actual != expected:
        raise ShippedFileError(f"{path} does not match its manifest{where}: sha256 {actual}, expected {expected} "
                               f"(the file was changed or is incomplete); {remedy}")


def verify_shipped_weights(name: str) -> Path:
    """The path of a shipped backbone's weights after checking its sha256 against ``manifest.json``."""
    base = name.split(".")[0]
    path = shipped_weights_path(base)
    try:
        rel = path.relative_to(data_dir().resolve().parent)
    except ValueError:
        rel = path
    remedy = (f"restore it with `git checkout -- {rel}` or rebuild it with `python -m glsim_core pretrain "
              f"--models {base}`")
    entry = read_manifest().get("backbones", {}).get(base)
    if entry is None:
        raise ShippedFileError(f"{path} is not listed in {manifest_path()}, so its sha256 cannot be checked; {remedy}")
    check_sha256(path, entry.get("sha256"), remedy, manifest_path())
    return path


def resolve_weights(name: str, kwargs: dict) -> dict:
    """The small backbones' weights resolver: ``pretrained=True`` -> the shipped file, checked.

    The shipped file must exist, match the manifest's sha256 and unpickle as plain tensors; ``kwargs`` come back
    with it (and its class count) in ``pretrained_cfg_overlay``. A caller that names its own weights file gets that
    file checked for loadability only."""
    overlay = dict(kwargs.get("pretrained_cfg_overlay") or {})
    own = overlay.get("file")
    if name in SHIPPED:  # its weights (shipped or the caller's) have the corpus classifier
        overlay.setdefault("num_classes", SHIPPED[name]["num_classes"])
        kwargs = {**kwargs, "pretrained_cfg_overlay": overlay}
        shipped = shipped_weights_path(name)
        if own is None or Path(own).expanduser().resolve() == shipped:
            if not shipped.is_file():
                raise FileNotFoundError(
                    f"pretrained=True for {name!r} needs its shipped weights at {shipped}, which are missing; restore "
                    f"them from git or rebuild them with `python -m glsim_core pretrain`")
            verify_shipped_weights(name)
            load_plain(shipped, "pretrained weights file", "restore it with git or rebuild it with "
                       "`python -m glsim_core pretrain`")
            return {**kwargs, "pretrained_cfg_overlay": {**overlay, "file": str(shipped)}}
    if own:
        load_plain(own, "pretrained weights file", "check the file, or train without it (--no-pretrained)")
    return kwargs  # nothing shipped and no file of the caller's: timm warns and initialises randomly


set_weights_resolver(resolve_weights)
