"""Get trained models from the store, training (once, under a lock) whatever is missing.

This is the edge where data, devices, caching and training meet; the math stays pure elsewhere.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from filelock import Timeout

from kag.experiments import augment, data, model, resume, train
from kag.experiments.config import TrainConfig, regime_config
from kag.experiments.keys import key_fields, make_key
from kag.experiments.data import MNIST, load_mnist
from kag.checks import check_int
from kag.devices import resolve_device
from kag.errors import Busy
from kag.experiments.families import DEFAULT_FAMILY, get_family
from kag.experiments.store import Store, source_digest
from kag.experiments.train import check_regime, check_seeds, check_train_config, train_seeds

# The code behind a trained model. Its digest is recorded in each manifest as provenance only (and
# `kag cache ls` flags entries trained by other code); the key uses the version constants instead,
# so a comment or a renamed variable never makes a trained model unreachable.
TRAINING_SOURCES = ("kag.experiments.data", "kag.experiments.model", "kag.experiments.families", "kag.experiments.families.mlp", "kag.experiments.families.cnn", "kag.experiments.augment",
                    "kag.experiments.train", "kag.experiments.resume", "kag.experiments.pipeline")
# Read once, when this module is imported (after the modules it names): the code that runs, even if
# the files are edited while a long training run is still going.
TRAINING_DIGEST = source_digest(*TRAINING_SOURCES)
_CKPT = re.compile(r"^ckpt\.(\d+)\.(.+)$")


@dataclass
class ModelRecord:
    """One trained seed: its untrained and final weights, first-layer checkpoints, manifest and family."""

    key: str
    width: int
    seed: int
    regime: str
    init_state: dict[str, torch.Tensor]
    final_state: dict[str, torch.Tensor]
    checkpoints: dict[int, dict[str, torch.Tensor]]
    manifest: dict[str, Any]
    cached: bool
    family: str = DEFAULT_FAMILY

    @property
    def test_accuracy(self) -> float:
        """Clean test accuracy (NaN for a regression dataset, which records ``test_r2`` instead)."""
        value = self.manifest.get("test_accuracy")
        return float("nan") if value is None else float(value)


def _scores(group: train.TrainedGroup, i: int, task: str) -> dict[str, float | None]:
    """What a model's manifest records of its test performance: accuracies (clean and shifted) for a
    classifier, R² for a regression (its accuracies recorded as None, never as a number)."""
    if task == "regression":
        return {"test_accuracy": None, "shifted_test_accuracy": None, "test_r2": group.test_r2[i]}
    return {"test_accuracy": group.test_accuracy[i], "shifted_test_accuracy": group.shifted_test_accuracy[i]}


def training_versions() -> dict[str, int]:
    """The versions of every algorithm that determines a trained model (read at call time)."""
    return {"data": data.DATA_VERSION, "model": model.MODEL_VERSION, "augment": augment.AUGMENT_VERSION,
            "trainer": train.TRAINER_VERSION}


def model_key(width: int, seed: int, regime: str, config: TrainConfig, data_sha256: str,
              family: str = DEFAULT_FAMILY) -> str:
    """Cache key of one trained model: data digest, width, seed, regime, training config (as it acts on
    the regime, :func:`kag.experiments.config.regime_config`), model family and the versions of the algorithms
    behind it (never the source text). The paper's family (mlp2) is not named, so its keys are those
    of the models cached before families existed."""
    named = {} if family == DEFAULT_FAMILY else {"family": {"name": family, "version": get_family(family).version}}
    return make_key(
        "model",
        data=data_sha256,
        width=width,
        seed=seed,
        regime=regime,
        train=key_fields(regime_config(config, regime)),
        versions=training_versions(),
        **named,
    )


def _pack(init: dict, final: dict, checkpoints: dict[int, dict]) -> dict[str, torch.Tensor]:
    tensors = {f"init.{k}": v for k, v in init.items()}
    tensors.update({f"final.{k}": v for k, v in final.items()})
    for epoch, snap in checkpoints.items():
        tensors.update({f"ckpt.{epoch}.{k}": v for k, v in snap.items()})
    return tensors


def _unpack(tensors: dict[str, torch.Tensor]) -> tuple[dict, dict, dict[int, dict]]:
    init = {k[5:]: v for k, v in tensors.items() if k.startswith("init.")}
    final = {k[6:]: v for k, v in tensors.items() if k.startswith("final.")}
    checkpoints: dict[int, dict] = {}
    for k, v in tensors.items():
        match = _CKPT.match(k)
        if match:
            checkpoints.setdefault(int(match.group(1)), {})[match.group(2)] = v
    return init, final, dict(sorted(checkpoints.items()))


RESUME_ENV = "KAG_RESUME_EVERY_S"  # how often a training saves its whole state (seconds; 0: every epoch)


def resume_every_s() -> float:
    """The seconds between saves of a training's state: ``$KAG_RESUME_EVERY_S``, else
    :data:`kag.experiments.resume.RESUME_EVERY_S`; a one-line ValueError for a bad value."""
    text = os.environ.get(RESUME_ENV, "").strip()
    if not text:
        return resume.RESUME_EVERY_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{RESUME_ENV}={text!r} is not allowed: expected a number of seconds >= 0 (0 saves "
                         "after every epoch)")
    return value


TRAINING_REPORT_EVERY_S = 5.0  # how often a training records its epoch in the store (and at its last epoch)
PACE_WINDOW_S = 600.0  # a running training's pace is that of (at least) its last this many seconds


def _training_reporter(store: Store, name: str, width: int, regime: str, seeds: list[int], epochs: int,
                       family: str) -> Callable[[int, float], None]:
    """``on_epoch`` for :func:`train_seeds`: records the epoch reached in the store (at most every
    :data:`TRAINING_REPORT_EVERY_S` seconds), where a process waiting on the store can show it, with an
    epoch of this process from :data:`PACE_WINDOW_S` or more ago (``since_*``): the pace of the recent
    epochs (:func:`kag.progress.epoch_seconds`), not of a resumed training's earlier runs nor of a
    while the machine was busier."""
    last, history = [-math.inf], []  # history: (epoch, seconds) of this process, from the pace's anchor on
    label = f"{'' if family == DEFAULT_FAMILY else family + ' '}width {width} {regime}"

    def report(epoch: int, seconds: float) -> None:
        history.append((epoch, seconds))
        while len(history) > 2 and seconds - history[1][1] >= PACE_WINDOW_S:
            history.pop(0)  # the next one is far enough back to measure the pace from
        if seconds - last[0] >= TRAINING_REPORT_EVERY_S or epoch in (1, epochs) or len(history) == 1:
            last[0] = seconds
            store.report_training(name, {"label": label, "width": width, "regime": regime, "family": family,
                                         "seeds": list(seeds), "epoch": epoch, "epochs": epochs, "seconds": seconds,
                                         "since_epoch": history[0][0], "since_seconds": history[0][1]})

    return report


def ensure_models(
    width: int,
    seeds: tuple[int, ...] | list[int],
    regime: str,
    config: TrainConfig,
    *,
    device: str | torch.device | None = None,
    store: Store | None = None,
    mnist: MNIST | None = None,
    eval_shift_seed: int = 42,
    wait: bool = True,
    family: str = DEFAULT_FAMILY,
) -> list[ModelRecord]:
    """The trained models of ``seeds`` (one width and regime of model family ``family``, see
    :mod:`kag.experiments.families`), training the missing ones together.

    A file lock per (width, regime, config) makes concurrent processes train each model once:
    the others wait, then read what the first one wrote (or, with ``wait=False``, get
    :class:`kag.errors.Busy` at once).
    """
    get_family(family).check_width(width)  # every argument is checked before MNIST is loaded or anything trains
    check_seeds(seeds)
    check_regime(regime)
    check_train_config(config)
    check_int("eval_shift_seed", eval_shift_seed, 0)
    resolve_device(device)
    every_s = resume_every_s()
    config = regime_config(config, regime)  # what is trained, locked and recorded: standard ignores augmentation
    store = store or Store()
    mnist = mnist or load_mnist()
    keys = {s: model_key(width, s, regime, config, mnist.sha256, family) for s in seeds}
    fresh: set[int] = set()
    missing = [s for s in seeds if not store.has_model(keys[s])]
    if missing:
        named = {} if family == DEFAULT_FAMILY else {"family": family}
        lock_name = "train-" + make_key("train-lock", width=width, regime=regime, train=key_fields(config),
                                        **named)[:20]
        try:
            held = store.lock(lock_name).acquire(timeout=-1 if wait else 0)
        except Timeout:
            raise Busy(f"another process is training width {width} {regime}") from None
        with held:
            missing = [s for s in seeds if not store.has_model(keys[s])]
            if missing:
                dev = resolve_device(device)
                # Late in training, CPU math on subnormal floats runs ~10x slower (seen: 13 s -> 100 s per
                # epoch at width 512). Flushing them to zero changes results only at round-off level.
                flushed = dev.type == "cpu" and torch.set_flush_denormal(True)
                # A killed training goes on from its last saved state: the state is named by the models it
                # trains, so it is never used for another training (kag.experiments.resume).
                identity = make_key("training-state", models=[keys[s] for s in missing])
                saved = resume.ResumeFile(store.resume_path(lock_name, identity), identity, store.save_resume,
                                          every_s)
                try:
                    group = train_seeds(width, missing, regime, config, mnist, dev, eval_shift_seed=eval_shift_seed,
                                        family=family, on_epoch=_training_reporter(store, lock_name, width, regime,
                                                                                  missing, config.epochs, family),
                                        resume=saved)
                finally:
                    store.training_done(lock_name)
                    if flushed:
                        torch.set_flush_denormal(False)
                for i, seed in enumerate(group.seeds):
                    meta = {
                        "width": width,
                        "family": family,
                        "family_version": get_family(family).version,
                        "seed": seed,
                        "regime": regime,
                        "epochs": config.epochs,
                        "train_config": dataclasses.asdict(config),
                        "data_sha256": mnist.sha256,
                        **_scores(group, i, mnist.task),
                        "final_loss": group.final_loss[i] if group.final_loss else None,
                        "seconds": group.seconds / len(group.seeds),
                        "group_seconds": group.seconds,
                        "group_seeds": list(group.seeds),
                        "device": group.device,
                        "flush_denormal": bool(flushed),
                        "torch": torch.__version__,
                        "versions": training_versions(),
                        "source_sha256": TRAINING_DIGEST,  # provenance only
                    }
                    store.save_model(keys[seed], _pack(group.init_states[i], group.final_states[i], group.checkpoints[i]), meta)
                fresh = set(missing)
                saved.discard()  # its models are in the store: the state is of no use now
                store.log_event("train", width=width, regime=regime, seeds=list(group.seeds), epochs=config.epochs,
                                seconds=group.seconds, device=group.device,
                                # what this process did (a resumed training's earlier epochs ran elsewhere)
                                epochs_run=config.epochs - group.resumed_epoch,
                                seconds_run=group.seconds - group.resumed_seconds)
    records = []
    for s in seeds:
        tensors, manifest = store.load_model(keys[s])
        init, final, checkpoints = _unpack(tensors)
        records.append(ModelRecord(keys[s], width, s, regime, init, final, checkpoints, manifest, cached=s not in fresh,
                                   family=family))
    return records
