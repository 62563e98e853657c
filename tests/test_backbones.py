import pytest
import timm
import torch

from glsim_core.models import create_model, num_prefix_tokens, patch_grid, record_attention
from glsim_core.models.backbones import SMALL_VITS


@pytest.mark.parametrize("name", sorted(SMALL_VITS))
def test_small_vits_are_registered_in_timm(name):
    assert name in timm.list_models("vit_*")
    model = timm.create_model(name, num_classes=3)
    size = SMALL_VITS[name]["img_size"]
    assert model.pretrained_cfg["input_size"] == (3, size, size)
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 3)


def test_record_attention_matches_a_manual_computation():
    torch.manual_seed(0)
    model = create_model("vit_nano_patch8_64", num_classes=4).eval()
    x = torch.randn(2, 3, 64, 64)
    fused_before = [blk.attn.fused_attn for blk in model.blocks]
    with torch.no_grad(), record_attention(model) as attn:
        logits = model(x)
    assert len(attn) == len(model.blocks)
    assert [blk.attn.fused_attn for blk in model.blocks] == fused_before  # restored
    # Recompute the last block's attention from its input by hand.
    with torch.no_grad():
        h = model.patch_embed(x)
        h = model._pos_embed(h)
        h = model.norm_pre(h)
        for blk in model.blocks[:-1]:
            h = blk(h)
        blk = model.blocks[-1]
        a = blk.attn
        qkv = a.qkv(blk.norm1(h)).reshape(2, h.shape[1], 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
        q, k, _ = qkv.unbind(0)
        manual = ((q * a.scale) @ k.transpose(-2, -1)).softmax(-1)
        assert torch.allclose(model(x), logits, atol=1e-5)  # outside the context: fused path, same logits
    assert torch.allclose(attn[-1], manual, atol=1e-5)
    assert torch.allclose(attn[-1].sum(-1), torch.ones(1), atol=1e-5)


def test_record_attention_selected_layers_and_helpers():
    model = create_model("vit_nano_patch8_64").eval()
    with torch.no_grad(), record_attention(model, layers=[0, -1]) as attn:
        model(torch.randn(1, 3, 64, 64))
    assert len(attn) == 2 and attn[0].shape == (1, 4, 65, 65)
    assert num_prefix_tokens(model) == 1
    assert patch_grid(model) == (8, 8)
    assert patch_grid(model, (64, 32)) == (8, 4)


def test_record_attention_rejects_non_vit():
    with pytest.raises(TypeError, match="timm ViT"):
        with record_attention(torch.nn.Linear(2, 2)):
            pass
