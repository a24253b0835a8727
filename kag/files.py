"""Files written whole or not at all: a temporary in the same folder, renamed into place.

One helper for every writer of the package (the store's entries, the data files, the reports), so a
reader never sees a half-written file and a failed write leaves no temporary behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: Path | str, data: bytes | Iterable[bytes], *, mode: int | None = 0o644,
                     prefix: str | None = None) -> None:
    """Write ``data`` (bytes, or chunks of bytes written in order) to ``path`` through a temporary in
    the same folder (so the rename is atomic), then ``os.replace`` it into place.

    ``mode``: the file's permissions (``None`` keeps the temporary's private 0o600); ``prefix``: the
    temporary's name prefix (default ``.<name>.``), e.g. one that names its owner. On any failure
    the temporary is removed and the error raised; ``path`` is then unchanged."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix or f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in ((data,) if isinstance(data, (bytes, bytearray, memoryview)) else data):
                f.write(chunk)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
