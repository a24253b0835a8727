"""What a model entry's weights file must be: parsed without loading, checked against the manifest.

A safetensors file is 8 bytes of header length, a JSON header and the raw tensors.
:func:`read_header` checks that structure (known dtypes, contiguous in-bounds offsets, no trailing
bytes) without reading a tensor, so a pickle, a truncated or a padded file fails first.
:func:`expected_tensors` derives from a manifest the exact tensors its model has (the family's
parameter shapes at the recorded width, init and final, plus the timeline's first-layer snapshots),
so a file with the right names but the wrong shapes is caught before anything is served, and an
archive's weights may be no larger than the model its manifest describes.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path
from typing import Any, Mapping

from kag.experiments.sealed_json import BadJSON, parse_bounded

MAX_HEADER_BYTES = 1 << 20  # 1,000 checkpoints x a few tensors x ~100 bytes of header each
DTYPE = "F32"  # kag stores every tensor in float32
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


def expected_tensors(manifest: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` of the model a manifest describes; ValueError naming the field that
    does not describe a model this kag can train (unknown family, width or epochs beyond the limits)."""
    from kag.experiments.config import TrainConfig
    from kag.experiments.families import get_family
    from kag.experiments.train import check_train_config

    family = get_family(manifest.get("family"))
    width = family.check_width(manifest.get("width"))
    recorded = manifest.get("train_config")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    if not isinstance(recorded, dict) or set(recorded) - known:
        raise ValueError(f"train_config={str(recorded)[:80]!r} is not a training configuration: expected the fields "
                         f"{', '.join(sorted(known))}")
    try:
        config = check_train_config(TrainConfig(**recorded))
    except TypeError as exc:
        raise ValueError(f"train_config is malformed ({exc})") from None
    shapes = family.param_shapes(width)
    tensors = {f"{part}.{name}": tuple(shape) for part in ("init", "final") for name, shape in shapes.items()}
    if manifest.get("regime") in config.timeline_regimes:
        for epoch in config.checkpoint_epochs():
            tensors.update({f"ckpt.{epoch}.{name}": tuple(shapes[name]) for name in family.checkpoint_params()})
    return tensors


def weights_bytes(tensors: Mapping[str, tuple[int, ...]]) -> int:
    """The most bytes a weights file holding ``tensors`` (in float32) can take, header included."""
    return 8 + MAX_HEADER_BYTES + sum(math.prod(shape) for shape in tensors.values()) * DTYPE_BYTES[DTYPE]


def check_tensors(header: Mapping[str, tuple[str, tuple[int, ...]]], manifest: Mapping[str, Any]) -> None:
    """ValueError naming the first tensor of ``header`` that the manifest's model does not have, lacks,
    or has with another shape or dtype."""
    want = expected_tensors(manifest)
    extra, missing = sorted(set(header) - set(want)), sorted(set(want) - set(header))
    if extra or missing:
        first = f"unexpected {extra[0]!r}" if extra else f"missing {missing[0]!r}"
        raise ValueError(f"its tensors do not match the model the manifest describes ({first}; {len(want)} "
                         f"tensors expected, {len(header)} found)")
    for name, shape in want.items():
        dtype, have = header[name]
        if have != shape or dtype != DTYPE:
            raise ValueError(f"tensor {name!r} is {dtype} {list(have)}; the model the manifest describes has "
                             f"{DTYPE} {list(shape)}")
