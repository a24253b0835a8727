"""What a model entry's weights file must be: parsed without loading, checked against the manifest.

:func:`~kag.experiments.safetensors_file.read_header` checks the file's structure without reading a
tensor, so a pickle, a truncated or a padded file fails first. :func:`expected_tensors` derives from
a manifest the exact tensors its model has (the family's parameter shapes at the recorded width,
init and final, plus the timeline's first-layer snapshots),
so a file with the right names but the wrong shapes is caught before anything is served, and an
archive's weights may be no larger than the model its manifest describes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from kag.experiments.safetensors_file import DTYPE_BYTES, MAX_HEADER_BYTES

DTYPE = "F32"  # kag stores every tensor in float32


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
