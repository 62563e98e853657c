"""glsim_core.experiments: summarize (vs numpy), paper references (vs the papers' text), ablation definitions, the
reproduction report (numbers only from files, "not run" otherwise) and its CLI."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm

from glsim_core.cli import main
from glsim_core.experiments.ablations import GLSIM_DEFAULTS, ablations
from glsim_core.experiments.aggregate import (
    PAPER_REFERENCE,
    format_mean_std,
    parse_reference,
    plot_summary,
    summarize,
    with_reference,
)
from glsim_core.experiments.report import NOT_RUN, ablation_rows, build_report
from glsim_core.experiments.sweep import resolve_target

#: The papers' text: $GLSIM_PAPERS, else ``shared/papers`` beside the repository (where the project keeps it).
PAPERS = Path(os.environ.get("GLSIM_PAPERS") or Path(__file__).resolve().parents[2] / "shared" / "papers")


def _runs() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for variant in ("a", "b", "c"):
        for seed in (1, 10, 100):
            rows.append({"variant": variant, "model": "m", "seed": seed, "top1": float(rng.uniform(30, 90)),
                         "loss": float(rng.uniform(0, 2)), "status": "ok"})
    rows.append({"variant": "a", "model": "m", "seed": 5, "top1": 1000.0, "loss": 0.0, "status": "failed"})
    rows.append({"variant": "d", "model": "m", "seed": 1, "top1": 50.0, "loss": 1.0, "status": "ok"})
    return pd.DataFrame(rows)


def test_summarize_matches_numpy():
    df = _runs()
    s = summarize(df, by="variant", metrics=["top1", "loss"])
    assert list(s["variant"]) == ["a", "b", "c", "d"]  # first-appearance order, failed run left out
    for variant in "abc":
        vals = df[(df["variant"] == variant) & (df["status"] == "ok")]["top1"].to_numpy()
        row = s[s["variant"] == variant].iloc[0]
        assert row["top1_mean"] == pytest.approx(np.mean(vals))
        assert row["top1_std"] == pytest.approx(np.std(vals, ddof=1))
        assert row["top1_n"] == 3
        assert row["top1"] == f"{np.mean(vals):.2f} ± {np.std(vals, ddof=1):.2f}"
        lv = df[(df["variant"] == variant) & (df["status"] == "ok")]["loss"].to_numpy()
        assert row["loss_mean"] == pytest.approx(np.mean(lv))
    d = s[s["variant"] == "d"].iloc[0]
    assert d["top1_n"] == 1 and math.isnan(d["top1_std"]) and d["top1"] == "50.00 (n=1)"
    two = summarize(df, by=["model", "variant"], metrics="top1")
    assert list(two.columns[:2]) == ["model", "variant"] and len(two) == 4
    with pytest.raises(ValueError, match="not in the table"):
        summarize(df, by="nope")


def test_format_and_parse_reference():
    assert format_mean_std(1.234, 0.5, 3) == "1.23 ± 0.50"
    assert format_mean_std(float("nan"), float("nan"), 0) == NOT_RUN
    assert parse_reference("90.93 ± 0.24") == (90.93, 0.24)
    m, s = parse_reference("57.1")
    assert m == 57.1 and math.isnan(s)
    with pytest.raises(ValueError):
        parse_reference("about 90")
    for entry in PAPER_REFERENCE.values():  # every stored number parses
        for text in entry["rows"].values():
            assert not math.isnan(parse_reference(text)[0])


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the papers' text is not on this machine")
def test_paper_numbers_appear_in_the_papers():
    glsim = (PAPERS / "glsim-global-local-similarity.md").read_text()
    simpool = (PAPERS / "simpool-keep-it-simpool.md").read_text()
    norm = lambda t: re.sub(r"\$|\\pm|<[^>]+>|\s+", " ", t).replace("±", " ")  # noqa: E731
    glsim_n = " ".join(norm(glsim).split())
    for name, entry in PAPER_REFERENCE.items():
        text = glsim_n if entry["paper"] == "GLSim" else simpool
        for label, value in entry["rows"].items():
            mean, std = parse_reference(value)
            needle = f"{value.split('±')[0].strip()} {value.split('±')[1].strip()}" if "±" in value else value
            assert needle in (glsim_n if entry["paper"] == "GLSim" else text), (name, label, value)
    # a few rows checked against their exact table line
    assert "GLS	Aggregator	Accuracy (%)\n-	-	90.11 ± 0.17\n-	✓	90.55 ± 0.06" in glsim
    assert PAPER_REFERENCE["glsim_table15"]["rows"]["GLSim / coarse patches"] == "88.28 ± 0.02"
    assert PAPER_REFERENCE["glsim_table11"]["rows"]["GLSim / minimal"] == "89.78 ± 0.13"


def test_ablation_definitions_cover_the_paper_rows_and_share_runs(tmp_path):
    defs = ablations("cpu")
    not_implemented = set()
    for name, entry in PAPER_REFERENCE.items():
        assert name in defs
        for label in entry["rows"]:
            assert label in defs[name].points or (name, label) in not_implemented, (name, label)
    target = resolve_target("train", profile="cpu")
    for ab in defs.values():
        for point in ab.points.values():
            if point["model"].startswith("glsim_"):  # every GLSim point spells out every switch
                assert {f"model_kwargs.{k}" for k in GLSIM_DEFAULTS} <= set(point)
            target.validate_keys(point)
    # the same model in two tables is one full configuration (trained once)
    full = lambda p: target.full_config(p)  # noqa: E731
    assert full(defs["glsim_table5"].points["GLS crops + aggregator (GLSim)"]) == \
        full(defs["glsim_table13"].points["O=8"]) == full(defs["glsim_table14"].points["cosine"])
    assert full(defs["glsim_table13"].points["O=4"]) != full(defs["glsim_table13"].points["O=8"])
    gpu = ablations("gpu")
    assert gpu["glsim_table15"].points["GLSim / coarse patches"]["model"] == "glsim_vit_base_patch32_224"
    # cpu Table 15: the two sides are the same conv-stem ViT and differ only in the patch size (8x8 vs 4x4 grid)
    from glsim_core.models.backbones import SMALL_VITS, patch_grid
    t15 = defs["glsim_table15"].points
    fine, coarse = (SMALL_VITS[t15[f"ViT / {s} patches"]["model"]] for s in ("fine", "coarse"))
    same = lambda cfg: {k: v for k, v in cfg.items() if k != "patch_size"}  # noqa: E731
    assert same(fine) == same(coarse)
    assert (fine["patch_size"], coarse["patch_size"]) == (8, 16)
    assert patch_grid(timm.create_model(t15["ViT / coarse patches"]["model"])) == (4, 4)
    assert t15["GLSim / coarse patches"]["model"] == "glsim_" + t15["ViT / coarse patches"]["model"]
    with pytest.raises(ValueError, match="profile"):
        ablations("tpu")


def _fake_ablation_csv(path: Path) -> pd.DataFrame:
    rows = []
    for seed, v in zip((1, 10, 100), (40.0, 42.0, 47.0)):
        rows.append({"ablation": "glsim_table13", "paper_table": "GLSim Table 13", "variant": "O=4", "seed": seed,
                     "top1": v, "wall_s": 10.0, "device": "cpu", "status": "ok", "epochs": 2})
    rows.append({"ablation": "glsim_table13", "paper_table": "GLSim Table 13", "variant": "O=8", "seed": 1,
                 "top1": 55.5, "wall_s": 12.0, "device": "cpu", "status": "ok", "epochs": 2})
    rows.append({"ablation": "glsim_table13", "paper_table": "GLSim Table 13", "variant": "O=16", "seed": 1,
                 "top1": 99.0, "wall_s": 1.0, "device": "cpu", "status": "failed", "epochs": 2})
    rows.append({"ablation": "simpool_gamma", "paper_table": "SimPool §4.4", "variant": "γ=2", "seed": 1,
                 "top1": 33.0, "wall_s": 3.0, "device": "cpu", "status": "ok", "epochs": 2})
    df = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    path.with_suffix(".manifest.json").write_text(json.dumps({"command": "python -m x", "profile": "cpu",
                                                              "machine": "test box", "ok": 5, "failed": 1}))
    return df


def test_ablation_rows_numbers_and_not_run(tmp_path):
    df = _fake_ablation_csv(tmp_path / "a.csv")
    rows = {r["claim"]: r for r in ablation_rows(df, "glsim_table13", {"profile": "cpu", "machine": "box"})}
    assert list(rows) == ["O=4", "O=8", "O=16", "O=32"]
    vals = np.array([40.0, 42.0, 47.0])
    assert rows["O=4"]["repo"] == f"{vals.mean():.2f} ± {vals.std(ddof=1):.2f} (n=3)"
    assert rows["O=4"]["paper"] == "90.69 ± 0.25" and "cpu" in rows["O=4"]["hardware"]
    assert "box" in rows["O=4"]["hardware"] and "epochs=2" in rows["O=4"]["hardware"]
    assert rows["O=8"]["repo"] == "55.50 (n=1)"
    assert rows["O=16"]["repo"] == NOT_RUN  # only a failed run: never shown as a number
    assert rows["O=32"]["repo"] == NOT_RUN and rows["O=32"]["hardware"] == "-"
    extra = {r["claim"]: r for r in ablation_rows(df, "simpool_gamma")}
    assert extra["γ=2"]["paper"] == "-" and extra["γ=2"]["repo"] == "33.00 (n=1)"
    none = ablation_rows(None, "glsim_table5")
    assert [r["repo"] for r in none] == [NOT_RUN] * 4


def test_report_reads_shipped_results_and_notebooks(tmp_path):
    data, build, runs = tmp_path / "data", tmp_path / "build", tmp_path / "build" / "runs"
    _fake_ablation_csv(data / "results" / "ablations_cpu.csv")
    (build / "08_maps").mkdir(parents=True)
    (build / "08_maps" / "results.json").write_text(json.dumps({"maxboxacc_gls": 0.61234, "profile": "cpu",
                                                                "_updated": "2026-01-01T00:00:00",
                                                                "per_class": [1, 2, 3]}))
    text = build_report(runs=runs, build=build, data=data)
    assert "### Source: shipped ablations_cpu.csv" in text and "Produced by `python -m x`" in text
    assert "| O=4 | 90.69 ± 0.25 | 43.00 ± 3.61 (n=3) |" in text
    assert "| GLS crops + aggregator (GLSim) | 90.93 ± 0.24 | not run | - |" in text
    assert "| 08_maps: maxboxacc_gls | - | 0.6123 | cpu · 2026-01-01T00:00:00 |" in text
    assert "per_class" not in text and "Superseded" not in text
    manifest = data / "results" / "ablations_cpu.manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "superseded": "an older backbone"}))
    stale = build_report(runs=runs, build=build, data=data)
    assert "**Superseded — read nothing from this table:** an older backbone" in stale
    empty = build_report(runs=tmp_path / "none", build=tmp_path / "none", data=tmp_path / "none")
    assert "No ablation table found" in empty and "43.00" not in empty
    assert empty.count(f"| {NOT_RUN} |") == sum(len(e["rows"]) for e in PAPER_REFERENCE.values())


def test_report_lists_other_sweeps(tmp_path):
    runs = tmp_path / "runs" / "lr"
    runs.mkdir(parents=True)
    pd.DataFrame({"lr": [0.1, 0.1, 0.01], "seed": [1, 2, 1], "top1": [50.0, 60.0, 70.0], "wall_s": [1, 1, 1],
                  "device": "cpu", "status": ["ok", "ok", "ok"]}).to_csv(runs / "results.csv", index=False)
    text = build_report(runs=tmp_path / "runs", build=tmp_path / "none", data=tmp_path / "none")
    assert "| lr=0.1 | - | top1 55.00 ± 7.07 |" in text and "| lr=0.01 | - | top1 70.00 (n=1) |" in text


def test_report_cli(tmp_path, capsys):
    out = tmp_path / "r.md"
    assert main(["report", "--runs", str(tmp_path / "x"), "--build", str(tmp_path / "x"), "--data",
                 str(tmp_path / "x"), "--out", str(out)]) == 0
    assert out.read_text().startswith("# Reproduction report") and "paper rows not run" in capsys.readouterr().out


def test_with_reference_and_plot(tmp_path):
    df = pd.DataFrame({"variant": ["O=4", "O=4", "O=8", "O=8", "O=64"], "top1": [40.0, 44.0, 50.0, 52.0, 10.0],
                       "status": "ok"})
    s = with_reference(summarize(df, "variant"), "glsim_table13")
    assert dict(zip(s["variant"], s["paper"])) == {"O=4": "90.69 ± 0.25", "O=8": "90.93 ± 0.24", "O=64": "",
                                                   "O=16": "90.85 ± 0.17", "O=32": "90.82 ± 0.30"}
    assert list(s.loc[s["variant"] == "O=16", "top1"]) == [NOT_RUN]
    import matplotlib

    matplotlib.use("Agg")
    fig = plot_summary(df, x="variant", reference="glsim_table13")
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["O=4", "O=8", "O=16",
                                                                                            "O=32"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[:3] == pytest.approx([42.0, 51.0, 10.0])
    # the paper's panel is read on the repository's scale: one y-axis, 0-100 %
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim() == (0.0, 100.0)
    assert not fig.axes[0].get_lines() or all(line.get_linestyle() != "--" for line in fig.axes[0].get_lines())
    fig2 = plot_summary(df, x="variant", kind="point", chance=100 / 12)
    assert len(fig2.axes) == 1
    dashed = [line for line in fig2.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == pytest.approx([100 / 12] * 2)
    assert fig2.axes[0].get_legend().get_texts()[0].get_text() == "chance (8.3)"
    with pytest.raises(ValueError, match="kind"):
        plot_summary(df, x="variant", kind="pie")


def test_reading_differences_standard_errors_and_verdicts():
    from glsim_core.experiments.ablations import reading

    o4, o8, o16 = [40.0, 42.0, 47.0], [50.0, 51.0, 49.0], [50.5, 49.0, 50.0]
    rows = [{"ablation": "glsim_table13", "variant": v, "seed": s, "top1": x, "status": "ok"}
            for v, xs in (("O=4", o4), ("O=8", o8), ("O=16", o16)) for s, x in zip((1, 10, 100), xs)]
    r = reading(pd.DataFrame(rows), "glsim_table13").set_index("variant")
    assert list(r.index) == ["O=4", "O=16", "O=32"] and set(r["vs"]) == {"O=8"}
    se = math.sqrt(np.var(o4, ddof=1) / 3 + np.var(o8, ddof=1) / 3)
    assert r.loc["O=4", "here Δ"] == pytest.approx(np.mean(o4) - np.mean(o8))
    assert r.loc["O=4", "± se"] == pytest.approx(se)
    assert r.loc["O=4", "paper Δ"] == pytest.approx(90.69 - 90.93)
    assert abs(r.loc["O=4", "here Δ"]) > 2 * se
    assert r.loc["O=4", "verdict"] == "same direction"  # both lower than O=8, beyond two standard errors
    assert r.loc["O=16", "verdict"] == "within noise"  # |Δ| = 0.17 < 2 se
    assert r.loc["O=32", "verdict"] == "not run"


def test_run_ablations_selects_variants_and_tags_rows(tmp_path):
    from glsim_core.cli import main as cli_main
    from glsim_core.experiments.ablations import SMOKE_POINTS, ablation_settings, run_ablations

    def ablations_main(argv):
        return cli_main(["ablations", *argv])

    plan = run_ablations(seeds=[1, 2], out=tmp_path / "a", variants=SMOKE_POINTS, dry_run=True, progress=False,
                         settings={"pretrained": False})
    assert len(plan) == 2 * sum(len(v) for v in SMOKE_POINTS.values())
    assert set(plan["status"]) == {"planned"}
    assert set(plan["variant"]) == {v for vs in SMOKE_POINTS.values() for v in vs}
    assert set(plan.loc[plan["ablation"] == "simpool_gamma", "paper_table"]) == {"SimPool §4.4"}
    with pytest.raises(ValueError, match="no variant"):
        run_ablations(variants={"glsim_table13": ["O=5"]}, dry_run=True)
    with pytest.raises(ValueError, match="unknown ablation"):
        run_ablations(["table99"], dry_run=True)
    s = ablation_settings("cpu", epochs=3, max_train=100, lr=0.003)
    assert s["epochs"] == 3 and s["max_train_samples"] == 100 and s["lr"] == 0.003 and "pretrained" in s
    assert ablations_main(["--tables", "glsim_table14", "--seeds", "1", "--dry-run", "--out", str(tmp_path / "b"),
                           "--set", "pretrained=false"]) == 0
    assert ablations_main(["--tables", "nope", "--dry-run"]) == 2


def test_report_opens_with_the_headline_table_and_its_differences(tmp_path):
    data = tmp_path / "data"
    (data / "results").mkdir(parents=True)
    nan = None  # JSON null: a missing spread
    head = {"point": "m", "object_scale": [0.29, 0.39],
            "table": [{"model": "ViT", "top1_mean": 60.0, "top1_std": 1.5, "n": 5, "x_chance": 7.2},
                      {"model": "GLSim", "top1_mean": 63.0, "top1_std": nan, "n": 1, "x_chance": 7.56}],
            "reading": ["ViT: 60.0 ± 1.5 % over 5 seed(s)",
                        "GLSim - ViT: +3.0 points (SE 1.0, n = 5, 5): a direction"]}
    (data / "results" / "headline_cpu.json").write_text(json.dumps(head))
    (data / "results" / "headline_cpu.manifest.json").write_text(json.dumps(
        {"command": "python -m glsim_core scale-map collect", "written": "2026-01-02", "machine": "m",
         "total_train_seconds": 7200}))
    (data / "results" / "scale_map_cpu.json").write_text(json.dumps({"choice_reason": "m is clearest"}))
    text = build_report(runs=tmp_path / "none", build=tmp_path / "none", data=data)
    section = text.split("## The headline")[1].split("## Ablations")[0]
    assert "point `m` (object_scale [0.29, 0.39])" in section and "Why this point: m is clearest." in section
    assert "Produced by `python -m glsim_core scale-map collect` (2026-01-02; m, 2.0 h of training)" in section
    assert "| ViT | - | 60.00 ± 1.50 (n=5), 7.2× chance | cpu |" in section
    assert "| GLSim | - | 63.00 (n=1), 7.6× chance | cpu |" in section
    # the differences are listed, the per-model lines (already in the table) are not
    assert "- GLSim - ViT: +3.0 points (SE 1.0, n = 5, 5): a direction" in section and "over 5 seed" not in section
    assert "No headline table found" in build_report(runs=tmp_path / "none", build=tmp_path / "none",
                                                     data=tmp_path / "none")


def test_write_results_manifest_records_counts_time_and_the_csv_hash(tmp_path):
    import hashlib

    from glsim_core.experiments.ablations import write_results

    df = _fake_ablation_csv(tmp_path / "fake.csv").assign(run_dir=lambda d: [f"r{i}" for i in range(len(d))])
    path = write_results(df, tmp_path / "out" / "abl.csv", command="python -m glsim_core ablations",
                         settings={"epochs": 2}, profile="cpu", seeds=(1, 10, 100), note="test")
    manifest = json.loads(path.read_text())
    csv = tmp_path / "out" / "abl.csv"
    assert path == csv.with_suffix(".manifest.json")
    assert (manifest["runs"], manifest["ok"], manifest["failed"]) == (6, 5, 1)
    assert manifest["total_train_seconds"] == pytest.approx(10.0 * 3 + 12.0 + 3.0)  # the failed run not counted
    assert manifest["files"] == {"abl.csv": hashlib.sha256(csv.read_bytes()).hexdigest()}
    assert manifest["seeds"] == [1, 10, 100] and manifest["note"] == "test"
