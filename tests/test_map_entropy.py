"""glsim_core.analysis.maps: the entropy of a map is taken after renormalising it to sum 1."""

import math

import pytest
import torch

from glsim_core.analysis import map_entropy, uniform_entropy


def test_uniform_map_has_ln_n_and_a_one_hot_map_zero():
    n = 64
    maps = torch.stack([torch.full((8, 8), 1.0 / n), torch.nn.functional.one_hot(torch.tensor(5), n).reshape(8, 8)])
    h = map_entropy(maps.float())
    assert h[0].item() == pytest.approx(math.log(n)) == pytest.approx(uniform_entropy(n))
    assert h[1].item() == pytest.approx(0.0, abs=1e-12)


def test_a_slice_with_little_mass_is_renormalised_not_read_as_peaked():
    # the CLS -> patch row when the CLS token keeps 99 % of its attention: spread evenly over the patches
    n = 64
    row = torch.full((1, n), 0.01 / n)
    naive = float(-(row * row.log()).sum())
    assert naive < 0.1  # what the unnormalised formula reports: "almost collapsed"
    assert map_entropy(row).item() == pytest.approx(math.log(n))  # it is uniform
    # by hand: two-point map with weights 0.2 and 0.6 (sum 0.8) -> p = (0.25, 0.75)
    two = torch.tensor([[0.2, 0.6]])
    assert map_entropy(two).item() == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_scale_invariant_and_rejects_bad_maps():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(3, 7, 5, generator=g)
    assert torch.allclose(map_entropy(m), map_entropy(17.0 * m))
    with pytest.raises(ValueError):
        map_entropy(torch.tensor([[0.5, -0.1]]))
    with pytest.raises(ValueError):
        map_entropy(torch.zeros(1, 4))
    with pytest.raises(ValueError):
        uniform_entropy(0)


def test_top_o_overlap_and_rank_correlation_by_hand():
    from glsim_core.analysis import rank_correlation, top_o_overlap

    a = torch.tensor([[0.9, 0.8, 0.1, 0.0], [0.0, 0.1, 0.2, 0.3]])
    b = torch.tensor([[0.9, 0.0, 0.8, 0.1], [0.0, 0.1, 0.2, 0.3]])
    # row 0: top-2 {0, 1} vs {0, 2} -> 1/2 shared; row 1 identical -> 1
    assert top_o_overlap(a, b, 2) == pytest.approx(0.75)
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    # row 0 ranks: a -> (3, 2, 1, 0), b -> (3, 0, 2, 1): Spearman 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6*6/60 = 0.4
    assert rank_correlation(a[:1], b[:1]) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        top_o_overlap(a, b[:, :3], 2)
