"""glsim_core.data.synthetic: the offline benchmark and corpus are deterministic, boxed, and load through HF."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from glsim_core.data import load_image_dataset
from glsim_core.data import synthetic as syn
from glsim_core.data.synthetic import (
    CORPUS_CATEGORIES,
    BenchmarkSpec,
    CorpusSpec,
    benchmark_class_names,
    ensure_benchmark,
    generate_benchmark,
    render_benchmark_image,
    render_corpus_image,
)


def _render(spec, label, seed, fn=render_benchmark_image):
    img, box = fn(spec, label, np.random.default_rng(seed))
    return np.asarray(img), box


def test_rendering_is_deterministic_per_seed():
    spec = BenchmarkSpec()
    a, box_a = _render(spec, 3, 7)
    b, box_b = _render(spec, 3, 7)
    c, _ = _render(spec, 3, 8)
    assert np.array_equal(a, b) and box_a == box_b and not np.array_equal(a, c)
    assert a.shape == (85, 85, 3)


@pytest.mark.parametrize("kind", ["benchmark", "corpus"])
def test_box_is_the_objects_tight_box_inside_the_view(kind, monkeypatch):
    """On a magenta background without clutter, the non-magenta pixels are exactly the object, inside its box."""
    magenta = (255, 0, 255)
    monkeypatch.setattr(syn, "_background", lambda rng, size, contrast: Image.new("RGBA", (size, size),
                                                                                  (*magenta, 255)))
    if kind == "benchmark":
        spec, fn, labels = BenchmarkSpec(clutter=(0, 0), decoys=(0, 0)), render_benchmark_image, range(12)
    else:
        spec, fn, labels = CorpusSpec(clutter=(0, 0), distractors=(0, 0)), render_corpus_image, range(0, 61, 6)
    margin = (spec.image_size - spec.view_size) / 2
    for label in labels:
        img, box = _render(spec, label, label, fn)
        ys, xs = np.nonzero(np.abs(img.astype(int) - magenta).max(axis=2) > 60)
        x0, y0, x1, y1 = box
        assert abs(xs.min() - x0) <= 1.5 and abs(ys.min() - y0) <= 1.5, (label, box, xs.min(), ys.min())
        assert abs(xs.max() + 1 - x1) <= 1.5 and abs(ys.max() + 1 - y1) <= 1.5, (label, box)
        assert margin - 1 <= x0 < x1 <= spec.image_size - margin + 1
        assert margin - 1 <= y0 < y1 <= spec.image_size - margin + 1


def test_object_scale_controls_the_box_size():
    small = BenchmarkSpec(object_scale=(0.2, 0.2), rotation=0)
    large = BenchmarkSpec(object_scale=(0.5, 0.5), rotation=0)
    w_small = np.mean([_render(small, 0, s)[1][2] - _render(small, 0, s)[1][0] for s in range(4)])
    w_large = np.mean([_render(large, 0, s)[1][2] - _render(large, 0, s)[1][0] for s in range(4)])
    assert 2.0 < w_large / w_small < 3.0


def test_classes_are_distinct_part_combinations():
    names = benchmark_class_names(24)
    assert len(set(names)) == 24 and benchmark_class_names(12) == names[:12]
    assert all(len(n.split("-")) == 4 for n in names)
    assert not any("bird" in c or "fish" in c for c in CORPUS_CATEGORIES)  # corpus classes are not the benchmark's
    with pytest.raises(ValueError, match="num_classes"):
        BenchmarkSpec(num_classes=25)
    with pytest.raises(ValueError, match="object_scale"):
        BenchmarkSpec(object_scale=(0.5, 0.2))


def test_generate_writes_an_hf_dataset_and_ensure_reuses_it(tmp_path):
    spec = BenchmarkSpec(num_classes=4, train_size=12, test_size=8, seed=3)
    path = generate_benchmark(spec, tmp_path / "b", workers=1, progress=False)
    meta = json.loads((path / "glsim_dataset.json").read_text())
    assert meta["spec"]["seed"] == 3 and meta["class_names"] == benchmark_class_names(4)
    data = load_image_dataset(path, img_size=32)
    assert data.class_names == benchmark_class_names(4) and data.bbox_column == "bbox"
    assert data.split_sizes()["test"] == 8 and data.split_sizes()["trainval"] == 12
    labels = data.torch_split("trainval").labels
    assert np.bincount(labels, minlength=4).tolist() == [3, 3, 3, 3]  # balanced
    stamp = (path / "glsim_dataset.json").stat().st_mtime_ns
    assert ensure_benchmark(spec, path, workers=1, progress=False) == path
    assert (path / "glsim_dataset.json").stat().st_mtime_ns == stamp  # same spec: not regenerated
    again = generate_benchmark(spec, tmp_path / "b2", workers=1, progress=False)
    import datasets

    d1, d2 = datasets.load_from_disk(str(path)), datasets.load_from_disk(str(again))
    assert d1["test"]["bbox"][:] == d2["test"]["bbox"][:]  # same seed, same data
    ensure_benchmark(BenchmarkSpec(num_classes=4, train_size=12, test_size=8, seed=4), path, workers=1,
                     progress=False)
    assert json.loads((path / "glsim_dataset.json").read_text())["spec"]["seed"] == 4  # other spec: regenerated


def _generate_into(path: str) -> str:
    spec = BenchmarkSpec(num_classes=3, train_size=30, test_size=12, seed=5)
    return str(ensure_benchmark(spec, path, workers=1, progress=False))


def test_two_processes_generating_the_same_benchmark_both_get_a_complete_copy(tmp_path):
    # two sweeps started together (one per core) both find the benchmark missing and render it: each writes into
    # a folder of its own, and the one that finishes second keeps the first one's copy
    import concurrent.futures
    import multiprocessing

    import datasets

    target = tmp_path / "bench"
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        paths = list(pool.map(_generate_into, [str(target)] * 2))
    assert paths == [str(target)] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench"]  # no half-written folder left behind
    d = datasets.load_from_disk(str(target))
    assert len(d["train"]) == 30 and len(d["test"]) == 12


def test_a_copy_finished_by_another_process_is_kept(tmp_path, monkeypatch):
    spec = BenchmarkSpec(num_classes=3, train_size=6, test_size=6, seed=2)
    path = generate_benchmark(spec, tmp_path / "b", workers=1, progress=False)
    stamp = (path / "glsim_dataset.json").stat().st_mtime_ns
    # rendering the same spec again while that copy exists (the other process won the race) keeps that copy
    assert generate_benchmark(spec, path, workers=1, progress=False) == path
    assert (path / "glsim_dataset.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
