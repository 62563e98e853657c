import pytest

from glsim_core.profiles import PROFILES, Profile, default_profile_name, get_profile


def test_two_profiles_with_the_papers_sizes_on_gpu():
    assert set(PROFILES) == {"cpu", "gpu"}
    gpu = get_profile("gpu")
    assert (gpu.img_size, gpu.patch_size, gpu.batch_size, gpu.epochs, gpu.top_o) == (224, 16, 8, 50, 8)
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
