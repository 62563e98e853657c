"""Every Table-1 method built from the framework equals an independent, direct implementation of that method."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glsim_core.pooling import POOLING_METHODS, SimPool, pool, simpool_process

D, H, W = 16, 4, 5


@pytest.fixture()
def fmap():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, D, H, W, generator=g)


def _tokens(m):
    return m.flatten(2).transpose(1, 2)


# -------------------------------------------------------------------------------------------------- group 1
def test_gap_max_are_mean_and_max(fmap):
    torch.testing.assert_close(pool("gap")(fmap), fmap.mean((2, 3)))
    torch.testing.assert_close(pool("max")(fmap), fmap.amax((2, 3)))
    _, a = pool("gap")(fmap, return_attention=True)
    torch.testing.assert_close(a, torch.full((3, H, W), 1 / (H * W)))


def test_gem_is_the_p_norm_mean(fmap):
    x = fmap.relu()
    for p in (1.0, 3.0, 5.5):
        ref = x.clamp(min=1e-6).pow(p).mean((2, 3)).pow(1 / p)
        torch.testing.assert_close(pool("gem", p=p)(x), ref, rtol=1e-5, atol=1e-6)
    gem = pool("gem")
    gem(x).sum().backward()
    assert gem.process.f.gamma_param.grad is not None  # p is learnable (GeM)


def test_lse_closed_form(fmap):
    for r in (0.5, 2.0):
        ref = (torch.logsumexp(r * fmap.flatten(2), dim=-1) - np.log(H * W)) / r
        torch.testing.assert_close(pool("lse", r=r)(fmap), ref, rtol=1e-5, atol=1e-6)


def test_how_direct(fmap):
    how = pool("how", dim=D, out_dim=8)
    fc = how.smooth_reduce.fc
    smooth = F.avg_pool2d(fmap, 3, stride=1, padding=1)
    v = F.conv2d(smooth, fc.weight[:, :, None, None], fc.bias)  # FC as a 1x1 convolution
    w = fmap.pow(2).sum(1, keepdim=True)  # diag(XᵀX): squared norm of each location
    ref = F.normalize((v * w).sum((2, 3)), dim=-1)
    torch.testing.assert_close(how(fmap), ref, rtol=1e-5, atol=1e-6)
    ref1 = F.normalize((v * w.sqrt()).sum((2, 3)), dim=-1)
    how1 = pool("how", dim=D, out_dim=8, power=1.0)
    how1.load_state_dict(how.state_dict())
    torch.testing.assert_close(how1(fmap), ref1, rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------------------------------- group 2
def _sinkhorn_knopp(kernel, r, c, iters):
    u, v = np.ones(len(r)), np.ones(len(c))
    for _ in range(iters):
        u = r / (kernel @ v)
        v = c / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :]


def test_otk_is_optimal_transport_pooling(fmap):
    k, eps = 3, 2.0
    otk = pool("otk", dim=D, k=k, eps=eps, sinkhorn_iters=500).double()
    x = _tokens(fmap).double()
    out, attn = otk(x, return_attention=True)
    refs = otk.references.detach().numpy()
    for b in range(x.shape[0]):
        xb = x[b].numpy()
        cost = ((xb[:, None, :] - refs[None, :, :]) ** 2).sum(-1)
        plan = _sinkhorn_knopp(np.exp(-cost / eps), np.full(len(xb), 1 / len(xb)), np.full(k, 1 / k), 500)
        np.testing.assert_allclose(plan.sum(1), 1 / len(xb), rtol=1e-6)  # marginals of the direct solver
        ref = (k * plan.T @ xb).reshape(-1)  # k pooled vectors, concatenated
        np.testing.assert_allclose(out[b].detach().numpy(), ref, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(attn[b].detach().numpy(), k * plan.T, rtol=1e-6, atol=1e-12)
    # Sinkhorn marginals: every column (reference) sums to 1 after the ×k rescaling, every location to k/p
    torch.testing.assert_close(attn.sum(-1), torch.ones(3, k, dtype=torch.float64))
    torch.testing.assert_close(attn.sum(1), torch.full((3, H * W), k / (H * W), dtype=torch.float64))


def _lloyd(x, centroids, iters):
    """Textbook Lloyd's algorithm; an empty cluster keeps its centroid."""
    c = centroids.copy()
    for _ in range(iters):
        assign = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        for j in range(len(c)):
            if (assign == j).any():
                c[j] = x[assign == j].mean(0)
    return c, assign


def test_kmeans_is_lloyd(fmap):
    km = pool("kmeans", dim=D, k=4, iterations=8, seed=3)
    x = _tokens(fmap).double()
    out, attn = km(x, return_attention=True)
    idx = km.init.indices(x.shape[0], x.shape[1])
    for b in range(x.shape[0]):
        ref, assign = _lloyd(x[b].numpy(), x[b, idx[b]].numpy(), 8)
        np.testing.assert_allclose(out[b].numpy(), ref.reshape(-1), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(attn[b].argmax(0).numpy(), assign)  # A = η₂(argmax₁ S)
    assert out.shape == (3, 4 * D) and km.out_dim == 4 * D


def test_slot_attention_is_the_original_algorithm(fmap):
    torch.manual_seed(0)
    slot = pool("slot", dim=D, k=3, iterations=3).eval()
    x = _tokens(fmap)
    slots0 = torch.randn(3, 3, D)
    out, attn = slot(x, return_attention=True, u0=slots0)
    # Locatello et al., Algorithm 1, written out with the module's weights
    inputs = slot.norm_input(x)
    k, v = slot.to_k(inputs), slot.to_v(inputs)
    slots = slots0
    for _ in range(3):
        prev = slots
        q = slot.to_q(slot.norm_slots(slots))
        logits = torch.einsum("bid,bjd->bij", q, k) * D ** -0.5  # (B, slots, locations)
        a = logits.softmax(dim=1) + 1e-8  # softmax over slots
        a = a / a.sum(dim=-1, keepdim=True)  # weighted mean over locations
        updates = torch.einsum("bjd,bij->bid", v, a)
        slots = slot.update.gru(updates.reshape(-1, D), prev.reshape(-1, D)).reshape(3, 3, D)
        slots = slots + slot.update.mlp(slot.update.norm_mlp(slots))
    torch.testing.assert_close(out, slots.reshape(3, -1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn, a, rtol=1e-5, atol=1e-7)
    # eval mode: the seeded initial slots make the pooling deterministic
    torch.testing.assert_close(slot(x), slot(x))


# -------------------------------------------------------------------------------------------------- group 3
def test_se_is_gap_of_the_se_block(fmap):
    se = pool("se", dim=D, reduction=4)
    fc1, fc2 = se.gate.mlp[0], se.gate.mlp[2]
    gate = torch.sigmoid(fc2(torch.relu(fc1(fmap.mean((2, 3))))))  # excitation
    ref = (fmap * gate[:, :, None, None]).mean((2, 3))
    torch.testing.assert_close(se(fmap), ref, rtol=1e-5, atol=1e-6)


def _cbam_direct(cbam, x, simplified=False):
    mlp = cbam.mlp
    if simplified:
        ca = torch.sigmoid(mlp(x.mean((2, 3))))
    else:
        ca = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))  # channel attention
    f1 = x * ca[:, :, None, None]
    avg, mx = f1.mean(1, keepdim=True), f1.amax(1, keepdim=True)  # channel pooling of the gated map
    desc = avg if simplified else torch.cat([avg, mx], 1)
    sa = torch.sigmoid(cbam.spatial.conv(desc))  # spatial attention, 7x7 conv
    return (f1 * sa).mean((2, 3)), sa[:, 0]


@pytest.mark.parametrize("simplified", [False, True])
def test_cbam_is_gap_of_the_cbam_block(fmap, simplified):
    cbam = pool("cbam", dim=D, reduction=4, simplified=simplified)
    out, attn = cbam(fmap, return_attention=True)
    ref, sa = _cbam_direct(cbam, fmap, simplified)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(attn, sa / (H * W), rtol=1e-5, atol=1e-7)  # A = σ(conv₇(S))/p
    torch.testing.assert_close(cbam(_tokens(fmap), grid=(H, W)), out)


# -------------------------------------------------------------------------------------------------- group 4
@pytest.mark.parametrize("depth", [1, 2])
def test_vit_pooling_is_a_cls_token_transformer(fmap, depth):
    vit = pool("vit", dim=D, num_heads=4, depth=depth).eval()
    x = _tokens(fmap)
    out, attn = vit(x, return_attention=True)
    z = torch.cat([vit.cls_token.expand(3, -1, -1), x], dim=1)
    for blk in vit.blocks:  # timm's own Block.forward on [CLS; X]
        inp = z
        z = blk(z)
    torch.testing.assert_close(out, vit.norm(z)[:, 0], rtol=1e-5, atol=1e-5)
    # the last block's CLS attention over the patches, mean over heads
    blk = vit.blocks[-1]
    qkv = blk.attn.qkv(blk.norm1(inp)).reshape(3, 1 + H * W, 3, 4, D // 4).permute(2, 0, 3, 1, 4)
    a = ((qkv[0] @ qkv[1].transpose(-1, -2)) * (D // 4) ** -0.5).softmax(-1)[:, :, 0, 1:].mean(1)
    torch.testing.assert_close(attn, a, rtol=1e-5, atol=1e-6)


def test_cait_pooling_is_class_attention(fmap):
    cait = pool("cait", dim=D, num_heads=4, depth=2, init_values=0.5).eval()
    x = _tokens(fmap)
    cls = cait.cls_token.expand(3, -1, -1)
    for blk in cait.blocks:  # timm's LayerScaleBlockClassAttn.forward: only CLS is updated
        cls = blk(x, cls)
    torch.testing.assert_close(cait(x), cait.norm(cls)[:, 0], rtol=1e-5, atol=1e-5)


# -------------------------------------------------------------------------------------------------- group 5
@pytest.mark.parametrize("kw", [dict(), dict(gamma=1.25), dict(gamma=2.0, num_heads=4), dict(gamma=3.0, use_beta=True),
                                dict(gamma=1.25, min_over="batch")])
def test_simpool_is_a_framework_configuration(fmap, kw):
    sp = SimPool(D, **kw)
    if sp.beta is not None:
        sp.beta.data.fill_(0.3)
    res = simpool_process(sp)(_tokens(fmap))
    out, attn = sp(fmap, return_attention=True)
    torch.testing.assert_close(res.u[:, 0], out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(res.a[..., 0].reshape(3, H, W), attn, rtol=1e-5, atol=1e-7)


# -------------------------------------------------------------------------------------------------- all methods
@pytest.mark.parametrize("name", sorted(POOLING_METHODS))
def test_every_method_interface(fmap, name):
    torch.manual_seed(0)
    m = pool(name, dim=D).eval()
    out, attn = m(fmap, return_attention=True)
    k = getattr(m, "k", 1)
    assert out.shape == (3, m.out_dim) and torch.isfinite(out).all()
    assert attn.shape == ((3, H, W) if k == 1 else (3, k, H, W))
    # tokens and maps give the same result (maps are flattened as h·W + w)
    torch.testing.assert_close(m(_tokens(fmap), grid=(H, W)), out, rtol=1e-5, atol=1e-6)
    # a sample's output does not depend on its batch-mates
    torch.testing.assert_close(m(fmap[1:2]), out[1:2], rtol=1e-5, atol=1e-5)
    # B = 1 keeps the batch dimension
    assert m(fmap[:1]).shape == (1, m.out_dim)
    # autocast on CPU (bf16) runs and stays finite
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(m(fmap).float()).all()
    # gradients reach the input
    x = fmap.clone().requires_grad_(True)
    m(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_pool_errors():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool("avgmaxish")
    with pytest.raises(ValueError, match="dim"):
        pool("se")
    with pytest.raises(ValueError, match="channels"):
        pool("se", dim=8)(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match="grid"):
        pool("cbam", dim=D)(torch.randn(2, 7, D))  # 7 tokens: no square grid
    with pytest.raises(ValueError, match="reduce"):
        pool("kmeans", reduce="sum")


@pytest.mark.parametrize("reduce, width", [("concat", 3 * D), ("mean", D), ("max", D)])
def test_k_reductions(fmap, reduce, width):
    km = pool("kmeans", dim=D, k=3, reduce=reduce)
    u = pool("kmeans", k=3, reduce="none")(fmap)
    assert u.shape == (3, 3, D)
    expected = {"concat": u.flatten(1), "mean": u.mean(1), "max": u.amax(1)}[reduce]
    torch.testing.assert_close(km(fmap), expected)
    assert km.out_dim == width


def test_table1_is_read_from_the_configurations():
    from glsim_core.pooling import table1

    t = table1(dim=8)
    assert list(t.index) == list(POOLING_METHODS)
    assert t.loc["gap", "h"] == "1_p/p" and t.loc["max", "f"].startswith("f₋∞")
    assert t.loc["kmeans", "h"] == "η₂∘argmax₁" and t.loc["kmeans", "iterations"] == "10"
    assert t.loc["simpool", "U0"] == "π_A(X)" and t.loc["simpool", "h"] == "σ₂"
    assert t.loc["vit", "heads"] == "4" and "[U; X]" in t.loc["cait", "phi_K"]


def test_handcrafted_features():
    from glsim_core.data.demo import FEATURE_NAMES, handcrafted_features, load_image

    img = load_image("chelsea", size=64)
    assert img.shape == (64, 64, 3) and 0 <= img.min() and img.max() <= 1
    x = handcrafted_features(img, grid=8)
    assert x.shape == (1, len(FEATURE_NAMES), 8, 8) and float(x.min()) >= 0
    torch.testing.assert_close(x.amax((2, 3)), torch.ones(1, len(FEATURE_NAMES)))
    with pytest.raises(ValueError):
        load_image("no_such_image")
