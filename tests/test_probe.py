"""glsim_core.selection.probe: the per-layer probe (hand-built ViT whose answer is known, and an independent
re-computation), the map scoring table, and the explorer's headless fallback."""

from __future__ import annotations

import math

import pytest
import torch

from glsim_core.analysis.probes import baseline_scores, gls_layer_probe, layer_token_scores, localization_table
from glsim_core.models import create_model

SIDE, PATCH = 32, 4  # an 8 x 8 grid of 4-pixel patches


def hand_built_vit(depth: int = 2) -> torch.nn.Module:
    """A ViT whose blocks are identities (zero attention projection and MLP output) and whose patch embedding maps
    a patch of constant value v to the token (v, -v, 0, 0); CLS = (1, -1, 0, 0), no position embedding; queries and
    keys read feature 0, so every token attends to the tokens of its own sign. On an image that is +1 inside a
    region and -1 outside, GLS, attention and rollout of every layer all rank the +1 tokens first."""
    m = create_model("vit_nano_patch8_64", img_size=SIDE, patch_size=PATCH, embed_dim=4, depth=depth, num_heads=1,
                     num_classes=0).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        w = torch.full((3, PATCH, PATCH), 1.0 / (3 * PATCH * PATCH))
        m.patch_embed.proj.weight[0] = w
        m.patch_embed.proj.weight[1] = -w
        m.cls_token[0, 0] = torch.tensor([1.0, -1.0, 0.0, 0.0])
        for norm in [m.norm] + [n for b in m.blocks for n in (b.norm1, b.norm2)]:
            norm.weight.fill_(1.0)
        for b in m.blocks:
            b.attn.qkv.weight[0, 0] = 4.0  # q_0 = 4 x_0
            b.attn.qkv.weight[4, 0] = 4.0  # k_0 = 4 x_0
    return m


def region_image(box) -> torch.Tensor:
    x0, y0, x1, y1 = box
    img = -torch.ones(3, SIDE, SIDE)
    img[:, y0:y1, x0:x1] = 1.0
    return img


def test_probe_on_a_hand_built_vit_finds_the_bright_region_at_every_layer():
    boxes = torch.tensor([[8, 8, 24, 16], [0, 20, 12, 32]])  # 4x2 = 8 tokens, 3x3 = 9 tokens inside
    images = torch.stack([region_image(b.tolist()) for b in boxes])
    model = hand_built_vit(depth=3)
    table = gls_layer_probe(model, images, boxes, top_o=4)
    assert set(table["method"]) == {"gls", "attention", "rollout"} and sorted(set(table["layer"])) == [1, 2, 3]
    assert (table["top"] == 1.0).all() and (table["bottom"] == 0.0).all() and (table["top1"] == 1.0).all()
    assert table["chance"].tolist() == pytest.approx([(8 / 64 + 9 / 64) / 2] * len(table))
    assert table["top_ratio"].tolist() == pytest.approx([1 / ((8 / 64 + 9 / 64) / 2)] * len(table))
    assert (table["o"] == 4).all() and (table["n"] == 2).all()

    # the object box somewhere else: the same maps now miss it entirely (chance changes with the box)
    elsewhere = torch.tensor([[24, 0, 32, 8], [20, 0, 32, 12]])  # dark corners: 2x2 = 4 and 3x3 = 9 tokens
    miss = gls_layer_probe(model, images, elsewhere, top_o=4, layers=[-1])
    assert (miss["top"] == 0.0).all() and (miss["layer"] == 3).all()
    assert miss["chance"].tolist() == pytest.approx([(4 / 64 + 9 / 64) / 2] * 3)


def _direct(model, images, boxes, o):
    """Independent re-computation: timm's forward_intermediates, cosine by hand, patch-centre tests by loops."""
    inter = model.forward_intermediates(images, norm=True, output_fmt="NLC", return_prefix_tokens=True,
                                        intermediates_only=True)
    out = {}
    for layer, t in enumerate(inter):
        patches, cls = t[0], t[1]  # (B, N, D), (B, 1, D)
        sims = torch.stack([torch.stack([torch.dot(cls[b, 0], patches[b, i]) / (cls[b, 0].norm() *
                                         patches[b, i].norm()) for i in range(patches.shape[1])])
                            for b in range(len(images))])
        tops, bots, inside_all = [], [], []
        for b, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
            side = int(math.sqrt(sims.shape[1]))
            inside = [x0 <= (i % side + 0.5) * PATCH < x1 and y0 <= (i // side + 0.5) * PATCH < y1
                      for i in range(sims.shape[1])]
            order = sorted(range(sims.shape[1]), key=lambda i: -float(sims[b, i].detach()))
            tops += [inside[i] for i in order[:o]]
            bots += [inside[i] for i in order[-o:]]
            inside_all.append(sum(inside) / len(inside))
        out[layer + 1] = (sum(tops) / len(tops), sum(bots) / len(bots), sum(inside_all) / len(inside_all))
    return out


def test_probe_gls_matches_an_independent_computation_on_a_random_vit():
    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", img_size=SIDE, patch_size=PATCH, embed_dim=32, depth=3,
                         num_heads=2, num_classes=0).eval()
    images = torch.randn(5, 3, SIDE, SIDE)
    boxes = torch.tensor([[0, 0, 16, 16], [4, 8, 30, 20], [10, 10, 12, 12], [0, 0, 32, 32], [16, 0, 32, 32]])
    table = gls_layer_probe(model, images, boxes, top_o=6, methods=["gls"], batch_size=2)
    want = _direct(model, images, boxes, 6)
    for _, row in table.iterrows():
        top, bottom, chance = want[row["layer"]]
        assert (row["top"], row["bottom"], row["chance"]) == pytest.approx((top, bottom, chance))


def test_layer_scores_last_layer_equal_the_selection_module_and_bad_input():
    from glsim_core.analysis.probes import token_scores

    torch.manual_seed(1)
    model = create_model("vit_nano_patch8_64", img_size=SIDE, patch_size=PATCH, embed_dim=32, depth=2,
                         num_heads=2, num_classes=0).eval()
    x = torch.randn(3, 3, SIDE, SIDE)
    scores = layer_token_scores(model, x)
    for method in ("gls", "attention", "rollout"):
        torch.testing.assert_close(scores[method][1], token_scores(model, x, method).float())
    with pytest.raises(ValueError, match="out of range"):
        layer_token_scores(model, x, layers=[2])
    with pytest.raises(ValueError, match="unknown probe method"):
        layer_token_scores(model, x, methods=["psm"])
    with pytest.raises(ValueError, match="boxes"):
        gls_layer_probe(model, x, torch.zeros(2, 4))
    glsim = create_model("glsim_vit_nano_patch8_64", img_size=SIDE, patch_size=PATCH, embed_dim=32, depth=2,
                         num_heads=2, num_classes=3).eval()
    torch.testing.assert_close(layer_token_scores(glsim, x, layers=[-1])["gls"][1],
                               token_scores(glsim.encoder, x, "gls").float())


def test_baselines():
    c = baseline_scores("center", 2, (4, 4))
    assert c.shape == (2, 16) and torch.equal(c[0], c[1])
    assert c[0].reshape(4, 4)[1:3, 1:3].min() > c[0].reshape(4, 4)[0].max()  # the centre ranks first
    torch.testing.assert_close(baseline_scores("random", 3, (4, 4), seed=5), baseline_scores("random", 3, (4, 4),
                                                                                              seed=5))
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline_scores("oracle", 1, (2, 2))


@pytest.fixture(scope="module")
def boxed(tmp_path_factory):
    from glsim_core.data import load_image_dataset
    from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark

    spec = BenchmarkSpec(num_classes=3, train_size=8, test_size=12, seed=2)
    path = generate_benchmark(spec, tmp_path_factory.mktemp("bench") / "b", workers=1, progress=False)
    return load_image_dataset(path, img_size=32)


def test_localization_table_scores_every_applicable_method(boxed):
    from glsim_core.analysis import max_box_acc
    from glsim_core.analysis.probes import boxed_examples, localization_scores

    torch.manual_seed(0)
    kw = dict(img_size=32, embed_dim=32, depth=2, num_heads=2, num_classes=3)
    vit = create_model("vit_nano_patch8_64", **kw).eval()
    simpool = create_model("vit_nano_patch8_64", pooling="simpool", **kw).eval()
    table = localization_table({"vit": vit, "simpool": simpool}, boxed, methods=("attention", "gls", "simpool"),
                               top_o=4)
    got = {(r.model, r.method) for r in table.itertuples()}
    assert got == {("vit", "attention"), ("vit", "gls"), ("simpool", "simpool"), ("baseline", "center"),
                   ("baseline", "random"), ("baseline", "uniform")}  # SimPool-ViT has no CLS token: its SimPool map
    with pytest.raises(ValueError, match="no CLS token"):
        gls_layer_probe(simpool, boxed_examples(boxed)["images"], boxed_examples(boxed)["boxes"])
    direct = localization_scores(vit, boxed, "test", ["gls"], top_o=4)["gls"]
    row = table[(table.model == "vit") & (table.method == "gls")].iloc[0]
    assert row.maxboxacc_v2 == pytest.approx(direct["maxboxacc_v2"]) and row.topO == pytest.approx(direct["top4"])
    assert row.iou50 == pytest.approx(direct["maxboxacc"][0.5]) and row.n == 12
    ex = boxed_examples(boxed, "test", n=100)
    assert ex["images"].shape == (12, 3, 32, 32) and ex["boxes"].shape == (12, 4)
    centre = max_box_acc(baseline_scores("center", 12, (4, 4)).reshape(12, 4, 4), ex["boxes"], (32, 32))
    row = table[(table.model == "baseline") & (table.method == "center")].iloc[0]
    assert row.maxboxacc_v2 == pytest.approx(centre["maxboxacc_v2"])
    # the uniform map's box is the whole image: its IoU with each object is the object's share of the image
    uni = table[(table.model == "baseline") & (table.method == "uniform")].iloc[0]
    b = ex["boxes"].double()
    share = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 32**2).numpy()
    assert uni.iou50 == pytest.approx(100 * (share >= 0.5).mean())
    assert uni.iou30 == pytest.approx(100 * (share >= 0.3).mean())
    assert uni.top1 == uni.topO == uni.chance == pytest.approx(row.chance)


def test_pooling_localization_scores_the_map_each_family_pools_with(boxed):
    from glsim_core.analysis import max_box_acc
    from glsim_core.analysis.probes import boxed_examples, pooling_localization
    from glsim_core.models.heads import pooling_attention

    torch.manual_seed(0)
    ex = boxed_examples(boxed, "test", n=12)
    models = {"vit": create_model("vit_nano_patch8_64", img_size=32, embed_dim=32, depth=2, num_heads=2,
                                  num_classes=3).eval(),
              "resnet+simpool": create_model("resnet_nano_64", pooling="simpool", num_classes=3).eval(),
              "resnet": create_model("resnet_nano_64", num_classes=3).eval()}
    table = pooling_localization(models, ex, batch_size=5)  # batches of 5 do not change the result
    assert list(table.model) == ["vit", "resnet+simpool", "resnet", "baseline: center"]
    assert list(table.grid) == ["4x4", "4x4", "4x4", "4x4"]  # ViT patch 8 and ResNet output stride 8 at 32 px
    for name, model in models.items():
        maps = pooling_attention(model, ex["images"], flatten=False)
        direct = max_box_acc(maps.numpy(), ex["boxes"].numpy(), (32, 32))
        row = table[table.model == name].iloc[0]
        assert row.maxboxacc_v2 == pytest.approx(direct["maxboxacc_v2"]) and row.n == 12
        assert row.iou70 == pytest.approx(direct["maxboxacc"][0.7])
        # mass inside the box, computed independently pixel by pixel from a nearest-neighbour upsampled map
        full = torch.nn.functional.interpolate(maps[:, None].double(), size=(32, 32), mode="nearest")[:, 0]
        shares, areas = [], []
        for m, (x0, y0, x1, y1) in zip(full, ex["boxes"].tolist()):
            cy = cx = torch.arange(32, dtype=torch.float64) // 8 * 8 + 4  # the centre of each pixel's cell
            inside = ((cx[None] >= x0) & (cx[None] < x1) & (cy[:, None] >= y0) & (cy[:, None] < y1)).double()
            shares.append(float((m * inside).sum() / m.sum()))
            areas.append(float(inside.mean()))
        assert row.mass_in_box == pytest.approx(100 * sum(shares) / 12)
        assert row.area == pytest.approx(100 * sum(areas) / 12)
    # images normalised another way are brought to each model's own mean / std first
    ex2 = {"images": (ex["images"] * 0.5 + 0.2), "boxes": ex["boxes"]}  # i.e. normalised with mean -0.4, std 2
    cfg = models["vit"].pretrained_cfg
    col = lambda v: torch.tensor(v).reshape(1, -1, 1, 1)  # noqa: E731
    assert col(cfg["std"]).ne(2).all()
    renorm = pooling_localization(models, ex2, baselines=(), normalization=([-0.4] * 3, [2.0] * 3))
    raw = ex2["images"] * 2.0 - 0.4
    direct = pooling_localization({"vit": models["vit"]}, {"images": (raw - col(cfg["mean"])) / col(cfg["std"]),
                                                          "boxes": ex["boxes"]}, baselines=())
    assert renorm.iloc[0].maxboxacc_v2 == pytest.approx(direct.iloc[0].maxboxacc_v2)
    assert renorm.iloc[0].mass_in_box == pytest.approx(direct.iloc[0].mass_in_box, rel=1e-5)
    # a uniform map puts exactly the box's share of cells inside the box; the centre prior more (boxes are central)
    from glsim_core.analysis.probes import _mass_in_box

    mass, area = _mass_in_box(torch.ones(12, 4, 4), ex["boxes"], (32, 32))
    torch.testing.assert_close(mass, area)
    base = table[table.model == "baseline: center"].iloc[0]
    assert base.area == pytest.approx(100 * float(area.mean())) and 0 < base.area < 100
    with pytest.raises(ValueError, match="at least one model"):
        pooling_localization({}, ex)


def test_versus_baseline_reads_a_difference_only_beyond_two_binomial_errors():
    import pandas as pd

    from glsim_core.analysis.probes import versus_baseline

    def row(model, method, iou30, iou50, iou70, n=300):
        return {"model": model, "method": method, "maxboxacc_v2": (iou30 + iou50 + iou70) / 3, "iou30": iou30,
                "iou50": iou50, "iou70": iou70, "n": n}

    table = pd.DataFrame([row("GLSim", "gls", 99.0, 76.0, 22.0), row("ViT", "attention", 96.0, 40.0, 6.0),
                          row("ViT", "rollout", 100.0, 95.0, 60.0), row("baseline", "center", 100.0, 75.0, 20.0),
                          row("baseline", "random", 96.0, 43.0, 6.0)])
    v = versus_baseline(table).set_index("method")
    assert list(v.index) == ["gls", "attention", "rollout"]  # the baselines are not compared with themselves
    se50 = 100 * math.sqrt(0.76 * 0.24 / 300 + 0.75 * 0.25 / 300)  # two binomial errors, added in quadrature
    assert v.loc["gls", "IoU 0.5 se"] == pytest.approx(se50)
    assert v.loc["gls", "IoU 0.5 Δ"] == pytest.approx(1.0)
    assert v.loc["gls", "IoU 0.5 vs center"] == "within noise"  # +1 point on 300 images is noise
    assert v.loc["attention", "IoU 0.5 vs center"] == "below" and v.loc["rollout", "IoU 0.7 vs center"] == "above"
    assert v.loc["attention", "MaxBoxAccV2 vs center"] == "below"
    # the same +1 point on a million images is beyond the noise
    big = table.assign(n=1_000_000)
    assert versus_baseline(big).set_index("method").loc["gls", "IoU 0.5 vs center"] == "above"
    with pytest.raises(ValueError, match="no baseline row"):
        versus_baseline(table, baseline=("baseline", "gaussian"))


def test_binomial_se_of_a_share():
    from glsim_core.analysis.accuracy import binomial_se

    assert binomial_se(75.0, 300) == pytest.approx(2.5)  # sqrt(0.75 * 0.25 / 300) = 0.025
    assert binomial_se(0.0, 10) == 0.0 and binomial_se(100.0, 10) == 0.0
    assert binomial_se([50.0, 90.0], [100, 100]).tolist() == pytest.approx([5.0, 3.0])
