"""Jacobians agree with autograd: the generic torch.func path and the MLP's closed form (SPEC §3)."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import jacrev, vmap

from kag.jacobians import (
    first_layer_jacobian,
    gelu_derivative,
    hidden_jacobians,
    jacobian,
    jacobians_from_weights,
)
from kag.experiments.model import MLP

IMAGE_SHAPES = {"28x28x1": (1, 28, 28), "32x32x3": (3, 32, 32)}


def _relu_mlp(shape: tuple[int, ...], width: int = 16) -> nn.Module:
    d = shape[0] * shape[1] * shape[2]
    return nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 10))


def _small_cnn(shape: tuple[int, ...]) -> nn.Module:
    c, h, w = shape
    return nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                         nn.Linear(4 * (h // 4) * (w // 4), 10))


NETWORKS = {"relu-mlp": _relu_mlp, "cnn": _small_cnn}


def _network(kind: str, shape: tuple[int, ...], dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    return NETWORKS[kind](shape).to(dtype).eval()


def _per_sample_autograd(f, x: torch.Tensor) -> torch.Tensor:
    """One ``torch.autograd.functional.jacobian`` per sample: slow but obviously right ``[B, m, d]``."""
    rows = [torch.autograd.functional.jacobian(lambda v: f(v[None])[0].reshape(-1), xi) for xi in x]
    return torch.stack([r.reshape(r.shape[0], -1) for r in rows])


# ---------------------------------------------------------------------------------------------
# generic Jacobians


@pytest.mark.parametrize("shape", IMAGE_SHAPES.values(), ids=IMAGE_SHAPES.keys())
@pytest.mark.parametrize("kind", NETWORKS, ids=NETWORKS.keys())
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)], ids=["float32", "float64"])
def test_generic_jacobian_matches_autograd_per_sample(kind, shape, dtype, tol):
    model = _network(kind, shape, dtype)
    x = torch.randn(3, *shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    J = jacobian(model, x)
    assert J.shape == (3, 10, x[0].numel()) and J.dtype == dtype and not J.requires_grad
    torch.testing.assert_close(J, _per_sample_autograd(model, x), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", NETWORKS, ids=NETWORKS.keys())
def test_jacrev_and_jacfwd_agree(kind):
    model = _network(kind, (3, 8, 8), torch.float64)
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    rev, fwd = jacobian(model, x, mode="rev"), jacobian(model, x, mode="fwd")
    torch.testing.assert_close(rev, fwd, rtol=1e-12, atol=1e-12)
    assert torch.equal(jacobian(model, x), rev)  # auto: 10 outputs <= 192 inputs -> rev


def test_auto_mode_goes_forward_when_outputs_outnumber_inputs():
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(3, 50), nn.Tanh()).double()
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(jacobian(wide, x), _per_sample_autograd(wide, x), rtol=1e-12, atol=1e-12)


def test_many_small_chunks_give_the_same_jacobian():
    model = _network("cnn", (1, 28, 28), torch.float64)
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(jacobian(model, x, max_bytes=1), jacobian(model, x), rtol=0, atol=0)


@pytest.mark.parametrize("layer", ["L1", "L2"])
def test_closed_form_matches_the_generic_path(layer):
    model = _model(24, torch.float64, trained_like=True)
    x = torch.randn(4, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    i = 0 if layer == "L1" else 1
    closed = hidden_jacobians(model, x, dtype=torch.float64)[i]
    generic = jacobian(lambda v: model.hidden(v)[i], x)
    torch.testing.assert_close(closed, generic, rtol=1e-12, atol=1e-12)


def test_dtype_casts_a_copy_and_leaves_the_module_alone():
    model = _network("relu-mlp", (1, 28, 28), torch.float32)
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    J = jacobian(model, x, dtype=torch.float64)
    assert J.dtype == torch.float64
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    torch.testing.assert_close(J, _per_sample_autograd(copy.deepcopy(model).double(), x.double()), rtol=1e-12, atol=1e-12)


def test_a_plain_callable_and_any_input_shape():
    w = torch.randn(6, 2, 5, dtype=torch.float64)
    f = lambda v: torch.einsum("oij,bij->bo", w, v).sin()  # noqa: E731  [B, 2, 5] -> [B, 6]
    x = torch.randn(3, 2, 5, dtype=torch.float64)
    J = jacobian(f, x)
    assert J.shape == (3, 6, 10)
    torch.testing.assert_close(J, _per_sample_autograd(f, x), rtol=1e-12, atol=1e-12)


def test_batchnorm_in_eval_mode_is_per_sample_and_in_training_mode_is_refused():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).double()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"f holds BatchNorm2d '1' in training mode: call .eval\(\) first"):
        jacobian(model, x)
    model.eval()
    torch.testing.assert_close(jacobian(model, x), _per_sample_autograd(model, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "f, x, kwargs, message",
    [
        (nn.Linear(4, 2), [[1.0, 2.0, 3.0, 4.0]], {}, "x must be a tensor"),
        (nn.Linear(4, 2), torch.randn(0, 4), {}, r"x has shape \[0, 4\]: expected a non-empty batch"),
        (nn.Linear(4, 2), torch.tensor(1.0), {}, r"x has shape \[\]"),
        (nn.Linear(4, 2), torch.randn(2, 4), {"mode": "backward"}, "mode='backward' is not allowed"),
        (nn.Linear(4, 2), torch.randn(2, 4), {"dtype": torch.int32}, "dtype=torch.int32 is not allowed"),
        (nn.Linear(4, 2), torch.randn(2, 4), {"max_bytes": 0}, "max_bytes=0 is not allowed"),
        (nn.Linear(4, 2), torch.ones(2, 4, dtype=torch.int64), {}, "x has dtype torch.int64"),
        (lambda v: v.sum(), torch.randn(2, 4), {}, r"f maps a batch of 2 to shape \[\]"),
        (lambda v: v.reshape(-1), torch.randn(2, 4), {}, r"f maps a batch of 2 to shape \[8\]"),
        (lambda v: (v, v), torch.randn(2, 4), {}, "f returned tuple: expected a tensor"),
        ("relu", torch.randn(2, 4), {}, "f must be an nn.Module or a callable, got str"),
    ],
    ids=["x-list", "empty-batch", "no-batch-axis", "bad-mode", "int-dtype", "zero-budget", "int-x", "scalar-out",
         "mixed-batch", "tuple-out", "not-callable"],
)
def test_bad_generic_inputs_raise(f, x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        jacobian(f, x, **kwargs)


# ---------------------------------------------------------------------------------------------
# closed form for the paper's MLP


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


@pytest.mark.parametrize("d", [784, 3072, 5])
def test_shapes_follow_the_layers(d):
    g = torch.Generator().manual_seed(0)
    W1, b1 = torch.randn(6, d, generator=g), torch.randn(6, generator=g)
    W2, b2 = torch.randn(9, 6, generator=g), torch.randn(9, generator=g)
    J1, J2 = jacobians_from_weights(W1, b1, W2, b2, torch.randn(3, d, generator=g))
    assert J1.shape == (3, 6, d) and J2.shape == (3, 9, d)
    assert first_layer_jacobian(W1, b1, torch.randn(2, d, generator=g)).shape == (2, 6, d)


def test_closed_form_on_wider_inputs_matches_autograd():
    g = torch.Generator().manual_seed(0)
    W1, b1 = torch.randn(7, 3072, generator=g, dtype=torch.float64), torch.randn(7, generator=g, dtype=torch.float64)
    x = torch.randn(2, 3072, generator=g, dtype=torch.float64)
    expected = _per_sample_autograd(lambda v: torch.nn.functional.gelu(v @ W1.T + b1), x)
    torch.testing.assert_close(first_layer_jacobian(W1, b1, x), expected, rtol=1e-12, atol=1e-12)


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
        (torch.randn(2, 783), r"x has shape \[2, 783\]: expected \[\*, 784\]"),
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


# -- the networks researchers use (issue 18 item 6) -------------------------------------------------
class _Attention(nn.Module):
    """A token embedding, PyTorch's fused multi-head attention and a projection: ``[B, T, 4] -> [B, T, 16]``
    (more outputs than inputs, so "auto" picks forward mode, which this attention does not support)."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 16)
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.out = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        a, _ = self.attn(h, h, h, need_weights=False)
        return self.out(a)


class _SDPA(nn.Module):
    """``F.scaled_dot_product_attention``, which vmap runs without a batching rule (and warns)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(4, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).view(x.shape[0], x.shape[1], 3, 2, 4).unbind(2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return o.transpose(1, 2).reshape(x.shape[0], x.shape[1], 8)


def _autograd(f, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.autograd.functional.jacobian(lambda v: f(v[None])[0], xi).reshape(-1, xi.numel())
                        for xi in x])


def test_attention_without_forward_mode_falls_back_to_reverse_mode():
    torch.manual_seed(0)
    model, x = _Attention().eval(), torch.randn(3, 8, 4)
    with pytest.raises(NotImplementedError, match="forward AD"):
        jacobian(model, x, mode="fwd")  # asked for explicitly: not second-guessed
    J = jacobian(model, x, dtype=torch.float64)
    assert J.shape == (3, 8 * 16, 8 * 4)
    torch.testing.assert_close(J, _autograd(model.double(), x.double()), rtol=1e-10, atol=1e-12)


def test_attention_under_vmap_warns_nothing():
    torch.manual_seed(0)
    model, x = _SDPA().eval(), torch.randn(3, 6, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the "performance drop" warnings of vmap's fallback would raise here
        J = jacobian(model, x, dtype=torch.float64)
    torch.testing.assert_close(J, _autograd(model.double(), x.double()), rtol=1e-10, atol=1e-12)


def test_layer_takes_a_submodule_name_a_submodule_or_a_callable():
    torch.manual_seed(0)
    model, x = _Attention().eval(), torch.randn(2, 5, 4)
    by_name = jacobian(model, x, layer="inp", dtype=torch.float64)
    assert torch.equal(by_name, jacobian(model, x, layer=model.inp, dtype=torch.float64))
    assert torch.equal(by_name, jacobian(model, x, layer=lambda mod, v: mod.inp(v), dtype=torch.float64))
    torch.testing.assert_close(by_name, _autograd(model.double().inp, x.double()), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=r"layer='nope' is not a submodule of f: valid names include 'inp'"):
        jacobian(model, x, layer="nope")
    with pytest.raises(ValueError, match="layer='inp' needs f to be an nn.Module, got function"):
        jacobian(lambda v: model(v), x, layer="inp")


def test_float64_on_a_closure_says_to_pass_the_module():
    torch.manual_seed(0)
    model, x = _Attention().eval(), torch.randn(2, 5, 4)
    with pytest.raises(ValueError) as info:
        jacobian(lambda v: model(v), x, dtype=torch.float64)
    message = str(info.value)
    assert "f is a function, so dtype=torch.float64 reaches x but not the weights it uses" in message
    assert "pass the nn.Module itself" in message and "\n" not in message
