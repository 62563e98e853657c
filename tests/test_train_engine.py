"""glsim_core.train: the config, the recipe's schedule, fit (files, resume equality, NaN), DDP, the protocol."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark
from glsim_core.profiles import get_profile
from glsim_core.train import NonFiniteLossError, TrainConfig, fit, load_trained_model, lr_at
from glsim_core.train.config import add_config_arguments, config_from_args
from glsim_core.train.engine import load_checkpoint

TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    spec = BenchmarkSpec(num_classes=3, train_size=48, test_size=24, seed=5)
    return generate_benchmark(spec, tmp_path_factory.mktemp("bench") / "b", workers=1, progress=False)


def tiny(bench, out=None, **kw) -> TrainConfig:
    base = dict(model="vit_nano_patch8_64", dataset=str(bench), img_size=32, epochs=2, batch_size=16, lr=0.01,
                model_kwargs=dict(TINY), progress=False, out_dir=str(out) if out else None, augreg="medium",
                pretrained=False, optimizer="sgd", weight_decay=0.0)
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------------ schedule, config
def test_lr_schedule_warms_up_linearly_then_cosine_to_min_lr():
    total, warm = 100, 10
    lrs = [lr_at(s, total, 0.01, warm, 1e-6, 1e-5) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(1e-6) and lrs[5] == pytest.approx(1e-6 + (0.01 - 1e-6) * 0.5)
    assert lrs[warm] == pytest.approx(0.01) and lrs[total] == pytest.approx(1e-5)
    mid = warm + (total - warm) // 2
    assert lrs[mid] == pytest.approx(1e-5 + 0.5 * (0.01 - 1e-5))
    assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:]))  # monotone decay after warm-up


def test_warmup_is_500_steps_capped_at_a_tenth_of_the_run():
    cfg = TrainConfig()
    assert cfg.warmup_steps == 500 and cfg.effective_warmup(37_500) == 500 and cfg.effective_warmup(300) == 30


def test_config_recipe_defaults_and_augreg_settings():
    cfg = TrainConfig()
    assert cfg == TrainConfig.from_profile("cpu")  # the class defaults are the cpu profile's run
    assert (cfg.model, cfg.lr, cfg.optimizer, cfg.weight_decay) == (
        get_profile("cpu").model, get_profile("cpu").lr, get_profile("cpu").optimizer, get_profile("cpu").weight_decay)
    assert (cfg.momentum, cfg.nesterov, cfg.grad_clip) == (0.9, True, 1.0)
    assert (cfg.warmup_lr, cfg.min_lr) == (1e-6, 1e-5)
    assert TrainConfig(augreg="minimal").effective_label_smoothing == 0.0
    assert TrainConfig(augreg="weak").effective_label_smoothing == 0.1
    assert TrainConfig(augreg="medium").effective_drop_path_rate == 0.1
    assert TrainConfig(augreg="medium", drop_path_rate=0.0).effective_drop_path_rate == 0.0


def test_config_from_profile_overrides_and_errors():
    cpu = TrainConfig.from_profile("cpu", epochs=3)
    assert cpu.model == get_profile("cpu").model and cpu.img_size == 64 and cpu.epochs == 3
    assert cpu.dataset.endswith("finegrained_benchmark")
    gpu = TrainConfig.from_profile("gpu")
    assert gpu.img_size == 224 and gpu.batch_size == 8 and gpu.augreg == "strong" and gpu.pretrained
    # the papers' SGD recipe on GPU; AdamW for the tiny cpu-profile fine-tunes (see glsim_core/profiles.py)
    assert (gpu.optimizer, gpu.weight_decay, gpu.nesterov) == ("sgd", 0.0, True)
    assert (cpu.optimizer, cpu.weight_decay) == ("adamw", 0.05)
    with pytest.raises(ValueError, match="unknown training option.*'epoch'"):
        TrainConfig.from_profile("cpu", epoch=3)
    for bad, match in [({"lr": 0}, "lr must be > 0"), ({"augreg": "huge"}, "augreg level"),
                       ({"eval_split": "dev"}, "eval_split"), ({"batch_size": 0}, "batch_size"),
                       ({"optimizer": "sgd", "momentum": 0.0}, "nesterov needs momentum")]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
    assert TrainConfig.from_dict(json.loads(cpu.to_json())) == cpu


def test_cli_flags_map_onto_the_dataclass():
    import argparse

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--epochs", "3", "--lr", "0.003", "--no-amp", "--augreg", "strong",
                              "--grad-clip", "none", "--model-kwargs", '{"depth": 2}', "--profile", "cpu"])
    cfg = config_from_args(args)
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.augreg, cfg.grad_clip) == (3, 0.003, False, "strong", None)
    assert cfg.model_kwargs == {"depth": 2} and cfg.batch_size == get_profile("cpu").batch_size  # untouched
    with pytest.raises(SystemExit):
        parser.parse_args(["--augreg", "wild"])


# ------------------------------------------------------------------------------------------------ fit
def test_fit_writes_history_metrics_and_checkpoint(bench, tmp_path):
    res = fit(tiny(bench, tmp_path / "run"))
    out = tmp_path / "run"
    for name in ("metrics.json", "history.json", "history.csv", "checkpoint.pt", "config.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    cm = torch.tensor(m["confusion_matrix"])
    assert cm.sum() == 24 == m["n_eval"] and m["top1"] == pytest.approx(100 * cm.trace().item() / 24)
    assert len(m["history"]) == 2 and {"train_loss", "train_top1", "lr", "img_per_s", "test_top1"} <= set(
        m["history"][0])
    assert res.top1 == m["top1"] and len(m["per_class_accuracy"]) == 3
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 2 and ckpt["num_classes"] == 3
    model, cfg, _ = load_trained_model(out)
    assert cfg.model_kwargs == TINY and model.head.out_features == 3


class _Stop(Exception):
    pass


def _comparable(history):
    return [{k: v for k, v in row.items() if k not in ("img_per_s", "epoch_seconds")} for row in history]


def test_resume_ends_with_the_same_metrics_as_an_uninterrupted_run(bench, tmp_path):
    full = fit(tiny(bench, tmp_path / "full", epochs=3))

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        fit(tiny(bench, tmp_path / "cut", epochs=3), callbacks=[stop_after_first])
    assert load_checkpoint(tmp_path / "cut")["epoch"] == 1
    resumed = fit(tiny(bench, tmp_path / "cut", epochs=3, resume=True))
    assert _comparable(resumed.history) == _comparable(full.history)
    assert resumed.metrics["confusion_matrix"] == full.metrics["confusion_matrix"]
    assert resumed.metrics["eval_loss"] == full.metrics["eval_loss"]
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k


class _NaNAfter(torch.nn.Module):
    """Wraps a model; returns NaN logits once ``armed`` is set."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.armed = inner, False

    def forward(self, x):
        y = self.inner(x)
        return y * float("nan") if self.armed else y


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(bench, tmp_path):
    from glsim_core.models import create_model

    inner = create_model("vit_nano_patch8_64", num_classes=3, img_size=32, **TINY)
    model = _NaNAfter(inner)

    def arm(row):
        model.armed = True

    cfg = tiny(bench, tmp_path / "nan", epochs=3)
    with pytest.raises(NonFiniteLossError, match="non-finite loss.*epoch 2.*last good checkpoint"):
        fit(cfg, model=model, callbacks=[arm])
    ckpt = load_checkpoint(tmp_path / "nan")
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["model"].values()
                                      if v.is_floating_point())


def test_engine_is_model_agnostic_resnet(bench, tmp_path):
    res = fit(tiny(bench, None, model="resnet_nano_64", model_kwargs={}, epochs=1))
    assert 0 <= res.top1 <= 100 and res.model.fc.out_features == 3


def test_distributed_data_parallel_on_two_cpu_processes(bench, tmp_path):
    """torchrun, 2 processes, gloo: rank 0 writes, eval sums the shards, the replicas stay identical."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "glsim_core", "train", "--model", "vit_nano_patch8_64", "--dataset", str(bench), "--out", str(out),
           "--img-size", "32", "--epochs", "1", "--batch-size", "8", "--no-progress", "--no-pretrained",
           "--model-kwargs", json.dumps(TINY)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["n_eval"] == 24 and m["train_size"] == 48
    assert proc.stdout.count("top-1 (test)") == 2  # both ranks finish; only rank 0 wrote the files
    ckpt = load_checkpoint(out)
    assert ckpt["epoch"] == 1 and not any(k.startswith("module.") for k in ckpt["model"])


# ------------------------------------------------------------------------------------------------ protocol
def test_protocol_lr_search_seeds_and_comparison(bench, tmp_path, monkeypatch):
    from glsim_core.train import protocol

    base = tiny(bench, None, epochs=1)
    search = protocol.lr_search(base, lrs=(0.03, 0.001), out_root=tmp_path / "s")
    assert search["best_lr"] in (0.03, 0.001)
    assert search["best_val_top1"] == max(r["val_top1"] for r in search["rows"])
    assert (tmp_path / "s" / "vit_nano_patch8_64" / "lr_0.03" / "metrics.json").is_file()
    cfg_written = json.loads((tmp_path / "s" / "vit_nano_patch8_64" / "lr_0.03" / "config.json").read_text())
    assert cfg_written["eval_split"] == "val" and cfg_written["train_split"] == "train"  # never the test split

    table = protocol.compare(["vit_nano_patch8_64:name=a", "vit_nano_patch8_64:name=b,lr=0.003"], base,
                             seeds=(1, 2), out_root=tmp_path / "c")
    assert list(table["label"]) == ["a", "b"] and table.loc[0, "rel_error"] == 0.0
    a = [table.loc[0, "seed_1"], table.loc[0, "seed_2"]]
    assert table.loc[0, "top1_mean"] == pytest.approx(sum(a) / 2)
    assert table.loc[0, "top1_std"] == pytest.approx(abs(a[0] - a[1]) / math.sqrt(2))
    assert table.loc[1, "lr"] == 0.003 and (tmp_path / "c" / "comparison.csv").is_file()

    def no_training(*_a, **_k):
        raise AssertionError("finished runs must be read back, not retrained")

    monkeypatch.setattr(protocol, "fit", no_training)
    again = protocol.compare(["vit_nano_patch8_64:name=a", "vit_nano_patch8_64:name=b,lr=0.003"], base,
                             seeds=(1, 2), out_root=tmp_path / "c")
    assert again["top1_mean"].tolist() == table["top1_mean"].tolist()


def test_model_spec_parsing():
    from glsim_core.train.protocol import parse_model_spec

    assert parse_model_spec("glsim_vit_nano_patch8_64:selector=random,top_o=8,name=rnd,lr=0.003") == {
        "model": "glsim_vit_nano_patch8_64", "name": "rnd", "lr": 0.003,
        "model_kwargs": {"selector": "random", "top_o": 8}}
    with pytest.raises(ValueError, match="key=value"):
        parse_model_spec("vit:oops")


def test_localization_scores_of_attention(bench, tmp_path):
    from glsim_core.analysis.probes import localization_scores
    from glsim_core.data import load_image_dataset
    from glsim_core.models import create_model

    data = load_image_dataset(bench, img_size=32)
    model = create_model("vit_nano_patch8_64", num_classes=3, img_size=32, **TINY)
    loc = localization_scores(model, data, "test", ["attention"], top_o=4)["attention"]
    assert 0 <= loc["maxboxacc_v2"] <= 100 and 0 < loc["chance"] < 1 and loc["n"] == 24
    assert {"top1", "top4", "bottom1", "bottom4"} <= set(loc)


def test_to_cli_round_trips_through_the_parser(tmp_path):
    import argparse
    import shlex

    cfg = TrainConfig.from_profile("cpu", epochs=3, lr=0.003, amp=False, model_kwargs={"depth": 2},
                                   grad_clip=None, out_dir=str(tmp_path / "o"))
    line = cfg.to_cli(profile="cpu")
    assert line.startswith("python -m glsim_core train --profile cpu --out ")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", dest="out_dir")
    add_config_arguments(parser, skip={"out_dir"})
    args = parser.parse_args(shlex.split(line)[4:])
    assert config_from_args(args) == cfg


def test_training_throughput_engine_vs_bare_loop(bench):
    from glsim_core.train.speed import training_throughput

    res = training_throughput(tiny(bench), batches=2, repeats=1)
    assert res["engine_median"] > 0 and res["bare_median"] > 0 and res["ratio"] == pytest.approx(
        res["engine_median"] / res["bare_median"])


def test_build_model_applies_the_drop_path_schedule_to_plain_vits():
    from glsim_core.train.engine import build_model

    def rates(model):
        return [getattr(b.drop_path1, "drop_prob", 0.0) for b in model.blocks]

    cfg = TrainConfig(model="vit_nano_patch8_64", augreg="medium")  # medium: stochastic depth 0.1
    assert cfg.drop_path_schedule == "uniform"
    assert rates(build_model(cfg, 3)) == pytest.approx([0.1] * 4)  # GLSim: the same rate in every block
    linear = build_model(cfg.replace(drop_path_schedule="linear"), 3)
    assert rates(linear) == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])  # timm's rule
    with pytest.raises(ValueError, match="drop_path_schedule must be one of"):
        cfg.replace(drop_path_schedule="cosine")


def test_glsim_options_resolve_from_the_config():
    from glsim_core.train.engine import model_kwargs_for

    cfg = TrainConfig.from_profile("gpu", model="glsim_vit_base_patch16_224", dataset="cub200")
    kw = model_kwargs_for(cfg, 200)
    assert (kw["img_size"], kw["top_o"], kw["drop_path_schedule"], kw["drop_path_rate"]) == (224, 8, "uniform", 0.1)
    assert model_kwargs_for(cfg.replace(img_size=448), 200)["top_o"] == 16
    assert model_kwargs_for(cfg.replace(img_size=448, dataset="dogs"), 120)["top_o"] == 32
    assert model_kwargs_for(cfg.replace(img_size=448, model_kwargs={"top_o": 4}), 200)["top_o"] == 4
