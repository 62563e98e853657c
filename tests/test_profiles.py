import pytest

from glsim_core.profiles import PROFILES, Profile, default_profile_name, get_profile


def test_two_profiles_with_the_papers_sizes_on_gpu():
    assert set(PROFILES) == {"cpu", "gpu"}
    gpu = get_profile("gpu")
    assert (gpu.img_size, gpu.patch_size, gpu.batch_size, gpu.epochs) == (224, 16, 8, 50)
    assert gpu.pretrained
    cpu = get_profile("cpu")
    assert cpu.img_size < gpu.img_size and cpu.pretrained  # the shipped backbones (data/pretrained)
    assert cpu.grid_size == cpu.img_size // cpu.patch_size


def test_overrides_and_errors():
    p = get_profile("cpu", img_size=96, epochs=1)
    assert (p.img_size, p.epochs, p.name) == (96, 1, "cpu")
    assert get_profile("CPU").name == "cpu"
    assert get_profile(p) is p
    with pytest.raises(ValueError, match="unknown profile field"):
        get_profile("cpu", image_size=3)
    with pytest.raises(ValueError, match="choose one of"):
        get_profile("tpu")


def test_default_profile_from_environment(monkeypatch):
    monkeypatch.delenv("GLSIM_PROFILE", raising=False)
    assert default_profile_name() == "cpu"
    monkeypatch.setenv("GLSIM_PROFILE", "gpu")
    assert get_profile().name == "gpu"


def test_profile_is_immutable_and_serialisable():
    p = get_profile("cpu")
    with pytest.raises(AttributeError):
        p.img_size = 1
    d = p.to_dict()
    assert Profile(**d) == p


def test_gpu_profile_uses_the_papers_backbone_weights():
    gpu = get_profile("gpu")
    assert gpu.model == "vit_base_patch16_224.orig_in21k"  # the original ImageNet-21k ViT-B/16 (GLSim §4)
    assert gpu.glsim_model == "glsim_vit_base_patch16_224"


def test_o_follows_the_paper_unless_set():
    from glsim_core.profiles import paper_top_o

    gpu = get_profile("gpu")
    assert gpu.top_o is None
    assert gpu.o_for() == 8 and gpu.o_for(img_size=448) == 16
    assert gpu.o_for(dataset="dogs") == 16 and gpu.o_for(448, "Donghyun99/Stanford-Dogs") == 32
    assert get_profile("gpu", top_o=4).o_for(448) == 4
    assert get_profile("cpu").o_for() == 8
    assert (paper_top_o(224), paper_top_o(448), paper_top_o((448, 448), "cub200"), paper_top_o(64)) == (8, 16, 16, 8)
