"""JSON files of the store: parsed within limits, and sealed so that any edit is caught.

Two jobs, both about not trusting a file:

* :func:`parse_bounded` parses JSON with limits a hostile file cannot get around: a size cap
  checked before reading, at most :data:`MAX_DEPTH` levels of nesting, integers of at most
  :data:`MAX_INT_DIGITS` digits, finite numbers only (``NaN``, ``Infinity`` and ``1e400`` are
  refused; the store writes a missing value as ``null``), and at most one array or object per
  :data:`BYTES_PER_CONTAINER` bytes, which bounds the memory of the parse to about ten times the
  file's size (an empty list costs 56 bytes of memory for 3 of text).
* :func:`seal` writes a record as canonical JSON with the SHA-256 of all its other fields inside
  (:data:`SEAL`); :func:`unseal` accepts only bytes that are exactly that canonical form with the
  right digest. So every byte is covered: a changed value breaks the digest, and a change that
  keeps the values (spacing, key order, a duplicated key) breaks the canonical form.

A seal catches edits, not forgeries: whoever can recompute a SHA-256 can write a new valid seal.
Archives from elsewhere are trusted through a digest the repository pins (``kag cache pull``).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

SEAL = "entry_sha256"
MAX_DEPTH = 32  # the store's deepest record (a metric table's variant rows) nests 7 levels
MAX_INT_DIGITS = 20  # any seed, width, epoch or count fits in 20 digits (2**64 has 20)
BYTES_PER_CONTAINER = 16  # a table row (11 values) takes about 100 bytes; replicate lists more
SMALL_FILE = 1 << 16  # below this size the container density is not checked (the memory is negligible)


class BadJSON(ValueError):
    """A file that is not JSON within the limits, or not sealed: ``where`` (the file) and ``reason``."""

    def __init__(self, where: str | Path, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is not finite")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text.lstrip('-')):,} digits (at most {MAX_INT_DIGITS} are allowed)")
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number the store writes (it writes a missing value as null)")


def _depth(obj: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def parse_bounded(raw: bytes, where: str | Path) -> Any:
    """Parse ``raw`` (the bytes of file ``where``) within the module's limits; :class:`BadJSON` naming
    ``where`` and what was over a limit otherwise."""
    containers = raw.count(b"[") + raw.count(b"{")
    if len(raw) > SMALL_FILE and containers > len(raw) // BYTES_PER_CONTAINER:
        raise BadJSON(where, f"{containers:,} arrays or objects in {len(raw):,} bytes, more than one per "
                      f"{BYTES_PER_CONTAINER} bytes: not a file the store writes")
    try:
        obj = json.loads(raw.decode("utf-8"), parse_float=_finite_float, parse_int=_bounded_int,
                         parse_constant=_no_constant)
    except RecursionError:
        raise BadJSON(where, f"nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise BadJSON(where, "not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, or one of the number checks above
        raise BadJSON(where, f"not JSON within the store's limits ({str(exc).splitlines()[0][:200]})") from None
    if _depth(obj) > MAX_DEPTH:
        raise BadJSON(where, f"nested deeper than {MAX_DEPTH} levels")
    return obj


def read_bounded(path: Path, max_bytes: int) -> Any:
    """Parse the JSON file ``path`` if it has at most ``max_bytes`` bytes (checked before reading)."""
    return parse_bounded(read_limited(path, max_bytes), path)


def read_limited(path: Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it has at most ``max_bytes`` of them (checked before reading)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise BadJSON(path, f"{size:,} bytes, over the limit of {max_bytes:,} for it")
    return path.read_bytes()


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _digest(record: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in record.items() if k != SEAL})).hexdigest()


def seal(record: dict[str, Any]) -> bytes:
    """The bytes to write for ``record``: canonical JSON with the digest of its other fields as :data:`SEAL`.
    A non-finite number is a ValueError (write a missing value as ``None``)."""
    body = {k: v for k, v in record.items() if k != SEAL}
    return _canonical({**body, SEAL: _digest(body)})


def unseal(raw: bytes, where: str | Path) -> dict[str, Any]:
    """The record in ``raw`` if it is exactly what :func:`seal` writes; BadJSON saying what is wrong otherwise."""
    record = parse_bounded(raw, where)
    if not isinstance(record, dict):
        raise BadJSON(where, "not a JSON object")
    if SEAL not in record:
        raise BadJSON(where, f"not sealed (no {SEAL}; written before entries were sealed, or edited): "
                      "`kag cache seal` seals the entries of your own store")
    if _digest(record) != record[SEAL]:
        raise BadJSON(where, f"its fields do not match its {SEAL} (the file was edited)")
    if _canonical(record) != raw:
        raise BadJSON(where, "not in the canonical form it was written in (the file was edited)")
    return record
