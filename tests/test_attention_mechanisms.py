"""Attention-based selection mechanisms (GLSim Table 1 / Figure 2) against direct NumPy implementations."""

import numpy as np
import pytest
import timm
import torch

from glsim_core.models import create_model, record_attention
from glsim_core.selection import (
    MECHANISMS,
    attention_rollout,
    global_local_similarity,
    last_layer_attention,
    maws,
    psm,
    token_scores,
)


def _maps(layers=4, b=2, h=3, t=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, t, t, generator=gen).mul(2).softmax(-1) for _ in range(layers)]


def test_last_layer_attention_is_the_head_mean_cls_row():
    maps = _maps()
    got = last_layer_attention(maps, num_prefix_tokens=2)
    ref = maps[-1].numpy()[:, :, 0, 2:].mean(1)
    assert np.allclose(got.numpy(), ref, atol=1e-6)


def test_rollout_matches_abnar_zuidema():
    maps = _maps(layers=5)
    ref = []
    for b in range(2):
        joint = np.eye(10)
        for a in maps:
            m = 0.5 * a[b].double().numpy().mean(0) + 0.5 * np.eye(10)  # residual: 0.5 A + 0.5 I (rows sum to 1)
            joint = m @ joint
        ref.append(joint[0, 1:])
    assert np.allclose(attention_rollout(maps).double().numpy(), np.stack(ref), atol=1e-6)
    # without the residual: the plain product of head-mean maps
    joint = maps[0].double().mean(1)
    for a in maps[1:]:
        joint = a.double().mean(1) @ joint
    assert torch.allclose(attention_rollout(maps, residual=False).double(), joint[:, 0, 1:], atol=1e-6)


def test_rollout_limits():
    t = 9
    eye = [torch.eye(t).expand(1, 2, t, t)] * 3  # every token attends to itself: nothing flows to CLS
    assert torch.allclose(attention_rollout(eye), torch.zeros(1, t - 1))
    uniform = [torch.full((1, 2, t, t), 1 / t)] * 3
    out = attention_rollout(uniform)
    assert torch.allclose(out, out[:, :1].expand_as(out))  # all patches alike


def test_psm_is_transfg_product_of_all_layers_but_the_last():
    maps = _maps(layers=4)
    ref = np.zeros((2, 3, 9))
    for b in range(2):
        for h in range(3):
            joint = maps[0][b, h].double().numpy()
            for a in maps[1:-1]:  # the last layer is excluded
                joint = a[b, h].double().numpy() @ joint
            ref[b, h] = joint[0, 1:]
    assert np.allclose(psm(maps).double().numpy(), ref.mean(1), atol=1e-6)
    assert np.allclose(psm(maps, head_reduce="max").double().numpy(), ref.max(1), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        psm(maps[:1])


def test_maws_is_ffvt_row_times_softmaxed_column():
    maps = _maps()
    a = maps[-1].double().numpy()
    row = a[:, :, 0, 1:].mean(1)
    col = a[:, :, 1:, 0]
    col = (np.exp(col) / np.exp(col).sum(-1, keepdims=True)).mean(1)
    assert np.allclose(maws(maps).double().numpy(), row * col, atol=1e-6)
    a0 = maps[0].double().numpy()
    col0 = np.exp(a0[:, :, 1:, 0])
    ref0 = a0[:, :, 0, 1:].mean(1) * (col0 / col0.sum(-1, keepdims=True)).mean(1)
    assert np.allclose(maws(maps, layer=0).double().numpy(), ref0, atol=1e-6)


def test_bad_attention_input():
    with pytest.raises(ValueError, match="record them"):
        last_layer_attention([])
    with pytest.raises(ValueError, match=r"\(batch, heads, T, T\)"):
        attention_rollout([torch.rand(2, 5, 5)])


@pytest.fixture(scope="module")
def reg_vit():
    torch.manual_seed(0)
    vit = timm.create_model("vit_nano_patch8_64", reg_tokens=3, img_size=(48, 64), num_classes=0).eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad(), record_attention(vit) as maps:
        tokens = vit.forward_features(x)
    return vit, x, tokens, maps


@pytest.mark.parametrize("method", [m for m in MECHANISMS if m != "simpool"])
def test_token_scores_on_a_vit_with_registers_and_a_non_square_grid(method, reg_vit):
    vit, x, tokens, maps = reg_vit
    assert vit.num_prefix_tokens == 4
    scores = token_scores(vit, x, method)
    assert scores.shape == (2, 6 * 8) and torch.isfinite(scores).all()
    direct = {
        "gls": lambda: global_local_similarity(tokens, "cosine", 4),
        "attention": lambda: maps[-1][:, :, 0, 4:].mean(1),
        "maws": lambda: maws(maps, 4),
        "psm": lambda: psm(maps, 4),
        "rollout": lambda: attention_rollout(maps, 4),
    }[method]()
    assert torch.allclose(scores, direct, atol=1e-6)


def test_token_scores_unknown_method():
    with pytest.raises(ValueError, match="unknown mechanism"):
        token_scores(torch.nn.Identity(), torch.zeros(1, 3, 64, 64), "gradcam")


def test_simpool_attention_scores():
    from glsim_core.models.heads import pooling_attention

    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", pooling="simpool", num_classes=5).eval()
    x = torch.randn(2, 3, 64, 64)
    scores = token_scores(model, x, "simpool")
    assert scores.shape == (2, 64)
    assert torch.allclose(scores.sum(-1), torch.ones(2), atol=1e-5)  # a softmax over the patches (Eq. 15)
    assert torch.allclose(scores, pooling_attention(model, x).flatten(1))
