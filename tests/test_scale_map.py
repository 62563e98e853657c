"""The scale map: its plan, the crop geometry, the statistics of a difference, and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from glsim_core.metrics.classification import difference

from glsim_core.data.synthetic import BenchmarkSpec
from glsim_core.experiments import scale_map


def test_plan_is_seed_major_and_shards_do_not_overlap():
    runs = scale_map.plan(seeds=(1, 2), points=("xs", "l"))
    assert [(s, p, m["name"]) for s, p, m in runs[:5]] == [
        (1, "xs", "ViT"), (1, "xs", "SimPool-ViT"), (1, "xs", "GLSim"), (1, "xs", "GLSim-random"), (1, "l", "ViT")]
    assert len(runs) == 2 * 2 * 4 and runs[8][0] == 2
    halves = [scale_map.plan(seeds=(1, 2), points=("xs", "l"))[i::2] for i in range(2)]
    keys = [{(s, p, m["name"]) for s, p, m in h} for h in halves]
    assert not keys[0] & keys[1] and len(keys[0] | keys[1]) == len(runs)
    with pytest.raises(ValueError, match="unknown scale point.*'huge'"):
        scale_map.plan(points=("huge",))
    assert [m["name"] for _, _, m in scale_map.plan(seeds=(1,), points=("l",), models=("ViT-scratch",))] == [
        "ViT-scratch"]
    full = scale_map.plan(seeds=(1,), points=("s",), models=("GLSim-full",))
    assert [m["name"] for _, _, m in full] == ["GLSim-full"] and full[0][2]["model_kwargs"]["top_o"] > 64 * 64
    with pytest.raises(ValueError, match="unknown model.*'Swin'"):
        scale_map.plan(models=("Swin",))


def test_points_grow_and_the_largest_is_the_default_benchmark():
    lows = [lo for lo, _ in scale_map.SCALE_POINTS.values()]
    assert lows == sorted(lows)
    assert scale_map.benchmark_spec("l") == BenchmarkSpec()
    assert scale_map.benchmark_spec("xs").object_scale == scale_map.SCALE_POINTS["xs"]


def test_difference_matches_a_hand_computation():
    a, b = [50.0, 52.0, 54.0], [40.0, 41.0, 45.0, 46.0]
    d = difference(a, b)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    assert d["diff"] == pytest.approx(52.0 - 43.0)
    assert d["se"] == pytest.approx(math.sqrt(va + vb))
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    assert d["df"] == pytest.approx(df)
    from scipy import stats

    half = stats.t.ppf(0.975, df) * d["se"]
    assert (d["ci95_low"], d["ci95_high"]) == pytest.approx((9.0 - half, 9.0 + half))
    assert d["z"] == pytest.approx(9.0 / d["se"])
    # swapping the sides flips the sign, not the uncertainty
    r = difference(b, a)
    assert r["diff"] == pytest.approx(-9.0) and r["se"] == pytest.approx(d["se"])
    with pytest.raises(ValueError, match="at least 2 runs"):
        difference([1.0], [1.0, 2.0])


class _Boxes:
    """A stand-in dataset split whose items carry fixed boxes."""

    def __init__(self, boxes):
        self.boxes = boxes

    def __len__(self):
        return len(self.boxes)

    def __getitems__(self, idx):
        return [{"image": torch.zeros(3, 64, 64), "label": 0, "index": i,
                 "boxes": torch.tensor([self.boxes[i]], dtype=torch.float32)}
                for i in idx]


class _Cropper(torch.nn.Module):
    """forward_details returns the given crop boxes, in order."""

    def __init__(self, crops):
        super().__init__()
        self.crops = torch.tensor(crops)
        self.seen = 0

    def forward_details(self, x):
        out = self.crops[self.seen:self.seen + len(x)]
        self.seen += len(x)
        return SimpleNamespace(boxes=out)


def test_crop_geometry_by_hand():
    gts = [[0, 0, 32, 32], [16, 16, 48, 48]]  # each a quarter of the 64 x 64 view
    crops = [[0, 0, 32, 32], [0, 0, 32, 32]]  # the first holds its box, the second keeps a quarter of it
    data = SimpleNamespace(torch_split=lambda split, train, with_boxes: _Boxes(gts))
    g = scale_map.crop_geometry(_Cropper(crops), data, batch_size=1)
    assert g["n"] == 2
    assert g["box_share"] == pytest.approx(0.25) and g["crop_share"] == pytest.approx(0.25)
    assert g["zoom"] == pytest.approx(2.0)  # a quarter of the view is seen twice as large
    assert g["kept"] == pytest.approx((1.0 + 0.25) / 2) and g["kept90"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="GLSim model"):
        scale_map.crop_geometry(torch.nn.Linear(1, 1), data)


def test_summarize_reads_differences_per_point():
    rows = [{"point": p, "model": m, "seed": s, "top1": base + s * 0.5}
            for p, shift in (("xs", 0.0), ("l", 5.0)) for m, base in (("ViT", 40.0 + shift), ("GLSim", 44.0 + shift))
            for s in (1, 2, 3)]
    table, diffs = scale_map.summarize(pd.DataFrame(rows), num_classes=10)
    vit = table[(table.point == "xs") & (table.model == "ViT")].iloc[0]
    assert vit["top1_mean"] == pytest.approx(41.0) and vit["n"] == 3 and vit["x_chance"] == pytest.approx(4.1)
    assert list(diffs["comparison"]) == ["GLSim - ViT", "GLSim - ViT"]  # only the pairs that were run
    assert diffs["diff"].tolist() == pytest.approx([4.0, 4.0])


def test_tiny_scale_map_end_to_end(tmp_path, monkeypatch):
    tiny = {p: BenchmarkSpec(num_classes=3, train_size=24, test_size=8, seed=3, object_scale=s)
            for p, s in scale_map.SCALE_POINTS.items()}
    monkeypatch.setattr(scale_map, "benchmark_spec", lambda p: tiny[p])
    monkeypatch.setattr(scale_map, "point_dataset_path", lambda p: tmp_path / "data" / p)
    out = tmp_path / "runs"
    kw = dict(points=("xs",), out=out, epochs=1, batch_size=12, progress=False)
    planned = scale_map.run_scale_map(seeds=(1,), dry_run=True, **kw)
    assert [r["status"] for r in planned] == ["planned"] * 4
    rows = scale_map.run_scale_map(seeds=(1, 2), models=("ViT", "GLSim"), **kw)
    assert {(r["model"], r["seed"]) for r in rows} == {("ViT", 1), ("ViT", 2), ("GLSim", 1), ("GLSim", 2)}
    assert all(0 <= r["top1"] <= 100 for r in rows)
    again = scale_map.run_scale_map(seeds=(1, 2), models=("ViT", "GLSim"), dry_run=True, **kw)
    assert {r["status"] for r in again} == {"done"}
    csv = tmp_path / "results" / "scale_map_cpu.csv"
    manifest = json.loads(scale_map.collect(out, csv, command="test").read_text())
    assert manifest["runs"] == 4 and manifest["seeds"] == [1, 2] and set(manifest["files"]) == {
        "scale_map_cpu.csv", "scale_map_cpu.json"}
    runs = pd.read_csv(csv)
    assert set(runs["point"]) == {"xs"} and all(len(json.loads(c)) == 1 for c in runs["curve"])
    summary = scale_map.load_scale_map(csv)
    assert 0 < summary["geometry"]["xs"]["crop_share"] <= 1 and summary["geometry"]["xs"]["n"] == 8
    assert [d["comparison"] for d in summary["differences"]] == ["GLSim - ViT"]
    assert "GLSim-random" not in summary["runs"]["model"].tolist() and summary["geometry_random"] == {}
    # two seeds a side: too few to choose a point, so no headline unless one is named
    assert summary["chosen_point"] is None and not (tmp_path / "results" / "headline_cpu.json").exists()
    scale_map.collect(out, csv, command="test", headline_point="xs")
    head = scale_map.load_headline(path=tmp_path / "results" / "headline_cpu.json")
    assert head["point"] == "xs" and [r["model"] for r in head["table"]] == ["ViT", "GLSim"]
    assert head["reading"][-1].startswith("GLSim - ViT") and "too few seeds" in head["reading"][-1]
    head_manifest = json.loads((tmp_path / "results" / "headline_cpu.manifest.json").read_text())
    assert head_manifest["runs"] == 4 and "given" in head_manifest["note"]
    with pytest.raises(ValueError, match="unknown headline point 'huge'"):
        scale_map.collect(out, csv, headline_point="huge")


def _result(rows):
    table, diffs = scale_map.summarize(pd.DataFrame(rows), num_classes=12)
    return {"table": table.to_dict("records"), "differences": diffs.to_dict("records"), "geometry": {}}


def test_reading_states_noise_direction_and_too_few_seeds():
    wide = [{"point": "l", "model": m, "seed": s, "top1": v}
            for m, vals in (("ViT", (40.0, 50.0, 60.0)), ("GLSim", (41.0, 51.0, 61.0)))
            for s, v in zip((1, 2, 3), vals)]
    lines = scale_map.reading(_result(wide), "l")
    assert lines[0].startswith("ViT: 50.0 ± 10.0 % over 3 seed(s), 6.0× chance")
    assert lines[-1].startswith("GLSim - ViT: +1.0 points") and lines[-1].endswith("within noise (+0.1 SE)")
    tight = [{"point": "l", "model": m, "seed": s, "top1": base + 0.1 * s}
             for m, base in (("ViT", 40.0), ("GLSim", 45.0)) for s in (1, 2, 3)]
    assert "a direction: beyond 2 standard errors" in scale_map.reading(_result(tight), "l")[-1]
    wobbly = [{"point": "l", "model": m, "seed": s, "top1": v} for m, vals in
              (("ViT", (40.0, 41.0, 49.0)), ("GLSim", (47.0, 55.0, 56.0))) for s, v in zip((1, 2, 3), vals)]
    d = scale_map.differences(pd.DataFrame(wobbly), "GLSim", "ViT")
    assert abs(d["z"]) > 2 and d["ci95_low"] < 0 < d["ci95_high"]  # few seeds: Student's t is wide
    assert "suggestive, not established" in scale_map.reading(_result(wobbly), "l")[-1]
    two = [r for r in tight if r["seed"] < 3]
    assert "too few seeds" in scale_map.reading(_result(two), "l")[-1]
    one = [r for r in tight if r["seed"] == 1 or r["model"] == "ViT"]  # GLSim has a single run: no error bar yet
    last = scale_map.reading(_result(one), "l")[-1]
    assert last.startswith("GLSim - ViT: +4.9 points (no standard error yet, n = 1, 3)") and "too few seeds" in last
    with pytest.raises(ValueError, match="no runs at point 'xs'"):
        scale_map.point_table(_result(tight), "xs")


def test_choose_point_takes_the_clearest_gain_among_points_that_learn():
    def runs(point, vit, glsim, spread):
        return [{"point": point, "model": m, "seed": s, "top1": base + spread * (s - 2)}
                for m, base in (("ViT", vit), ("GLSim", glsim)) for s in (1, 2, 3)]

    # s: +6 with spread 1 (z ~ 7); m: +10 with spread 5 (z ~ 2.4); xs: +20 but ViT below 3x chance (8.3 %)
    result = _result(runs("s", 50.0, 56.0, 1.0) + runs("m", 50.0, 60.0, 5.0) + runs("xs", 20.0, 40.0, 1.0))
    assert scale_map.choose_point(result) == "s"
    assert "clearest at s" in scale_map.choice_reason(result)
    # no point gains beyond 2 SE: the map gives no reason to move, the default benchmark (l) stays
    flat = _result(runs("l", 50.0, 50.5, 1.0) + runs("m", 50.0, 51.5, 1.0))  # m: z ~ 1.8 < 2
    assert scale_map.choose_point(flat) == "l"
    assert "stays the headline point" in scale_map.choice_reason(flat)
    assert scale_map.choose_point(flat, default="xs") == "m"  # a default that does not qualify: the largest z
    assert scale_map.choose_point(_result(runs("l", 50.0, 45.0, 1.0))) == "l"
    assert scale_map.choose_point(_result(runs("xs", 20.0, 40.0, 1.0))) is None
    assert "no point qualifies" in scale_map.choice_reason(_result(runs("xs", 20.0, 40.0, 1.0)))
    two = [r for r in runs("s", 50.0, 56.0, 1.0) if r["seed"] < 3]
    assert scale_map.choose_point(_result(two)) is None


def test_headline_orders_the_five_models_and_reads_each_difference():
    rows = [{"point": "s", "model": m, "seed": s, "top1": base + s}
            for m, base in (("ViT-scratch", 30.0), ("GLSim", 55.0), ("ViT", 50.0), ("SimPool-ViT", 48.0),
                            ("GLSim-random", 52.0)) for s in (1, 2, 3)]
    head = scale_map.headline(_result(rows), "s")
    assert [r["model"] for r in head["table"]] == ["ViT", "SimPool-ViT", "GLSim", "GLSim-random", "ViT-scratch"]
    assert {d["comparison"] for d in head["differences"]} == {
        "GLSim - ViT", "GLSim - GLSim-random", "SimPool-ViT - ViT", "ViT - ViT-scratch"}
    assert head["object_scale"] == list(scale_map.SCALE_POINTS["s"]) and len(head["reading"]) == 5 + 4


def test_plot_scale_map_draws_both_panels():
    import matplotlib

    matplotlib.use("Agg")
    rows = [{"point": p, "model": m, "seed": s, "top1": 40.0 + s + (3 if m == "GLSim" else 0)}
            for p in ("xs", "l") for m in ("ViT", "GLSim", "GLSim-random") for s in (1, 2, 3)]
    fig = scale_map.plot_scale_map(_result(rows))
    left, right = fig.axes
    assert {t.get_text() for t in left.get_legend().get_texts()} >= {"ViT", "GLSim", "chance (8.3 %)"}
    assert {t.get_text() for t in right.get_legend().get_texts()} == {"GLSim − ViT", "GLSim − GLSim-random"}
    for ax in (left, right):  # one named tick per point, smallest object first
        assert [t.get_text().split("\n")[1] for t in ax.get_xticklabels()] == ["xs", "l"]


def test_a_finished_run_is_read_back_when_only_its_folder_moved(tmp_path, monkeypatch):
    from glsim_core.train import TrainConfig, protocol

    calls = []
    monkeypatch.setattr(protocol, "fit", lambda cfg: calls.append(cfg) or SimpleNamespace(metrics={"top1": 1.0}))
    old = TrainConfig(out_dir=str(tmp_path / "build" / "run"), epochs=8, seed=3)
    moved = old.replace(out_dir=str(tmp_path / "data" / "run"), progress=False, num_workers=2)
    (tmp_path / "data" / "run").mkdir(parents=True)
    done = {"top1": 55.5, "seconds": 170.0, "config": json.loads(old.to_json())}
    (tmp_path / "data" / "run" / "metrics.json").write_text(json.dumps(done))
    assert protocol._run(moved) == done and calls == []  # read back: its timing is not overwritten
    assert protocol._run(moved.replace(seed=4))["top1"] == 1.0  # another seed is another run
    assert protocol._run(moved.replace(epochs=10))["top1"] == 1.0  # more epochs extend the run
    assert len(calls) == 2
    # the same checkout elsewhere: the generated dataset's absolute path differs, its place in the cache does not
    from glsim_core.paths import cache_dir

    here = moved.replace(dataset=str(cache_dir() / "benchmark_scale_s"))
    done["config"] = json.loads(here.to_json()) | {"dataset": "/elsewhere/glsim/data/cache/benchmark_scale_s"}
    (tmp_path / "data" / "run" / "metrics.json").write_text(json.dumps(done))
    assert protocol._run(here) == done and len(calls) == 2
    assert protocol._run(here.replace(dataset=str(cache_dir() / "benchmark_scale_m")))["top1"] == 1.0


def test_crop_columns_belong_to_the_models_that_crop():
    rows = [{"point": "s", "model": m, "seed": s, "top1": 50.0 + s} for m in ("ViT", "GLSim", "GLSim-random")
            for s in (1, 2)]
    gls = {"s": {"box_share": 0.12, "crop_share": 0.28, "zoom": 1.9, "kept": 0.84}}
    rnd = {"s": {"box_share": 0.12, "crop_share": 0.77, "zoom": 1.14, "kept": 0.93}}
    table, _ = scale_map.summarize(pd.DataFrame(rows), gls, num_classes=12, geometry_random=rnd)
    t = table.set_index("model")
    assert (t["box_share"] == 0.12).all()  # the object's size is the point's, whatever the model
    assert t.loc["GLSim", "zoom"] == 1.9 and t.loc["GLSim-random", "zoom"] == 1.14
    assert math.isnan(t.loc["ViT", "crop_share"])  # the ViT makes no crop
