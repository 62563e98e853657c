"""`python -m glsim_core env`: versions, device, torchvision check, hub status, exit code."""

import json
import os
import subprocess
import sys
import textwrap

from glsim_core.envinfo import collect, format_report, hub_reachable


def _run(args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "glsim_core", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=120)


def test_env_reports_versions_device_and_a_working_stack():
    proc = _run(["env", "--json"], env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    for name in ("torch", "torchvision", "timm", "datasets"):
        assert report["versions"][name], name
    assert report["python"] == sys.version.split()[0]
    assert report["torchvision_ok"] is True and report["ok"] is True
    assert report["device"].split()[0] in {"cpu", "mps"} or report["device"].startswith("cuda")
    assert report["hub"] == "offline mode (HF_HUB_OFFLINE=1)"


def test_env_text_output():
    proc = _run(["env", "--no-hub"])
    assert proc.returncode == 0
    for word in ("torch", "torchvision works", "device", "stack: OK"):
        assert word in proc.stdout


def test_env_exits_non_zero_when_torchvision_is_broken(tmp_path):
    # A torchvision that imports but whose compiled ops are missing: what a mismatched wheel looks like.
    fake = tmp_path / "torchvision"
    (fake / "ops").mkdir(parents=True)
    (fake / "__init__.py").write_text("__version__ = '0.0.0-broken'\n")
    (fake / "ops" / "__init__.py").write_text(textwrap.dedent("""
        def nms(*args, **kwargs):
            raise RuntimeError("operator torchvision::nms does not exist")
    """))
    proc = _run(["env", "--no-hub"], env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "torchvision works  NO" in proc.stdout
    assert "operator torchvision::nms does not exist" in proc.stdout
    assert "stack: BROKEN" in proc.stdout


def test_hub_unreachable_is_reported_not_raised(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused at once
    status = hub_reachable(timeout=1.0)
    assert status.startswith("unreachable")


def test_collect_and_format_without_hub():
    report = collect(check_hub=False)
    text = format_report(report)
    assert report.hub == "not checked"
    assert "stack: OK" in text
