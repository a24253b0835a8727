"""Where kag keeps its files: ``$KAG_HOME`` (default: the per-user cache, ``~/.cache/kag``).

Each function checks its directory before anything is read or written there: a path that is (or
lies under) a regular file raises :class:`NotADirectoryError` with a one-line message naming it.
"""

from __future__ import annotations

import os
from pathlib import Path


def usable_directory(path: str | Path, label: str) -> Path:
    """``path`` if it is a directory or could be created as one, else :class:`NotADirectoryError`
    whose message names ``label`` (e.g. ``"KAG_HOME=/x/y"``) and the file in the way."""
    path = Path(path)
    for where in (path, *path.parents):
        if where.exists():
            if where.is_dir():
                return path
            kind = "a file" if where.is_file() else "not a directory"
            if where == path:
                raise NotADirectoryError(f"{label} is {kind}: it must be a directory "
                                         "(or a path that does not exist yet)")
            raise NotADirectoryError(f"{label} cannot be a directory: {where} is {kind}")
    return path


def kag_home() -> Path:
    """Root of everything kag writes: ``$KAG_HOME``, else ``$XDG_CACHE_HOME/kag``, else ``~/.cache/kag``."""
    env = os.environ.get("KAG_HOME")
    if env:
        return usable_directory(Path(env).expanduser(), f"KAG_HOME={env}")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return usable_directory(base / "kag", f"the kag home {base / 'kag'} (set KAG_HOME to use another)")


def data_dir() -> Path:
    """Data directory (MNIST lives in torchvision's layout under it): ``$KAG_DATA`` or ``<home>/data``."""
    env = os.environ.get("KAG_DATA")
    if env:
        return usable_directory(Path(env).expanduser(), f"KAG_DATA={env}")
    home = kag_home()
    return usable_directory(home / "data", f"the data directory {home / 'data'} (set KAG_DATA to use another)")


def store_dir() -> Path:
    """Content-addressed store of models and metric tables: ``<home>/store``."""
    home = kag_home()
    return usable_directory(home / "store", f"the store {home / 'store'}")


def writable_store() -> Path:
    """:func:`store_dir`, created if missing; an ``OSError`` with a one-line message naming KAG_HOME when it
    is a file or cannot be written (checked where a run starts, before anything is trained)."""
    path = store_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"the store {path} cannot be written ({exc.strerror or exc}): point KAG_HOME at a "
                      "writable directory") from None
    return path
