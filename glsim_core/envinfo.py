"""``python -m glsim_core env``: what this machine runs, and whether the stack works.

The check that matters most is that torchvision *imports and runs its compiled ops* with the installed torch:
a torchvision wheel built for another torch imports badly (``operator torchvision::nms does not exist``), and
timm imports torchvision, so every model would fail later with a confusing error.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field

from .runtime import describe_device, get_device

__all__ = ["EnvReport", "collect", "format_report", "hub_reachable"]

HUB_URL = "https://huggingface.co/api/models?limit=1"


@dataclass
class EnvReport:
    python: str
    platform: str
    versions: dict[str, str | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    torchvision_ok: bool = False
    device: str = "unknown"
    hub: str = "not checked"

    @property
    def ok(self) -> bool:
        """The stack works: torch, torchvision (with its ops), timm and datasets import."""
        return self.torchvision_ok and not self.errors

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _version(module_name: str, report: EnvReport) -> None:
    try:
        module = importlib.import_module(module_name)
        report.versions[module_name] = getattr(module, "__version__", "unknown")
    except Exception as exc:  # any import failure is a finding to report
        report.versions[module_name] = None
        report.errors[module_name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _check_torchvision(report: EnvReport) -> None:
    """Import torchvision and run one compiled op (nms) and one v2 transform on CPU."""
    try:
        import torch
        import torchvision
        from torchvision.ops import nms

        boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.1], [5.0, 5.0, 6.0, 6.0]])
        keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
        if keep.tolist() != [0, 2]:
            raise RuntimeError(f"torchvision.ops.nms returned {keep.tolist()}, expected [0, 2]")
        from torchvision.transforms import v2

        v2.Resize(4, antialias=True)(torch.zeros(3, 8, 8))
        report.torchvision_ok = True
        report.versions.setdefault("torchvision", torchvision.__version__)
    except Exception as exc:
        report.torchvision_ok = False
        report.errors["torchvision"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def hub_reachable(timeout: float = 3.0) -> str:
    """'reachable', 'offline mode (...)' or 'unreachable (...)' for the Hugging Face hub; never raises."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "0").lower() in {"1", "true", "yes"}:
            return f"offline mode ({var}=1)"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    url = HUB_URL.replace("https://huggingface.co", endpoint)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return "reachable"
    except urllib.error.HTTPError as exc:  # the server answered: the network works
        return "reachable" if exc.code < 500 else f"unreachable (HTTP {exc.code})"
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"unreachable ({type(reason).__name__}: {reason})"[:160]


def collect(check_hub: bool = True, hub_timeout: float = 3.0) -> EnvReport:
    """Gather versions, the device that will be used, the torchvision check and the hub status."""
    report = EnvReport(python=sys.version.split()[0], platform=platform.platform())
    for name in ("torch", "torchvision", "timm", "datasets", "numpy", "PIL", "glsim_core"):
        _version(name, report)
    _check_torchvision(report)
    try:
        report.device = describe_device(get_device())
    except Exception as exc:
        report.errors["device"] = f"{type(exc).__name__}: {exc}"
    report.hub = hub_reachable(hub_timeout) if check_hub else "not checked"
    return report


def format_report(report: EnvReport) -> str:
    rows = [("python", report.python), ("platform", report.platform)]
    rows += [(name, version or "MISSING") for name, version in report.versions.items()]
    rows += [
        ("torchvision works", "yes" if report.torchvision_ok else "NO"),
        ("device", report.device),
        ("hugging face hub", report.hub),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    if report.errors:
        lines.append("")
        lines += [f"error in {k}: {v}" for k, v in report.errors.items()]
        if "torchvision" in report.errors:
            lines.append("hint: torch and torchvision must be a matched pair; reinstall both together, "
                         "e.g. `make install` (it uses requirements/constraints.txt).")
    lines.append("")
    lines.append("stack: OK" if report.ok else "stack: BROKEN")
    return "\n".join(lines)


def env_main(argv: list[str] | None = None) -> int:
    """``python -m glsim_core env`` without the rest of the command line (which needs a working stack)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m glsim_core env")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-hub", action="store_true", help="do not try to reach the Hugging Face hub")
    p.add_argument("--hub-timeout", type=float, default=3.0, help="seconds to wait for the hub (default 3)")
    args = p.parse_args(argv)
    report = collect(check_hub=not args.no_hub, hub_timeout=args.hub_timeout)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1
