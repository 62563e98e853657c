"""The generic pooling process (SimPool §3.1): f_α and its special cases, similarities, Sinkhorn, GAP = argmin J."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glsim_core.pooling import FAlpha, PoolingProcess, distortion, f_alpha, f_alpha_inverse, sinkhorn, weighted_pool
from glsim_core.pooling.framework import (
    Exp,
    as_tokens,
    implied_weights,
    resolve_grid,
    similarity_cosine,
    similarity_neg_sqdist,
    tokens_to_map,
)


@pytest.fixture()
def positive():
    g = torch.Generator().manual_seed(0)
    return torch.rand(3, 20, 5, generator=g, dtype=torch.float64) * 4 + 0.1  # (B, p, n), strictly positive


def _uniform(v):
    return torch.full((*v.shape[:-1], 1), 1.0 / v.shape[-2], dtype=v.dtype)


# -------------------------------------------------------------------------------------------------- f_α (Eq. 8)
@pytest.mark.parametrize("alpha, closed_form", [
    (-math.inf, lambda v: v.max(axis=0)),
    (-3.0, lambda v: np.sqrt((v ** 2).mean(axis=0))),  # quadratic mean (RMS)
    (-1.0, lambda v: v.mean(axis=0)),  # arithmetic mean
    (1.0, lambda v: np.exp(np.log(v).mean(axis=0))),  # geometric mean
    (3.0, lambda v: 1.0 / (1.0 / v).mean(axis=0)),  # harmonic mean
    (math.inf, lambda v: v.min(axis=0)),
])
def test_f_alpha_special_cases(positive, alpha, closed_form):
    z = FAlpha(alpha)(positive, _uniform(positive))  # (B, 1, n)
    for b in range(positive.shape[0]):
        np.testing.assert_allclose(z[b, 0].numpy(), closed_form(positive[b].numpy()), rtol=1e-12)


def test_f_alpha_limits_are_continuous(positive):
    """Large finite |α| approaches max / min: the limits are the limits of the formula."""
    a = _uniform(positive)
    near_max = FAlpha(-401.0)(positive, a)
    near_min = FAlpha(401.0)(positive, a)
    torch.testing.assert_close(near_max, FAlpha(-math.inf)(positive, a), rtol=2e-2, atol=0)
    torch.testing.assert_close(near_min, FAlpha(math.inf)(positive, a), rtol=2e-2, atol=0)
    # monotone in α: power means decrease as α grows (γ shrinks)
    alphas = [-math.inf, -9, -3, -1, 0, 1, 3, 9, math.inf]
    zs = torch.stack([FAlpha(al)(positive, a) for al in alphas])
    assert bool((zs[:-1] >= zs[1:] - 1e-12).all())


def test_f_alpha_elementwise_and_inverse():
    x = torch.tensor([0.5, 1.0, 2.0, 7.0], dtype=torch.float64)
    torch.testing.assert_close(f_alpha(x, -3.0), x ** 2)
    torch.testing.assert_close(f_alpha(x, 1.0), torch.log(x))
    torch.testing.assert_close(f_alpha(x, 3.0), 1.0 / x)
    for alpha in (-5.0, -3.0, -1.0, 0.0, 1.0, 3.0, 2.5):
        torch.testing.assert_close(f_alpha_inverse(f_alpha(x, alpha), alpha), x)
    with pytest.raises(ValueError, match="limit"):
        f_alpha(x, -math.inf)


def test_weighted_power_mean_matches_numpy(positive):
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 20, 2, generator=g, dtype=torch.float64)
    a = a / a.sum(1, keepdim=True)  # two columns of convex weights
    for gamma in (0.5, 1.0, 1.25, 2.0, 3.0, -1.0):
        z = weighted_pool(positive, a, FAlpha(gamma=gamma))
        ref = np.einsum("bpk,bpn->bkn", a.numpy(), positive.numpy() ** gamma) ** (1 / gamma)
        np.testing.assert_allclose(z.numpy(), ref, rtol=1e-12)


def test_limits_use_only_locations_with_weight(positive):
    a = torch.zeros(3, 20, 1, dtype=torch.float64)
    a[:, :5] = 0.2  # only the first five locations count
    torch.testing.assert_close(FAlpha(-math.inf)(positive, a)[:, 0], positive[:, :5].amax(1))
    torch.testing.assert_close(FAlpha(math.inf)(positive, a)[:, 0], positive[:, :5].amin(1))


def test_power_mean_survives_large_values():
    v = torch.full((1, 10, 3), 1e30)
    z = FAlpha(gamma=3.0)(v, torch.full((1, 10, 1), 0.1))
    torch.testing.assert_close(z, torch.full((1, 1, 3), 1e30), rtol=1e-5, atol=0)


def test_learnable_gamma_gets_gradient(positive):
    f = FAlpha(gamma=3.0, learnable=True)
    f(positive.float(), _uniform(positive).float()).sum().backward()
    assert f.gamma_param.grad is not None and torch.isfinite(f.gamma_param.grad)
    with pytest.raises(ValueError):
        FAlpha(gamma=-1.0, learnable=True)


def test_lse_closed_form(positive):
    for r in (0.5, 1.0, 4.0):
        z = Exp(r)(positive, _uniform(positive))[:, 0]
        v = positive.numpy()
        ref = np.log(np.exp(r * v).mean(axis=1)) / r
        np.testing.assert_allclose(z.numpy(), ref, rtol=1e-12)
    big = Exp(200.0)(positive, _uniform(positive))[:, 0]
    torch.testing.assert_close(big, positive.amax(1), atol=0.05, rtol=0)


# -------------------------------------------------------------------------------------------------- s and h
def test_similarities():
    g = torch.Generator().manual_seed(2)
    k, q = torch.randn(2, 7, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    torch.testing.assert_close(similarity_neg_sqdist(k, q), -torch.cdist(k, q) ** 2, atol=1e-5, rtol=1e-5)
    cos = F.cosine_similarity(k.unsqueeze(2), q.unsqueeze(1), dim=-1)
    torch.testing.assert_close(similarity_cosine(k, q), cos, atol=1e-6, rtol=1e-6)


def _sinkhorn_knopp(kernel: np.ndarray, r: np.ndarray, c: np.ndarray, iters: int) -> np.ndarray:
    """Textbook Sinkhorn–Knopp matrix scaling in float64: P = diag(u) K diag(v)."""
    u, v = np.ones(len(r)), np.ones(len(c))
    for _ in range(iters):
        u = r / (kernel @ v)
        v = c / (kernel.T @ u)
    return u[:, None] * kernel * v[None, :]


def test_sinkhorn_marginals_and_direct_scaling():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
    plan = sinkhorn(s, iters=300)
    torch.testing.assert_close(plan.sum(-1), torch.full((2, 30), 1 / 30, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(plan.sum(-2), torch.full((2, 4), 1 / 4, dtype=torch.float64), atol=1e-12, rtol=0)
    for b in range(2):
        ref = _sinkhorn_knopp(np.exp(s[b].numpy()), np.full(30, 1 / 30), np.full(4, 1 / 4), 300)
        np.testing.assert_allclose(plan[b].numpy(), ref, rtol=1e-8, atol=1e-14)


def test_attention_compositions():
    s = torch.randn(2, 1, 9, 3)
    proc = PoolingProcess(k=3, init=torch.randn(3, 5), similarity="neg_sqdist", attention=("argmax", "eta2"))
    res = proc(torch.randn(2, 9, 5))
    cols = res.a.sum(1)
    assert bool(((cols - 1).abs() < 1e-6).logical_or(cols == 0).all())  # η₂: each non-empty column sums to 1
    assert set(torch.unique((res.a > 0).sum(-1)).tolist()) == {1}  # each location assigned to exactly one query
    assert torch.allclose(PoolingProcess(attention="softmax_locations").attention[0](s).sum(-2), torch.ones(2, 1, 3))


# -------------------------------------------------------------------------------------------------- process
def test_multi_head_process_matches_manual_attention():
    g = torch.Generator().manual_seed(4)
    x, u = torch.randn(2, 10, 8, generator=g), torch.randn(2, 1, 8, generator=g)
    proc = PoolingProcess(init="gap", similarity="dot", scale="sqrt", num_heads=2)
    res = proc(x, u0=u)
    q, k = u.reshape(2, 1, 2, 4).transpose(1, 2), x.reshape(2, 10, 2, 4).transpose(1, 2)
    a = ((q @ k.transpose(-1, -2)) / 2.0).softmax(-1)  # (B, m, 1, p)
    z = (a @ k).transpose(1, 2).reshape(2, 1, 8)
    torch.testing.assert_close(res.u, z)
    torch.testing.assert_close(res.a_heads, a.transpose(-1, -2))


def test_process_errors():
    with pytest.raises(ValueError, match="similarity"):
        PoolingProcess(similarity="euclid")
    with pytest.raises(ValueError, match="attention"):
        PoolingProcess(attention="softermax")
    with pytest.raises(ValueError, match="iterations"):
        PoolingProcess(phi_q=[None, None], iterations=3)
    with pytest.raises(ValueError, match="tokens"):
        PoolingProcess()(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="heads"):
        PoolingProcess(num_heads=3)(torch.randn(1, 4, 8))


def test_layout_helpers():
    m = torch.randn(2, 5, 3, 4)
    t, grid = as_tokens(m)
    assert grid == (3, 4) and t.shape == (2, 12, 5)
    torch.testing.assert_close(t[:, 1 * 4 + 2], m[:, :, 1, 2])  # token index h·W + w
    torch.testing.assert_close(tokens_to_map(t, grid), m)
    assert resolve_grid(16, None) == (4, 4) and resolve_grid(12, None) is None
    with pytest.raises(ValueError):
        resolve_grid(12, (3, 5))
    with pytest.raises(ValueError):
        as_tokens(torch.randn(3, 4))


# -------------------------------------------------------------------------------------------------- Eq. 10-11
def test_gap_is_the_unique_minimiser_of_the_distortion():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(40, 6, generator=g, dtype=torch.float64)
    u_star = x.mean(0)
    # closed form: J(u* + δ) − J(u*) = p/2 ‖δ‖² > 0 for every δ ≠ 0 (strictly convex, Hessian p·I)
    for _ in range(20):
        delta = torch.randn(6, generator=g, dtype=torch.float64)
        gap_ = distortion(x, u_star + delta) - distortion(x, u_star)
        torch.testing.assert_close(gap_, 0.5 * 40 * delta.pow(2).sum())
        assert gap_ > 0
    hess = torch.autograd.functional.hessian(lambda u: distortion(x, u), u_star)
    torch.testing.assert_close(hess, 40 * torch.eye(6, dtype=torch.float64))
    # and a numerical minimiser from a random start lands on GAP
    u = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([u], max_iter=100, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        opt.zero_grad()
        loss = distortion(x, u)
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(u.detach(), u_star, atol=1e-8, rtol=0)


def test_implied_weights():
    x = torch.rand(2, 12, 4) + 0.1
    w_gap = implied_weights(lambda t: t.mean(1), x)
    torch.testing.assert_close(w_gap, torch.full((2, 12), 1 / 12))
    w_max = implied_weights(lambda t: t.amax(1), x)
    counts = torch.stack([torch.bincount(i, minlength=12) for i in x.argmax(1)]) / 4
    torch.testing.assert_close(w_max, counts)  # share of channels whose max sits at each location
    w_lse = implied_weights(lambda t: torch.logsumexp(3 * t, 1) / 3, x)
    torch.testing.assert_close(w_lse, (3 * x).softmax(1).mean(-1))
