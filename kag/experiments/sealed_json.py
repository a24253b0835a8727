"""JSON files of the store: parsed within limits, and sealed so that any edit is caught.

Two jobs, both about not trusting a file:

* :func:`parse_bounded` parses JSON with limits a hostile file cannot get around: a size cap
  checked before reading, at most :data:`MAX_DEPTH` levels of nesting, integers of at most
  :data:`MAX_INT_DIGITS` digits, finite numbers only (``NaN``, ``Infinity`` and ``1e400`` are
  refused; the store writes a missing value as ``null``), and a parse whose memory, estimated from
  the number of values, objects and keys before parsing, stays under :data:`MAX_PARSE_BYTES` (text
  can cost 20 times its size as Python objects: an empty list is 56 bytes for 3 of text).
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
MAX_PARSE_BYTES = 128 << 20  # a 5 MB table is estimated at about 45 MB
SMALL_FILE = 1 << 16  # below this size the estimate is not made (the memory is negligible)
# Upper bounds of the memory one token costs once parsed (CPython, 64-bit), for the estimate:
VALUE_BYTES = 56  # a short string or a float, and its slot in a list (a separating comma marks each value)
CONTAINER_BYTES = 64  # an empty list or dict
KEY_BYTES = 96  # a key string and its dict entry (a colon marks each key)
TEXT_BYTES = 3  # the bytes, their decoded text and the parser's working copy


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
    """Nesting depth of parsed JSON, without recursion and in memory proportional to the depth (a stack of
    iterators: one per open container), stopping once it exceeds :data:`MAX_DEPTH`."""
    def children(node: Any) -> Any:
        return iter(node.values() if isinstance(node, dict) else node)

    if not isinstance(obj, (dict, list)):
        return 0
    stack, deepest = [children(obj)], 1
    while stack:
        for child in stack[-1]:
            if isinstance(child, (dict, list)):
                stack.append(children(child))
                deepest = max(deepest, len(stack))
                if deepest > MAX_DEPTH:
                    return deepest
                break
        else:
            stack.pop()
    return deepest


def parse_cost(raw: bytes) -> int:
    """An upper bound on the memory parsing ``raw`` takes, from counts of its separators (strings that
    hold separators make it larger, never smaller)."""
    containers = raw.count(b"[") + raw.count(b"{")
    return (VALUE_BYTES * raw.count(b",") + CONTAINER_BYTES * containers + KEY_BYTES * raw.count(b":")
            + TEXT_BYTES * len(raw))


def parse_bounded(raw: bytes, where: str | Path) -> Any:
    """Parse ``raw`` (the bytes of file ``where``) within the module's limits; :class:`BadJSON` naming
    ``where`` and what was over a limit otherwise."""
    if len(raw) > SMALL_FILE:
        cost = parse_cost(raw)
        if cost > MAX_PARSE_BYTES:
            raise BadJSON(where, f"parsing its {len(raw):,} bytes would take about {cost >> 20:,} MB of memory, more "
                          f"than the {MAX_PARSE_BYTES >> 20} MB any file the store writes needs")
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
        raise BadJSON(where, f"not sealed (no {SEAL}: written before entries were sealed, or edited)")
    if _digest(record) != record[SEAL]:
        raise BadJSON(where, f"its fields do not match its {SEAL} (the file was edited)")
    if _canonical(record) != raw:
        raise BadJSON(where, "not in the canonical form it was written in (the file was edited)")
    return record
