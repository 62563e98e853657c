"""SimPoolVariant (SimPool Table 10 options): defaults equal SimPool; options against a direct implementation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from glsim_core.models import create_model
from glsim_core.pooling import SimPool
from glsim_core.pooling.simpool_variants import SimPoolVariant


@pytest.mark.parametrize("gamma, heads", [(None, 1), (1.25, 1), (2.0, 4), (None, 4)])
def test_defaults_are_simpool(gamma, heads):
    torch.manual_seed(0)
    ref, var = SimPool(32, gamma=gamma, num_heads=heads), SimPoolVariant(32, gamma=gamma, num_heads=heads)
    assert sorted(ref.state_dict()) == sorted(var.state_dict())
    var.load_state_dict(ref.state_dict())
    x = torch.randn(3, 9, 32) * 3 + 1
    (p1, a1), (p2, a2) = ref(x, return_attention=True), var(x, return_attention=True)
    assert torch.equal(p1, p2) and torch.equal(a1, a2)
    fmap = torch.randn(2, 32, 3, 4)
    assert torch.equal(ref(fmap), var(fmap))


def _direct(x, wq, wk, wv, ln_q, ln_kv):
    """Single head, gamma None: q = Wq LN_q(GAP x), K = Wk x, V = Wv LN(x), a = softmax(K q / sqrt d), u = a V."""
    d = x.shape[-1]
    u0 = x.mean(1, keepdim=True)
    q = F.linear(F.layer_norm(u0, (d,), ln_q.weight, ln_q.bias, 1e-6), wq)
    k = F.linear(x, wk)
    v = F.linear(F.layer_norm(x, (d,), ln_kv.weight, ln_kv.bias, 1e-6), wv)
    a = torch.softmax((k @ q.transpose(1, 2)).squeeze(-1) / math.sqrt(d), dim=-1)
    return (a.unsqueeze(1) @ v).squeeze(1), a


def test_linear_and_layernorm_placements_against_a_direct_implementation():
    torch.manual_seed(1)
    pool = SimPoolVariant(16, linear="qkv", layernorm="qv")
    with torch.no_grad():  # non-trivial LayerNorm affine parameters
        for p in (pool.norm.weight, pool.norm.bias, pool.norm_q.weight, pool.norm_q.bias):
            p.normal_()
    x = torch.randn(4, 7, 16)
    out, attn = pool(x, return_attention=True)
    ref_out, ref_attn = _direct(x, pool.wq.weight, pool.wk.weight, pool.wv.weight, pool.norm_q, pool.norm)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn, ref_attn, rtol=1e-5, atol=1e-6)
    bare = SimPoolVariant(16, linear="", layernorm="")  # no parameters at all: attention by raw dot products
    assert sum(p.numel() for p in bare.parameters()) == 0
    a = torch.softmax((x @ x.mean(1, keepdim=True).transpose(1, 2)).squeeze(-1) / 4.0, dim=-1)
    torch.testing.assert_close(bare(x), (a.unsqueeze(1) @ x).squeeze(1), rtol=1e-5, atol=1e-6)


def test_shared_qk_ties_the_maps_and_halves_their_parameters():
    tied, plain = SimPoolVariant(24, shared_qk=True), SimPool(24)
    assert tied.wk is tied.wq
    n_tied, n_plain = (sum(p.numel() for p in m.parameters()) for m in (tied, plain))
    assert n_plain - n_tied == 24 * 24
    x = torch.randn(2, 5, 24)
    tied(x).sum().backward()
    assert tied.wq.weight.grad is not None and tied.wq.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="needs linear layers on q and k"):
        SimPoolVariant(8, shared_qk=True, linear="q")
    with pytest.raises(ValueError, match="subset"):
        SimPoolVariant(8, linear="qx")


def test_through_create_model_pool_kwargs():
    m = create_model("vit_nano_patch8_64", pooling="simpool", num_classes=5, pool_kwargs={"shared_qk": True})
    assert isinstance(m.attn_pool, SimPoolVariant) and m.attn_pool.shared_qk
    assert m(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    plain = create_model("vit_nano_patch8_64", pooling="simpool", num_classes=5)
    assert type(plain.attn_pool) is SimPool
