"""Bad input, faults and untrusted files: no code runs from a file, no silent wrong result, no raw traceback.

Each case asserts the message and the exit code (CLI, in-process) or the warning and its count. The malicious
files would create a marker file if they were unpickled with ``weights_only=False``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_data import class_images, make_disk_dataset, png_bytes

from glsim_core.cli import main
from glsim_core.safety import CheckpointError

ROOT = Path(__file__).resolve().parents[1]
TINY = '{"depth": 1, "embed_dim": 32, "num_heads": 2}'


class Evil:
    """Unpickling this creates (opens for writing) the file ``path``: code execution from a checkpoint."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def write_evil(path: Path, marker: Path, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Evil(marker), "state_dict": Evil(marker), **extra}, path)
    return path


# ----------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_disk_dataset(tmp_path_factory.mktemp("ds") / "ds", {"train": 12, "test": 6}, num_classes=3)


def train_args(dataset, out, *extra):
    return ["train", "--model", "vit_nano_patch8_64", "--dataset", str(dataset), "--out", str(out), "--epochs",
            "1", "--img-size", "32", "--batch-size", "8", "--model-kwargs", TINY, "--no-progress", "--no-pretrained",
            "--num-workers", "0", *extra]


@pytest.fixture(scope="module")
def run(ds, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(train_args(ds, out)) == 0
    return out


def cli_error(capsys, argv, code: int = 2) -> str:
    """Run the CLI; assert the exit code and a one-line error without a traceback; return that line."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def copy_shipped(tmp_path: Path, monkeypatch, *dirs: str) -> Path:
    data = tmp_path / "data"
    for d in dirs:
        shutil.copytree(ROOT / "data" / d, data / d)
    monkeypatch.setenv("GLSIM_DATA", str(data))
    monkeypatch.setenv("GLSIM_CACHE", str(tmp_path / "cache"))
    return data


def set_manifest_sha(manifest: Path, section: str, key: str, path: Path) -> None:
    from glsim_core.weights.shipped import sha256

    m = json.loads(manifest.read_text())
    m[section][key]["sha256"] = sha256(path)
    manifest.write_text(json.dumps(m))


# ----------------------------------------------------------------------------------------------------- security
def test_eval_of_a_malicious_checkpoint_runs_no_code(tmp_path, capsys):
    marker = tmp_path / "PWNED"
    evil = write_evil(tmp_path / "evil" / "checkpoint.pt", marker, config={}, num_classes=3)
    line = cli_error(capsys, ["eval", "--checkpoint", str(evil)])
    assert "Python objects other than tensors" in line and "not loaded" in line and str(evil) in line
    assert not marker.exists()


def test_resume_from_a_malicious_checkpoint_runs_no_code(ds, tmp_path, capsys):
    marker = tmp_path / "PWNED"
    out = tmp_path / "r"
    write_evil(out / "checkpoint.pt", marker)
    line = cli_error(capsys, train_args(ds, out, "--resume"))
    assert "not loaded" in line and not marker.exists()
    assert not (out / "config.json").exists()  # nothing written


def test_finetuned_cache_with_a_malicious_file_runs_no_code(ds, tmp_path, monkeypatch):
    from glsim_core.train import finetuned as ft

    monkeypatch.setenv("GLSIM_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("GLSIM_CACHE", raising=False)
    kw = dict(dataset=str(ds), img_size=32, epochs=1, batch_size=8, pretrained=False, progress=False,
              model_kwargs=json.loads(TINY))
    marker = tmp_path / "PWNED"
    write_evil(ft._cache_path("vit", ft.finetuned_config("vit", **kw)), marker)
    with pytest.raises(CheckpointError, match="fine-tuned checkpoint .* not loaded"):
        ft.load_finetuned("vit", train_if_missing=False, **kw)
    assert not marker.exists()


def test_shipped_files_replaced_together_with_their_manifest_run_no_code(tmp_path, monkeypatch):
    """An attacker who rewrites a shipped file and its manifest's sha256 still gets no code run."""
    from glsim_core.models import create_model
    from glsim_core.train import finetuned as ft

    data = copy_shipped(tmp_path, monkeypatch, "pretrained", "finetuned")
    marker = tmp_path / "PWNED"
    weights = write_evil(data / "pretrained" / "vit_nano_patch8_64.corpus.pth", marker)
    set_manifest_sha(data / "pretrained" / "manifest.json", "backbones", "vit_nano_patch8_64", weights)
    with pytest.raises(CheckpointError, match="pretrained weights file .*vit_nano_patch8_64.corpus.pth.* not loaded"):
        create_model("vit_nano_patch8_64", pretrained=True, num_classes=3)
    shipped_ft = write_evil(data / "finetuned" / "vit.pth", marker, config={}, num_classes=3)
    set_manifest_sha(data / "finetuned" / "manifest.json", "models", "vit", shipped_ft)
    with pytest.raises(CheckpointError, match="fine-tuned checkpoint .*vit.pth.* not loaded"):
        ft.load_finetuned("vit", train_if_missing=False, pretrained=False)
    assert not marker.exists()


def test_a_changed_shipped_backbone_fails_its_sha256_check(ds, tmp_path, monkeypatch, capsys):
    from glsim_core.weights.shipped import read_manifest, sha256

    data = copy_shipped(tmp_path, monkeypatch, "pretrained")
    path = data / "pretrained" / "vit_nano_patch8_64.corpus.pth"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 64] = bytes(64)  # zero some weights: still a loadable file
    path.write_bytes(bytes(raw))
    expected = read_manifest()["backbones"]["vit_nano_patch8_64"]["sha256"]
    line = cli_error(capsys, [a for a in train_args(ds, tmp_path / "o") if a != "--no-pretrained"] + ["--pretrained"])
    assert str(path) in line and expected in line and sha256(path) in line
    assert "git checkout" in line and "python -m glsim_core pretrain" in line


def test_a_changed_shipped_finetuned_checkpoint_names_both_hashes(tmp_path, monkeypatch):
    from glsim_core.train import finetuned as ft
    from glsim_core.weights.shipped import sha256

    data = copy_shipped(tmp_path, monkeypatch, "pretrained", "finetuned")
    path = data / "finetuned" / "vit.pth"
    with open(path, "ab") as fh:
        fh.write(b"\0")
    expected = ft.read_finetuned_manifest()["models"]["vit"]["sha256"]
    with pytest.raises(FileNotFoundError) as exc:
        ft.load_finetuned("vit", train_if_missing=False)
    text = str(exc.value)
    assert expected in text and sha256(path) in text and "finetune --names vit" in text


@pytest.mark.parametrize("kind", ["empty", "truncated", "random"])
def test_a_corrupt_checkpoint_is_one_line(run, tmp_path, capsys, kind):
    raw = (run / "checkpoint.pt").read_bytes()
    data = {"empty": b"", "truncated": raw[: len(raw) // 2], "random": np.random.default_rng(0).bytes(4096)}[kind]
    bad = tmp_path / "bad" / "checkpoint.pt"
    bad.parent.mkdir()
    bad.write_bytes(data)
    line = cli_error(capsys, ["eval", "--checkpoint", str(bad)])
    assert f"checkpoint {bad} is corrupt or incomplete" in line and "delete it or retrain" in line


def test_resume_from_a_truncated_checkpoint_is_one_line(ds, run, tmp_path, capsys):
    out = tmp_path / "r"
    out.mkdir()
    raw = (run / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(raw[: len(raw) // 3])
    line = cli_error(capsys, train_args(ds, out, "--resume"))
    assert "is corrupt or incomplete" in line


def test_an_unloadable_pretrained_weights_file_is_one_line(tmp_path):
    from glsim_core.models import create_model

    bad = tmp_path / "w.pth"
    bad.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(CheckpointError, match=f"pretrained weights file {bad} is corrupt or incomplete"):
        create_model("vit_nano_patch8_64", pretrained=True, pretrained_cfg_overlay={"file": str(bad)})


def test_checkpoints_written_by_fit_load_with_weights_only(ds, tmp_path):
    from glsim_core.train import TrainConfig, fit

    cfg = TrainConfig(model="vit_nano_patch8_64", dataset=str(ds), img_size=32, epochs=1, batch_size=8,
                      model_kwargs=json.loads(TINY), progress=False, out_dir=str(tmp_path / "a"), optimizer="adamw",
                      pretrained=False)
    fit(cfg)
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


# ----------------------------------------------------------------------------------------------------- resume
def test_resume_with_other_settings_is_refused_before_writing(ds, run, tmp_path, capsys):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    line = cli_error(capsys, train_args(ds, out, "--resume", "--lr", "0.5", "--seed", "3", "--epochs", "2"))
    differs, allowed = line.split("Only ")
    assert "lr: 0.001 -> 0.5" in differs and "seed: 1 -> 3" in differs and "epochs" not in differs
    assert allowed.startswith("epochs, ") and "may change on resume" in allowed
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_with_more_epochs_is_allowed(ds, run, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(run, out)
    assert main(train_args(ds, out, "--resume", "--epochs", "2")) == 0
    assert len(json.loads((out / "metrics.json").read_text())["history"]) == 2


# ----------------------------------------------------------------------------------------------------- NaN policy
class _Diverges(torch.nn.Module):
    """A tiny classifier that diverges at the end of its first epoch: NaN eval logits (``mode="eval"``) or a
    weight of +inf (``mode="weights"``)."""

    def __init__(self, mode: str, num_classes: int = 3):
        super().__init__()
        self.mode = mode
        self.lin = torch.nn.Linear(3, num_classes)
        self.register_buffer("poison", torch.zeros(()))

    def forward(self, x):
        logits = self.lin(x.mean(dim=(2, 3)))
        if self.mode == "weights" and self.training:
            self.poison.fill_(float("inf"))
        if self.mode == "eval" and not self.training:
            logits = logits * float("nan")
        return logits


@pytest.mark.parametrize("mode, message", [("eval", "non-finite loss (train loss"), ("weights", "non-finite weights")])
def test_a_run_that_diverges_at_an_epoch_boundary_saves_no_checkpoint(ds, tmp_path, mode, message):
    from glsim_core.train import NonFiniteLossError, TrainConfig, fit

    cfg = TrainConfig(model="vit_nano_patch8_64", dataset=str(ds), img_size=32, epochs=2, batch_size=8,
                      progress=False, out_dir=str(tmp_path / "n"))
    with pytest.raises(NonFiniteLossError, match=r"after epoch 1: the run diverged and this epoch was not saved"):
        fit(cfg, model=_Diverges(mode))
    with pytest.raises(NonFiniteLossError, match=message.replace("(", r"\(")):
        fit(cfg, model=_Diverges(mode))
    assert not (tmp_path / "n" / "checkpoint.pt").exists()


def test_a_non_finite_loss_in_the_cli_is_one_line_exit_2(ds, tmp_path, capsys, monkeypatch):
    from glsim_core.train import engine

    monkeypatch.setattr(engine, "build_model", lambda config, k: _Diverges("eval", k))
    line = cli_error(capsys, train_args(ds, tmp_path / "n"))
    assert "non-finite loss" in line and "Lower --lr" in line


def test_eval_of_non_finite_weights_fails(run, tmp_path, capsys):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["model"]["head.weight"].fill_(float("nan"))
    bad = tmp_path / "nan.pt"
    torch.save(ckpt, bad)
    line = cli_error(capsys, ["eval", "--checkpoint", str(bad)])
    assert "is nan" in line and "retrain" in line


# ----------------------------------------------------------------------------------------------------- outputs
@pytest.mark.parametrize("command", ["train", "eval"])
@pytest.mark.parametrize("where, message", [("file", "is a file, not a directory"), ("under", "which is a file")])
def test_out_that_is_a_file_or_under_one(ds, run, tmp_path, capsys, command, where, message):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "sub"
    argv = train_args(ds, out) if command == "train" else ["eval", "--checkpoint", str(run), "--out", str(out)]
    assert message in cli_error(capsys, argv)


@pytest.mark.parametrize("argv", [["bench", "--model", "vit_nano_patch8_64"], ["compare", "--models", "a", "b"],
                                  ["calibrate"], ["sweep", "train", "--grid", "lr=0.1"], ["finetune"], ["run"]])
def test_every_out_flag_is_checked_first(tmp_path, capsys, argv):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    assert "is a file, not a directory" in cli_error(capsys, [*argv, "--out", str(blocker)])


def _read_only_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        d = tmp_path / "ro"
        d.mkdir()
        d.chmod(0o555)
        return d / "out"
    probe = Path("/sys/glsim_probe")  # root writes through file modes: use a read-only mount
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys/glsim_out")
    probe.rmdir()
    pytest.skip("no read-only directory available (root, and /sys is writable)")


def test_a_read_only_out_fails_before_any_work(tmp_path, capsys):
    out = _read_only_dir(tmp_path)
    try:  # the checkpoint does not exist: the --out check must come first
        line = cli_error(capsys, ["eval", "--checkpoint", str(tmp_path / "none"), "--out", str(out)])
    finally:
        if out.parent != Path("/sys"):
            out.parent.chmod(0o755)
    assert f"cannot write to --out {out}" in line


# ----------------------------------------------------------------------------------------------------- labels, data
def _relabel(path: Path, names: list[str]) -> None:
    """Give the saved dataset's ClassLabel other names (as a file edited by hand would)."""
    for info in path.rglob("dataset_info.json"):
        meta = json.loads(info.read_text())
        meta["features"]["label"]["names"] = names
        info.write_text(json.dumps(meta))


def _int_label_dataset(path: Path, labels: dict[str, list[int]]) -> Path:
    import datasets

    parts = {}
    for split, labs in labels.items():
        imgs = [{"bytes": png_bytes(im), "path": None} for im, _ in class_images(len(labs), 1)[: len(labs)]]
        parts[split] = datasets.Dataset.from_dict(
            {"image": imgs, "label": labs},
            features=datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")}))
    datasets.DatasetDict(parts).save_to_disk(str(path))
    return path


def test_classlabel_values_beyond_its_names(tmp_path, capsys):
    path = make_disk_dataset(tmp_path / "d", {"train": 12, "test": 6}, num_classes=4)
    _relabel(path, ["a", "b"])
    line = cli_error(capsys, ["data", "info", str(path)])
    assert "label values beyond its ClassLabel's 2 names" in line and "[2, 3]" in line


def test_integer_labels_with_gaps_are_re_encoded_with_a_counted_warning(tmp_path, capsys):
    from glsim_core.data.hf import load_image_dataset

    path = _int_label_dataset(tmp_path / "d", {"train": [0, 5, 999, 0, 5, 999], "test": [5, 999]})
    with pytest.warns(UserWarning, match=r"3 distinct values in 0..999 \(997 unused\)"):
        data = load_image_dataset(path, img_size=32)
    assert data.class_names == ["0", "5", "999"] and data.num_classes == 3
    assert sorted(set(data.test.labels.tolist())) == [1, 2]
    capsys.readouterr()
    assert main(["data", "info", str(path)]) == 0
    captured = capsys.readouterr()
    warned = [ln for ln in captured.err.splitlines() if "warning" in ln.lower()]
    assert "3 classes" in captured.out and len(warned) == 1 and "Traceback" not in captured.err
    assert warned[0].startswith("warning: the integer labels") and "997 unused" in warned[0]


def test_classes_only_in_the_test_split(tmp_path, capsys):
    path = _int_label_dataset(tmp_path / "d", {"train": [0, 1, 0, 1], "test": [0, 1, 2]})
    line = cli_error(capsys, ["data", "info", str(path)])
    assert "1 class(es) of split 'test'" in line and "never occur in 'train'" in line and "['2']" in line


def test_eval_on_a_dataset_with_other_classes_is_refused(run, tmp_path, capsys):
    other = make_disk_dataset(tmp_path / "o", {"train": 12, "test": 6}, num_classes=3, names=["x", "y", "z"])
    line = cli_error(capsys, ["eval", "--checkpoint", str(run), "--dataset", str(other)])
    assert "other classes than checkpoint" in line and "['x', 'y', 'z']" in line


def _box_dataset(path: Path, boxes: list[list[float]]) -> Path:
    import datasets

    imgs = [{"bytes": png_bytes(im), "path": None} for im, _ in class_images(len(boxes), 1)[: len(boxes)]]
    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a"]),
                               "bbox": datasets.List(datasets.Value("float32"), length=4)})
    split = {"image": imgs, "label": [0] * len(boxes), "bbox": boxes}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(split, features=feats),
                          "test": datasets.Dataset.from_dict(split, features=feats)}).save_to_disk(str(path))
    return path


BAD_BOXES = [[math.nan, 2, 10, 10], [-8, -8, 10, 10], [12, 12, 4, 4], [30, 30, 60, 60]]  # images are 24 x 24


def test_invalid_boxes_are_dropped_counted_and_reported(tmp_path):
    from glsim_core.analysis.localisation import MaxBoxAccV2
    from glsim_core.data.hf import collate_images, load_image_dataset

    path = _box_dataset(tmp_path / "b", [[4, 4, 20, 20], [6, 6, 18, 18], *BAD_BOXES])
    data = load_image_dataset(path, img_size=32)
    batch = collate_images(data.test.__getitems__(list(range(6))))
    assert batch["dropped_boxes"] == 4 and [len(b) for b in batch["boxes"]] == [1, 1, 0, 0, 0, 0]
    maps = torch.rand(3, 4, 4)
    good = MaxBoxAccV2()
    good.update(maps[:1], [np.array([[4.0, 4, 20, 20]])], (24, 24))
    mixed = MaxBoxAccV2()
    with pytest.warns(UserWarning, match=r"2 invalid ground-truth box\(es\) dropped.*1 image\(s\) left without"):
        mixed.update(maps, [np.array([[4.0, 4, 20, 20], [math.nan, 0, 1, 1]]), np.array([[12.0, 12, 4, 4]]),
                            np.array([[0.0, 0, 24.5, 24]])], (24, 24))  # 0.5 px over: kept, clipped
        res = mixed.compute()
    assert res["dropped_boxes"] == 2 and res["images_without_box"] == 1 and res["n"] == 2


def test_eval_maps_warns_about_dropped_boxes(tmp_path, capsys):
    path = _box_dataset(tmp_path / "b", [[4, 4, 20, 20], [6, 6, 18, 18], *BAD_BOXES])
    out = tmp_path / "run"
    assert main(train_args(path, out)) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--maps", "attention", "--out", str(tmp_path / "ev")]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warned) == 1 and "4 invalid box(es) dropped" in warned[0] and "4 image(s) left without" in warned[0]
    loc = json.loads((tmp_path / "ev" / "eval.json").read_text())["localization"]["attention"]
    assert loc["n"] == 2 and loc["dropped_boxes"] == 4


def test_missing_label_column_hint_names_no_missing_flag(tmp_path, capsys):
    import datasets

    imgs = [{"bytes": png_bytes(im), "path": None} for im, _ in class_images(2, 2)]
    datasets.Dataset.from_dict({"image": imgs, "kind": [0, 1, 0, 1]},
                               features=datasets.Features({"image": datasets.Image(),
                                                           "kind": datasets.Value("int64")})
                               ).save_to_disk(str(tmp_path / "d"))
    line = cli_error(capsys, ["data", "info", str(tmp_path / "d")])
    assert "no label column" in line and "--label-column" not in line and "label_column=" in line


def test_a_relative_path_that_does_not_exist_says_so_first(tmp_path, capsys, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    line = cli_error(capsys, ["data", "info", "data/x"])
    assert line.startswith("error: dataset path 'data/x' does not exist") and line.index("hub") > line.index("exist")


def test_offline_timm_weights_that_are_not_shipped(ds, tmp_path, capsys):
    from glsim_core.weights.pretrained import _hub_cached

    if _hub_cached("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", None):
        pytest.skip("vit_tiny_patch16_224 weights are in the local hub cache")
    argv = [a for a in train_args(ds, tmp_path / "t") if a not in ("--no-pretrained", TINY, "--model-kwargs")]
    argv[argv.index("vit_nano_patch8_64")] = "vit_tiny_patch16_224"
    line = cli_error(capsys, argv)  # the cpu profile's default: pretrained=True
    assert "pretrained weights of 'vit_tiny_patch16_224'" in line and "not shipped" in line
    assert "needs the network" in line and "--no-pretrained" in line


# ----------------------------------------------------------------------------------------------------- papermill
def test_an_unknown_notebook_parameter_is_an_error_naming_the_valid_ones(tmp_path):
    from glsim_core.series import check_parameters, execute_with_parameters, run_series

    nb = ROOT / "notebooks" / "00_quickstart.ipynb"
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['SEDD'\].*'SEED'"):
        check_parameters(nb, {"SEDD": 3, "OUT_DIR": "x"})
    with pytest.raises(ValueError, match="SEDD"):
        execute_with_parameters(nb, tmp_path / "o.ipynb", {"SEDD": 3})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['SEDD'\]"):
        run_series(out=tmp_path, only=["00_quickstart"], extra_parameters={"SEDD": 3})
    assert not (tmp_path / "o.ipynb").exists() and not (tmp_path / "notebooks" / "00_quickstart.ipynb").exists()
