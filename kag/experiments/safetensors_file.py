"""The structure of a safetensors file, checked without reading a tensor.

A safetensors file is 8 bytes of header length, a JSON header and the raw tensors. :func:`read_header`
checks that structure (known dtypes, contiguous in-bounds offsets, no trailing bytes), so a pickle, a
truncated or a padded file fails before any tensor is loaded. Used for model weights
(:mod:`kag.experiments.weights_file`) and saved training states (:mod:`kag.experiments.resume`).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from kag.experiments.sealed_json import BadJSON, parse_bounded

MAX_HEADER_BYTES = 1 << 20  # 1,000 checkpoints x a few tensors x ~100 bytes of header each
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def read_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{tensor name: (dtype, shape)}`` of a safetensors file; ValueError saying what is wrong."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"not a safetensors file: {size} bytes, shorter than its 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise ValueError(f"not a safetensors file: header length {n} exceeds the file ({size} bytes) or the "
                             f"limit of {MAX_HEADER_BYTES:,}")
        try:
            header = parse_bounded(f.read(n), "its header")
        except BadJSON as exc:
            raise ValueError(f"not a safetensors file: {exc}") from None
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file: its header is not a JSON object")
    end, spans, tensors = 0, [], {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(t, dict) or t.get("dtype") not in DTYPE_BYTES:
            raise ValueError(f"not a safetensors file: tensor {name!r} has no known dtype")
        shape, offsets = t.get("shape"), t.get("data_offsets")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)):
            raise ValueError(f"not a safetensors file: tensor {name!r} has a malformed shape or offsets")
        if offsets[1] - offsets[0] != math.prod(shape) * DTYPE_BYTES[t["dtype"]] or offsets[0] < 0:
            raise ValueError(f"not a safetensors file: tensor {name!r} has offsets that do not match its shape")
        spans.append(tuple(offsets))
        end = max(end, offsets[1])
        tensors[name] = (t["dtype"], tuple(shape))
    spans.sort()
    if any(a[1] != b[0] for a, b in zip(spans, spans[1:])) or (spans and spans[0][0] != 0):
        raise ValueError("not a safetensors file: its tensors overlap or leave gaps")
    if 8 + n + end != size:
        raise ValueError(f"not a safetensors file: header describes {8 + n + end} bytes, the file has {size}")
    return tensors
