from __future__ import annotations

import pytest
import torch

from kag.experiments.model import MLP, init_params, model_from_state, stacked_forward, unstack_state


def test_mlp_has_three_named_linear_layers_of_the_paper_shape():
    model = MLP(64)
    assert [name for name, _ in model.named_children()] == ["fc1", "fc2", "fc3"]
    assert model.fc1.weight.shape == (64, 784) and model.fc2.weight.shape == (64, 64) and model.fc3.weight.shape == (10, 64)
    assert model(torch.randn(5, 784)).shape == (5, 10)


def test_init_is_kaiming_normal_with_zero_biases():
    model = MLP(512, generator=torch.Generator().manual_seed(0))
    for layer, fan_in in ((model.fc1, 784), (model.fc2, 512), (model.fc3, 512)):
        assert layer.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.03)
        assert abs(layer.weight.mean().item()) < 0.01
        assert torch.count_nonzero(layer.bias) == 0


def test_gelu_is_the_exact_erf_form():
    model = MLP(8)
    x = torch.randn(3, 784)
    z1 = model.fc1(x)
    expected = 0.5 * z1 * (1 + torch.erf(z1 / 2**0.5))
    torch.testing.assert_close(model.hidden(x)[0], expected)


def test_stacked_forward_equals_each_module():
    gens = [torch.Generator().manual_seed(s) for s in (0, 1, 2)]
    params = init_params(32, gens)
    x = torch.randn(3, 7, 784)
    out = stacked_forward(params, x)
    for i in range(3):
        model = model_from_state(unstack_state(params, i))
        torch.testing.assert_close(out[i], model(x[i]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("width", [0, -3, 2.5, True])
def test_bad_width_is_a_one_line_error(width):
    with pytest.raises(ValueError, match="width="):
        MLP(width)
