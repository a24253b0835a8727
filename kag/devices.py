"""Which device work runs on: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:i]``."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """CUDA when available, else CPU; ``KAG_DEVICE`` overrides."""
    env = os.environ.get("KAG_DEVICE")
    if env:
        return resolve_device(env)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn ``None``/"auto"/"cpu"/"cuda[:i]" into a device, with a one-line error for bad values."""
    if device is None or device == "auto":
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a device: use auto, cpu or cuda[:index]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} is not available: this machine has no CUDA GPU (use cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported: use auto, cpu or cuda[:index]")
    return dev
