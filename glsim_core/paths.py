"""Where things live: the repository root, ``data/`` (small shipped files), ``build/`` (everything generated).

``GLSIM_ROOT``, ``GLSIM_DATA``, ``GLSIM_CACHE`` and ``GLSIM_BUILD`` (read by :mod:`glsim_core.runtime`) override
the defaults, so an installed (non-editable) package or a Colab runtime can point at a checkout or a drive.
"""

from __future__ import annotations

from pathlib import Path

from .runtime import env

__all__ = ["repo_root", "data_dir", "cache_dir", "build_dir", "notebooks_dir", "display_path"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def _is_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "glsim_core").is_dir()


def repo_root() -> Path:
    """The checkout this package belongs to (editable install), else the first ancestor of the cwd that is one."""
    if env("GLSIM_ROOT"):
        return Path(env("GLSIM_ROOT")).expanduser().resolve()
    if _is_root(_PACKAGE_DIR.parent):
        return _PACKAGE_DIR.parent
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _is_root(candidate):
            return candidate
    return cwd


def data_dir() -> Path:
    """Small shipped files: manifests, tiny checkpoints, sample images."""
    return Path(env("GLSIM_DATA") or repo_root() / "data").expanduser()


def cache_dir() -> Path:
    """Generated, git-ignored data (the offline benchmark, the pretraining corpus): ``data/cache``."""
    return Path(env("GLSIM_CACHE") or data_dir() / "cache").expanduser()


def build_dir() -> Path:
    """Executed notebooks, figures, run outputs."""
    return Path(env("GLSIM_BUILD") or repo_root() / "build").expanduser()


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def display_path(path: str | Path) -> str:
    """A path as printed for people: relative to the repository when inside it (no machine paths in outputs)."""
    try:
        return str(Path(path).resolve().relative_to(repo_root().resolve()))
    except ValueError:
        return str(path)
