"""The held-out boxed-digits dataset: labels, boxes on the ink, disjoint scans, the same schema as the benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from glsim_core.data import boxed_digits as bd


def test_box_is_the_tight_box_of_the_labelled_ink():
    spec = bd.DigitsSpec()
    scan = np.zeros((8, 8), dtype=np.float32)
    scan[2:6, 3:5] = 1.0  # a bar: rows 2-5, columns 3-4 of the scan
    rng = np.random.default_rng(0)
    img, box = bd.render_digit_image(spec, scan, rng, np.zeros((8, 8), dtype=np.float32))
    x0, y0, x1, y1 = box
    assert img.size == (spec.image_size, spec.image_size)
    assert 0 <= x0 < x1 <= spec.image_size and 0 <= y0 < y1 <= spec.image_size
    assert (y1 - y0) > (x1 - x0)  # the bar is taller than wide, and so is its box
    margin = (spec.image_size - spec.view_size) // 2
    assert margin <= x0 and x1 <= spec.image_size - margin + 1  # inside the view the eval crop keeps


def test_train_and_test_use_disjoint_scans_and_every_class(tmp_path):
    spec = bd.DigitsSpec(train_size=60, test_size=30)
    path = bd.generate_boxed_digits(spec, tmp_path / "d", progress=False)
    import datasets

    dd = datasets.load_from_disk(str(path))
    assert dd["train"].num_rows == 60 and dd["test"].num_rows == 30
    assert dd["train"].features["label"].names == [str(d) for d in range(10)]
    assert set(dd["train"]["label"]) == set(range(10))
    boxes = np.asarray(dd["test"]["bbox"])
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert bd.ensure_boxed_digits(spec, path, progress=False) == path  # same spec: not regenerated
    images, _ = bd._scans()
    assert 0 < bd.TRAIN_SCANS < len(images)


def test_spec_validates():
    with pytest.raises(ValueError, match="digit_scale"):
        bd.DigitsSpec(digit_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="clutter"):
        bd.DigitsSpec(clutter=(3, 1))


def test_test_split_draws_only_scans_the_train_split_never_shows(monkeypatch):
    images, _ = bd._scans()
    flat = {images[i].tobytes(): i for i in range(len(images))}
    used = {"train": set(), "test": set()}
    real = bd.render_digit_image

    def spy(spec, scan, rng, distractor):
        used[current] |= {flat[scan.tobytes()], flat[distractor.tobytes()]}
        return real(spec, scan, rng, distractor)

    monkeypatch.setattr(bd, "render_digit_image", spy)
    for current in ("train", "test"):
        bd._render(bd.DigitsSpec(), current, 200, progress=False)
    assert max(used["train"]) < bd.TRAIN_SCANS <= min(used["test"])


def test_ink_stands_out_from_the_background_under_it():
    rng = np.random.default_rng(0)
    canvas = np.full((40, 40, 3), 120.0, dtype=np.float32)
    canvas[:, 20:] = 250.0  # a grey left half, a white right half
    for x0 in (0, 24):
        under = canvas[5:17, x0:x0 + 12].reshape(-1, 3).mean(0)
        for _ in range(20):
            colour = bd._ink_colour(canvas, x0, 5, 12, 140.0, rng)
            assert np.linalg.norm(colour - under) >= 140.0
    # no colour can be 300 away from mid-grey: the farthest of the draws is returned instead of looping forever
    far = bd._ink_colour(np.full((8, 8, 3), 127.5, dtype=np.float32), 0, 0, 8, 300.0, rng)
    assert far.shape == (3,) and np.linalg.norm(far - 127.5) > 150.0
    with pytest.raises(ValueError, match="min_contrast"):
        bd.DigitsSpec(min_contrast=-1.0)
