"""One meaning for each SimPool option, wherever SimPool can be chosen (SimPool's docstring says it once).

``gamma=None`` is SimPool's plain weighted average everywhere; a number is γ everywhere; left out, the module and
``pool("simpool")`` use None and the model-level entry points the paper's γ for the family (1.25 ViT, 2.0 CNN).
"""

from __future__ import annotations

import pytest
import torch

from glsim_core.models import create_model
from glsim_core.models.glsim import GLSim
from glsim_core.models.heads import DEFAULT_GAMMA, get_pooling, simpool_gamma
from glsim_core.pooling import SimPool, pool
from glsim_core.train import TrainConfig, build_model

VIT = "vit_nano_patch8_64"
GLSIM = "glsim_vit_nano_patch8_64"


def _gamma_of_every_entry_point(**gamma) -> dict[str, float | None]:
    torch.manual_seed(0)
    cfg = TrainConfig(model=VIT, pretrained=False, pooling="simpool", model_kwargs=dict(gamma), progress=False)
    glsim_cfg = cfg.replace(model=GLSIM)
    return {
        "SimPool": SimPool(16, **gamma).gamma,
        "pool": pool("simpool", dim=16, **gamma).gamma,
        "GLSim": GLSim(VIT, num_classes=3, pool="simpool", **gamma).simpool.gamma,
        "create_model": get_pooling(create_model(VIT, pooling="simpool", num_classes=3, **gamma)).gamma,
        "TrainConfig": get_pooling(build_model(cfg, 3)).gamma,
        "TrainConfig GLSim": build_model(glsim_cfg, 3).simpool.gamma,
    }


@pytest.mark.parametrize("gamma", [None, 2.0, 1.25])
def test_a_given_gamma_means_the_same_everywhere(gamma):
    assert set(_gamma_of_every_entry_point(gamma=gamma).values()) == {gamma}


def test_false_is_none_and_left_out_is_the_family_default():
    assert set(_gamma_of_every_entry_point(gamma=False).values()) == {None}
    left_out = _gamma_of_every_entry_point()
    assert left_out.pop("SimPool") is None and left_out.pop("pool") is None  # the module's own default
    assert set(left_out.values()) == {DEFAULT_GAMMA["vit"]}
    assert simpool_gamma("family", "resnet") == DEFAULT_GAMMA["resnet"] == 2.0
    with pytest.raises(ValueError, match="gamma must be"):
        simpool_gamma("huge")


def test_simpool_none_is_the_plain_weighted_average():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 16)
    sp = SimPool(16, gamma=None)
    pooled, attn = sp(x, return_attention=True)
    assert torch.allclose(pooled, torch.einsum("bn,bnd->bd", attn, sp.norm(x)), atol=1e-6)
