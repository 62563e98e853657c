"""The GLSim model (§3.3, Eq. 3-6): equal to a step-by-step implementation, its switches, timm registration."""

import copy

import pytest
import timm
import torch
import torch.nn.functional as F

from glsim_core.models import create_model
from glsim_core.models.glsim import GLSIM_VARIANTS, GLSim
from glsim_core.profiles import get_profile
from glsim_core.weights.pretrained import best_available_backbone
from glsim_core.weights.shipped import shipped_weights_path

NAME = "glsim_vit_nano_patch8_64"


@pytest.fixture(scope="module")
def images():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _model(**kw):
    torch.manual_seed(0)
    return create_model(NAME, num_classes=7, **kw).eval()


def _manual_forward(model, x, top_o=8):
    """Figure 6's pseudocode, written out with plain torch (no glsim_core helpers)."""
    enc = model.encoder
    feats = enc.forward_features(x)  # (B, 1 + N, D), final-normed
    g, loc = feats[:, :1], feats[:, 1:]
    sim = F.cosine_similarity(g, loc, dim=-1)  # Eq. 1-2
    cols = 8
    p = 8
    crops = []
    for b in range(x.shape[0]):
        idx = torch.topk(sim[b], top_o).indices
        r, c = idx // cols, idx % cols
        y0, y1 = int(r.min()) * p, (int(r.max()) + 1) * p  # the enclosing rectangle
        x0, x1 = int(c.min()) * p, (int(c.max()) + 1) * p
        crops.append(F.interpolate(x[b:b + 1, :, y0:y1, x0:x1], size=(64, 64), mode="bilinear",
                                   align_corners=True))
    crops = torch.cat(crops)
    # the same encoder, with the separate CLS token for crops
    enc_crops = copy.deepcopy(enc)
    enc_crops.cls_token.data.copy_(model.cls_token_crops.data)
    feats_crops = enc_crops.forward_features(crops)
    tokens = torch.cat([feats[:, :1], feats_crops[:, :1]], dim=1)
    blk = model.aggregator  # Eq. 3-4, pre-norm block
    r1 = tokens + blk.attn(blk.norm1(tokens))
    r = r1 + blk.mlp(blk.norm2(r1))
    r = model.norm(r)  # Eq. 5
    return model.head(r[:, 0]), crops  # Eq. 6


def test_glsim_equals_the_pseudocode(images):
    model = _model()
    with torch.no_grad():
        ref, ref_crops = _manual_forward(model, images)
        out = model.forward_details(images)
        logits = model(images)
    assert torch.allclose(out.logits, ref, atol=1e-5) and torch.allclose(logits, ref, atol=1e-5)
    assert torch.allclose(out.crops, ref_crops, atol=5e-4)  # white-noise images: float32 coordinate rounding
    assert out.scores.shape == (3, 64) and out.boxes.shape == (3, 4) and out.grid == (8, 8)
    assert torch.allclose(model.encode(images), model.encoder.forward_features(images), atol=1e-6)


def test_second_pass_has_gradients_and_its_own_cls_token(images):
    model = _model(drop_path_rate=0.1).train()
    assert torch.equal(model.cls_token_crops.data, model.encoder.cls_token.data)  # initialised from the encoder's
    assert model.cls_token_crops.data_ptr() != model.encoder.cls_token.data_ptr()
    out = model.forward_details(images)
    assert not out.crops.requires_grad  # selection and cropping run without gradients
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2])).backward()
    assert model.cls_token_crops.grad is not None and model.cls_token_crops.grad.abs().sum() > 0
    assert model.encoder.cls_token.grad.abs().sum() > 0
    assert model.encoder.patch_embed.proj.weight.grad.abs().sum() > 0
    assert model.aggregator.attn.qkv.weight.grad.abs().sum() > 0
    # the crop token only enters through the crop pass: zero gradient without crops
    no_crop = _model(use_crops=False)
    assert no_crop.cls_token_crops is None


def test_crop_token_gradient_comes_only_from_the_crop_pass(images):
    model = _model()
    tokens = model.encode(images, model.cls_token_crops)
    # a random projection: the plain sum of a LayerNorm output with unit weight and zero bias is constant (0)
    weights = torch.randn(tokens[:, 0].shape, generator=torch.Generator().manual_seed(0))
    (tokens[:, 0] * weights).sum().backward()
    assert model.encoder.cls_token.grad is None or model.encoder.cls_token.grad.abs().max() == 0
    assert model.cls_token_crops.grad.abs().sum() > 0


def test_switch_use_crops_false_is_an_extra_block_on_cls(images):
    model = _model(use_crops=False)
    with torch.no_grad():
        f0 = model.encoder.forward_features(images)[:, :1]
        ref = model.head(model.norm(model.aggregator(f0))[:, 0])
        out = model.forward_details(images)
    assert torch.allclose(out.logits, ref, atol=1e-5)
    assert out.crops is None and out.boxes is None and out.scores is None
    plain = _model(use_crops=False, use_aggregator=False)  # = a ViT
    with torch.no_grad():
        assert torch.allclose(plain(images), plain.head(plain.encoder.forward_features(images)[:, 0]), atol=1e-6)


def test_switch_no_aggregator_picks_the_more_confident_view(images):
    model = _model(use_aggregator=False)
    assert not hasattr(model, "aggregator")
    with torch.no_grad():
        out = model.forward_details(images)
        f0 = model.encoder.forward_features(images)[:, 0]
        enc = copy.deepcopy(model.encoder)
        enc.cls_token.data.copy_(model.cls_token_crops.data)
        fc = enc.forward_features(out.crops)[:, 0]
    z0, zc = model.head(f0), model.head(fc)
    assert torch.allclose(out.view_logits[:, 0], z0, atol=1e-5) and torch.allclose(out.view_logits[:, 1], zc,
                                                                                     atol=1e-5)
    crop_wins = zc.softmax(-1).amax(-1) > z0.softmax(-1).amax(-1)
    assert torch.equal(out.chosen_view, crop_wins.long())
    assert torch.allclose(out.logits, torch.where(crop_wins[:, None], zc, z0), atol=1e-5)


@pytest.mark.parametrize("selector", ["random", "rollout", "attention", "maws", "psm"])
def test_every_selector_drives_the_crop(selector, images):
    model = _model(selector=selector, top_o=4, box_rule="reference")
    with torch.no_grad():
        out = model.forward_details(images)
        scores = model.selection_scores(images) if selector != "random" else out.scores
    assert out.logits.shape == (3, 7) and out.scores.shape == (3, 64)
    if selector != "random":
        assert torch.allclose(out.scores, scores, atol=1e-6)
        from glsim_core.analysis.probes import token_scores

        assert torch.allclose(token_scores(model, images, selector), scores, atol=1e-6)  # any model, any mechanism
    from glsim_core.selection import select_boxes

    assert torch.equal(out.boxes, select_boxes(out.scores, 8, 8, 4, "reference"))


def test_metrics_and_top_o(images):
    for metric in ("l1", "l2"):
        model = _model(metric=metric)
        with torch.no_grad():
            out = model.forward_details(images)
            f = model.encoder.forward_features(images)
        d = (f[:, :1] - f[:, 1:]).abs() if metric == "l1" else (f[:, :1] - f[:, 1:]).square()
        assert torch.allclose(out.scores, -d.mean(-1), atol=1e-5)
    with pytest.warns(UserWarning, match="larger than the number of tokens"):
        out = _model(top_o=100).forward_details(images)
    assert out.boxes.tolist() == [[0, 0, 64, 64]] * 3


def test_bad_switches():
    for kw, msg in [({"selector": "gradcam"}, "selector"), ({"metric": "dot"}, "metric"),
                    ({"box_rule": "x"}, "box_rule"), ({"top_o": 0}, "top_o"), ({"pool": "gem"}, "pool")]:
        with pytest.raises(ValueError, match=msg):
            create_model(NAME, **kw)
    with pytest.raises(ValueError, match="needs pool='simpool'"):
        create_model(NAME, selector="simpool", pool="token")


def test_timm_registration_and_standard_kwargs(images):
    assert set(GLSIM_VARIANTS) <= set(timm.list_models("glsim_*"))
    for name in ("glsim_vit_tiny_patch16_224", "glsim_vit_small_patch16_224", "glsim_vit_base_patch16_224",
                 "glsim_vit_nano_patch8_64", "glsim_vit_micro_patch8_64", "glsim_vit_nano_patch16_64"):
        assert name in GLSIM_VARIANTS
    model = timm.create_model(NAME, num_classes=4, img_size=32, drop_path_rate=0.2, drop_rate=0.1)
    assert isinstance(model, GLSim) and model.num_classes == 4
    assert model.encoder.patch_embed.img_size == (32, 32)
    assert model.encoder.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert model.aggregator.drop_path1.drop_prob == pytest.approx(0.2)
    assert model.pretrained_cfg["mean"] == model.encoder.pretrained_cfg["mean"]
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    model.reset_classifier(9)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 9)
    base = timm.create_model("glsim_vit_base_patch16_224.augreg2_in21k_ft_in1k", num_classes=3, depth=1)
    assert base.backbone_name == "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert base.encoder.embed_dim == 768 and base.encoder.patch_embed.patch_size == (16, 16)


def test_non_square_input(images):
    model = create_model(NAME, num_classes=3, img_size=(48, 64)).eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        out = model.forward_details(x)
    assert out.grid == (6, 8) and out.crops.shape == (2, 3, 48, 64)
    assert (out.boxes[:, 2] <= 64).all() and (out.boxes[:, 3] <= 48).all()


def test_autocast_forward(images):
    model = _model()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images)
    assert logits.shape == (3, 7) and torch.isfinite(logits.float()).all()


def test_pretrained_backbone_loads_through_timm_from_a_local_file(tmp_path, images, monkeypatch):
    torch.manual_seed(1)
    source = timm.create_model("vit_nano_patch8_64", num_classes=0)
    path = tmp_path / "vit_nano.pth"
    torch.save(source.state_dict(), path)
    model = timm.create_model(NAME, pretrained=True, num_classes=5, pretrained_cfg_overlay={"file": str(path)})
    for key, value in source.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value), key
    assert torch.equal(model.cls_token_crops.data, source.cls_token.data)  # crop token starts from the loaded one
    random = timm.create_model(NAME, num_classes=5)
    assert not torch.equal(random.encoder.pos_embed, source.pos_embed)

    # best_available_backbone finds the cpu profile's shipped checkpoint (glsim_core.weights.shipped)
    cpu = get_profile("cpu")
    shipped = shipped_weights_path(cpu.model)
    weights = best_available_backbone("cpu")
    assert weights.pretrained and weights.kwargs() == {"pretrained": True,
                                                       "pretrained_cfg_overlay": {"file": str(shipped)}}
    loaded = create_model(cpu.glsim_model, num_classes=5, **weights.kwargs())
    expected = torch.load(shipped, map_location="cpu", weights_only=True)
    assert torch.equal(loaded.encoder.pos_embed, expected["pos_embed"])
    assert not best_available_backbone("cpu", prefer="random").pretrained
    monkeypatch.setenv("GLSIM_DATA", str(tmp_path / "no-data"))  # a checkout without the shipped weights
    assert not best_available_backbone("cpu").pretrained


def test_pretrained_in21k_tag_loads_from_a_local_file(tmp_path):
    # the default backbone of glsim_vit_tiny_patch16_224 is vit_tiny_patch16_224.augreg_in21k (21843 classes)
    torch.manual_seed(2)
    source = timm.create_model("vit_tiny_patch16_224", num_classes=21843, depth=2)
    path = tmp_path / "tiny.pth"
    torch.save(source.state_dict(), path)
    model = timm.create_model("glsim_vit_tiny_patch16_224", pretrained=True, num_classes=10, depth=2,
                              pretrained_cfg_overlay={"file": str(path)})
    assert model.backbone_name == "vit_tiny_patch16_224.augreg_in21k"
    assert torch.equal(model.encoder.blocks[1].mlp.fc2.weight, source.blocks[1].mlp.fc2.weight)
    assert model.head.out_features == 10


def test_simpool_pooled_glsim(images):
    model = _model(selector="simpool")
    assert model.pool == "simpool"
    with torch.no_grad():
        out = model.forward_details(images)
        tokens = model.encoder.forward_features(images)
        pooled, attn = model.simpool(tokens[:, 1:], return_attention=True)
    assert torch.allclose(out.global_rep, pooled, atol=1e-6)
    assert torch.allclose(out.scores, attn.flatten(1), atol=1e-6)  # the crop comes from SimPool's map (Eq. 15)
    assert out.logits.shape == (3, 7)
    gls = _model(pool="simpool")  # GLS between SimPool's vector and the patch tokens
    with torch.no_grad():
        out = gls.forward_details(images)
        tokens = gls.encoder.forward_features(images)
        pooled, _ = gls.simpool(tokens[:, 1:], return_attention=True)
    assert torch.allclose(out.scores, F.cosine_similarity(pooled[:, None], tokens[:, 1:], dim=-1), atol=1e-5)


def test_glsim_names_are_registered_with_timm_pretrained_configs():
    from glsim_core.models.glsim import GLSIM_BACKBONES

    cfg = timm.get_pretrained_cfg("glsim_vit_base_patch16_224")
    assert cfg is not None and cfg.tag == "orig_in21k"  # the paper's weights are the default tag
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.input_size == (3, 224, 224)
    assert "vit_base_patch16_224.orig_in21k" in cfg.notes
    assert timm.get_pretrained_cfg("glsim_vit_base_patch16_224.augreg_in21k").tag == "augreg_in21k"
    assert set(timm.list_models("glsim_*")) == set(GLSIM_BACKBONES)
    for variant in GLSIM_BACKBONES:  # one explicit factory per variant, as timm registers its own models
        import glsim_core.models.glsim as mod

        assert getattr(mod, variant).__name__ == variant
        assert timm.get_pretrained_cfg(variant) is not None


def test_default_backbone_is_the_papers_and_augreg_is_a_named_option():
    model = timm.create_model("glsim_vit_base_patch16_224", num_classes=3, depth=1)
    assert model.backbone_name == "vit_base_patch16_224.orig_in21k"
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)
    model = timm.create_model("glsim_vit_base_patch16_224.augreg_in21k", num_classes=3, depth=1)
    assert model.backbone_name == "vit_base_patch16_224.augreg_in21k"
    assert GLSim.__init__.__defaults__[0] == "vit_base_patch16_224.orig_in21k"


def test_img_size_reaches_the_encoder_and_o_follows_the_paper():
    model = timm.create_model("glsim_vit_base_patch16_224", num_classes=3, depth=1, img_size=448)
    assert tuple(model.encoder.patch_embed.img_size) == (448, 448) and model.top_o == 16
    with torch.no_grad():
        assert model(torch.randn(1, 3, 448, 448)).shape == (1, 3)
    assert timm.create_model("glsim_vit_base_patch16_224", num_classes=3, depth=1).top_o == 8
    assert timm.create_model("glsim_vit_base_patch16_224", num_classes=3, depth=1, img_size=448, top_o=4).top_o == 4


def _rates(blocks):
    return [getattr(b.drop_path1, "drop_prob", 0.0) for b in blocks]


def test_drop_path_is_uniform_by_default_and_linear_on_request():
    model = _model(drop_path_rate=0.1)
    assert _rates(model.encoder.blocks) == pytest.approx([0.1] * 4)  # GLSim: 0.1 in every block
    assert [getattr(b.drop_path2, "drop_prob", 0.0) for b in model.encoder.blocks] == pytest.approx([0.1] * 4)
    assert model.aggregator.drop_path1.drop_prob == pytest.approx(0.1)
    linear = _model(drop_path_rate=0.1, drop_path_schedule="linear")
    assert _rates(linear.encoder.blocks) == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])  # timm's rule
    assert linear.aggregator.drop_path1.drop_prob == pytest.approx(0.1)
    assert _rates(_model().encoder.blocks) == [0.0] * 4
    with pytest.raises(ValueError, match="drop_path_schedule"):
        _model(drop_path_rate=0.1, drop_path_schedule="cosine")
