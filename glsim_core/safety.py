"""Loading files safely and failing early: checkpoints with ``weights_only=True``, writable output folders.

Every checkpoint or weights file this project reads goes through :func:`load_plain`: ``torch.load(...,
weights_only=True)`` unpickles only tensors and plain data (dicts, lists, numbers, strings), so a crafted file
cannot run code. A file that holds anything else, or that is empty, truncated or not a checkpoint at all, becomes
one :class:`CheckpointError` line that says what to do. :func:`ensure_writable_dir` checks an output folder before
any work is done.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "load_plain", "ensure_writable_dir"]


class CheckpointError(ValueError):
    """A checkpoint or weights file that cannot be loaded (corrupt, incomplete, or holding non-plain objects)."""


def _first_reason(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if "GLOBAL" in line or "Unsupported" in line:
            return line[:200]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:160]}" if lines else type(exc).__name__


def load_plain(path: str | Path, what: str = "checkpoint", remedy: str = "delete it or retrain",
               map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``; any failure is a one-line :class:`CheckpointError`."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as exc:
        reason = _first_reason(exc)
        if "GLOBAL" in str(exc):
            raise CheckpointError(
                f"{what} {path} holds Python objects other than tensors and plain data ({reason}); it was not "
                f"loaded, because unpickling them could run code. Use only files you trust: {remedy}") from None
        raise CheckpointError(f"{what} {path} is corrupt or incomplete ({reason}); {remedy}") from None
    except (EOFError, RuntimeError, ValueError, OSError, KeyError, TypeError, AttributeError, IndexError) as exc:
        reason = _first_reason(exc) if str(exc).strip() else f"{type(exc).__name__} (empty or cut-off file)"
        raise CheckpointError(f"{what} {path} is corrupt or incomplete ({reason}); {remedy}") from None


def ensure_writable_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is writable (a probe file); one-line ``ValueError`` otherwise."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} is a file, not a directory; choose another {flag} (or remove the file)")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path} lies under {parent}, which is a file; choose another {flag}")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"cannot write to {flag} {path} ({exc.strerror or type(exc).__name__}); choose a writable "
                         f"{flag}") from None
    return path
