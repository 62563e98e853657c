"""Helpers around the selection work: paper-table comparison, timing, drawing, backbone weights."""

import matplotlib
import pytest
import torch

from glsim_core.analysis.cost import PAPER_TABLES, compare_with_paper, throughput, torch_threads
from glsim_core.models import create_model
from glsim_core.viz import denormalize, draw_box, draw_token_grid, load_sample_images, overlay_scores
from glsim_core.weights.pretrained import best_available_backbone

matplotlib.use("Agg")


@pytest.mark.parametrize("model", sorted(PAPER_TABLES))
def test_compare_with_paper_matches_everything(model):
    table = compare_with_paper(model)
    assert len(table) == 20 and table.match.all()


def test_compare_with_paper_rejects_other_models():
    with pytest.raises(ValueError, match="cost tables"):
        compare_with_paper("vit_nano_patch8_64")


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_throughput_table():
    models = {"a": torch.nn.Conv2d(3, 4, 3), "b": torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())}
    df = throughput(models, 16, [1, 2], repeats=1, stat="min", num_threads=1, progress=False)
    assert list(df.model) == ["a", "a", "b", "b"] and list(df.batch_size) == [1, 2, 1, 2]
    assert (df.images_per_s > 0).all()
    assert torch.allclose(torch.tensor(df.images_per_s.values), torch.tensor(df.batch_size / df.seconds).double())
    with pytest.raises(ValueError, match="stat"):
        throughput(models, 16, [1], stat="mean")


def test_sample_images_and_drawing():
    import matplotlib.pyplot as plt

    x = load_sample_images(["astronaut", "camera"], 32)
    assert x.shape == (2, 3, 32, 32)
    img = denormalize(x[0])
    assert img.shape == (32, 32, 3) and 0 <= img.min() and img.max() <= 1
    fig, ax = plt.subplots()
    overlay_scores(ax, x[0], torch.rand(16), (4, 4), "t")
    draw_box(ax, torch.tensor([0, 8, 16, 32]))
    draw_token_grid(ax, (4, 4), 8, [0, 5], labels=True)
    plt.close(fig)
    with pytest.raises(ValueError, match="skimage.data"):
        load_sample_images(["not_an_image"])


def test_best_available_backbone_without_weights(monkeypatch, tmp_path):
    shipped = best_available_backbone("cpu")  # the shipped backbone (data/pretrained) is found
    assert shipped.pretrained and shipped.kwargs()["pretrained_cfg_overlay"]["file"].endswith(".corpus.pth")
    monkeypatch.setenv("GLSIM_DATA", str(tmp_path / "no-data"))  # a checkout without the shipped weights
    w = best_available_backbone("cpu")
    assert not w.pretrained and w.kwargs() == {"pretrained": False} and "UNTRAINED" in str(w)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    gpu = best_available_backbone("gpu")  # hub weights, offline and not cached here: random init, said so
    assert not gpu.pretrained and "not cached" in gpu.reason
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert best_available_backbone("gpu").pretrained  # online: timm downloads when the model is built
    with pytest.raises(ValueError, match="prefer"):
        best_available_backbone("cpu", prefer="maybe")
    model = create_model("glsim_vit_nano_patch8_64", num_classes=2, **w.kwargs())
    assert model.num_classes == 2
