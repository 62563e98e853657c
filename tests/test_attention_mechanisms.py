"""Attention-based selection mechanisms (GLSim Table 1 / Figure 2) against direct NumPy implementations."""

import numpy as np
import pytest
import timm
import torch

from glsim_core.analysis.probes import token_scores
from glsim_core.models import create_model, record_attention
from glsim_core.selection import MECHANISMS, attention_rollout, global_local_similarity, last_layer_attention, maws, psm


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


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _maws_reference(s, prefix=1):
    """FFVT's MAWS from pre-softmax scores s (B, H, T, T), written out: CLS row of the key-softmax times the CLS
    column of the query-softmax (over all T queries), head means, patch tokens."""
    row = _softmax(s, -1)[:, :, 0, prefix:].mean(1)
    col = _softmax(s, -2)[:, :, prefix:, 0].mean(1)
    return row * col


def test_maws_is_ffvt_row_times_query_softmaxed_column_of_the_scores():
    gen = torch.Generator().manual_seed(0)
    scores = [torch.randn(2, 3, 10, 10, generator=gen).mul(3) for _ in range(4)]
    assert np.allclose(maws(scores).double().numpy(), _maws_reference(scores[-1].double().numpy()), atol=1e-6)
    assert np.allclose(maws(scores, layer=0).double().numpy(), _maws_reference(scores[0].double().numpy()),
                       atol=1e-6)
    assert np.allclose(maws(scores, 2).double().numpy(), _maws_reference(scores[-1].double().numpy(), 2), atol=1e-6)


def test_record_attention_logits_are_q_k_scores_computed_by_hand():
    torch.manual_seed(0)
    vit = timm.create_model("vit_nano_patch8_64", num_classes=0).eval()
    with torch.no_grad():
        vit.blocks[-1].attn.qkv.weight.mul_(8)  # peaked attention, as in a trained model
    x = torch.randn(2, 3, 64, 64)
    inputs = []
    last = vit.blocks[-1]
    handle = last.norm1.register_forward_hook(lambda _m, _i, out: inputs.append(out))
    try:
        with torch.no_grad(), record_attention(vit, layers=[-1], kind="logits") as logits, \
                record_attention(vit, layers=[-1]) as probs:
            vit.forward_features(x)
    finally:
        handle.remove()
    assert vit.blocks[-1].attn.fused_attn == timm.layers.use_fused_attn()  # restored
    # q, k by hand from the last block's weights: x_norm W_qkv^T + b, split into heads, q k^T / sqrt(d)
    h, d = last.attn.num_heads, last.attn.head_dim
    w, b = last.attn.qkv.weight.detach().double(), last.attn.qkv.bias.detach().double()
    z = inputs[0].double() @ w.T + b  # (B, T, 3 D)
    dim = h * d
    q = z[..., :dim].reshape(2, -1, h, d).transpose(1, 2)
    k = z[..., dim:2 * dim].reshape(2, -1, h, d).transpose(1, 2)
    s = (q @ k.transpose(-2, -1) / np.sqrt(d)).numpy()
    assert np.allclose(logits[0].double().numpy(), s, atol=1e-4)
    assert torch.allclose(logits[0].softmax(-1), probs[0], atol=1e-5)  # the softmax of the logits = the probs
    got = token_scores(vit, x, "maws").double().numpy()
    ref = _maws_reference(s)
    assert np.allclose(got, ref, rtol=1e-4, atol=1e-9)
    # the bug this guards against: MAWS of the probabilities is a different map
    wrong = maws(probs).double().numpy()
    assert np.abs(wrong - ref).max() > 0.1 * np.abs(ref).max()


def test_record_attention_kind_is_checked():
    vit = timm.create_model("vit_nano_patch8_64", num_classes=0)
    with pytest.raises(ValueError, match="kind must be one of"):
        with record_attention(vit, kind="raw"):
            pass


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
    with torch.no_grad(), record_attention(vit) as maps, record_attention(vit, kind="logits") as logits:
        tokens = vit.forward_features(x)
    return vit, x, tokens, maps, logits


@pytest.mark.parametrize("method", [m for m in MECHANISMS if m != "simpool"])
def test_token_scores_on_a_vit_with_registers_and_a_non_square_grid(method, reg_vit):
    vit, x, tokens, maps, logits = reg_vit
    assert vit.num_prefix_tokens == 4
    scores = token_scores(vit, x, method)
    assert scores.shape == (2, 6 * 8) and torch.isfinite(scores).all()
    direct = {
        "gls": lambda: global_local_similarity(tokens, "cosine", 4),
        "attention": lambda: maps[-1][:, :, 0, 4:].mean(1),
        "maws": lambda: maws(logits, 4),
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
