"""glsim_core.metrics: accuracy statistics, MaxBoxAccV2 (Choe et al. 2020), token hit rates, inference benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glsim_core.analysis import (
    MaxBoxAccV2,
    benchmark_inference,
    box_iou,
    boxes_from_mask,
    confusion_matrix,
    format_mean_std,
    max_box_acc,
    mean_std,
    per_class_accuracy,
    relative_error,
    token_box_hits,
    top1_accuracy,
)


def test_top1_confusion_and_per_class_against_numpy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5))
    pred = logits.argmax(1)
    assert top1_accuracy(torch.tensor(logits), torch.tensor(y)) == pytest.approx((pred == y).mean() * 100)
    cm = confusion_matrix(torch.tensor(pred), torch.tensor(y), 5).numpy()
    ref = np.zeros((5, 5), int)
    for t, p in zip(y, pred):
        ref[t, p] += 1
    assert np.array_equal(cm, ref)
    pc = per_class_accuracy(torch.tensor(cm)).numpy()
    assert np.allclose(pc, [100 * ref[k, k] / ref[k].sum() for k in range(5)])
    assert np.isnan(per_class_accuracy(torch.tensor([[1, 0], [0, 0]])).numpy()[1])


def test_relative_error_is_glsim_footnote_1():
    assert relative_error(90.0, 89.0) == pytest.approx(100 * (10 - 11) / 11)
    assert relative_error(89.0, 89.0) == 0.0 and relative_error(88.0, 89.0) > 0
    with pytest.raises(ValueError):
        relative_error(90.0, 100.0)


def test_mean_std_uses_sample_std():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_std([5.0]) == (5.0, 0.0)
    assert format_mean_std([88.27, 88.0, 88.54]) == "88.27 ± 0.27"


def test_boxes_from_mask_all_components_or_largest():
    m = np.zeros((10, 12), bool)
    m[1:3, 1:4] = True  # small component: 2 x 3
    m[5:9, 6:11] = True  # large component: 4 x 5
    m[9, 11] = True  # touches the large one diagonally: same 8-connected component
    boxes = boxes_from_mask(m)
    assert sorted(map(tuple, boxes.tolist())) == [(1, 1, 4, 3), (6, 5, 12, 10)]
    assert boxes_from_mask(m, multi_contour=False).tolist() == [[6, 5, 12, 10]]
    assert boxes_from_mask(np.zeros((4, 4), bool)).tolist() == [[0, 0, 0, 0]]


def test_box_iou():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    assert np.allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_maxboxacc_perfect_map_and_v1_vs_v2():
    size = (32, 32)
    perfect = np.zeros((1, 32, 32))
    perfect[0, 8:20, 4:28] = 1.0
    res = max_box_acc(perfect, np.array([[4, 8, 28, 20]]), size)
    assert res["maxboxacc_v2"] == 100.0 and res["maxboxacc"] == {0.3: 100.0, 0.5: 100.0, 0.7: 100.0}
    # two blobs, the object is the *smaller, weaker* one: only V2 (all components) finds it at a threshold
    # that keeps both; V1 (largest component) never does
    two = np.zeros((1, 32, 32))
    two[0, 2:8, 2:8] = 0.6  # object
    two[0, 12:30, 12:30] = 1.0  # a larger distractor
    gt = np.array([[2, 2, 8, 8]])
    assert max_box_acc(two, gt, size, upsample="nearest")["maxboxacc_v2"] == 100.0
    assert max_box_acc(two, gt, size, upsample="nearest", multi_contour=False)["maxboxacc_v2"] == 0.0


def test_maxboxacc_threshold_is_chosen_per_dataset_not_per_map():
    """Image A is only correct for tau in (0.3, 0.5]; image B only for tau in (0.6, 0.8]: MaxBoxAcc = 50 %."""
    size = (20, 20)
    maps = np.zeros((2, 20, 20))
    gts = []
    for i, (inner, outer) in enumerate([(1.0, 0.5), (1.0, 0.8)]):
        maps[i, :, :] = 0.0
        maps[i, 2:18, 2:18] = outer  # a large halo
        maps[i, 8:12, 8:12] = inner  # the core
    gts = [np.array([[2, 2, 18, 18]]), np.array([[8, 8, 12, 12]])]
    # image A's object is the halo (needs tau <= 0.5); image B's object is the core (needs tau > 0.8)
    res = max_box_acc(maps, gts, size, upsample="nearest", iou_thresholds=(0.7,))
    assert res["maxboxacc"][0.7] == 50.0


def _reference_maxboxacc(maps, gts, taus, deltas, multi):
    """An independent implementation with skimage.measure.label / regionprops."""
    from skimage.measure import label, regionprops

    correct = np.zeros((len(taus), len(deltas)))
    for m, gt in zip(maps, gts):
        m = (m - m.min()) / (m.max() - m.min())
        for i, tau in enumerate(taus):
            props = regionprops(label(m >= tau, connectivity=2))
            if not multi and props:
                props = [max(props, key=lambda p: p.area)]
            best = 0.0
            for p in props:
                r0, c0, r1, c1 = p.bbox
                est = (c0, r0, c1, r1)
                for g in gt:
                    ix = max(0, min(est[2], g[2]) - max(est[0], g[0]))
                    iy = max(0, min(est[3], g[3]) - max(est[1], g[1]))
                    inter = ix * iy
                    union = (est[2] - est[0]) * (est[3] - est[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
                    best = max(best, inter / union)
            for j, d in enumerate(deltas):
                correct[i, j] += best >= d
    acc = correct / len(maps) * 100
    return float(np.mean(acc.max(axis=0)))


def _reference_convention_maxboxacc(maps, gts, taus, deltas, multi):
    """The reference evaluation's conventions written out with skimage: 8-bit map, strict ``>``, boxes clipped to
    W - 1 / H - 1, truncated ground truth, inclusive pixel IoU, ``>=`` delta."""
    from skimage.measure import label, regionprops

    correct = np.zeros((len(taus), len(deltas)))
    for m, gt in zip(maps, gts):
        m = (m - m.min()) / (m.max() - m.min())
        q = (m * 255).astype(np.uint8)
        h, w = q.shape
        for i, tau in enumerate(taus):
            props = regionprops(label(q > int(tau * q.max()), connectivity=2))
            if not multi and props:
                props = [max(props, key=lambda p: p.area)]
            ests = [(c0, r0, min(c1, w - 1), min(r1, h - 1)) for r0, c0, r1, c1 in (p.bbox for p in props)]
            best = 0.0
            for est in ests or [(0, 0, 0, 0)]:
                for g in np.trunc(np.asarray(gt, dtype=float)):
                    ix = max(0, min(est[2], g[2]) - max(est[0], g[0]) + 1)
                    iy = max(0, min(est[3], g[3]) - max(est[1], g[1]) + 1)
                    inter = ix * iy
                    union = ((est[2] - est[0] + 1) * (est[3] - est[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1)
                             - inter)
                    best = max(best, inter / union)
            for j, d in enumerate(deltas):
                correct[i, j] += best >= d
    acc = correct / len(maps) * 100
    return float(np.mean(acc.max(axis=0)))


@pytest.mark.parametrize("multi", [True, False])
@pytest.mark.parametrize("convention", ["reference", "continuous"])
def test_maxboxacc_matches_an_independent_implementation(multi, convention):
    rng = np.random.default_rng(1)
    maps = rng.random((6, 16, 16)) ** 3
    maps[:, 4:10, 3:12] += 0.5
    gts = [np.array([[3, 4, 12, 10]]), np.array([[0, 0, 8, 8], [8, 8, 16, 16]])] * 3
    taus = np.round(np.arange(0, 1, 0.05), 2)
    got = max_box_acc(maps, gts, (16, 16), cam_thresholds=taus, multi_contour=multi,
                      convention=convention)["maxboxacc_v2"]
    ref = _reference_maxboxacc if convention == "continuous" else _reference_convention_maxboxacc
    assert got == pytest.approx(ref(maps, gts, taus, (0.3, 0.5, 0.7), multi))


def _best_iou(score_map, gt, tau, convention):
    metric = MaxBoxAccV2(cam_thresholds=(tau,), convention=convention)
    return float(metric.best_ious(score_map, np.asarray([gt], dtype=float))[0])


def _plateau_map(value):
    """10x10: the object (value 1, 16 px) in rows/cols 2..5 and a larger plateau (20 px) of ``value`` in rows 7-8."""
    m = np.zeros((10, 10))
    m[2:6, 2:6] = 1.0
    m[7:9, 0:10] = value
    return m


def _v1_best_iou(m, gt, tau, convention):  # V1 keeps the largest component: the plateau wins when it is in the mask
    metric = MaxBoxAccV2(cam_thresholds=(tau,), multi_contour=False, convention=convention)
    return float(metric.best_ious(m, np.asarray([gt], dtype=float))[0])


def test_maxboxacc_threshold_boundaries_are_pinned():
    gt = (2, 2, 6, 6)  # the object's box (reference: x1 = max col + 1, counted inclusively; continuous: half-open)
    exactly = _plateau_map(0.5)  # exactly at tau = 0.5
    assert _v1_best_iou(exactly, gt, 0.5, "continuous") < 0.3  # s >= tau keeps the plateau
    assert _v1_best_iou(exactly, gt, 0.5, "reference") == 1.0  # q = 127 > int(0.5 * 255) = 127 is false
    above = _plateau_map(127.6 / 255)  # above tau on the continuous map, but 127 after 8-bit truncation
    assert _v1_best_iou(above, gt, 0.5, "continuous") < 0.3
    assert _v1_best_iou(above, gt, 0.5, "reference") == 1.0  # the quantisation decides
    assert _v1_best_iou(_plateau_map(128.2 / 255), gt, 0.5, "reference") < 0.3  # q = 128 > 127
    assert _best_iou(exactly, (2, 2, 5, 5), 0.5, "reference") == pytest.approx(16 / 25)  # the +1 quirk, pinned
    assert _best_iou(exactly, gt, 0.5, "reference") == 1.0


def test_maxboxacc_reference_boxes_are_clipped_and_counted_inclusively():
    m = np.zeros((10, 10))
    m[:, 6:] = 1.0  # columns 6..9, every row: the reference box is (6, 0, min(10, 9), min(10, 9)) = (6, 0, 9, 9)
    assert _best_iou(m, (6, 0, 9, 9), 0.5, "reference") == 1.0
    # inclusive IoU of (6, 0, 9, 9) against (6, 0, 9, 4): 4x5 / 4x10 = 0.5 exactly
    assert _best_iou(m, (6, 0, 9, 4), 0.5, "reference") == pytest.approx(0.5, abs=0)
    # ground truth is truncated to whole pixels first: 6.9 -> 6
    assert _best_iou(m, (6.9, 0.2, 9.7, 9.9), 0.5, "reference") == 1.0


def test_maxboxacc_counts_an_iou_of_exactly_delta_as_correct():
    m = np.zeros((10, 10))
    m[:, 6:] = 1.0
    gts = np.asarray([[6, 0, 9, 4]], dtype=float)  # IoU exactly 0.5 (previous test)
    res = max_box_acc(m[None], gts, (10, 10), iou_thresholds=(0.5, 0.7), cam_thresholds=(0.5,))
    assert res["maxboxacc"] == {0.5: 100.0, 0.7: 0.0}
    with pytest.raises(ValueError, match="convention must be one of"):
        MaxBoxAccV2(convention="opencv")


def test_maxboxacc_accumulates_batches_and_upsamples_token_maps():
    metric = MaxBoxAccV2()
    tok = torch.zeros(2, 4, 4)
    tok[:, 1:3, 1:3] = 1.0  # object in the middle 2x2 tokens of a 4x4 grid on a 32-px image
    metric.update(tok[:1], [np.array([[8, 8, 24, 24]])], (32, 32))
    metric.update(tok[1:], [np.array([[8, 8, 24, 24]])], (32, 32))
    res = metric.compute()
    assert res["n"] == 2 and res["maxboxacc"][0.5] == 100.0
    with pytest.raises(ValueError):
        MaxBoxAccV2().compute()


def test_token_box_hits_against_hand_counts():
    # 2x2 grid of 8-px patches (centres at 4 and 12); the box covers the top-left patch only
    boxes = np.array([[0, 0, 8, 8], [0, 0, 8, 8]])
    scores = torch.tensor([[9.0, 1.0, 1.0, 0.0], [0.0, 9.0, 1.0, 2.0]])
    top = token_box_hits(scores, boxes, (2, 2), 8, k=1)
    assert top["hit_rate"] == 0.5 and top["chance"] == 0.25 and top["ratio"] == 2.0
    bottom = token_box_hits(scores, boxes, (2, 2), 8, k=1, largest=False)
    assert bottom["hit_rate"] == 0.5  # image 1's lowest is token 3 (out), image 2's lowest is token 0 (in)
    two = token_box_hits(scores, boxes, (2, 2), 8, k=2)
    assert two["hit_rate"] == 0.25 and two["any_hit"] == 0.5
    with pytest.raises(ValueError):
        token_box_hits(scores, boxes, (3, 3), 8)


def test_benchmark_inference_reports_the_best_batch_size():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    res = benchmark_inference(model, 8, batch_sizes=(1, 4), device="cpu", warmup=1, iters=2, min_seconds=0.01)
    assert [r["batch_size"] for r in res["rows"]] == [1, 4]
    assert res["best"] == max(res["rows"], key=lambda r: r["img_per_s"])
    assert all(r["peak_mem_mib"] > 0 and r["img_per_s"] > 0 for r in res["rows"])
    assert model.training  # mode restored
    with pytest.raises(ValueError):
        benchmark_inference(model, 8, batch_sizes=(0,))
