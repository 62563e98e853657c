"""Run-time plumbing every notebook, test and command shares: the environment, seeding, device choice, mixed
precision.

**The environment is read here and nowhere else**: every ``GLSIM_*`` variable the package reads is in
:data:`ENVIRONMENT` (the README lists the same), read through :func:`env` / :func:`env_flag` and the helpers below.

Nothing here hard-codes an accelerator: the device is picked at run time (cuda -> mps -> cpu), and the
autocast dtype follows the device (bf16 where supported, else fp16 on GPUs, no autocast on CPU by default).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

import numpy as np
import torch

__all__ = ["seed_everything", "get_device", "amp_dtype", "autocast", "describe_device", "ENVIRONMENT", "env",
           "env_flag", "profile_name", "smoke_mode", "hub_offline"]

#: Every ``GLSIM_*`` environment variable the package reads, and what it does.
ENVIRONMENT: dict[str, str] = {
    "GLSIM_PROFILE": "the profile used when none is named: cpu (default) or gpu",
    "GLSIM_DEVICE": "the device that 'auto' means: cpu, cuda, cuda:1, mps (default: cuda, else mps, else cpu)",
    "GLSIM_SMOKE": "1: every notebook shrinks its work further (CI); the profile stays what it is",
    "GLSIM_HEADLESS": "1: no widget frontend, map explorers draw static figures (set when notebooks are executed)",
    "GLSIM_WIDGETS": "1 / 0: force the interactive map explorer on / off",
    "GLSIM_ROOT": "the repository checkout (for an installed package or Colab; default: found from the package)",
    "GLSIM_DATA": "the folder of small shipped files (default: ROOT/data)",
    "GLSIM_CACHE": "generated data: the offline benchmark, the corpus (default: DATA/cache)",
    "GLSIM_BUILD": "generated outputs: executed notebooks, runs, figures (default: ROOT/build)",
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env(name: str, default: str | None = None) -> str | None:
    """The value of one of the package's environment variables (:data:`ENVIRONMENT`), or ``default`` when it is
    unset or empty."""
    if name not in ENVIRONMENT:
        raise KeyError(f"{name} is not one of the package's environment variables: {sorted(ENVIRONMENT)}")
    return os.environ.get(name) or default


def env_flag(name: str) -> bool | None:
    """A yes/no variable: True for 1/true/yes/on, False for 0/false/no/off, None when unset (or anything else)."""
    value = (env(name) or "").strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def profile_name() -> str:
    """``GLSIM_PROFILE`` (Binder's start script sets ``cpu``), else ``cpu``."""
    return env("GLSIM_PROFILE", "cpu")


def smoke_mode() -> bool:
    """True when ``GLSIM_SMOKE=1``: CI shrinks every notebook's work further (the cpu profile stays the default)."""
    return bool(env_flag("GLSIM_SMOKE"))


def hub_offline() -> bool:
    """Hugging Face's own ``HF_HUB_OFFLINE``: no downloads (read here too, so that the package reads the environment in
    one place)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in _TRUE


def seed_everything(seed: int, deterministic: bool = True) -> int:
    """Seed Python, NumPy and PyTorch (all devices) so that the same seed gives the same numbers on CPU.

    ``deterministic=True`` also asks PyTorch for deterministic kernels where they exist (``warn_only`` so
    that an op without a deterministic version warns instead of failing) and turns off cuDNN autotuning.
    Returns the seed, so a notebook can write ``SEED = seed_everything(SEED)``.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds every device, CUDA and MPS included
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        # cuBLAS needs this for deterministic matmuls; harmless elsewhere.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``prefer`` if given (and usable), else cuda -> mps -> cpu.

    ``prefer`` may be ``"auto"``/``None`` (pick), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``. The
    environment variable ``GLSIM_DEVICE`` overrides ``"auto"``. Asking for an accelerator that is not
    present is an error that says what is available, not a crash later on.
    """
    if prefer is None or str(prefer) == "auto":
        prefer = env("GLSIM_DEVICE", "auto")
    if isinstance(prefer, torch.device):
        prefer = str(prefer)
    if prefer == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(prefer)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {prefer!r} was asked for but CUDA is not available here; "
                           f"use 'auto' or 'cpu' (available: {available_devices()})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {prefer!r} does not exist: {torch.cuda.device_count()} CUDA device(s) visible")
    if device.type == "mps" and not _mps_available():
        raise RuntimeError(f"device {prefer!r} was asked for but MPS is not available here "
                           f"(available: {available_devices()})")
    return device


def available_devices() -> list[str]:
    """Names of the devices PyTorch can use on this machine."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def amp_dtype(device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for a device: bf16 on GPUs that support it, fp16 on other GPUs, None on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool = True, dtype: torch.dtype | None = None) -> Iterator[None]:
    """Mixed precision on accelerators, a no-op on CPU unless a ``dtype`` is given explicitly."""
    device = torch.device(device)
    dtype = dtype or amp_dtype(device)
    if not enabled or dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def describe_device(device: torch.device | str) -> str:
    """A one-line human description of a device (GPU name and memory, or CPU threads)."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({torch.get_num_threads()} threads)"
