"""DFSM cost: every number of GLSim Tables 1, 7 and 8, the measured counts, timing, and the `flops` command."""

import pytest
import torch

from glsim_core.analysis import measure_flops
from glsim_core.analysis.cost import (
    DFSM_METHODS,
    backbone_flops,
    dfsm_flops,
    format_mflops,
    format_percent,
    measured_backbone_flops,
    measured_dfsm_flops,
    num_tokens,
    paper_table,
    time_dfsm,
    vit_spec,
)
from glsim_core.cli import main

# The paper's tables, transcribed: per image size, MFLOPs (mantissa, exponent) then "% of Backbone",
# columns PSM, Rollout, MAWS, SACM, GLS.
PAPER = {
    "vit_base_patch16_224": """
224  8.2e3 1.7e2 1.3e-1 1.4e1 4.5e-1 | 46.531 0.9833 0.0007 0.0795 0.0026
448  6.2e5 1.1e4 5.3e-1 2.5e2 1.8e0  | 781.31 13.592 0.0007 0.3162 0.0023
768  1.5e7 2.7e5 1.5e0  2.1e3 5.3e0  | 5065.4 91.152 0.0005 0.7072 0.0018
1024 9.1e7 1.5e6 2.7e0  6.9e3 9.4e0  | 13674  228.84 0.0004 1.0487 0.0014
""",
    "vit_base_patch14_224": """
224  2.7e4 3.8e2 1.7e-1 3.1e1 5.9e-1 | 117.51 1.6455 0.0007 0.1344 0.0025
448  1.7e6 2.4e4 6.9e-1 5.0e2 2.4e0  | 1624.4 22.212 0.0006 0.4649 0.0022
768  4.6e7 5.5e5 2.0e0  4.4e3 6.7e0  | 11362  134.39 0.0005 1.09   0.0017
1024 2.7e8 3.3e6 3.6e0  1.4e4 1.2e1  | 27554  339.94 0.0004 1.4676 0.0013
""",
    "vit_tiny_patch16_224": """
224  2.1e3 1.7e2 3.5e-2 2.6e0 1.1e-1 | 160.36 13.228 0.0027 0.2062 0.0089
448  1.5e5 1.1e4 1.4e-1 4.7e1 4.5e-1 | 2130.8 147.35 0.0019 0.6485 0.0063
768  3.8e6 2.7e5 4.1e-1 3.9e2 1.3e0  | 10037  720.95 0.0011 1.0537 0.0036
1024 2.3e7 1.5e6 7.2e-1 1.3e3 2.4e0  | 22568  1509.0 0.0007 1.3015 0.0024
""",
}
CASES = []
for _model, _text in PAPER.items():
    for _line in _text.strip().splitlines():
        _left, _right = _line.split("|")
        _size, *_mflops = _left.split()
        for _m, _f, _p in zip(DFSM_METHODS, _mflops, _right.split()):
            CASES.append((_model, int(_size), _m, _f, _p))


def test_all_120_numbers_are_transcribed():
    assert len(CASES) == 3 * 4 * 5


@pytest.mark.parametrize("model,size,method,mflops,percent", CASES)
def test_paper_tables_1_7_8(model, size, method, mflops, percent):
    cost = dfsm_flops(method, model, size)
    mantissa, exponent = mflops.split("e")
    assert format_mflops(cost["mflops"]) == f"{mantissa} × 10^{int(exponent)}"
    assert format_percent(cost["percent"]) == percent
    assert cost["backbone_mflops"] == round(backbone_flops(model, size) / 1e6, 2)


def test_token_counts_and_overlapping_patches():
    assert num_tokens(224, 16) == 197 and num_tokens(224, 16, 12) == 325  # TransFG: stride 12 -> 325 tokens
    assert dfsm_flops("psm", "vit_base_patch16_224", 224)["tokens"] == 325
    assert dfsm_flops("sacm", "vit_base_patch16_224", 224)["tokens"] == 325
    assert dfsm_flops("rollout", "vit_base_patch16_224", 224)["tokens"] == 197
    assert dfsm_flops("psm", "vit_base_patch14_224", 224)["tokens"] == 485  # stride 10
    assert num_tokens(768, 14) == 54 ** 2 + 1


def test_closed_forms_at_224():
    # GLS: (D + 2(D+1) + 1)(N-1); PSM: H (L-2) N^2 (2N-1) with N = 325 (the release's conventions)
    assert dfsm_flops("gls")["flops"] == (768 + 2 * 769 + 1) * 196
    assert dfsm_flops("psm")["flops"] == 12 * 10 * 325 * 325 * (2 * 325 - 1)
    c = dfsm_flops("rollout")
    assert c["flops"] == 12 * (12 * 197 ** 2 + 197 ** 2 + 197 + 1) + 11 * 197 ** 2 * (2 * 197 - 1)
    assert c["percent"] == round(100 * c["mflops"] / c["backbone_mflops"], 4)


def test_the_papers_ratio_claim_for_b14():
    # §6: GLS costs "648x to 271,299x less" than matrix-product attention aggregation for B-14 at 224..1024:
    # rollout / GLS at 224 (648.5, truncated in the text) and at 1024 (271,298.8)
    def ratio(size):
        return dfsm_flops("rollout", "vit_base_patch14_224", size)["mflops"] / dfsm_flops(
            "gls", "vit_base_patch14_224", size)["mflops"]

    assert int(ratio(224)) == 648 and round(ratio(1024)) == 271299


def test_other_models_and_errors():
    spec = vit_spec("vit_nano_patch8_64")
    assert (spec.embed_dim, spec.depth, spec.num_heads, spec.patch_size) == (128, 4, 4, 8)
    assert vit_spec("glsim_vit_base_patch16_224.augreg_in21k") == vit_spec("vit_base_patch16_224")
    assert vit_spec("vit_small_patch32_224").patch_size == 32  # read from timm (on the meta device)
    with pytest.raises(ValueError, match="unknown method"):
        dfsm_flops("gradcam")
    with pytest.raises(ValueError, match="unknown model"):
        dfsm_flops("gls", "not_a_model")


def test_measured_counts_of_our_implementations():
    # torch counts 2 FLOPs per multiply-add and only matmuls: N*N*2N per product instead of N*N*(2N-1)
    n = 325
    assert measured_dfsm_flops("psm")["measured_flops"] == 12 * 10 * n * n * 2 * n
    n = 197
    assert measured_dfsm_flops("rollout")["measured_flops"] == 11 * n * n * 2 * n
    assert measured_dfsm_flops("gls")["measured_flops"] == 2 * 196 * 768  # one batched dot product
    assert measured_dfsm_flops("maws")["measured_flops"] == 0  # elementwise only
    assert measured_dfsm_flops("sacm")["measured_flops"] is None  # not implemented here


def test_measured_backbone_on_meta_equals_a_real_forward():
    import timm

    real = timm.create_model("vit_nano_patch8_64", num_classes=200)
    direct = measure_flops(real, torch.randn(1, 3, 64, 64))
    assert measured_backbone_flops("vit_nano_patch8_64", 64) == direct
    # the release's analytic count mixes FLOPs (patch embedding) and MACs (blocks): close to torch's MACs
    macs = measured_backbone_flops("vit_base_patch16_224", 224, unit="mac")
    assert abs(macs / 1e6 - dfsm_flops("gls")["backbone_mflops"]) / macs * 1e6 < 0.01


def test_time_dfsm_times_small_and_skips_huge():
    df = time_dfsm("vit_nano_patch8_64", [64, 2048], ["gls", "rollout", "psm"], repeats=1, progress=False)
    assert list(df.columns) == ["method", "img_size", "tokens", "mflops", "seconds", "skipped"]
    small = df[df.img_size == 64]
    assert (small.seconds > 0).all() and (small.skipped == "").all()
    assert df[(df.img_size == 2048) & (df.method == "psm")].skipped.item().startswith(">")


def test_paper_table_layout():
    table = paper_table("vit_base_patch16_224", [224])
    assert list(table.columns) == ["PSM", "Rollout", "MAWS", "SACM", "GLS"]
    assert table.loc["FLOPs (IS=224)", "PSM"] == "8.2 × 10^3"
    assert table.loc["% of Backbone", "GLS"] == "0.0026"


def test_flops_command(capsys):
    assert main(["flops", "--model", "vit_nano_patch8_64", "--img-size", "64"]) == 0
    out = capsys.readouterr().out
    assert "vit_nano_patch8_64 @ 64px" in out and "measured_mflops" in out and "gls" in out
    assert main(["flops", "--paper", "--img-size", "224", "448"]) == 0
    out = capsys.readouterr().out
    assert "46.531" in out and "781.31" in out
    assert main(["flops", "--model", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err
