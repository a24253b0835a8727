"""Argument checks at the door: every public call of the math and the experiments checks its inputs
here, and a bad value is one line that names it and what is allowed (never a traceback from deep
inside a computation)."""

from __future__ import annotations

import operator

import torch

from kag.discovery import first_repeat


def chunk_bytes(budgets: dict[str, int], device: torch.device) -> int:
    """The memory budget of one chunk on ``device`` (its type's entry; CPU's for unknown types)."""
    return budgets.get(device.type, budgets["cpu"])


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer ``>= minimum``, else a one-line ValueError."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name}={value!r} is not allowed: expected an integer >= {minimum}") from None
    if value < minimum:
        raise ValueError(f"{name}={value} is not allowed: expected an integer >= {minimum}")
    return value


def check_distinct(name: str, values: tuple) -> tuple:
    """Return ``values`` if there is at least one and none repeats, else a one-line ValueError
    (``name`` is the plural, e.g. "seeds")."""
    if not values:
        raise ValueError(f"{name}=() is not allowed: give at least one")
    repeated = first_repeat(values)
    if repeated is not None:
        one = name.removesuffix("s")
        raise ValueError(f"{name}={list(values)} repeat {one} {repeated}: each {one} may appear once")
    return values


def check_jacobian(J: torch.Tensor, name: str = "J") -> torch.Tensor:
    """``J`` must be a finite floating tensor ``[B, n, m]``; returns it unchanged."""
    if not isinstance(J, torch.Tensor):
        raise ValueError(f"{name} must be a tensor [B, n, d], got {type(J).__name__}")
    if J.dim() != 3:
        raise ValueError(f"{name} has shape {list(J.shape)}: expected a 3-D tensor [B, n, d]")
    if not J.dtype.is_floating_point:
        raise ValueError(f"{name} has dtype {J.dtype}: expected a floating-point tensor")
    if J.numel() == 0:
        raise ValueError(f"{name} has shape {list(J.shape)}: it must not be empty")
    if not torch.isfinite(torch.stack(torch.aminmax(J))).all():  # NaN propagates; 10× cheaper than isfinite(J)
        raise ValueError(f"{name} contains NaN or Inf: Jacobians must be finite")
    return J


def check_indices(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows``/``cols`` must be integer ``[S, k]`` of equal shape, within ``0..n_rows-1`` / ``0..n_cols-1``."""
    out = []
    for name, idx, size in (("rows", rows, n_rows), ("cols", cols, n_cols)):
        idx = torch.as_tensor(idx)
        if idx.dtype.is_floating_point or idx.dtype == torch.bool or idx.is_complex():
            raise ValueError(f"{name} has dtype {idx.dtype}: expected integer indices")
        if idx.dim() != 2 or idx.shape[0] < 1 or idx.shape[1] < 1:
            raise ValueError(f"{name} has shape {list(idx.shape)}: expected [S, k] with S, k >= 1")
        bad = idx[(idx < 0) | (idx >= size)]
        if bad.numel():
            raise ValueError(f"{name} contains {int(bad[0])}: indices must be in 0..{size - 1}")
        out.append(idx.to(torch.int64))
    if out[0].shape != out[1].shape:
        raise ValueError(f"rows has shape {list(out[0].shape)} but cols has {list(out[1].shape)}: they must match")
    return out[0], out[1]
