"""Closed-form hidden-layer Jacobians agree with autograd (SPEC §3)."""

import pytest
import torch
from torch.func import jacrev, vmap

from kag.jacobian import (
    first_layer_jacobian,
    gelu_derivative,
    hidden_jacobians,
    jacobians_from_weights,
)
from kag.model import MLP


def _model(width: int, dtype: torch.dtype, trained_like: bool) -> MLP:
    """An MLP at its init, or with weights rescaled/perturbed and non-zero biases ("trained-like")."""
    model = MLP(width, generator=torch.Generator().manual_seed(width)).to(dtype)
    if trained_like:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for layer in (model.fc1, model.fc2):
                w = layer.weight
                w.mul_(torch.rand(w.shape, generator=g, dtype=dtype) * 2)
                w.add_(0.05 * torch.randn(w.shape, generator=g, dtype=dtype))
                layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=dtype))
    return model


def _autograd_jacobians(model: MLP, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    j1 = vmap(jacrev(lambda xi: model.hidden(xi[None])[0][0]))(x)
    j2 = vmap(jacrev(lambda xi: model.hidden(xi[None])[1][0]))(x)
    return j1, j2


@pytest.mark.parametrize("trained_like", [False, True], ids=["init", "trained-like"])
def test_closed_form_jacobian_matches_jacrev_float64(trained_like):
    model = _model(24, torch.float64, trained_like)
    x = torch.randn(5, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    J1, J2 = hidden_jacobians(model, x, dtype=torch.float64)
    A1, A2 = _autograd_jacobians(model, x)
    torch.testing.assert_close(J1, A1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(J2, A2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("trained_like", [False, True], ids=["init", "trained-like"])
def test_closed_form_jacobian_matches_jacrev_float32(trained_like):
    model = _model(32, torch.float32, trained_like)
    x = torch.randn(4, 784, generator=torch.Generator().manual_seed(0))
    J1, J2 = hidden_jacobians(model, x)
    A1, A2 = _autograd_jacobians(model.double(), x.double())
    assert J1.dtype == J2.dtype == torch.float32
    for J, A in ((J1, A1), (J2, A2)):
        scale = A.abs().max()
        assert (J.double() - A).abs().max() / scale < 1e-5


def test_shapes_follow_the_layers():
    g = torch.Generator().manual_seed(0)
    W1, b1 = torch.randn(6, 784, generator=g), torch.randn(6, generator=g)
    W2, b2 = torch.randn(9, 6, generator=g), torch.randn(9, generator=g)
    J1, J2 = jacobians_from_weights(W1, b1, W2, b2, torch.randn(3, 784, generator=g))
    assert J1.shape == (3, 6, 784) and J2.shape == (3, 9, 784)


def test_state_dict_path_and_first_layer_path_agree_with_the_model():
    model = _model(16, torch.float64, trained_like=True)
    x = torch.randn(3, 784, dtype=torch.float64)
    state = model.state_dict()
    J1, J2 = hidden_jacobians(model, x, dtype=None)
    K1, K2 = jacobians_from_weights(state["fc1.weight"], state["fc1.bias"], state["fc2.weight"], state["fc2.bias"], x)
    F1 = first_layer_jacobian(state["fc1.weight"], state["fc1.bias"], x)
    assert torch.equal(J1, K1) and torch.equal(J2, K2) and torch.equal(J1, F1)


def test_gelu_derivative_matches_autograd():
    z = torch.linspace(-8, 8, 101, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(torch.nn.functional.gelu(z).sum(), z)
    torch.testing.assert_close(gelu_derivative(z.detach()), grad, rtol=1e-13, atol=1e-13)


def test_float32_matmul_precision_is_restored():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        hidden_jacobians(MLP(4), torch.randn(2, 784))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(2, 783), "x has shape"),
        (torch.randn(784), "x has shape"),
        (torch.full((2, 784), float("nan")), "x contains NaN"),
    ],
    ids=["wrong-width", "not-batched", "nan"],
)
def test_bad_inputs_raise(x, message):
    with pytest.raises(ValueError, match=message):
        hidden_jacobians(MLP(4), x)


def test_model_without_layers_raises():
    model = torch.nn.Module()
    model.fc1 = torch.nn.Linear(784, 4)
    with pytest.raises(ValueError, match="no nn.Linear layer 'fc2'"):
        hidden_jacobians(model, torch.randn(1, 784))


def test_mismatched_second_layer_raises():
    with pytest.raises(ValueError, match=r"W2 has shape \[4, 5\]"):
        jacobians_from_weights(torch.randn(3, 784), torch.zeros(3), torch.randn(4, 5), torch.zeros(4), torch.randn(1, 784))


def test_integer_dtype_raises():
    with pytest.raises(ValueError, match="dtype=torch.int64"):
        hidden_jacobians(MLP(4), torch.randn(1, 784), dtype=torch.int64)
