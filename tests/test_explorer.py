"""glsim_core.viz.explorer: the headless fallback (a static figure, never an error), the widget, the maps drawn."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from glsim_core.analysis.localisation import boxes_from_mask, normalize_map, upsample_maps  # noqa: E402
from glsim_core.analysis.probes import token_scores
from glsim_core.models import create_model  # noqa: E402
from glsim_core.selection import select_boxes  # noqa: E402
from glsim_core.viz.explorer import MapExplorer, map_explorer, widget_frontend_available  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", img_size=32, patch_size=4, embed_dim=32, depth=3, num_heads=2,
                         num_classes=0).eval()
    images = torch.randn(3, 3, 32, 32)
    boxes = torch.tensor([[0, 0, 16, 16], [8, 8, 24, 30], [4, 0, 32, 12]])
    return model, images, boxes


@pytest.mark.parametrize("env", [{}, {"GLSIM_WIDGETS": "1"}, {"GLSIM_SMOKE": "1"}, {"GLSIM_HEADLESS": "1"}])
def test_headless_falls_back_to_a_static_grid(setup, monkeypatch, env):
    import matplotlib.figure

    for name in ("GLSIM_WIDGETS", "GLSIM_SMOKE", "GLSIM_HEADLESS"):
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert widget_frontend_available() is False  # pytest is no IPython kernel, whatever the variables say
    model, images, boxes = setup
    out = map_explorer(model, images, boxes, methods=("gls", "attention", "rollout", "simpool"), layer=2)
    assert isinstance(out, matplotlib.figure.Figure)
    assert len(out.axes) == 2 * 3 * 3  # 3 images x 3 methods (no SimPool head: simpool dropped), each with its bar
    assert out.axes[0].get_title().startswith("gls L2")
    assert all(t.get_fontsize() >= 9 for ax in out.axes for t in [ax.title, *ax.texts])
    matplotlib.pyplot.close(out)


def test_smoke_or_off_switch_wins_even_inside_a_kernel(monkeypatch):
    import IPython

    class FakeShell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeShell())
    monkeypatch.delenv("GLSIM_SMOKE", raising=False)
    monkeypatch.delenv("GLSIM_HEADLESS", raising=False)
    monkeypatch.delenv("GLSIM_WIDGETS", raising=False)
    assert widget_frontend_available() is True
    monkeypatch.setenv("GLSIM_SMOKE", "1")
    assert widget_frontend_available() is False
    monkeypatch.setenv("GLSIM_WIDGETS", "1")
    assert widget_frontend_available() is True
    monkeypatch.setenv("GLSIM_WIDGETS", "0")
    monkeypatch.delenv("GLSIM_SMOKE")
    assert widget_frontend_available() is False


def test_maps_boxes_and_iou_are_the_core_ones(setup):
    import matplotlib.pyplot as plt

    model, images, boxes = setup
    ex = MapExplorer(model, images, boxes, top_o=5, threshold=0.4)
    for method in ("gls", "attention", "rollout", "maws", "psm"):
        torch.testing.assert_close(ex.maps(method), token_scores(model, images, method).float())
    s = ex.maps("gls", layer=1)
    assert not torch.allclose(s, ex.maps("gls"))  # another layer, another map
    fig, ax = plt.subplots()
    info = ex.draw(ax, 1, "gls", layer=1)
    torch.testing.assert_close(info["crop_box"], select_boxes(s[1:2], (8, 8), (4, 4), 5)[0])
    want = boxes_from_mask(normalize_map(upsample_maps(s[1].reshape(1, 8, 8), (32, 32))[0]) >= 0.4)
    np.testing.assert_array_equal(info["estimated_boxes"], want)
    assert 0.0 <= info["iou"] <= 1.0
    plt.close(fig)
    with pytest.raises(ValueError, match="layer must be in 1..3"):
        ex.maps("gls", layer=4)
    with pytest.raises(ValueError, match="not available"):
        ex.maps("simpool")
    with pytest.raises(ValueError, match="unknown method"):
        MapExplorer(model, images, methods=("oracle",))


def test_the_widget_builds_and_redraws_without_a_frontend(setup):
    import ipywidgets

    model, images, boxes = setup
    box = map_explorer(model, images, boxes, interactive=True)
    assert isinstance(box, ipywidgets.VBox)
    controls = {c.description: c for row in box.children[:2] for c in row.children}
    controls["threshold"] = box.children[2]
    controls["method"].value = "psm"
    assert controls["layer"].disabled  # psm reads the last layer only
    controls["method"].value = "rollout"
    controls["layer"].value = 1
    controls["O"].value = 3
    controls["threshold"].value = 0.8
    assert not controls["layer"].disabled


def test_maps_figure_layout_and_bad_shapes(setup):
    import matplotlib.pyplot as plt

    from glsim_core.viz import maps_figure

    model, images, boxes = setup
    maps = {m: token_scores(model, images, m) for m in ("attention", "gls")}
    fig = maps_figure(images, maps, (8, 8), boxes, row_names=["a", "b", "c"])
    assert len(fig.axes) == 3 * 3 + 3 * 2  # every heat map has its colour bar (by default)
    assert fig.axes[1].get_title() == "attention" and fig.axes[2].get_title() == "gls"
    assert all(t.get_fontsize() >= 9 for ax in fig.axes for t in [ax.title, *ax.texts])
    plt.close(fig)
    fig = maps_figure(images, maps, (8, 8), boxes, colorbar=False)
    assert len(fig.axes) == 3 * 3
    plt.close(fig)
    with pytest.raises(ValueError, match="expected"):
        maps_figure(images, {"x": torch.zeros(3, 10)}, (8, 8))
