"""Closed-form Jacobians of the hidden layers with respect to the normalised input (SPEC §3).

For ``h1 = σ(z1)``, ``z1 = W1·x + b1`` and ``h2 = σ(z2)``, ``z2 = W2·h1 + b2``::

    J1 = diag(σ'(z1)) · W1                  [n, 784]
    J2 = diag(σ'(z2)) · W2 · J1             [n, 784]

with σ the exact (erf) GELU, σ'(z) = Φ(z) + z·φ(z). A whole batch costs two scalings and one
batched matmul, instead of n backward passes per image. Everything runs on the weights' device
with TF32 disabled, so CPU and CUDA agree to float rounding.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

INPUT_DIM = 784
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@contextlib.contextmanager
def full_float32_precision() -> Iterator[None]:
    """Temporarily forbid TF32 (and other reduced-precision float32 matmuls); restore on exit."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def gelu_derivative(z: torch.Tensor) -> torch.Tensor:
    """σ'(z) = Φ(z) + z·φ(z) for the exact GELU σ(z) = z·Φ(z); elementwise, same shape."""
    cdf = 0.5 * (1.0 + torch.erf(z * _INV_SQRT2))
    pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return cdf + z * pdf


def _check_matrix(name: str, t: torch.Tensor, shape: tuple[int | None, ...]) -> None:
    """One-line ValueError unless ``t`` is a finite tensor of ``shape`` (None = any size)."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
    if t.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, t.shape)):
        raise ValueError(f"{name} has shape {list(t.shape)}: expected {want}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or Inf: only finite values are allowed")


def _prepare(x: torch.Tensor, W1: torch.Tensor, b1: torch.Tensor, dtype: torch.dtype | None) -> tuple:
    """Validate the first layer and the input; cast everything to one dtype on W1's device."""
    _check_matrix("W1", W1, (None, INPUT_DIM))
    n = W1.shape[0]
    _check_matrix("b1", b1, (n,))
    _check_matrix("x", x, (None, INPUT_DIM))
    dtype = dtype or W1.dtype
    if not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype} is not allowed: use a floating-point dtype (float32 or float64)")
    return tuple(t.detach().to(W1.device, dtype) for t in (x, W1, b1))


def first_layer_jacobian(
    W1: torch.Tensor, b1: torch.Tensor, x: torch.Tensor, *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """L1 Jacobian from fc1 alone (timeline checkpoints keep only fc1).

    ``W1: [n, 784], b1: [n], x: [B, 784] -> J1: [B, n, 784]``; dtype None = W1's dtype.
    """
    x, W1, b1 = _prepare(x, W1, b1, dtype)
    with torch.no_grad(), full_float32_precision():
        s1 = gelu_derivative(torch.addmm(b1, x, W1.T))  # [B, n]
        return s1[:, :, None] * W1


def jacobians_from_weights(
    W1: torch.Tensor,
    b1: torch.Tensor,
    W2: torch.Tensor,
    b2: torch.Tensor,
    x: torch.Tensor,
    *,
    dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both hidden Jacobians from raw weights (e.g. a state dict).

    ``W1: [n, 784], b1: [n], W2: [m, n], b2: [m], x: [B, 784] -> (J1: [B, n, 784], J2: [B, m, 784])``.
    Computed in ``dtype`` (None = W1's dtype) on W1's device, under no_grad, without TF32.
    """
    x, W1, b1 = _prepare(x, W1, b1, dtype)
    _check_matrix("W2", W2, (None, W1.shape[0]))
    _check_matrix("b2", b2, (W2.shape[0],))
    W2, b2 = (t.detach().to(W1.device, W1.dtype) for t in (W2, b2))
    with torch.no_grad(), full_float32_precision():
        z1 = torch.addmm(b1, x, W1.T)  # [B, n]
        s1 = gelu_derivative(z1)
        h1 = torch.nn.functional.gelu(z1)
        s2 = gelu_derivative(torch.addmm(b2, h1, W2.T))  # [B, m]
        J1 = s1[:, :, None] * W1  # [B, n, 784]
        J2 = torch.matmul(W2, J1).mul_(s2[:, :, None])  # [m, n] @ [B, n, 784] -> [B, m, 784]
    return J1, J2


def hidden_jacobians(
    model: nn.Module, x: torch.Tensor, *, dtype: torch.dtype | None = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobians of both hidden layers of ``model`` (anything with ``fc1``, ``fc2`` Linear layers).

    ``x: [B, 784] -> (J1, J2): [B, n, 784]`` each, on the model's device. ``dtype`` is the
    compute dtype (float32 by default; float64 for tight checks; None = the weights' dtype).
    """
    for name in ("fc1", "fc2"):
        if not isinstance(getattr(model, name, None), nn.Linear):
            raise ValueError(f"model={type(model).__name__} has no nn.Linear layer {name!r}: expected fc1 and fc2")
    fc1, fc2 = model.fc1, model.fc2
    b1 = fc1.bias if fc1.bias is not None else torch.zeros_like(fc1.weight[:, 0])
    b2 = fc2.bias if fc2.bias is not None else torch.zeros_like(fc2.weight[:, 0])
    return jacobians_from_weights(fc1.weight, b1, fc2.weight, b2, x, dtype=dtype)
