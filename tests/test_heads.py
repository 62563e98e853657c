"""SimPool as the pooling of timm ViT / ResNet / ConvNeXt (models.heads), pretrained loading, attention maps."""

import copy
import pickle

import pytest
import timm
import torch
import torch.nn.functional as F

from glsim_core.models import create_model, record_attention
from glsim_core.models.heads import (
    PooledConvNeXt,
    PooledResNet,
    PooledVisionTransformer,
    create_with_pooling,
    get_pooling,
    pooling_attention,
)
from glsim_core.pooling import SimPool

VIT, RESNET, CONVNEXT = "vit_nano_patch8_64", "test_resnet", "test_convnext"  # timm's tiny test models


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def test_vit_simpool_after_the_final_norm(images):
    torch.manual_seed(0)
    model = create_model(VIT, pooling="simpool", num_classes=5).eval()
    assert isinstance(model, PooledVisionTransformer) and model.cls_token is None
    assert model.num_prefix_tokens == 0 and model.pos_embed.shape == (1, 64, 128)  # patches only
    sp = get_pooling(model)
    assert isinstance(sp, SimPool) and sp.gamma == 1.25 and sp.min_over == "sample"
    feats = model.forward_features(images)
    assert feats.shape == (2, 64, 128)
    # forward = head(SimPool(final-normed patch tokens)), computed by hand
    x = model.patch_embed(images) + model.pos_embed
    x = model.norm(model.blocks(x))
    torch.testing.assert_close(feats, x)
    torch.testing.assert_close(model(images), model.head(sp(x)))
    model.reset_classifier(7)
    assert model(images).shape == (2, 7) and get_pooling(model) is sp


def test_resnet_and_convnext(images):
    torch.manual_seed(0)
    resnet = create_model(RESNET, pooling="simpool", num_classes=5).eval()
    assert isinstance(resnet, PooledResNet) and resnet.global_pool.gamma == 2.0
    fmap = resnet.forward_features(images)
    torch.testing.assert_close(resnet(images), resnet.fc(resnet.global_pool(fmap)))
    resnet.reset_classifier(3)
    assert resnet(images).shape == (2, 3) and isinstance(resnet.global_pool, SimPool)

    convnext = create_model(CONVNEXT, pooling="simpool", num_classes=5).eval()
    assert isinstance(convnext, PooledConvNeXt)
    sp = get_pooling(convnext)
    fmap = convnext.forward_features(images)
    head = convnext.head  # SimPool, then ConvNeXt's head LayerNorm, then fc
    ref = head.fc(head.norm(sp(fmap)[:, :, None, None]).flatten(1))
    torch.testing.assert_close(convnext(images), ref)
    convnext.reset_classifier(4)
    assert convnext(images).shape == (2, 4) and get_pooling(convnext) is sp


def test_gamma_options():
    assert get_pooling(create_with_pooling(RESNET, gamma=False, num_classes=2)).gamma is None
    sp = get_pooling(create_with_pooling(VIT, gamma=3.0, num_classes=2, use_beta=True, min_over="batch"))
    assert (sp.gamma, sp.use_beta, sp.min_over) == (3.0, True, "batch")
    with pytest.raises(ValueError, match="gamma"):
        create_with_pooling(RESNET, pooling="gem", gamma=2.0)
    with pytest.raises(ValueError, match="not supported"):
        create_with_pooling("mobilenetv3_small_050")


@pytest.mark.parametrize("name", [VIT, RESNET])
def test_pretrained_weights_load_for_every_layer_but_the_pooling(tmp_path, name):
    torch.manual_seed(1)
    base = timm.create_model(name, num_classes=10)
    path = tmp_path / "weights.pth"
    torch.save(base.state_dict(), path)
    overlay = dict(file=str(path), num_classes=10)  # a local checkpoint with 10 classes: timm keeps its classifier
    model = create_with_pooling(name, pretrained=True, num_classes=10, pretrained_cfg_overlay=overlay)
    saved, loaded = base.state_dict(), model.state_dict()
    pooling_keys = {k for k in loaded if k.startswith(("attn_pool.", "global_pool."))}
    assert pooling_keys and all(".wq." in k or ".wk." in k or ".norm." in k for k in pooling_keys)
    for key, value in loaded.items():
        if key in pooling_keys:
            continue
        expected = saved[key][:, 1:] if key == "pos_embed" else saved[key]  # the CLS position is dropped
        torch.testing.assert_close(value, expected, msg=key)
    assert set(saved) - set(loaded) <= {"cls_token"}


def test_timm_conventions_survive(images):
    model = create_model(VIT, pooling="simpool", num_classes=3).eval()
    twin = copy.deepcopy(model)  # what timm's EMA does
    torch.testing.assert_close(twin(images), model(images))
    clone = pickle.loads(pickle.dumps(model))
    torch.testing.assert_close(clone(images), model(images))
    fresh = create_model(VIT, pooling="simpool", num_classes=3).eval()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(images), model(images))
    assert model.forward_head(model.forward_features(images), pre_logits=True).shape == (2, 128)


def test_other_table1_poolings(images):
    torch.manual_seed(2)
    gem = create_with_pooling(RESNET, pooling="gem", num_classes=4).eval()
    fmap = gem.forward_features(images)
    torch.testing.assert_close(gem(images), gem.fc(fmap.clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3)))
    # k = 3 slots, classified by the maximum of the k logits per class (SimPool §4.2)
    slot = create_with_pooling(VIT, pooling="slot", num_classes=4, pool_kwargs=dict(reduce="none")).eval()
    u = slot.attn_pool(slot.forward_features(images))
    assert u.shape == (2, 3, 128)
    torch.testing.assert_close(slot(images), slot.head.fc(u).amax(1))
    cat = create_with_pooling(VIT, pooling="kmeans", num_classes=4).eval()  # concatenation: 3·128 features
    assert cat.head.in_features == 3 * 128 and cat(images).shape == (2, 4)


def test_pooling_attention(images):
    torch.manual_seed(3)
    for name, n in ((VIT, 64), (RESNET, 4), (CONVNEXT, 4)):
        model = create_model(name, pooling="simpool", num_classes=2).eval()
        a = pooling_attention(model, images)
        assert a.shape == (2, n)
        torch.testing.assert_close(a.sum(-1), torch.ones(2))
        feats = model.forward_features(images)
        _, ref = get_pooling(model)(feats, return_attention=True)
        torch.testing.assert_close(a, ref.reshape(2, -1))
        assert pooling_attention(model, images, flatten=False).shape == (2, *((8, 8) if name == VIT else (2, 2)))
    plain = create_model(VIT, num_classes=2).eval()  # the CLS token's last-layer attention, head mean
    with record_attention(plain, layers=[-1]) as attn:
        plain(images)
    torch.testing.assert_close(pooling_attention(plain, images), attn[-1][:, :, 0, 1:].mean(1))
    gap = create_model(RESNET, num_classes=2).eval()  # GAP: each location's share of the activation mass
    fmap = gap.forward_features(images)
    share = fmap.abs().sum(1).flatten(1)
    torch.testing.assert_close(pooling_attention(gap, images), share / share.sum(-1, keepdim=True))


def test_device_and_dtype_follow_the_model(images):
    model = create_model(RESNET, pooling="simpool", num_classes=2).eval().to(torch.bfloat16)
    out = model(images.bfloat16())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
    with torch.device("meta"):
        meta = create_model(VIT, pooling="simpool", num_classes=2)
    assert meta(torch.empty(1, 3, 64, 64, device="meta")).shape == (1, 2)
    assert F.softmax(out.float(), -1).shape == (2, 2)
