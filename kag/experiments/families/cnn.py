"""A small GELU CNN for 28x28 images: two strided convolutions and a hidden fc layer (``mnist-cnn``).

``conv1`` 1 -> 4 channels and ``conv2`` 4 -> 8 channels (5x5 kernels, stride 2, padding 2:
28x28 -> 14x14 -> 7x7), then ``fc1`` 392 -> n and the readout ``fc2`` n -> 10, GELU after every
hidden layer; Kaiming-normal weights, zero biases, as the MLPs. The width n is ``fc1``'s. Measured
layers: L1 = conv1 (784 units: channel x row x column), L2 = conv2 (392 units), L3 = fc1 (n units).

A convolution is linear, so its Jacobian is a fixed matrix (the convolution applied to the
identity basis), and the hidden Jacobians follow the MLP chain ``J_l = diag(σ'(z_l)) A_l J_{l-1}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from kag.experiments.families import N_CLASSES, ModelFamily, stacked_linear
from kag.jacobians import full_float32_precision, gelu_derivative

SIDE = 28
CHANNELS = (4, 8)
KERNEL, STRIDE, PADDING = 5, 2, 2
SIDES = (14, 7)  # spatial side after conv1 and conv2
CONV = dict(stride=STRIDE, padding=PADDING)


class SmallCNN(nn.Module):
    """``x: [B, 784] -> logits [B, 10]`` (see the module docstring)."""

    def __init__(self, width: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        c1, c2 = CHANNELS
        self.conv1 = skip_init(nn.Conv2d, 1, c1, KERNEL, **CONV)
        self.conv2 = skip_init(nn.Conv2d, c1, c2, KERNEL, **CONV)
        self.fc1 = skip_init(nn.Linear, c2 * SIDES[1] ** 2, width)
        self.fc2 = skip_init(nn.Linear, width, N_CLASSES)
        with torch.no_grad():
            for layer in (self.conv1, self.conv2, self.fc1, self.fc2):
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The three hidden activations, flattened: ``[B, 784]``, ``[B, 392]``, ``[B, n]``."""
        h1 = F.gelu(self.conv1(x.view(-1, 1, SIDE, SIDE)))
        h2 = F.gelu(self.conv2(h1))
        h3 = F.gelu(self.fc1(h2.flatten(1)))
        return h1.flatten(1), h2.flatten(1), h3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.hidden(x)[2])


def conv_matrix(weight: torch.Tensor, in_channels: int, side: int) -> torch.Tensor:
    """The convolution with ``weight`` (no bias) as a matrix ``[out units, in units]`` (units: channel x row x column)."""
    n_in = in_channels * side * side
    basis = torch.eye(n_in, dtype=weight.dtype, device=weight.device).view(n_in, in_channels, side, side)
    return F.conv2d(basis, weight, **CONV).flatten(1).T


class CNNFamily(ModelFamily):
    name = "cnn"
    version = 1
    description = "a small GELU CNN: conv 1->4 and 4->8 (5x5, stride 2), fc 392 -> n -> 10"
    layers = ("L1", "L2", "L3")

    def param_shapes(self, width: int) -> dict[str, tuple[int, ...]]:
        c1, c2 = CHANNELS
        return {"conv1.weight": (c1, 1, KERNEL, KERNEL), "conv1.bias": (c1,),
                "conv2.weight": (c2, c1, KERNEL, KERNEL), "conv2.bias": (c2,),
                "fc1.weight": (width, c2 * SIDES[1] ** 2), "fc1.bias": (width,),
                "fc2.weight": (N_CLASSES, width), "fc2.bias": (N_CLASSES,)}

    def checkpoint_params(self) -> tuple[str, ...]:
        return ("conv1.weight", "conv1.bias")

    def module(self, width: int, generator: torch.Generator | None = None) -> nn.Module:
        return SmallCNN(self.check_width(width), generator=generator)

    def width_of(self, state: dict[str, torch.Tensor]) -> int:
        return int(state["fc1.weight"].shape[0])

    def unit_counts(self, width: int) -> dict[str, int]:
        c1, c2 = CHANNELS
        return {"L1": c1 * SIDES[0] ** 2, "L2": c2 * SIDES[1] ** 2, "L3": width}

    def support(self, width: int, layer: str) -> torch.Tensor | None:
        """Receptive fields of the conv layers (a unit sees the pixels its kernels reach); fc1 sees all."""
        self.check_layer(layer)
        if layer == "L3":
            return None
        c1, c2 = CHANNELS
        ones1 = torch.ones(c1, 1, KERNEL, KERNEL, dtype=torch.float64)
        field = conv_matrix(ones1, 1, SIDE) != 0  # [784 units, 784 pixels]
        if layer == "L2":
            reach = conv_matrix(torch.ones(c2, c1, KERNEL, KERNEL, dtype=torch.float64), c1, SIDES[0]) != 0
            field = (reach.double() @ field.double()) != 0  # [392, 784]
        return field

    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        M, B = x.shape[:2]
        c1, c2 = CHANNELS
        h = x.transpose(0, 1).reshape(B, M, SIDE, SIDE)  # member m's images are input channel m (groups = M)
        h = F.gelu(F.conv2d(h, params["conv1.weight"].reshape(M * c1, 1, KERNEL, KERNEL),
                            params["conv1.bias"].reshape(M * c1), groups=M, **CONV))
        h = F.gelu(F.conv2d(h, params["conv2.weight"].reshape(M * c2, c1, KERNEL, KERNEL),
                            params["conv2.bias"].reshape(M * c2), groups=M, **CONV))
        h = h.reshape(B, M, c2 * SIDES[1] ** 2).transpose(0, 1)  # [M, B, 392]
        h = F.gelu(stacked_linear(params, "fc1", h))
        return stacked_linear(params, "fc2", h)

    def layer_jacobians(self, state: dict[str, torch.Tensor], x: torch.Tensor, layers: Sequence[str],
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        wanted = {self.check_layer(layer) for layer in layers}
        deepest = max(self.layers.index(layer) for layer in wanted) + 1
        c1, _ = CHANNELS
        p = {name: t.detach().to(x.device, dtype) for name, t in state.items()}
        out: dict[str, torch.Tensor] = {}
        with torch.no_grad(), full_float32_precision():
            z = F.conv2d(x.detach().to(dtype).view(-1, 1, SIDE, SIDE), p["conv1.weight"], p["conv1.bias"], **CONV)
            J = gelu_derivative(z.flatten(1))[:, :, None] * conv_matrix(p["conv1.weight"], 1, SIDE)
            out["L1"] = J
            if deepest >= 2:
                z = F.conv2d(F.gelu(z), p["conv2.weight"], p["conv2.bias"], **CONV)
                J = torch.matmul(conv_matrix(p["conv2.weight"], c1, SIDES[0]), J).mul_(
                    gelu_derivative(z.flatten(1))[:, :, None])
                out["L2"] = J
            if deepest >= 3:
                z = torch.addmm(p["fc1.bias"], F.gelu(z).flatten(1), p["fc1.weight"].T)
                out["L3"] = torch.matmul(p["fc1.weight"], J).mul_(gelu_derivative(z)[:, :, None])
        return {layer: out[layer] for layer in wanted}


SMALL_CNN = CNNFamily()
FAMILIES_HERE = (SMALL_CNN,)
