"""Where kag keeps its files: ``$KAG_HOME`` (default: the per-user cache, ``~/.cache/kag``)."""

from __future__ import annotations

import os
from pathlib import Path


def kag_home() -> Path:
    """Root of everything kag writes: ``$KAG_HOME``, else ``$XDG_CACHE_HOME/kag``, else ``~/.cache/kag``."""
    env = os.environ.get("KAG_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "kag"


def data_dir() -> Path:
    """Data directory (MNIST lives in torchvision's layout under it): ``$KAG_DATA`` or ``<home>/data``."""
    env = os.environ.get("KAG_DATA")
    return Path(env).expanduser() if env else kag_home() / "data"


def store_dir() -> Path:
    """Content-addressed store of models and metric tables: ``<home>/store``."""
    return kag_home() / "store"
