"""glsim_core.data.transforms: GLSim's resize/crop geometry, AugReg levels (Table 11), normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from glsim_core.data.transforms import (
    AUGREG_LEVELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    augreg,
    build_transform,
    normalization_for,
    resize_size,
)


def test_resize_is_int_1_34_s():
    assert resize_size(224) == 300 and resize_size(448) == 600 and resize_size(64) == 85
    with pytest.raises(ValueError):
        resize_size(0)


def test_augreg_levels_are_table_11():
    assert AUGREG_LEVELS == ("minimal", "weak", "medium", "strong")
    m, w, md, s = (augreg(x) for x in AUGREG_LEVELS)
    assert (m.random_crop, m.hflip, m.label_smoothing, m.drop_path_rate, m.random_erasing, m.trivial_augment) == \
        (True, True, 0.0, 0.0, 0.0, False)
    assert (w.label_smoothing, w.drop_path_rate, w.trivial_augment) == (0.1, 0.0, False)
    assert (md.label_smoothing, md.drop_path_rate, md.trivial_augment, md.random_erasing) == (0.1, 0.1, False, 0.0)
    assert (s.label_smoothing, s.drop_path_rate, s.trivial_augment) == (0.1, 0.1, True) and s.random_erasing > 0
    with pytest.raises(ValueError, match="minimal"):
        augreg("extreme")


def test_strong_pipeline_contains_trivial_augment_and_erasing_only_in_training():
    kinds = lambda t: [type(op).__name__ for op in t.transforms]  # noqa: E731
    strong = kinds(build_transform(32, train=True, level="strong"))
    assert "TrivialAugmentWide" in strong and "RandomErasing" in strong and "RandomCrop" in strong
    assert strong.index("TrivialAugmentWide") < strong.index("Normalize") < strong.index("RandomErasing")
    medium = kinds(build_transform(32, train=True, level="medium"))
    assert "TrivialAugmentWide" not in medium and "RandomErasing" not in medium
    assert "RandomHorizontalFlip" in medium
    ev = kinds(build_transform(32, train=False, level="strong"))
    assert "CenterCrop" in ev and "RandomCrop" not in ev and "RandomHorizontalFlip" not in ev


def test_eval_transform_equals_resize_centre_crop_normalise():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    out = build_transform(32, train=False)(img)
    ref = v2.functional.to_image(img)
    ref = v2.functional.resize(ref, [42, 42], interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
    ref = ref[:, 5:37, 5:37].float() / 255  # centre crop (42 - 32) / 2 = 5
    ref = (ref - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor((0.229, 0.224, 0.225))[:, None, None]
    assert out.shape == (3, 32, 32)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_boxes_follow_the_geometry():
    img = np.zeros((85, 85, 3), dtype=np.uint8)
    img[30:50, 20:40] = 255  # a white rectangle: x 20..40, y 30..50
    box = tv_tensors.BoundingBoxes(torch.tensor([[20.0, 30.0, 40.0, 50.0]]), format="XYXY", canvas_size=(85, 85))
    x, b = build_transform(64, train=False)(Image.fromarray(img), box)
    # resize 85 -> 85 is the identity; centre crop 64 shifts by (85 - 64) // 2 = 10 (torchvision rounds)
    mask = x[0] > 0
    ys, xs = np.nonzero(mask.numpy())
    assert abs(b[0, 0].item() - xs.min()) <= 1 and abs(b[0, 2].item() - (xs.max() + 1)) <= 1
    assert abs(b[0, 1].item() - ys.min()) <= 1 and abs(b[0, 3].item() - (ys.max() + 1)) <= 1
    torch.manual_seed(0)
    x2, b2 = build_transform(64, train=True, level="minimal")(Image.fromarray(img), box)
    ys, xs = np.nonzero((x2[0] > 0).numpy())
    assert abs(b2[0, 0].item() - xs.min()) <= 1 and abs(b2[0, 3].item() - (ys.max() + 1)) <= 1


def test_training_crops_are_seeded():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8))
    t = build_transform(24, train=True, level="strong")
    torch.manual_seed(5)
    a = t(img)
    torch.manual_seed(5)
    b = t(img)
    torch.manual_seed(6)
    c = t(img)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalisation_comes_from_the_models_pretrained_config():
    import glsim_core.models  # noqa: F401

    mean, std, interp = normalization_for("vit_base_patch16_224.augreg_in21k")
    assert mean == (0.5, 0.5, 0.5) and std == (0.5, 0.5, 0.5) and interp == "bicubic"
    mean, std, _ = normalization_for("vit_nano_patch8_64")
    assert mean == IMAGENET_MEAN
    with pytest.raises(ValueError, match="unknown timm model"):
        normalization_for("no_such_model_xyz")


def test_glsim_names_normalise_like_their_backbone():
    import timm

    from glsim_core.models.glsim import GLSIM_VARIANTS

    # the paper's orig_in21k ViT-B/16 (and the AugReg option) use mean = std = 0.5, not ImageNet's statistics
    assert normalization_for("glsim_vit_base_patch16_224")[:2] == ((0.5,) * 3, (0.5,) * 3)
    assert normalization_for("glsim_vit_base_patch16_224.augreg_in21k")[:2] == ((0.5,) * 3, (0.5,) * 3)
    assert normalization_for("glsim_vit_nano_patch8_64")[:2] == (IMAGENET_MEAN, IMAGENET_STD)
    for name in ("glsim_vit_base_patch16_224", "glsim_vit_nano_patch8_64"):
        backbone = GLSIM_VARIANTS[name]
        assert normalization_for(name) == normalization_for(backbone)
        assert timm.get_pretrained_cfg(name).input_size == timm.get_pretrained_cfg(backbone).input_size
