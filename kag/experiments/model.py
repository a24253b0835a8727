"""The paper's network: a 2-layer GELU MLP, 784 -> n -> n -> 10 (SPEC §2).

Two views of the same function:

* :class:`MLP`, an ordinary ``nn.Module`` with layers ``fc1``, ``fc2``, ``fc3``, which is what a
  user hands to the measurement library;
* *stacked parameters*, a dict of tensors with a leading seed axis ``[M, ...]`` and the pure
  function :func:`stacked_forward`, which is how the trainer runs all seeds of a width as one
  batched computation (the ``torch.func`` ensembling recipe, written out with ``bmm``).

Both are the ``mlp2`` model family's (:mod:`kag.experiments.families.mlp`), which every other family shares
its machinery with; this module keeps the paper's names for them and the width checks.
"""

from __future__ import annotations

import torch

from kag.experiments.families import MAX_WIDTH, check_width, check_widths  # noqa: F401  (the paper's names)
from kag.experiments.families.mlp import MLP, MLP2

# Version of the architecture and its initialisation (Kaiming normal, zero biases, the parameter
# order): part of every model cache key; bump it when an untrained network changes.
MODEL_VERSION = 1


def init_params(width: int, seed_generators: list[torch.Generator]) -> dict[str, torch.Tensor]:
    """Stacked initial parameters ``{name: [M, ...]}``, one independent init per generator."""
    return MLP2.init_params(check_width(width), seed_generators)


def unstack_state(params: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """The state dict of member ``i`` of stacked parameters (a CPU copy)."""
    return {name: params[name][i].detach().to("cpu").clone() for name in params}


def model_from_state(state: dict[str, torch.Tensor]) -> MLP:
    """Build an :class:`MLP` carrying ``state`` (its width is read from ``fc1.weight``)."""
    return MLP2.model_from_state(state)


def stacked_forward(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of M networks at once: ``x: [M, B, 784] -> [M, B, 10]``."""
    return MLP2.stacked_forward(params, x)
