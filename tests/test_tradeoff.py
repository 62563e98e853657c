"""glsim_core.metrics.tradeoff: FLOPs against a closed form, the efficiency table, top-1, selection scaling."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from glsim_core.analysis.cost import efficiency_table, model_flops, selection_scaling
from glsim_core.models import create_model
from glsim_core.train.engine import eval_top1

KW = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5)


def vit_flops_closed_form(img=32, p=8, d=32, depth=2, k=5, mlp=4):
    n = (img // p) ** 2
    t = n + 1
    patch = 2 * n * (3 * p * p) * d
    block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * mlp * d
    return patch + depth * block + 2 * d * k


def test_model_flops_is_the_closed_form_of_a_vit():
    model = create_model("vit_nano_patch8_64", **KW)
    assert model_flops(model, 32) == vit_flops_closed_form()
    glsim = create_model("glsim_vit_nano_patch8_64", **KW)
    # GLSim: two encoder passes (no head) + GLS (one dot product per patch token: 2 N D) + the aggregator block
    # on 2 tokens + the head
    enc = vit_flops_closed_form() - 2 * 32 * 5
    gls = 2 * 16 * 32
    agg = 2 * 2 * 32 * 3 * 32 + 2 * 2 * 2 * 2 * 32 + 2 * 2 * 32 * 32 + 2 * 2 * 2 * 32 * 4 * 32
    assert model_flops(glsim, 32) == 2 * enc + gls + agg + 2 * 32 * 5


def test_efficiency_table_columns_and_values():
    models = {"vit": create_model("vit_nano_patch8_64", **KW), "glsim": create_model("glsim_vit_nano_patch8_64", **KW)}
    table = efficiency_table(models, 32, accuracy={"vit": 50.0}, batch_sizes=(1, 2), num_threads=1,
                             max_seconds=5, progress=False)
    assert list(table["model"]) == ["vit", "glsim"]
    assert table.loc[0, "gflops"] == pytest.approx(vit_flops_closed_form() / 1e9)
    assert table.loc[0, "top1"] == 50.0 and pd.isna(table.loc[1, "top1"])
    assert set(table["best_batch"]) <= {1, 2} and (table["img_per_s"] > 0).all() and (table["peak_mem_mib"] > 0).all()
    assert (table["mem_mib"] >= 0).all() and (table["mem_mib"] <= table["peak_mem_mib"]).all()
    assert table.loc[1, "params_m"] > table.loc[0, "params_m"]
    untimed = efficiency_table(models, 32, timed=False, progress=False)
    assert "img_per_s" not in untimed and list(untimed["gflops"]) == list(table["gflops"])


def test_eval_top1_matches_a_direct_count(tmp_path):
    from glsim_core.data import load_image_dataset
    from glsim_core.data.hf import collate_images
    from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark

    path = generate_benchmark(BenchmarkSpec(num_classes=3, train_size=6, test_size=10, seed=1), tmp_path / "b",
                              workers=1, progress=False)
    data = load_image_dataset(path, img_size=32)
    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", **{**KW, "num_classes": 3}).eval()
    batch = collate_images([data.test[i] for i in range(7)])
    want = 100.0 * (model(batch["image"]).argmax(1) == batch["label"]).float().mean().item()
    assert eval_top1(model, data, "test", max_samples=7, batch_size=3) == pytest.approx(want)


def test_selection_scaling_is_the_analytic_and_measured_counts():
    from glsim_core.analysis.cost import dfsm_flops, measured_dfsm_flops

    table = selection_scaling("vit_nano_patch8_64", [64, 128], methods=("rollout", "gls"))
    assert len(table) == 4
    for r in table.itertuples():
        assert r.mflops == dfsm_flops(r.method, "vit_nano_patch8_64", r.img_size)["mflops"]
        assert r.measured_mflops == measured_dfsm_flops(r.method, "vit_nano_patch8_64", r.img_size)["measured_mflops"]
    assert table[table.img_size == 128]["tokens"].tolist() == [257, 257]
    timed = selection_scaling("vit_nano_patch8_64", [64], methods=("gls",), timed=True, repeats=1)
    assert timed["seconds"].iloc[0] > 0
