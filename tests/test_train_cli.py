"""The command line of the engine: train / eval / bench / data / compare, and clear one-line errors."""

from __future__ import annotations

import json

import pytest

from glsim_core.cli import main
from glsim_core.data.synthetic import BenchmarkSpec, generate_benchmark

TINY = '{"depth": 1, "embed_dim": 32, "num_heads": 2}'


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    spec = BenchmarkSpec(num_classes=3, train_size=30, test_size=12, seed=2)
    return generate_benchmark(spec, tmp_path_factory.mktemp("cli") / "b", workers=1, progress=False)


def _train_args(bench, out, *extra):
    return ["train", "--model", "vit_nano_patch8_64", "--dataset", str(bench), "--out", str(out), "--epochs", "1",
            "--img-size", "32", "--batch-size", "16", "--model-kwargs", TINY, "--no-progress", "--no-pretrained",
            *extra]


def test_train_then_eval_then_bench(bench, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_train_args(bench, out)) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "checkpoint.pt").is_file() and len(m["history"]) == 1 and m["n_eval"] == 12
    assert main(["eval", "--checkpoint", str(out), "--out", str(tmp_path / "ev"), "--maps", "attention"]) == 0
    ev = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert ev["top1"] == pytest.approx(m["top1"])  # same model, same split, same transform
    assert 0 <= ev["localization"]["attention"]["maxboxacc_v2"] <= 100
    assert main(["bench", "--model", "vit_nano_patch8_64", "--img-size", "32", "--batch-sizes", "1,2",
                 "--model-kwargs", TINY, "--out", str(tmp_path / "b")]) == 0
    b = json.loads((tmp_path / "b" / "bench.json").read_text())
    assert [r["batch_size"] for r in b["rows"]] == [1, 2] and b["best"]["img_per_s"] > 0
    assert "best: batch" in capsys.readouterr().out


def test_resume_flag_continues(bench, tmp_path):
    out = tmp_path / "r"
    assert main(_train_args(bench, out)) == 0
    assert main(_train_args(bench, out, "--resume", "--epochs", "2")) == 0
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "error: lr must be > 0"),
    (["--dataset", "some-org/nowhere"], "offline"),
    (["--model", "no_such_model"], "error: unknown model 'no_such_model'"),
])
def test_invalid_options_are_one_line_errors(bench, tmp_path, capsys, args, message):
    assert main(_train_args(bench, tmp_path / "x", *args)) == 2
    err = capsys.readouterr().err
    assert message in err.lower() if message == "offline" else message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_pretrained_weights_that_do_not_fit_are_a_clear_error(bench, tmp_path, capsys):
    args = [a for a in _train_args(bench, tmp_path / "r") if a != "--no-pretrained"]
    assert main(args) == 2
    assert "do not fit this architecture" in capsys.readouterr().err


def test_unknown_flag_and_bad_choice_exit_2(bench, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(_train_args(bench, tmp_path / "y", "--epoch", "3"))
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        main(_train_args(bench, tmp_path / "y", "--augreg", "extreme"))


def test_data_commands(tmp_path, capsys):
    out = tmp_path / "bm"
    assert main(["data", "benchmark", "--num-classes", "2", "--train-size", "4", "--test-size", "2", "--out",
                 str(out), "--workers", "1"]) == 0
    assert (out / "glsim_dataset.json").is_file()
    assert main(["data", "info", str(out)]) == 0
    assert "2 classes" in capsys.readouterr().out
    assert main(["data", "benchmark", "--num-classes", "99", "--out", str(out)]) == 2


def test_compare_command_writes_a_table(bench, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--models", "vit_nano_patch8_64:name=a,depth=1,embed_dim=32,num_heads=2",
                 "vit_nano_patch8_64:name=b,depth=1,embed_dim=32,num_heads=2,lr=0.001", "--seeds", "1",
                 "--dataset", str(bench), "--img-size", "32", "--epochs", "1", "--batch-size", "16",
                 "--no-progress", "--no-pretrained", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "±" in text and (out / "comparison.csv").is_file()
