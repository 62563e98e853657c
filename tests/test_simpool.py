"""SimPool (Eq. 12–17): equality with the authors' release behaviour, per-sample minimum, robustness, gradients."""

import pytest
import torch
import torch.nn.functional as F

from glsim_core.pooling import SimPool


def release_simpool(x, norm_w, norm_b, wq, wk, gamma=None, beta=None, num_heads=1):
    """An independent, straightforward re-implementation of the release's ``sp.py`` forward as documented in
    The authors' release: GAP of the *un-normalised* input as query seed; one LayerNorm (eps 1e-6) for keys and values;
    W_Q, W_K without bias, no W_V; scale (dim/heads)^-½; softmax over tokens; with gamma, values shifted by the minimum
    of the whole batch tensor plus 1e-6 before the power (not removed afterwards), beta added after the inverse
    power, heads never merged; without gamma, u = a · LN(X) with heads merged; finally ``squeeze()``."""
    if x.ndim == 4:
        b, d, h, w = x.shape
        seed = x.mean([-2, -1])
        x = x.reshape(b, d, h * w).permute(0, 2, 1)
    else:
        b, n, d = x.shape
        seed = x.mean(-2)
    seed = seed.unsqueeze(1)  # (B, 1, d)
    normed = F.layer_norm(x, (d,), norm_w, norm_b, eps=1e-6)
    n = normed.shape[1]
    hd = d // num_heads
    q = (seed @ wq.T).reshape(b, 1, num_heads, hd).permute(0, 2, 1, 3)
    k = (normed @ wk.T).reshape(b, n, num_heads, hd).permute(0, 2, 1, 3)
    v = normed.reshape(b, n, num_heads, hd).permute(0, 2, 1, 3)
    attn = ((q @ k.transpose(-2, -1)) * (d / num_heads) ** -0.5).softmax(dim=-1)
    if gamma is not None:
        out = torch.pow(attn @ torch.pow(v - v.min() + 1e-6, gamma), 1 / gamma)  # (B, heads, 1, d/heads)
        if beta is not None:
            out = out + beta
    else:
        out = (attn @ v).transpose(1, 2).reshape(b, 1, d)
    return out.squeeze()


def _release(sp: SimPool, x):
    return release_simpool(x, sp.norm.weight, sp.norm.bias, sp.wq.weight, sp.wk.weight, sp.gamma, sp.beta,
                           sp.num_heads)


def _randomise(sp: SimPool, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sp.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim > 1 else 0.5) + (0.2 if p.ndim == 1 else 0))
    return sp


@pytest.mark.parametrize("gamma", [None, 1.0, 1.25, 2.0, 3.0])
@pytest.mark.parametrize("num_heads", [1, 4])
@pytest.mark.parametrize("layout", ["tokens", "map"])
def test_equals_release_with_batch_minimum(gamma, num_heads, layout):
    torch.manual_seed(1)
    d = 32
    x = torch.randn(5, 49, d) * 2 + 0.5 if layout == "tokens" else torch.randn(5, d, 7, 7).relu() * 3
    sp = _randomise(SimPool(d, gamma=gamma, num_heads=num_heads, min_over="batch"))
    ours = sp(x)
    ref = _release(sp, x).reshape(5, d)  # the release leaves heads unmerged with gamma: (B, heads, d/heads)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_equals_release_with_beta_and_batch_of_one():
    torch.manual_seed(2)
    sp = _randomise(SimPool(24, gamma=1.25, use_beta=True, min_over="batch"))
    x = torch.randn(1, 24, 6, 5)
    ref = _release(sp, x)
    assert ref.shape == (24,)  # the release squeezes the batch dimension away ...
    assert sp(x).shape == (1, 24)  # ... SimPool keeps it
    torch.testing.assert_close(sp(x)[0], ref, rtol=1e-5, atol=1e-5)


def test_per_sample_minimum_is_the_release_run_one_sample_at_a_time():
    torch.manual_seed(3)
    sp = _randomise(SimPool(32, gamma=2.0))
    x = torch.randn(6, 32, 4, 4) * torch.linspace(0.1, 5, 6)[:, None, None, None]  # very different scales
    ours = sp(x)
    for i in range(6):  # Eq. 16's minimum over one image = the release given a batch of one
        torch.testing.assert_close(ours[i], _release(sp, x[i:i + 1]), rtol=1e-5, atol=1e-5)


def test_batch_minimum_makes_outputs_depend_on_batch_mates():
    torch.manual_seed(4)
    x = torch.randn(4, 64, 32)
    mate = torch.randn(1, 64, 32) * 20  # a batch-mate whose normalised values reach lower than x's
    per_sample, per_batch = _randomise(SimPool(32, gamma=1.25)), _randomise(SimPool(32, gamma=1.25, min_over="batch"))
    alone, together = per_sample(x), per_sample(torch.cat([x, mate]))[:4]
    torch.testing.assert_close(alone, together, rtol=1e-6, atol=1e-6)
    drift = (per_batch(x) - per_batch(torch.cat([x, mate]))[:4]).abs().max()
    assert drift > 1e-2  # the release's defect: one sample's descriptor moves with its batch


def test_closed_forms_and_attention():
    torch.manual_seed(5)
    sp = _randomise(SimPool(16, gamma=None))
    x = torch.randn(3, 16, 4, 6)
    out, attn = sp(x, return_attention=True)
    assert attn.shape == (3, 4, 6)
    torch.testing.assert_close(attn.sum((1, 2)), torch.ones(3))
    tokens = x.flatten(2).transpose(1, 2)
    ln = sp.norm(tokens)
    q = sp.wq(tokens.mean(1, keepdim=True))
    a = ((q @ sp.wk(ln).transpose(1, 2)) / 4.0).softmax(-1)  # Eq. 15, √16 = 4
    torch.testing.assert_close(attn.reshape(3, -1), a[:, 0], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(out, (a @ ln)[:, 0], rtol=1e-5, atol=1e-6)  # γ = None: plain weighted average
    sp1 = SimPool(16, gamma=1.0)
    sp1.load_state_dict(sp.state_dict())
    shift = ln.amin((1, 2), keepdim=True)
    torch.testing.assert_close(sp1(x), (a @ (ln - shift + 1e-6))[:, 0], rtol=1e-5, atol=1e-6)  # γ = 1: shifted mean
    # token input with a grid gives the map layout; permuting tokens permutes the attention only
    _, attn_tok = sp(tokens, return_attention=True, grid=(4, 6))
    torch.testing.assert_close(attn_tok, attn)
    perm = torch.randperm(24)
    out_p, attn_p = sp(tokens[:, perm], return_attention=True)
    torch.testing.assert_close(out_p, out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn_p, attn.reshape(3, -1)[:, perm])


def test_multi_head_is_merged_and_geometric_mean():
    x = torch.rand(2, 10, 12) + 0.5
    sp = SimPool(12, gamma=1.25, num_heads=3)
    out, attn = sp(x, return_attention=True)
    assert out.shape == (2, 12) and attn.shape == (2, 10)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2))
    geo = SimPool(12, gamma=0.0)
    geo.load_state_dict(SimPool(12, gamma=1.0).state_dict())
    assert torch.isfinite(geo(x)).all()


def test_gradients_reach_every_parameter():
    torch.manual_seed(6)
    sp = SimPool(16, gamma=2.0, use_beta=True)
    x = torch.randn(4, 16, 3, 3, requires_grad=True)
    sp(x).pow(2).sum().backward()
    for name in ("norm.weight", "norm.bias", "wq.weight", "wk.weight", "beta"):
        grad = dict(sp.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("case", ["constant", "zeros", "huge", "huge_fp16", "tiny"])
@pytest.mark.parametrize("gamma", [None, 1.25, 2.0])
def test_no_nan(case, gamma):
    torch.manual_seed(7)
    sp = SimPool(32, gamma=gamma)
    dtype = torch.float16 if case == "huge_fp16" else torch.float32
    x = {
        "constant": torch.full((3, 32, 5, 5), 0.7),
        "zeros": torch.zeros(3, 32, 5, 5),
        "huge": torch.randn(3, 32, 5, 5) * 1e30,
        "huge_fp16": (torch.randn(3, 32, 5, 5) * 1e4).clamp(-6e4, 6e4),
        "tiny": torch.randn(3, 32, 5, 5) * 1e-30,
    }[case].to(dtype).requires_grad_(True)
    sp = sp.to(dtype)
    out, attn = sp(x, return_attention=True)
    assert out.dtype == dtype and torch.isfinite(out).all() and torch.isfinite(attn).all()
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in sp.parameters())


def test_autocast_and_dtypes():
    torch.manual_seed(8)
    sp = _randomise(SimPool(32, gamma=1.25))
    x = torch.randn(2, 49, 32)
    ref = sp(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sp(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=3e-2, atol=3e-2)
    half = SimPool(32, gamma=1.25).half()
    half.load_state_dict(sp.half().state_dict())
    assert half(x.half()).dtype == torch.float16
    torch.testing.assert_close(half(x.half()).float(), ref, rtol=2e-2, atol=2e-2)


def test_runs_on_the_meta_device():
    sp = SimPool(64, gamma=2.0).to("meta")
    out, attn = sp(torch.empty(2, 64, 7, 7, device="meta"), return_attention=True)
    assert out.shape == (2, 64) and attn.shape == (2, 7, 7) and out.device.type == "meta"


def test_errors():
    with pytest.raises(ValueError, match="min_over"):
        SimPool(8, min_over="global")
    with pytest.raises(ValueError, match="use_beta"):
        SimPool(8, use_beta=True)
    with pytest.raises(ValueError, match="num_heads"):
        SimPool(10, num_heads=3)
    with pytest.raises(ValueError, match="channels"):
        SimPool(8)(torch.randn(2, 5, 9))
    with pytest.raises(ValueError, match="tokens"):
        SimPool(8)(torch.randn(8, 5))
