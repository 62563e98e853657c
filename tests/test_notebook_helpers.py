import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from glsim_core.notebook import load_results, record, savefig, smoke_mode  # noqa: E402


def test_record_merges_and_converts_values(tmp_path):
    record(tmp_path, a=1, t=torch.tensor(2.5), arr=np.arange(3), nan=float("nan"))
    out = record(tmp_path, b="x", a=3)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk == out == load_results(tmp_path)
    assert (out["a"], out["b"], out["t"], out["arr"], out["nan"]) == (3, "x", 2.5, [0, 1, 2], None)
    assert math.isfinite(out["t"])


def test_load_results_of_empty_dir(tmp_path):
    assert load_results(tmp_path / "nothing") == {}


def test_savefig_writes_png(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    path = savefig(fig, tmp_path, "line")
    plt.close(fig)
    assert path == tmp_path / "figures" / "line.png"
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_smoke_mode(monkeypatch):
    monkeypatch.setenv("GLSIM_SMOKE", "1")
    assert smoke_mode()
    monkeypatch.setenv("GLSIM_SMOKE", "0")
    assert not smoke_mode()
