import numpy as np
import pytest
import torch

import glsim_core
from glsim_core.runtime import amp_dtype, autocast, available_devices, describe_device, get_device, seed_everything


def _draw():
    return torch.rand(3).tolist(), np.random.rand(2).tolist(), torch.nn.Linear(4, 2).weight.sum().item()


def test_same_seed_same_numbers_different_seed_different_numbers():
    seed_everything(123)
    a = _draw()
    seed_everything(123)
    b = _draw()
    seed_everything(124)
    c = _draw()
    assert a == b
    assert a != c


def test_seed_everything_returns_seed_and_rejects_bad_values():
    assert seed_everything(7) == 7
    assert seed_everything(np.int64(8)) == 8
    with pytest.raises(TypeError, match="seed must be an int"):
        seed_everything("7")
    with pytest.raises(TypeError):
        seed_everything(True)
    with pytest.raises(ValueError, match=r"\[0, 2\*\*32\)"):
        seed_everything(-1)


def test_get_device_picks_an_available_device(monkeypatch):
    monkeypatch.delenv("GLSIM_DEVICE", raising=False)
    device = get_device()
    expected = "cuda" if torch.cuda.is_available() else ("mps" if "mps" in available_devices() else "cpu")
    assert device.type == expected
    assert get_device("cpu") == torch.device("cpu")
    assert describe_device("cpu").startswith("cpu (")


def test_get_device_env_override(monkeypatch):
    monkeypatch.setenv("GLSIM_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("auto") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_asking_for_missing_cuda_is_a_clear_error():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")


def test_amp_dtype_and_autocast_on_cpu():
    assert amp_dtype("cpu") is None
    x = torch.randn(4, 4)
    with autocast("cpu"):
        y = x @ x
    assert y.dtype == torch.float32  # no autocast on CPU by default
    with autocast("cpu", dtype=torch.bfloat16):
        z = x @ x
    assert z.dtype == torch.bfloat16


def test_top_level_exports():
    for name in ("seed_everything", "get_device", "get_profile", "Profile", "autocast", "__version__"):
        assert hasattr(glsim_core, name)


def test_the_environment_is_read_in_runtime_only_and_listed_in_the_readme():
    """Every GLSIM_* variable is read by glsim_core.runtime (``env``), named in ENVIRONMENT and in the README."""
    import re
    from pathlib import Path

    from glsim_core.runtime import ENVIRONMENT

    package = Path(__file__).resolve().parents[1] / "glsim_core"
    read = re.compile(r"(os\.environ\.get|os\.getenv|os\.environ\[)\(?\s*[\"']GLSIM_")
    for path in package.rglob("*.py"):
        if path.name == "runtime.py":
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if read.search(line) and not re.search(r"os\.environ\[[\"']GLSIM_\w+[\"']\]\s*=", line):
                raise AssertionError(f"{path.relative_to(package.parent)}:{i} reads the environment: use runtime.env")
    used = set(re.findall(r"env(?:_flag)?\(\s*[\"'](GLSIM_\w+)[\"']", "\n".join(
        p.read_text(encoding="utf-8") for p in package.rglob("*.py"))))
    assert used <= set(ENVIRONMENT), used - set(ENVIRONMENT)
    readme = (package.parent / "README.md").read_text(encoding="utf-8")
    assert [name for name in ENVIRONMENT if f"`{name}`" not in readme] == []
