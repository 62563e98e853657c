"""Table 8 (computation resources): parameter counts match the paper, FLOPs follow from the layer shapes."""

import pytest

from glsim_core.analysis.cost import PAPER_TABLE8, model_cost, resource_table


@pytest.fixture(scope="module")
def table():
    return resource_table(["resnet18", "vit_small_patch16_224"]).set_index("model")  # meta device: shapes only


def test_parameter_counts_match_table8(table):
    for name in ("resnet18", "vit_small_patch16_224"):
        row = table.loc[PAPER_TABLE8[name]["label"]]
        assert round(row.params_M, 1) == row.paper_params_M
        assert round(row.params_M_simpool, 1) == row.paper_params_M_simpool


def test_simpool_adds_exactly_its_layers(table):
    r18, vit = table.loc["ResNet-18"], table.loc["ViT-S"]
    d = 512  # W_Q, W_K (d×d, no bias) and one LayerNorm (2d)
    assert round((r18.params_M_simpool - r18.params_M) * 1e6) == 2 * d * d + 2 * d
    d = 384  # ... and the ViT loses its CLS token and the CLS position embedding
    assert round((vit.params_M_simpool - vit.params_M) * 1e6) == 2 * d * d + 2 * d - 2 * d
    # MACs added on ResNet-18 (7×7 map): W_K on 49 locations, W_Q on one vector, Kᵀq and the weighted sum
    d, p = 512, 49
    assert round((r18.gmacs_simpool - r18.gmacs) * 1e9) == p * d * d + d * d + 2 * p * d


def test_flops_conventions(table):
    vit = table.loc["ViT-S"]
    assert abs(vit.gmacs_layers - vit.paper_gflops) < 0.005  # the paper counts linear + conv layers only
    assert vit.gmacs - vit.gmacs_layers == pytest.approx(12 * 2 * 197 ** 2 * 384 / 1e9, rel=1e-6)  # QKᵀ and AV
    r18 = table.loc["ResNet-18"]
    assert r18.gmacs == r18.gmacs_layers and abs(r18.gmacs - r18.paper_gflops) < 0.01


def test_model_cost_small():
    cost = model_cost("vit_nano_patch8_64", "simpool", img_size=64)
    assert cost["params"] > 0 and cost["macs"] >= cost["layer_macs"] > 0
