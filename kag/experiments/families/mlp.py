"""GELU MLPs of any depth: ``784 -> n -> ... -> n -> 10`` (the paper's network is depth 2), and on other inputs.

``mlp2`` is :class:`kag.experiments.model.MLP` (the depth-2 :class:`DeepMLP`, SPEC §2); ``mlp4`` is the 4-hidden-layer
network of the ``mnist-deep`` study, ``mlp1-3d`` the one-hidden-layer network on 3 inputs of the ``xor3d`` study (the
Freedman-Mulligan setting), all initialised the same way (Kaiming normal layer by layer, zero biases). The
hidden layers are measured by the closed-form chain ``J_l = diag(σ'(z_l)) W_l J_{l-1}``, computed
with exactly the operations of :func:`kag.jacobians.jacobians_from_weights` (so ``mlp2``'s tables
are those of the paper's pipeline, bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from kag.experiments.families import INPUT_DIM, N_CLASSES, ModelFamily, check_width, stacked_linear
from kag.jacobians import full_float32_precision, gelu_derivative


class DeepMLP(nn.Module):
    """``depth`` hidden GELU layers of ``width`` units (``fc1`` ... ``fc{depth}``) and a linear readout
    ``fc{depth+1}``; Kaiming-normal weights (std sqrt(2 / fan_in)) drawn layer by layer, zero biases
    (:class:`kag.experiments.model.MLP` is depth 2)."""

    def __init__(self, width: int, depth: int, generator: torch.Generator | None = None, *,
                 input_dim: int = INPUT_DIM, n_outputs: int = N_CLASSES) -> None:
        super().__init__()
        sizes = [input_dim] + [width] * depth + [n_outputs]
        self.depth = depth
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            setattr(self, f"fc{i + 1}", skip_init(nn.Linear, a, b))
        with torch.no_grad():
            for layer in self.linears():
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)

    def linears(self) -> list[nn.Linear]:
        return [getattr(self, f"fc{i + 1}") for i in range(self.depth + 1)]

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every hidden activation, first layer first."""
        out, h = [], x
        for layer in self.linears()[:-1]:
            h = F.gelu(layer(h))
            out.append(h)
        return tuple(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linears()[-1](self.hidden(x)[-1])


class MLP(DeepMLP):
    """``f(x) = W3·gelu(W2·gelu(W1·x + b1) + b2) + b3`` with exact (erf) GELU: the depth-2
    :class:`DeepMLP`, layers ``fc1``, ``fc2``, ``fc3``.

    Weights are Kaiming-normal, std = sqrt(2 / fan_in); biases are zero (SPEC §2 [assumed]).
    ``generator`` makes the initialisation reproducible without touching the global RNG.
    """

    def __init__(self, width: int, generator: torch.Generator | None = None) -> None:
        super().__init__(check_width(width), 2, generator=generator)
        self.width = width


class MLPFamily(ModelFamily):
    """GELU MLPs with ``depth`` hidden layers of the same width."""

    def __init__(self, name: str, depth: int, version: int, description: str, *, input_dim: int = INPUT_DIM,
                 n_outputs: int = N_CLASSES) -> None:
        self.name, self.depth, self.version, self.description = name, depth, version, description
        self.input_dim, self.n_outputs = input_dim, n_outputs
        self.layers = tuple(f"L{i + 1}" for i in range(depth))

    def param_shapes(self, width: int) -> dict[str, tuple[int, ...]]:
        sizes = [self.input_dim] + [width] * self.depth + [self.n_outputs]
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            shapes[f"fc{i + 1}.weight"], shapes[f"fc{i + 1}.bias"] = (b, a), (b,)
        return shapes

    def checkpoint_params(self) -> tuple[str, ...]:
        return ("fc1.weight", "fc1.bias")

    def module(self, width: int, generator: torch.Generator | None = None) -> nn.Module:
        self.check_width(width)
        if self.depth == 2 and (self.input_dim, self.n_outputs) == (INPUT_DIM, N_CLASSES):
            return MLP(width, generator=generator)
        return DeepMLP(width, self.depth, generator=generator, input_dim=self.input_dim, n_outputs=self.n_outputs)

    def width_of(self, state: dict[str, torch.Tensor]) -> int:
        return int(state["fc1.weight"].shape[0])

    def unit_counts(self, width: int) -> dict[str, int]:
        return {layer: width for layer in self.layers}

    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(1, self.depth + 1):
            h = F.gelu(stacked_linear(params, f"fc{i}", h))
        return stacked_linear(params, f"fc{self.depth + 1}", h)

    def layer_jacobians(self, state: dict[str, torch.Tensor], x: torch.Tensor, layers: Sequence[str],
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        wanted = {self.check_layer(layer) for layer in layers}
        deepest = max(self.layers.index(layer) for layer in wanted) + 1
        h = x.detach().to(dtype)
        out: dict[str, torch.Tensor] = {}
        J = None
        with torch.no_grad(), full_float32_precision():
            for i in range(1, deepest + 1):
                W, b = (state[f"fc{i}.{p}"].detach().to(x.device, dtype) for p in ("weight", "bias"))
                z = torch.addmm(b, h, W.T)
                s = gelu_derivative(z)
                J = s[:, :, None] * W if J is None else torch.matmul(W, J).mul_(s[:, :, None])
                if f"L{i}" in wanted:
                    out[f"L{i}"] = J
                if i < deepest:
                    h = F.gelu(z)
        return out


MLP2 = MLPFamily("mlp2", depth=2, version=1,
                 description="the paper's 2-layer GELU MLP, 784 -> n -> n -> 10")
MLP4 = MLPFamily("mlp4", depth=4, version=1,
                 description="a 4-hidden-layer GELU MLP, 784 -> n -> n -> n -> n -> 10")
# The Freedman-Mulligan setting (arXiv 2509.12326; the xor3d study): one hidden GELU layer on 3 inputs, one output
MLP1_3D = MLPFamily("mlp1-3d", depth=1, version=1, input_dim=3, n_outputs=1,
                    description="a 1-hidden-layer GELU MLP on 3 inputs, 3 -> n -> 1")
FAMILIES_HERE = (MLP2, MLP4, MLP1_3D)
