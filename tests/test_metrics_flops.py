import pytest
import torch
from torch import nn

from glsim_core.analysis import count_parameters, measure_flops


def test_matmul_flops_closed_form():
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert measure_flops(torch.matmul, a, b) == 2 * 3 * 5 * 7
    assert measure_flops(torch.matmul, a, b, unit="mac") == 3 * 5 * 7


def test_linear_module_flops_and_params():
    layer = nn.Linear(16, 8)
    x = torch.randn(4, 16)
    assert measure_flops(layer, x) == 2 * 4 * 16 * 8
    assert count_parameters(layer) == 16 * 8 + 8
    layer.bias.requires_grad_(False)
    assert count_parameters(layer, trainable_only=True) == 16 * 8


def test_shared_parameters_counted_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, shared)
    assert count_parameters(model) == 4 * 4 + 4


def test_bad_unit():
    with pytest.raises(ValueError, match="unit"):
        measure_flops(torch.matmul, torch.ones(1, 1), torch.ones(1, 1), unit="gflop")
