"""Resumable training: a group's whole training state, saved now and then while it trains, so a killed
run (a preempted job, a closed laptop, the end of a session) goes on from its last save and ends with
exactly the weights, timeline and accuracy an uninterrupted run gives.

A state is one safetensors file (no pickle): the stacked parameters, AdamW's moments and step counts,
the state of every random stream (data order, augmentation), the timeline checkpoints so far and the
last epoch's loss. Its header's metadata names the training it belongs to (``identity``: a digest of
the models' cache keys, so a state is never used for another training), the epoch and seconds reached,
and a SHA-256 over every tensor. Before a byte of tensor data is read, the header is checked against
the tensors the training itself computes it must have (:func:`expected_tensors`); a state that fails
any check is not used (:class:`UnusableState`), and the training starts from its beginning.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from kag.experiments.safetensors_file import read_header

FORMAT = 1
META = "kag-training-state"
RESUME_EVERY_S = 300.0  # how often a training saves its state: at most this much work is lost to a kill
_CKPT = re.compile(r"ckpt\.(\d+)\.(\d+)\.(.+)")  # ckpt.<member>.<epoch>.<parameter>


class UnusableState(ValueError):
    """A saved training state that cannot be used (unreadable, of another training, or altered)."""


@dataclass
class TrainingState:
    """Everything a training of M stacked seeds needs to go on after ``epoch`` epochs."""

    epoch: int
    seconds: float  # training time spent up to this state, over every earlier attempt
    params: dict[str, torch.Tensor]  # stacked [M, ...]
    adam: dict[int, dict[str, torch.Tensor]]  # AdamW's per-parameter state, by parameter index
    order: list[torch.Tensor]  # each seed's data-order generator state
    augment: list[torch.Tensor]  # each seed's augmentation generator state
    checkpoints: list[dict[int, dict[str, torch.Tensor]]]  # per seed: epoch -> first-layer snapshot
    last_loss: torch.Tensor  # [M], the mean loss of the last epoch

    def tensors(self) -> dict[str, torch.Tensor]:
        """The state as flat, named CPU tensors (the file's contents)."""
        out = {f"param.{k}": v for k, v in self.params.items()}
        out.update({f"adam.{i}.{k}": v for i, s in self.adam.items() for k, v in s.items()})
        out.update({f"rng.order.{j}": g for j, g in enumerate(self.order)})
        out.update({f"rng.augment.{j}": g for j, g in enumerate(self.augment)})
        out.update({f"ckpt.{i}.{e}.{k}": v for i, c in enumerate(self.checkpoints) for e, snap in c.items()
                    for k, v in snap.items()})
        out["loss"] = self.last_loss
        return {k: v.detach().to("cpu").contiguous() for k, v in out.items()}


def expected_tensors(params: Mapping[str, torch.Tensor], n_generators: int, generator_bytes: int,
                     checkpoints: Mapping[str, tuple[int, ...]], checkpoint_epochs: set[int]
                     ) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` of every tensor a state of this training may hold: from the training's
    own stacked ``params`` (their order is AdamW's parameter index), ``n_generators`` seeds' random
    streams of ``generator_bytes`` each, and the ``checkpoints`` shapes at each of ``checkpoint_epochs``."""
    m = next(iter(params.values())).shape[0]
    out = {f"param.{k}": ("F32", tuple(v.shape)) for k, v in params.items()}
    for i, v in enumerate(params.values()):
        out.update({f"adam.{i}.exp_avg": ("F32", tuple(v.shape)), f"adam.{i}.exp_avg_sq": ("F32", tuple(v.shape)),
                    f"adam.{i}.step": ("F32", ())})
    for stream in ("order", "augment"):
        out.update({f"rng.{stream}.{j}": ("U8", (generator_bytes,)) for j in range(n_generators)})
    out.update({f"ckpt.{i}.{e}.{k}": ("F32", shape) for i in range(m) for e in checkpoint_epochs
                for k, shape in checkpoints.items()})
    out["loss"] = ("F32", (m,))
    return out


def _digest(tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def encode(state: TrainingState, identity: str) -> bytes:
    """The safetensors bytes of ``state`` for the training named ``identity``."""
    tensors = state.tensors()
    meta = {"format": FORMAT, "identity": identity, "epoch": state.epoch, "seconds": state.seconds,
            "sha256": _digest(tensors)}
    return save(tensors, metadata={META: json.dumps(meta)})


def _metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))  # read_header has bounded n and checked that it parses
    try:
        meta = json.loads(header.get("__metadata__", {}).get(META, ""))
    except (AttributeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise UnusableState("it has no kag training-state metadata")
    return meta


def read(path: Path, identity: str, expected: Mapping[str, tuple[str, tuple[int, ...]]], epochs: int,
         checkpoint_epochs: set[int]) -> TrainingState:
    """The state saved in ``path`` for the training ``identity`` of ``epochs`` epochs, whose tensors must
    be those of ``expected`` (:func:`expected_tensors`; checkpoints exactly those of ``checkpoint_epochs``
    up to the state's epoch); :class:`UnusableState` saying why not."""
    try:
        header = read_header(path)
    except (OSError, ValueError) as exc:
        raise UnusableState(str(exc)) from None
    meta = _metadata(path)
    if meta.get("format") != FORMAT or meta.get("identity") != identity:
        raise UnusableState("it belongs to another training (or another version of this format)")
    epoch, seconds = meta.get("epoch"), meta.get("seconds")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch < epochs
            and isinstance(seconds, (int, float)) and 0 <= seconds < 1e9):
        raise UnusableState(f"its epoch {epoch!r} or seconds {seconds!r} are out of range (epochs 1..{epochs - 1})")
    want = {k: v for k, v in expected.items()
            if not (m := _CKPT.fullmatch(k)) or int(m.group(2)) in checkpoint_epochs and int(m.group(2)) <= epoch}
    have = {k: (dtype, shape) for k, (dtype, shape) in header.items()}
    if have != want:
        odd = sorted(set(have) ^ set(want)) or sorted(k for k in want if have[k] != want[k])
        raise UnusableState(f"its tensors are not those of this training (first difference: {odd[0]!r})")
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise UnusableState(f"its tensors do not load ({exc})") from None
    if _digest(tensors) != meta.get("sha256"):
        raise UnusableState("its tensors do not match the digest it records (altered or damaged)")
    m = tensors["loss"].shape[0]
    n_gen = sum(k.startswith("rng.order.") for k in tensors)
    checkpoints: list[dict[int, dict[str, torch.Tensor]]] = [{} for _ in range(m)]
    adam: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        if match := _CKPT.fullmatch(name):
            checkpoints[int(match.group(1))].setdefault(int(match.group(2)), {})[match.group(3)] = t
        elif name.startswith("adam."):
            _, i, part = name.split(".", 2)
            adam.setdefault(int(i), {})[part] = t
    params = {k[len("param."):]: tensors[k] for k in expected if k.startswith("param.")}  # the training's order
    return TrainingState(
        epoch=epoch, seconds=float(seconds), params=params, adam=adam,
        order=[tensors[f"rng.order.{j}"] for j in range(n_gen)], augment=[tensors[f"rng.augment.{j}"] for j in range(n_gen)],
        checkpoints=[dict(sorted(c.items())) for c in checkpoints], last_loss=tensors["loss"])


@dataclass
class ResumeFile:
    """Where one training saves its state (:meth:`save`) and finds it again after a kill (:meth:`load`).

    ``write(path, data)`` writes a file whole or not at all (the store's owned temporaries)."""

    path: Path
    identity: str
    write: Callable[[Path, bytes], None]
    every_s: float = RESUME_EVERY_S

    def save(self, state: TrainingState) -> None:
        self.write(self.path, encode(state, self.identity))

    def load(self, expected: Mapping[str, tuple[str, tuple[int, ...]]], epochs: int,
             checkpoint_epochs: set[int]) -> tuple[TrainingState | None, str]:
        """``(state, "")`` if a usable state was saved; ``(None, why)`` with the file removed if one was
        saved but cannot be used; ``(None, "")`` if none was."""
        if not self.path.is_file():
            return None, ""
        try:
            return read(self.path, self.identity, expected, epochs, checkpoint_epochs), ""
        except UnusableState as exc:
            self.discard()
            return None, f"ignored the saved training state {self.path}: {exc}; training from the start"

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
