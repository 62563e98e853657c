"""glsim_core.data.hf: one entry point for hub ids and local paths, column detection, splits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_data import class_images, make_disk_dataset, png_bytes, solid
from PIL import Image

from glsim_core.data import hf
from glsim_core.data.hf import BadImageError, collate_images, load_image_dataset, to_rgb, train_val_fractions
from glsim_core.data.registry import FINEGRAINED_DATASETS


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    return make_disk_dataset(tmp_path_factory.mktemp("disk") / "ds", {"train": 40, "test": 12}, num_classes=3,
                             bbox=True)


def test_save_to_disk_dataset_loads_with_detected_columns_and_names(disk):
    data = load_image_dataset(disk, img_size=16)
    assert (data.image_column, data.label_column, data.bbox_column) == ("image", "label", "bbox")
    assert data.class_names == ["class_0", "class_1", "class_2"]
    sizes = data.split_sizes()
    assert sizes == {"train": 32, "val": 8, "trainval": 40, "test": 12}  # 80/20 carve of train
    x = data.train[0]
    assert x["image"].shape == (3, 16, 16) and x["image"].dtype == torch.float32
    assert 0 <= x["label"] < 3 and "boxes" not in x  # train views carry no boxes
    t = data.test[0]
    assert t["boxes"].shape == (1, 4)  # eval views keep the boxes, mapped through resize + centre crop


def test_views_use_with_transform_and_never_decode_everything(disk):
    data = load_image_dataset(disk, img_size=16)
    import datasets

    assert isinstance(data.splits["train"].features["image"], datasets.Image)
    assert data.splits["train"].features["image"].decode is False  # raw splits hold undecoded bytes
    view = data.train
    assert view.hf.format["type"] == "custom"  # datasets' with_transform: decoding happens on access only
    batch = collate_images(view.__getitems__([0, 1, 2]))
    assert batch["image"].shape == (3, 3, 16, 16) and batch["label"].shape == (3,) and batch["skipped"] == 0


def test_split_is_seeded_disjoint_and_covers_train(disk):
    a = load_image_dataset(disk, split_seed=3)
    b = load_image_dataset(disk, split_seed=3)
    c = load_image_dataset(disk, split_seed=4)
    ia, va = a._sources["train"][0], a._sources["val"][0]
    assert np.array_equal(ia, b._sources["train"][0]) and np.array_equal(va, b._sources["val"][0])
    assert not np.array_equal(va, c._sources["val"][0])
    assert set(ia).isdisjoint(va) and sorted(set(ia) | set(va)) == list(range(40))


def test_train_val_fractions_follow_glsim_appendix_c():
    assert train_val_fractions(50_000) == (0.8, 0.2)
    assert train_val_fractions(50_001) == (0.2, 0.8)


def test_large_train_split_is_partitioned_20_80(tmp_path):
    import datasets

    n = 50_010  # above GLSim's 50,000: 20 % train, 80 % val
    one = png_bytes(solid((1, 2, 3), (2, 2)))
    ds = datasets.Dataset.from_dict({"image": [{"bytes": one, "path": None}] * n, "label": [0, 1] * (n // 2)},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.ClassLabel(names=["a", "b"])}))
    ds.save_to_disk(str(tmp_path / "big"))
    data = load_image_dataset(tmp_path / "big")
    assert data.split_sizes()["val"] == round(0.8 * n) and data.split_sizes()["train"] == n - round(0.8 * n)


def test_own_validation_split_is_used_and_trainval_concatenates(tmp_path):
    path = make_disk_dataset(tmp_path / "tv", {"train": 9, "validation": 6, "test": 3})
    data = load_image_dataset(path)
    assert data.split_sizes() == {"train": 9, "val": 6, "trainval": 15, "test": 3}
    assert data.trainval.source_split[:9] == ["train"] * 9 and data.trainval.source_split[9:] == ["validation"] * 6


def test_other_column_names_and_string_labels(tmp_path):
    import datasets

    rows = class_images(3, 2)
    ds = datasets.Dataset.from_dict(
        {"img": [{"bytes": png_bytes(im), "path": None} for im, _ in rows],
         "fine_label": ["zebra" if k else "ant" for _, k in rows]},
        features=datasets.Features({"img": datasets.Image(), "fine_label": datasets.Value("string")}))
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "s"))
    data = load_image_dataset(tmp_path / "s", val_fraction=0.5)
    assert (data.image_column, data.label_column) == ("img", "fine_label")
    assert data.class_names == ["ant", "zebra"]  # sorted string labels
    labels = [data.test[i]["label"] for i in range(len(data.test))]
    assert sorted(labels) == [0, 0, 0, 1, 1, 1] and labels[:2] == [0, 1]


def test_integer_labels_without_classlabel(tmp_path):
    path = make_disk_dataset(tmp_path / "i", {"train": 6, "test": 6}, num_classes=3, class_label=False)
    assert load_image_dataset(path).class_names == ["0", "1", "2"]


def test_imagefolder_parquet_and_arrow_files(tmp_path):
    import datasets

    root = tmp_path / "folder"
    for split in ("train", "test"):
        for k, name in enumerate(["cat", "dog"]):
            d = root / split / name
            d.mkdir(parents=True)
            for j in range(3):
                solid((40 * k + j, 10, 10)).save(d / f"{j}.png")
    data = load_image_dataset(root, cache_dir=str(tmp_path / "hf"))
    assert data.class_names == ["cat", "dog"] and data.split_sizes()["test"] == 6
    assert data.test[0]["image"].shape[0] == 3

    rows = class_images(2, 2)
    ds = datasets.Dataset.from_dict({"image": [{"bytes": png_bytes(im), "path": None} for im, _ in rows],
                                     "label": [k for _, k in rows]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.ClassLabel(names=["x", "y"])}))
    pq = tmp_path / "pq"
    pq.mkdir()
    ds.to_parquet(str(pq / "train-00000.parquet"))
    ds.to_parquet(str(pq / "test-00000.parquet"))
    data = load_image_dataset(pq, cache_dir=str(tmp_path / "hf"))
    assert set(data.split_sizes()) == {"train", "val", "trainval", "test"} and data.split_sizes()["test"] == 4
    single = load_image_dataset(pq / "train-00000.parquet", cache_dir=str(tmp_path / "hf"))
    assert single.splits["test"] is None and single.split_sizes()["trainval"] == 4


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "I;16", "1"])
def test_every_mode_becomes_rgb(mode):
    if mode == "I;16":
        img = Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    elif mode == "P":
        img = solid((200, 30, 30)).convert("P")
    else:
        img = Image.new(mode, (8, 6), 128 if mode in ("L", "1") else (128,) * len(mode))
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == img.size
    if mode == "I;16":  # rescaled min-max to the full 8-bit range
        arr = np.asarray(out)[..., 0]
        assert arr.min() == 0 and arr.max() == 255


def test_transparent_pixels_are_composited_on_white():
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red
    img.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    arr = np.asarray(to_rgb(img))
    assert arr[0, 0].tolist() == [255, 255, 255] and arr[0, 1].tolist() == [255, 0, 0]


def _with_bad_image(tmp_path, bad_index=2):
    import datasets

    rows = class_images(2, 3)
    cells = [{"bytes": png_bytes(im), "path": None} for im, _ in rows]
    cells[bad_index] = {"bytes": cells[bad_index]["bytes"][:60], "path": None}  # truncated PNG
    ds = datasets.Dataset.from_dict({"image": cells, "label": [k for _, k in rows]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.ClassLabel(names=list("abc"))}))
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "bad"))
    return tmp_path / "bad"


def test_truncated_image_error_names_dataset_split_and_index(tmp_path):
    data = load_image_dataset(_with_bad_image(tmp_path), img_size=8)
    with pytest.raises(BadImageError) as exc:
        data.test[2]
    msg = str(exc.value)
    assert "'bad'" in msg and "'test'" in msg and "index 2" in msg and "on_error='skip'" in msg
    with pytest.raises(BadImageError, match="index 2"):
        data.test.__getitems__([0, 1, 2, 3])
    # the train view is a carved subset: the error names the index in the original split
    view = data.trainval
    with pytest.raises(BadImageError, match="split 'train', index 2"):
        view[2]


def test_skip_mode_drops_and_counts(tmp_path):
    data = load_image_dataset(_with_bad_image(tmp_path), img_size=8, on_error="skip")
    samples = data.test.__getitems__(list(range(6)))
    assert samples[2] is None and data.test.skipped == [2]
    batch = collate_images(samples)
    assert batch["skipped"] == 1 and batch["image"].shape[0] == 5
    assert batch["index"].tolist() == [0, 1, 3, 4, 5]


def test_hub_id_while_offline_says_so_and_shows_a_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError) as exc:
        load_image_dataset("some-org/some-dataset")
    msg = str(exc.value)
    assert "offline" in msg.lower() and "save_to_disk" in msg and "load_image_dataset('data/some-dataset')" in msg


def test_not_a_path_nor_hub_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing path nor a hub id"):
        load_image_dataset(str(tmp_path / "missing" / "deeper" / "x y"))


def test_empty_split_and_missing_label_column_are_clear_errors(tmp_path, monkeypatch):
    import datasets

    feats = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a"])})
    one = {"image": [{"bytes": png_bytes(solid((0, 0, 0))), "path": None}], "label": [0]}
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(one, features=feats),
                               "test": datasets.Dataset.from_dict({"image": [], "label": []}, features=feats)})
    monkeypatch.setattr(hf, "_load_hub", lambda *a: dd)
    with pytest.raises(ValueError, match="split 'test' of 'org/empty' is empty"):
        load_image_dataset("org/empty")
    monkeypatch.undo()
    nolabel = datasets.Dataset.from_dict({"image": one["image"], "caption": ["x"]},
                                         features=datasets.Features({"image": datasets.Image(),
                                                                     "caption": datasets.Value("string")}))
    nolabel.save_to_disk(str(tmp_path / "nolabel"))
    with pytest.raises(ValueError, match="no label column.*caption.*label_column"):
        load_image_dataset(tmp_path / "nolabel")
    with pytest.raises(ValueError, match="label column 'species' not in"):
        load_image_dataset(tmp_path / "nolabel", label_column="species")


@pytest.mark.parametrize("name", sorted(FINEGRAINED_DATASETS))
def test_registry_entries_load_a_local_dataset_of_the_same_schema(name, tmp_path, monkeypatch):
    """Each registry entry, fed a local dataset with its hub schema (columns and split names)."""
    import datasets

    spec = FINEGRAINED_DATASETS[name]
    rows = class_images(2, 3)
    feats = {spec.image_column: datasets.Image(), spec.label_column: datasets.ClassLabel(names=list("abc"))}
    data = {spec.image_column: [{"bytes": png_bytes(im.resize((40, 30))), "path": None} for im, _ in rows],
            spec.label_column: [k for _, k in rows]}
    if spec.bbox_column:
        feats[spec.bbox_column] = datasets.List(datasets.Value("float32"), length=4)
        data[spec.bbox_column] = [[4.0, 3.0, 36.0, 27.0]] * len(rows)
    ds = datasets.Dataset.from_dict(data, features=datasets.Features(feats))
    dd = datasets.DatasetDict({hub_split: ds for hub_split in spec.splits.values()})
    seen = {}

    def fake_hub(hub_id, config, cache_dir, revision=None):
        seen["id"], seen["revision"] = hub_id, revision
        return dd

    monkeypatch.setattr(hf, "_load_hub", fake_hub)
    loaded = load_image_dataset(name, img_size=16)
    assert seen["id"] == spec.hub_id
    assert seen["revision"] == spec.revision and loaded.info["revision"] == spec.revision  # pinned and recorded
    assert load_image_dataset(name, img_size=16, revision="abc123").info["revision"] == "abc123"
    assert seen["revision"] == "abc123"
    assert loaded.name == name and loaded.class_names == list("abc")
    assert loaded.info["splits"]["train"] == spec.splits["train"]
    assert loaded.info["splits"]["test"] == spec.splits["test"]
    if "val" in spec.splits:
        assert loaded.info["splits"]["val"] == spec.splits["val"]
    assert loaded.test[0]["image"].shape == (3, 16, 16)
    assert (loaded.bbox_column is not None) == (spec.bbox_column is not None)


def test_registry_entries_have_a_revision_and_the_corrected_notes():
    from glsim_core.data.registry import UNPINNED

    for spec in FINEGRAINED_DATASETS.values():
        # a commit sha (40 hex digits) once pinned online; until then the documented UNPINNED value
        assert spec.revision == UNPINNED or (len(spec.revision) == 40 and int(spec.revision, 16) >= 0)
    assert "ClassLabel with the 102" in FINEGRAINED_DATASETS["flowers102"].notes
    assert "not the official class order" in FINEGRAINED_DATASETS["dogs"].notes


def test_hub_revision_reaches_load_dataset(monkeypatch):
    import datasets

    seen = {}

    def fake_load(path, name=None, **kw):
        seen.update(kw, path=path)
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    with pytest.raises(hf.HubUnavailableError):
        hf._load_hub("some/id", None, None, "0123abc")
    assert seen["revision"] == "0123abc" and seen["path"] == "some/id"
