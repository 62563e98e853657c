"""GLS (Eq. 1-2), the top-O box, and the batched crop, against direct implementations."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glsim_core.selection import crop_and_resize, global_local_similarity, select_boxes, top_o_indices


def _direct_scores(tokens, metric, prefix=1, glob=None):
    """Eq. 1-2 token by token, in float64 NumPy."""
    t = tokens.double().numpy()
    out = np.zeros((t.shape[0], t.shape[1] - prefix))
    for b in range(t.shape[0]):
        g = t[b, 0] if glob is None else glob[b].double().numpy()
        for i in range(prefix, t.shape[1]):
            f = t[b, i]
            if metric == "cosine":
                out[b, i - prefix] = float(g @ f) / (math.sqrt(float(g @ g)) * math.sqrt(float(f @ f)))
            elif metric == "l1":
                out[b, i - prefix] = -np.abs(g - f).mean()
            else:
                out[b, i - prefix] = -((g - f) ** 2).mean()
    return torch.from_numpy(out)


@pytest.mark.parametrize("metric", ["cosine", "l1", "l2"])
@pytest.mark.parametrize("prefix", [1, 5])  # CLS only; CLS + 4 register tokens
def test_gls_matches_direct_formula(metric, prefix):
    torch.manual_seed(0)
    tokens = torch.randn(3, prefix + 6 * 4, 16)  # a non-square 6x4 grid
    scores = global_local_similarity(tokens, metric, num_prefix_tokens=prefix)
    assert scores.shape == (3, 24) and scores.dtype == torch.float32
    assert torch.allclose(scores.double(), _direct_scores(tokens, metric, prefix), atol=1e-5)


def test_gls_with_an_explicit_global_token():
    torch.manual_seed(1)
    tokens, glob = torch.randn(2, 10, 8), torch.randn(2, 8)
    for metric in ("cosine", "l1", "l2"):
        got = global_local_similarity(tokens, metric, num_prefix_tokens=0, global_token=glob)
        assert torch.allclose(got.double(), _direct_scores(tokens, metric, 0, glob), atol=1e-5)


def test_cosine_is_scale_invariant_and_larger_means_more_similar():
    torch.manual_seed(2)
    tokens = torch.randn(2, 1 + 9, 32)
    scores = global_local_similarity(tokens)
    scaled = tokens * torch.rand(2, 10, 1).mul(10).add(0.1)  # a positive scale per token, CLS included
    assert torch.allclose(global_local_similarity(scaled), scores, atol=1e-5)
    flipped = tokens.clone()
    flipped[:, 1:] *= -1
    assert torch.allclose(global_local_similarity(flipped), -scores, atol=1e-5)
    # a patch equal to (a multiple of) the CLS token is the most similar one, for every metric
    tokens[:, 4] = tokens[:, 0]
    for metric in ("cosine", "l1", "l2"):
        s = global_local_similarity(tokens, metric)
        assert (s.argmax(1) == 3).all()
        assert torch.allclose(s[:, 3], torch.tensor(1.0 if metric == "cosine" else 0.0), atol=1e-6)


def test_gls_runs_in_float32_for_low_precision_input():
    torch.manual_seed(3)
    tokens = torch.randn(2, 17, 64)
    ref = global_local_similarity(tokens)
    low = global_local_similarity(tokens.bfloat16())
    assert low.dtype == torch.float32
    assert torch.allclose(low, ref, atol=2e-2)


def test_gls_bad_input():
    with pytest.raises(ValueError, match="metric"):
        global_local_similarity(torch.randn(1, 5, 4), metric="dot")
    with pytest.raises(ValueError, match="batch, tokens, channels"):
        global_local_similarity(torch.randn(5, 4))
    with pytest.raises(ValueError, match="no patch tokens"):
        global_local_similarity(torch.randn(1, 1, 4))
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        global_local_similarity(torch.randn(1, 5, 4), num_prefix_tokens=0)


# ------------------------------------------------------------------------------------------------- boxes
def _scores_for(tokens_rc, rows, cols):
    """Scores that make exactly these (row, col) tokens the top ones (in the given order)."""
    s = torch.zeros(1, rows * cols)
    for rank, (r, c) in enumerate(tokens_rc):
        s[0, r * cols + c] = 10.0 - rank
    return s


def test_reference_box_rule_reproduces_the_release_worked_examples():
    # The authors' release: 14x14 grid, P=16. Tokens (3,4),(5,6) -> rows 48..79, cols 64..95 (row 5 / col 6 dropped).
    s = _scores_for([(3, 4), (5, 6)], 14, 14)
    assert select_boxes(s, 14, 16, 2, "reference").tolist() == [[64, 48, 96, 80]]
    assert select_boxes(s, 14, 16, 2, "paper").tolist() == [[64, 48, 112, 96]]
    # Tokens (13,13),(13,12),(12,13) -> only patch (12,12), which was not selected.
    s = _scores_for([(13, 13), (13, 12), (12, 13)], 14, 14)
    assert select_boxes(s, 14, 16, 3, "reference").tolist() == [[192, 192, 208, 208]]
    assert select_boxes(s, 14, 16, 3, "paper").tolist() == [[192, 192, 224, 224]]
    # one token: both rules take that patch
    s = _scores_for([(7, 2)], 14, 14)
    for rule in ("paper", "reference"):
        assert select_boxes(s, 14, 16, 1, rule).tolist() == [[32, 112, 48, 128]]


def test_paper_box_is_the_smallest_rectangle_enclosing_the_top_o_tokens():
    torch.manual_seed(4)
    rows, cols, ph, pw, o = 6, 9, 8, 12, 5  # non-square grid and patches
    scores = torch.randn(32, rows * cols)
    boxes = select_boxes(scores, (rows, cols), (ph, pw), o)
    assert boxes.dtype == torch.int64 and boxes.shape == (32, 4)
    for b in range(32):
        top = torch.topk(scores[b], o).indices.tolist()  # no ties in random floats
        cells = [(i // cols, i % cols) for i in top]
        x0, y0, x1, y1 = boxes[b].tolist()
        for r, c in cells:  # every selected patch lies inside the half-open box
            assert x0 <= c * pw and (c + 1) * pw <= x1 and y0 <= r * ph and (r + 1) * ph <= y1
        # and each edge touches a selected patch (minimality)
        assert x0 == min(c for _, c in cells) * pw and x1 == (max(c for _, c in cells) + 1) * pw
        assert y0 == min(r for r, _ in cells) * ph and y1 == (max(r for r, _ in cells) + 1) * ph


def test_ties_are_deterministic_and_top_o_is_clamped():
    flat = torch.zeros(2, 16)
    assert top_o_indices(flat, 3).tolist() == [[0, 1, 2], [0, 1, 2]]  # lower index first
    assert select_boxes(flat, 4, 16, 3).tolist() == [[0, 0, 48, 16]] * 2
    s = torch.tensor([[1.0, 5.0, 5.0, 0.0]])
    assert top_o_indices(s, 2).tolist() == [[1, 2]]
    with pytest.warns(UserWarning, match="larger than the number of tokens"):
        boxes = select_boxes(torch.randn(1, 16), 4, 8, 100)
    assert boxes.tolist() == [[0, 0, 32, 32]]


def test_select_boxes_bad_input():
    with pytest.raises(ValueError, match="box_rule"):
        select_boxes(torch.zeros(1, 4), 2, 8, 1, box_rule="loose")
    with pytest.raises(ValueError, match="grid"):
        select_boxes(torch.zeros(1, 5), 2, 8, 1)
    with pytest.raises(ValueError, match="top_o"):
        select_boxes(torch.zeros(1, 4), 2, 8, 0)


# -------------------------------------------------------------------------------------------------- crops
def _loop_crops(images, boxes, size, align_corners):
    """What the release does: slice each image, resize it with bilinear F.interpolate."""
    out = []
    for i, (x0, y0, x1, y1) in enumerate(boxes.tolist()):
        out.append(F.interpolate(images[i:i + 1, :, y0:y1, x0:x1], size=size, mode="bilinear",
                                 align_corners=align_corners))
    return torch.cat(out)


def _random_boxes(n, h, w, gen):
    x0 = torch.randint(0, w - 1, (n,), generator=gen)
    y0 = torch.randint(0, h - 1, (n,), generator=gen)
    x1 = x0 + 1 + (torch.rand(n, generator=gen) * (w - x0 - 1)).long()
    y1 = y0 + 1 + (torch.rand(n, generator=gen) * (h - y0 - 1)).long()
    return torch.stack([x0, y0, x1, y1], 1)


@pytest.mark.parametrize("align_corners", [True, False])
@pytest.mark.parametrize("hw,size", [((64, 64), 64), ((50, 70), (33, 20)), ((32, 32), 1)])
def test_crop_equals_per_image_slice_and_interpolate(align_corners, hw, size):
    gen = torch.Generator().manual_seed(5)
    h, w = hw
    boxes = _random_boxes(24, h, w, gen)
    boxes[0] = torch.tensor([0, 0, w, h])  # the whole image
    boxes[1] = torch.tensor([3, 4, 4, 5])  # a single pixel
    size2 = (size, size) if isinstance(size, int) else size
    smooth = torch.linspace(0, 1, h)[:, None] * torch.linspace(-1, 2, w)[None, :]
    images = torch.stack([smooth, smooth.T[:w, :h].T if h == w else smooth ** 2, smooth.sin()])[None]
    images = images.expand(24, -1, -1, -1) + 0.1 * torch.rand(24, 3, h, w, generator=gen)
    got = crop_and_resize(images, boxes, size, align_corners)
    ref = _loop_crops(images, boxes, size2, align_corners)
    assert got.shape == (24, 3, *size2)
    assert torch.allclose(got, ref, atol=2e-5)
    noise = torch.randn(24, 2, h, w, generator=gen)  # worst case for coordinate rounding
    assert torch.allclose(crop_and_resize(noise, boxes, size, align_corners),
                          _loop_crops(noise, boxes, size2, align_corners), atol=5e-4)
    dbl = noise.double()  # in float64 the two are identical to rounding
    assert torch.allclose(crop_and_resize(dbl, boxes, size, align_corners),
                          _loop_crops(dbl, boxes, size2, align_corners), atol=1e-10)


def test_full_box_at_the_same_size_is_the_identity():
    x = torch.randn(2, 3, 16, 24)
    boxes = torch.tensor([[0, 0, 24, 16]] * 2)
    assert torch.allclose(crop_and_resize(x, boxes, (16, 24)), x, atol=1e-5)


def test_crop_under_autocast_and_with_gradients():
    gen = torch.Generator().manual_seed(6)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    boxes = _random_boxes(4, 32, 32, gen)
    ref = _loop_crops(x, boxes, (32, 32), True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = crop_and_resize(x.bfloat16(), boxes, 32)
    assert out.dtype == torch.bfloat16 and torch.allclose(out.float(), ref, atol=2e-2)
    xd = torch.rand(2, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    bd = torch.tensor([[1, 0, 6, 4], [0, 2, 3, 6]])
    assert torch.autograd.gradcheck(lambda t: crop_and_resize(t, bd, (5, 4)), (xd,))


def test_crop_bad_boxes():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="x0 < x1"):
        crop_and_resize(x, torch.tensor([[0, 0, 9, 8], [0, 0, 8, 8]]), 8)
    with pytest.raises(ValueError, match="x0 < x1"):
        crop_and_resize(x, torch.tensor([[4, 0, 4, 8], [0, 0, 8, 8]]), 8)
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        crop_and_resize(x, torch.tensor([[0, 0, 8, 8]]), 8)
    with pytest.raises(TypeError, match="integer"):
        crop_and_resize(x, torch.zeros(2, 4), 8)


def test_boxes_then_crop_show_exactly_the_selected_patches():
    """End to end on a synthetic image: the top-O tokens' pixels are what the crop shows."""
    rows, cols, p = 4, 6, 8
    image = torch.arange(rows * cols, dtype=torch.float32).reshape(rows, cols)
    image = image.repeat_interleave(p, 0).repeat_interleave(p, 1)[None, None]  # each patch = its token index
    scores = torch.zeros(1, rows * cols)
    for i in (8, 9, 15):  # (1,2), (1,3), (2,3)
        scores[0, i] = 1.0
    box = select_boxes(scores, (rows, cols), p, 3)
    assert box.tolist() == [[16, 8, 32, 24]]
    crop = crop_and_resize(image, box, (16, 16))  # same size: the crop is the slice itself
    assert torch.allclose(crop, image[:, :, 8:24, 16:32], atol=1e-5)
    assert set(crop.round().unique().tolist()) == {8.0, 9.0, 14.0, 15.0}
