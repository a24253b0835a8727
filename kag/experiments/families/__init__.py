"""Model families: the networks a study trains and measures, each one module (issue 19).

A :class:`ModelFamily` knows everything the pipeline needs of an architecture, and nothing about
MNIST or the claims: its parameters' names and shapes (the store bounds an entry's size by them),
how to initialise one seed and how to run M seeds at once (the trainer), which hidden layers are
measured and their closed-form input Jacobians (the metric tables), and the ordinary ``nn.Module``
a user hands to :func:`kag.measure`. A new family is one module in this package that defines a
subclass and lists its instances in ``FAMILIES_HERE``: it is found by :func:`families` (every
module here is imported when a family is first asked for), and ``tests/test_families.py`` pins its
Jacobians against autograd and its batched forward against its module without being told about it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn

from kag.checks import check_distinct
from kag.discovery import first_repeat, listed_in_modules

INPUT_DIM = 784  # the families take 28x28 images, flattened and normalised (kag.experiments.data.ImageDataset.normalize)
N_CLASSES = 10

MAX_WIDTH = 65536  # far beyond the paper's 512: fc2 alone then holds 4.3e9 weights (17 GB in float32)


def check_width(width: int) -> int:
    """Return ``width`` if it is an integer in ``1..MAX_WIDTH``, else raise a one-line ``ValueError``."""
    if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width={width!r} is not allowed: the hidden width must be an integer in 1..{MAX_WIDTH}")
    return width


def check_widths(widths) -> tuple[int, ...]:
    """Return ``widths`` as a tuple if each is a valid width (:func:`check_width`) and none repeats."""
    return check_distinct("widths", tuple(check_width(w) for w in widths))


DEFAULT_FAMILY = "mlp2"  # the paper's network; its models' cache keys do not name a family


class ModelFamily(abc.ABC):
    """One architecture with a free width ``n``: what the trainer, the store and the metric tables ask of it."""

    name: str
    version: int  # part of the cache key of every model of the family (except mlp2's, see model_key)
    description: str
    layers: tuple[str, ...]  # the measured hidden layers, input side first ("L1", "L2", ...)
    input_dim: int = INPUT_DIM  # inputs per example (784: a flattened 28 x 28 image)
    n_outputs: int = N_CLASSES  # outputs per example (10 logits; 1 for a regression target)

    def check_width(self, width: int) -> int:
        return check_width(width)

    @abc.abstractmethod
    def param_shapes(self, width: int) -> dict[str, tuple[int, ...]]:
        """Every parameter's name and shape at ``width``, in initialisation order."""

    @abc.abstractmethod
    def checkpoint_params(self) -> tuple[str, ...]:
        """The parameters the training timeline keeps (those layer L1's Jacobian needs)."""

    @abc.abstractmethod
    def module(self, width: int, generator: torch.Generator | None = None) -> nn.Module:
        """A freshly initialised network of ``width`` (reproducible from ``generator``)."""

    @abc.abstractmethod
    def stacked_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Outputs of M networks at once: stacked parameters ``{name: [M, ...]}``, ``x: [M, B, input_dim] ->
        [M, B, n_outputs]`` (``[M, B, 784] -> [M, B, 10]`` for the image families)."""

    @abc.abstractmethod
    def layer_jacobians(self, state: dict[str, torch.Tensor], x: torch.Tensor, layers: Sequence[str],
                        dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Closed-form Jacobians ``{layer: [B, units, input_dim]}`` of the hidden layers ``layers`` at ``x: [B, input_dim]``,
        in ``dtype`` on ``x``'s device. ``state`` may hold only :meth:`checkpoint_params` when ``layers == ["L1"]``."""

    def units(self, width: int, layer: str) -> int:
        """How many hidden units layer ``layer`` has at ``width``."""
        return self.unit_counts(width)[self.check_layer(layer)]

    @abc.abstractmethod
    def unit_counts(self, width: int) -> dict[str, int]:
        """Units of every measured layer at ``width``."""

    def support(self, width: int, layer: str) -> torch.Tensor | None:
        """Where layer ``layer``'s Jacobian can be non-zero, ``[units, input_dim]`` bool (each unit's receptive
        field), or None for a dense layer (every unit sees every pixel). For ``sampling="support"``."""
        self.check_layer(layer)
        return None

    # -- derived -----------------------------------------------------------------------------------------
    def check_layer(self, layer: str) -> str:
        if layer not in self.layers:
            raise ValueError(f"layer={layer!r} is not a layer of the {self.name} family: choose one of "
                             f"{', '.join(self.layers)}")
        return layer

    def layer_jacobian(self, state: dict[str, torch.Tensor], x: torch.Tensor, layer: str,
                       dtype: torch.dtype) -> torch.Tensor:
        """The Jacobian ``[B, units, input_dim]`` of one hidden layer (see :meth:`layer_jacobians`)."""
        return self.layer_jacobians(state, x, [self.check_layer(layer)], dtype)[layer]

    def init_state(self, width: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The untrained parameters of one network."""
        return {k: v.detach() for k, v in self.module(width, generator).state_dict().items()}

    def init_params(self, width: int, generators: Sequence[torch.Generator]) -> dict[str, torch.Tensor]:
        """Stacked initial parameters ``{name: [M, ...]}``, one independent init per generator."""
        states = [self.init_state(width, g) for g in generators]
        return {name: torch.stack([s[name] for s in states]).contiguous() for name in self.param_shapes(width)}

    def model_from_state(self, state: dict[str, torch.Tensor]) -> nn.Module:
        """The ``nn.Module`` carrying ``state`` (its width read from the shapes)."""
        model = self.module(self.width_of(state))
        model.load_state_dict(state)
        return model

    @abc.abstractmethod
    def width_of(self, state: dict[str, torch.Tensor]) -> int:
        """The width of the network whose parameters are ``state``."""

    def n_params(self, width: int) -> int:
        return sum(_numel(s) for s in self.param_shapes(width).values())

    def check_state(self, state: dict[str, torch.Tensor], width: int, what: str = "state") -> None:
        """One-line ValueError unless ``state`` holds exactly this family's parameters at ``width``, shapes included."""
        want = self.param_shapes(width)
        if set(state) != set(want):
            raise ValueError(f"{what} holds {sorted(state)}: a {self.name} network of width {width} has {sorted(want)}")
        for name, shape in want.items():
            if tuple(state[name].shape) != tuple(shape):
                raise ValueError(f"{what}: {name} has shape {list(state[name].shape)}, a {self.name} network of "
                                 f"width {width} has {list(shape)}")


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def by_depth(layers) -> list[str]:
    """Layer names ("L1", "L2", ..., "L10") in depth order, input side first."""
    return sorted(layers, key=lambda name: (len(name), name))


_FOUND: dict[str, "ModelFamily"] = {}


def families() -> dict[str, "ModelFamily"]:
    """Every family, by name: the ``FAMILIES_HERE`` of every module of this package (found once)."""
    if not _FOUND:
        found = listed_in_modules(__name__, __path__, "FAMILIES_HERE")
        repeated = first_repeat(family.name for family in found)
        if repeated is not None:
            raise RuntimeError(f"two model families are named {repeated!r}")
        _FOUND.update({f.name: f for f in sorted(found, key=lambda f: (f.name != DEFAULT_FAMILY, f.name))})
    return _FOUND


def get_family(name: str | None = None) -> ModelFamily:
    """The family ``name`` (None: the paper's ``mlp2``); a one-line ValueError naming the choices if unknown."""
    name = name or DEFAULT_FAMILY
    known = families()
    if name not in known:
        raise ValueError(f"family={name!r} is unknown: choose one of {', '.join(known)}")
    return known[name]


def stacked_linear(params: dict[str, torch.Tensor], name: str, h: torch.Tensor) -> torch.Tensor:
    """``h @ W.T + b`` for M stacked members: ``h: [M, B, in] -> [M, B, out]``."""
    return torch.baddbmm(params[f"{name}.bias"].unsqueeze(1), h, params[f"{name}.weight"].transpose(1, 2))
