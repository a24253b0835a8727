"""The paper's network: a 2-layer GELU MLP, 784 -> n -> n -> 10 (SPEC §2).

Two views of the same function:

* :class:`MLP`, an ordinary ``nn.Module`` with layers ``fc1``, ``fc2``, ``fc3``, which is what a
  user hands to the measurement library;
* *stacked parameters*, a dict of tensors with a leading seed axis ``[M, ...]`` and the pure
  function :func:`stacked_forward`, which is how the trainer runs all seeds of a width as one
  batched computation (the ``torch.func`` ensembling recipe, written out with ``bmm``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

# Version of the architecture and its initialisation (Kaiming normal, zero biases, the parameter
# order): part of every model cache key; bump it when an untrained network changes.
MODEL_VERSION = 1
INPUT_DIM = 784
N_CLASSES = 10
PARAM_NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")


MAX_WIDTH = 65536  # far beyond the paper's 512: fc2 alone then holds 4.3e9 weights (17 GB in float32)


def check_width(width: int) -> int:
    """Return ``width`` if it is an integer in ``1..MAX_WIDTH``, else raise a one-line ``ValueError``."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width={width!r} is not allowed: the hidden width must be an integer in 1..{MAX_WIDTH}")
    return width


def check_widths(widths) -> tuple[int, ...]:
    """Return ``widths`` as a tuple if each is a valid width (:func:`check_width`) and none repeats."""
    from kag.determinants import check_distinct

    return check_distinct("widths", tuple(check_width(w) for w in widths))


class MLP(nn.Module):
    """``f(x) = W3·gelu(W2·gelu(W1·x + b1) + b2) + b3`` with exact (erf) GELU.

    Weights are Kaiming-normal, std = sqrt(2 / fan_in); biases are zero (SPEC §2 [assumed]).
    ``generator`` makes the initialisation reproducible without touching the global RNG.
    """

    def __init__(self, width: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.width = check_width(width)
        # skip_init: no throw-away default init, so the global RNG is left alone
        self.fc1 = skip_init(nn.Linear, INPUT_DIM, width)
        self.fc2 = skip_init(nn.Linear, width, width)
        self.fc3 = skip_init(nn.Linear, width, N_CLASSES)
        with torch.no_grad():
            for layer in (self.fc1, self.fc2, self.fc3):
                nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu", generator=generator)
                nn.init.zeros_(layer.bias)

    def hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the two hidden activations ``(h1, h2)`` for ``x: [B, 784]``."""
        h1 = F.gelu(self.fc1(x))
        h2 = F.gelu(self.fc2(h1))
        return h1, h2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.hidden(x)[1])


def init_params(width: int, seed_generators: list[torch.Generator]) -> dict[str, torch.Tensor]:
    """Stacked initial parameters ``{name: [M, ...]}``, one independent init per generator."""
    models = [MLP(width, generator=g) for g in seed_generators]
    return stack_states([m.state_dict() for m in models])


def stack_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack M state dicts of the same width into ``{name: [M, ...]}``."""
    return {name: torch.stack([s[name].detach() for s in states]).contiguous() for name in PARAM_NAMES}


def unstack_state(params: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """The state dict of member ``i`` of stacked parameters (a CPU copy)."""
    return {name: params[name][i].detach().to("cpu").clone() for name in params}


def model_from_state(state: dict[str, torch.Tensor]) -> MLP:
    """Build an :class:`MLP` carrying ``state`` (its width is read from ``fc1.weight``)."""
    model = MLP(int(state["fc1.weight"].shape[0]))
    model.load_state_dict(state)
    return model


def stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of M networks at once: ``x: [M, B, 784] -> [M, B, 10]``."""
    h = F.gelu(torch.baddbmm(params["fc1.bias"].unsqueeze(1), x, params["fc1.weight"].transpose(1, 2)))
    h = F.gelu(torch.baddbmm(params["fc2.bias"].unsqueeze(1), h, params["fc2.weight"].transpose(1, 2)))
    return torch.baddbmm(params["fc3.bias"].unsqueeze(1), h, params["fc3.weight"].transpose(1, 2))
