"""Batched multi-seed trainer: all seeds of one width train as one computation (SPEC §2).

The weights of M seeds are stacked ``[M, ...]`` and run through their model family's
``stacked_forward`` (:mod:`kag.experiments.families`);
the loss is the sum of the per-seed mean cross-entropies, so each seed's gradient is exactly its
own. AdamW is elementwise, so one AdamW over the stacked tensors *is* M independent AdamWs.
Each seed keeps its own random streams (init, data order, augmentation), drawn on the CPU so a
seed means the same thing on every device; only float round-off differs between devices.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from kag.experiments.augment import affine_images, affine_matrices, sample_affine, sample_shifts, shift_images
from kag.experiments.data import MNIST, normalize
from kag.checks import check_distinct, check_int
from kag.experiments.families import DEFAULT_FAMILY, ModelFamily, get_family
from kag.experiments.model import unstack_state
from kag.experiments.config import TrainConfig
from kag.experiments.resume import ResumeFile, TrainingState, expected_tensors
from kag.progress import Progress

# Version of the training algorithm (loss, optimiser use, batching, random streams, checkpoints,
# accuracy evaluation, flushing subnormals on CPU): part of every model cache key. Bump it when a
# change alters trained weights beyond float round-off between machines.
TRAINER_VERSION = 1
STREAMS = {"init": 0, "order": 1, "augment": 2, "eval-shift": 3}
REGIMES = ("standard", "augmented")
SEED_LIMIT = 2**32  # seeds are 32-bit unsigned integers


def stream_generator(seed: int, stream: str) -> torch.Generator:
    """An independent CPU generator for one (seed, purpose) pair."""
    state = np.random.SeedSequence([seed, STREAMS[stream]]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def initial_state(width: int, seed: int, family: str = DEFAULT_FAMILY) -> dict[str, torch.Tensor]:
    """The untrained network of ``seed`` in model family ``family`` (what training starts from)."""
    fam = get_family(family)
    return unstack_state(fam.init_params(fam.check_width(width), [stream_generator(seed, "init")]), 0)


def check_regime(regime: str) -> str:
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r} is unknown: choose one of {', '.join(REGIMES)}")
    return regime


def check_seed(seed: int) -> int:
    """Return ``seed`` as an int if it is an integer in ``0..2**32-1``, else a one-line ``ValueError``."""
    seed = check_int("seed", seed, 0)
    if seed >= SEED_LIMIT:
        raise ValueError(f"seed={seed} is not allowed: seeds are integers in 0..{SEED_LIMIT - 1}")
    return seed


def check_seeds(seeds) -> tuple[int, ...]:
    """Return ``seeds`` as a tuple of ints: at least one, each valid (:func:`check_seed`), none repeated."""
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"seeds={seeds!r} is not allowed: give a sequence of seeds, e.g. (0, 1, 2)")
    return check_distinct("seeds", tuple(check_seed(s) for s in seeds))


MAX_EPOCHS = 100_000  # 500 times the paper's 200; checked before anything is allocated
MAX_CHECKPOINTS = 1_000  # timeline snapshots one model keeps (the paper keeps 21)


def check_epochs(epochs: int) -> int:
    """Return ``epochs`` if it is an integer in ``1..MAX_EPOCHS`` (zero epochs would store the init as a trained
    model; a larger number is a typo far more often than a plan), else a one-line ``ValueError``."""
    epochs = check_int("epochs", epochs, 1)
    if epochs > MAX_EPOCHS:
        raise ValueError(f"epochs={epochs} is not allowed: expected an integer in 1..{MAX_EPOCHS:,}")
    return epochs


def check_train_config(config: TrainConfig) -> TrainConfig:
    """Return ``config`` if its fields are in their domains, else a one-line ``ValueError`` naming the field."""
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a kag.experiments.config.TrainConfig, got {type(config).__name__}")
    check_epochs(config.epochs)
    every = config.checkpoint_every
    if isinstance(every, int) and not isinstance(every, bool) and every > 0:  # its own check follows
        kept = config.epochs // every + 1 + (config.epochs % every != 0)  # len(config.checkpoint_epochs())
        if kept > MAX_CHECKPOINTS:
            raise ValueError(f"checkpoint_every={every} with epochs={config.epochs} keeps {kept:,} timeline "
                             f"checkpoints, more than {MAX_CHECKPOINTS:,}: raise checkpoint_every to at least "
                             f"{-(-config.epochs // (MAX_CHECKPOINTS - 2))}")
    check_int("batch_size", config.batch_size, 1)
    check_int("translate_px", config.translate_px, 0)
    if config.train_subset is not None:
        check_int("train_subset", config.train_subset, 1)
    for name, positive in (("lr", True), ("weight_decay", False)):
        value = getattr(config, name)
        if not (isinstance(value, numbers.Real) and math.isfinite(value) and (value > 0 if positive else value >= 0)):
            raise ValueError(f"{name}={value!r} is not allowed: expected a finite number "
                             f"{'> 0' if positive else '>= 0'}")
    if len(config.betas) != 2 or not all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in config.betas):
        raise ValueError(f"betas={config.betas!r} is not allowed: expected two numbers in [0, 1)")
    r = config.rotate_deg
    if isinstance(r, bool) or not (isinstance(r, numbers.Real) and 0 <= r <= 180):
        raise ValueError(f"rotate_deg={r!r} is not allowed: expected a number of degrees in [0, 180]")
    if config.scale_range is not None:
        scale = config.scale_range
        if not (isinstance(scale, (tuple, list)) and len(scale) == 2
                and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in scale)
                and 0 < scale[0] <= scale[1]):
            raise ValueError(f"scale_range={scale!r} is not allowed: expected None or (lo, hi) with 0 < lo <= hi")
    for regime in config.timeline_regimes:
        check_regime(regime)
    return config


@dataclass
class TrainedGroup:
    """What training one width's seeds produced; per-seed lists are in ``seeds`` order."""

    width: int
    regime: str
    seeds: tuple[int, ...]
    epochs: int
    init_states: list[dict[str, torch.Tensor]]
    final_states: list[dict[str, torch.Tensor]]
    checkpoints: list[dict[int, dict[str, torch.Tensor]]]  # epoch -> the first layer's parameters
    test_accuracy: list[float]
    shifted_test_accuracy: list[float]
    seconds: float
    device: str
    final_loss: list[float] = field(default_factory=list)
    test_r2: list[float] = field(default_factory=list)  # regression datasets: R² on the test points (accuracy is NaN)
    resumed_epoch: int = 0  # the epoch a saved state brought this run to (0: trained from the start)
    resumed_seconds: float = 0.0  # the seconds of training that state had already done (in ``seconds``)


MNIST_TRAIN_IMAGES = 60_000


def weight_decay_shrink(config: TrainConfig, n_train: int | None = None) -> float:
    """The factor AdamW's decoupled weight decay alone shrinks a weight by over a whole training run:
    ``(1 - lr * weight_decay) ** steps`` (constant lr, ``ceil(n_train / batch_size)`` steps per epoch).

    Whether a weight-decay setting can act at all: at the default lr, weight decay 1e-2 shrinks the
    weights only to 0.954 of their size in 20 epochs, to 0.625 in 200 (docs/SPEC.md §8).
    """
    n = n_train or config.train_subset or MNIST_TRAIN_IMAGES
    steps = config.epochs * -(-n // config.batch_size)
    return float((1.0 - config.lr * config.weight_decay) ** steps)


def _first_layer_snapshot(params: dict[str, torch.Tensor], i: int, family: ModelFamily) -> dict[str, torch.Tensor]:
    return {name: params[name][i].detach().to("cpu").clone() for name in family.checkpoint_params()}


@torch.no_grad()
def evaluate_accuracy(params: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor, chunk: int = 2500,
                      normalise: Callable[[torch.Tensor], torch.Tensor] = normalize,
                      family: str = DEFAULT_FAMILY) -> list[float]:
    """Test accuracy of each stacked member (networks of ``family``) on ``images: [N, 28, 28]`` uint8
    (same device as params), normalised by ``normalise`` (default: MNIST's statistics)."""
    forward = get_family(family).stacked_forward
    m = next(iter(params.values())).shape[0]
    correct = torch.zeros(m, device=images.device)
    for start in range(0, images.shape[0], chunk):
        x = normalise(images[start : start + chunk]).unsqueeze(0).expand(m, -1, -1).contiguous()
        pred = forward(params, x).argmax(-1)
        correct += (pred == labels[start : start + chunk].unsqueeze(0)).sum(1)
    return (correct / images.shape[0]).tolist()


@torch.no_grad()
def evaluate_r2(params: dict[str, torch.Tensor], inputs: torch.Tensor, targets: torch.Tensor,
                normalise: Callable[[torch.Tensor], torch.Tensor], family: str, chunk: int = 2500) -> list[float]:
    """Coefficient of determination ``1 - SSE / SST`` of each stacked member on a regression test set
    (``inputs: [N, d]``, ``targets: [N]``), computed in float64."""
    forward = get_family(family).stacked_forward
    m = next(iter(params.values())).shape[0]
    sse = torch.zeros(m, dtype=torch.float64, device=inputs.device)
    for start in range(0, inputs.shape[0], chunk):
        x = normalise(inputs[start : start + chunk]).unsqueeze(0).expand(m, -1, -1).contiguous()
        residual = forward(params, x).squeeze(-1).double() - targets[start : start + chunk].double().unsqueeze(0)
        sse += residual.pow(2).sum(1)
    sst = (targets.double() - targets.double().mean()).pow(2).sum()
    return (1.0 - sse / sst).tolist()


def check_dataset_fits(dataset: MNIST, family: ModelFamily, regime: str) -> None:
    """One-line ValueError when ``family``'s networks cannot take ``dataset``'s inputs, or ``regime`` does not
    exist for it (the augmented regime needs images to shift)."""
    d = int(dataset.normalize(dataset.test_images[:1]).shape[-1])
    if d != family.input_dim:
        raise ValueError(f"family={family.name!r} takes {family.input_dim} inputs, but dataset {dataset.name!r} has "
                         f"{d}: choose a family made for it")
    if regime == "augmented" and not dataset.augmentable:
        raise ValueError(f"regime='augmented' is not allowed for dataset {dataset.name!r}: it has no augmentation; "
                         "use 'standard'")


def shifted_test_images(mnist: MNIST, max_shift: int, seed: int) -> torch.Tensor:
    """The test set with one fixed random shift per image (the option of SPEC §3).

    Translation only, whatever rotation or scale the training used: the "augmented" evaluation
    images are the same for every point of the assumption sweep with the same ``max_shift``."""
    return shift_images(mnist.test_images, sample_shifts(mnist.test_images.shape[0], max_shift, torch.Generator().manual_seed(seed)))


def _restore(state: TrainingState, params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             order_gens: list[torch.Generator], aug_gens: list[torch.Generator]) -> None:
    """Put a saved training state into the fresh parameters, optimiser and random streams."""
    with torch.no_grad():
        for name, value in params.items():
            value.copy_(state.params[name])
    saved = optimizer.state_dict()
    saved["state"] = {i: dict(s) for i, s in state.adam.items()}
    optimizer.load_state_dict(saved)
    for gens, states in ((order_gens, state.order), (aug_gens, state.augment)):
        for g, s in zip(gens, states):
            g.set_state(s)


def train_seeds(
    width: int,
    seeds: tuple[int, ...] | list[int],
    regime: str,
    config: TrainConfig,
    mnist: MNIST,
    device: torch.device | str = "cpu",
    *,
    eval_shift_seed: int = 42,
    label: str = "",
    evaluate: bool = True,
    family: str = DEFAULT_FAMILY,
    on_epoch: Callable[[int, float], None] | None = None,
    resume: ResumeFile | None = None,
) -> TrainedGroup:
    """Train every seed of one (width, regime) of model family ``family`` together and return inits,
    finals and checkpoints (of the first layer's parameters); ``on_epoch(epoch, seconds so far)`` is
    called after every epoch (e.g. to tell other processes how far it has come).

    ``resume``: where the training saves its whole state every ``resume.every_s`` seconds (at an
    epoch's end) and, if a usable state of this training is there, goes on from it: the result is
    the same, bit for bit, as a run that was never interrupted (:mod:`kag.experiments.resume`)."""
    fam = get_family(family)
    fam.check_width(width)
    check_regime(regime)
    seeds = check_seeds(seeds)
    check_train_config(config)
    check_dataset_fits(mnist, fam, regime)
    regression = mnist.task == "regression"
    device = torch.device(device)
    t0 = time.perf_counter()

    n_train = mnist.train_images.shape[0] if config.train_subset is None else min(config.train_subset, mnist.train_images.shape[0])
    images = mnist.train_images[:n_train].to(device)
    labels = mnist.train_labels[:n_train].to(device)
    augment = regime == "augmented"
    m = len(seeds)

    params = fam.init_params(width, [stream_generator(s, "init") for s in seeds])
    params = {k: v.to(device).requires_grad_(True) for k, v in params.items()}
    init_states = [unstack_state(params, i) for i in range(m)]
    keep = set(config.checkpoint_epochs()) if regime in config.timeline_regimes else set()
    checkpoints: list[dict[int, dict[str, torch.Tensor]]] = [{} for _ in seeds]
    if 0 in keep:
        for i in range(m):
            checkpoints[i][0] = _first_layer_snapshot(params, i, fam)

    optimizer = torch.optim.AdamW(
        list(params.values()), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, foreach=True
    )
    order_gens = [stream_generator(s, "order") for s in seeds]
    aug_gens = [stream_generator(s, "augment") for s in seeds]
    # rotation or scale (SPEC §8) takes the affine path; translation alone keeps the integer shift,
    # whose random stream and images are exactly those of the models trained before the affine path
    affine = augment and (config.rotate_deg != 0 or config.scale_range is not None)
    steps_per_epoch = -(-n_train // config.batch_size)
    progress = Progress(f"train {label or f'width {width} {regime}'} seeds {list(seeds)}", total=config.epochs, unit="epoch")
    last_loss = torch.zeros(m)
    start, spent_before = 1, 0.0
    if resume is not None:
        snapshot = {name: tuple(params[name].shape[1:]) for name in fam.checkpoint_params()}
        expected = expected_tensors(params, m, order_gens[0].get_state().numel(), snapshot, keep)
        state, why = resume.load(expected, config.epochs, keep)
        if why:  # work thrown away: said even under KAG_QUIET
            progress.warn(why)
        if state is not None:
            _restore(state, params, optimizer, order_gens, aug_gens)
            checkpoints = [dict(c) for c in state.checkpoints]
            last_loss, start, spent_before = state.last_loss, state.epoch + 1, state.seconds
            progress.note(f"resumed at epoch {state.epoch} from {resume.path} ({state.seconds:.0f} s of training "
                          "already done)")
    last_save = time.perf_counter()
    for epoch in range(start, config.epochs + 1):
        order = torch.stack([torch.randperm(n_train, generator=g) for g in order_gens]).to(device)  # [M, N]
        if affine:  # one inverse affine matrix per (seed, image), from that seed's augment stream
            matrices = torch.stack([
                affine_matrices(*sample_affine(n_train, config.translate_px, config.rotate_deg, config.scale_range, g))
                for g in aug_gens]).to(device)  # [M, N, 2, 3]
        elif augment:
            shifts = torch.stack([sample_shifts(n_train, config.translate_px, g) for g in aug_gens]).to(device)  # [M, N, 2]
        epoch_loss = torch.zeros(m, device=device)
        for step in range(steps_per_epoch):
            sl = slice(step * config.batch_size, (step + 1) * config.batch_size)
            idx = order[:, sl]  # [M, b]
            batch = images[idx]  # [M, b, 28, 28]
            if affine:
                batch = affine_images(batch.reshape(-1, 28, 28), matrices[:, sl].reshape(-1, 2, 3)).view(batch.shape)
            elif augment:
                batch = shift_images(batch.reshape(-1, 28, 28), shifts[:, sl].reshape(-1, 2)).view(batch.shape)
            logits = fam.stacked_forward(params, mnist.normalize(batch))
            if regression:  # mean squared error against the targets
                per_seed = (logits.squeeze(-1) - labels[idx]).pow(2).mean(1)
            else:
                per_seed = F.cross_entropy(logits.reshape(-1, 10), labels[idx].reshape(-1),
                                           reduction="none").view(m, -1).mean(1)
            optimizer.zero_grad(set_to_none=True)
            per_seed.sum().backward()
            optimizer.step()
            epoch_loss += per_seed.detach()
        last_loss = (epoch_loss / steps_per_epoch).cpu()
        if epoch in keep:
            for i in range(m):
                checkpoints[i][epoch] = _first_layer_snapshot(params, i, fam)
        progress.update(epoch, f"loss {last_loss.mean():.4f}")
        if on_epoch is not None:
            on_epoch(epoch, spent_before + time.perf_counter() - t0)
        if resume is not None and epoch < config.epochs and time.perf_counter() - last_save >= resume.every_s:
            resume.save(TrainingState(epoch, spent_before + time.perf_counter() - t0, params,
                                      optimizer.state_dict()["state"], [g.get_state() for g in order_gens],
                                      [g.get_state() for g in aug_gens], checkpoints, last_loss))
            last_save = time.perf_counter()

    with torch.no_grad():
        final = {k: v.detach() for k, v in params.items()}
        accuracy, shifted_accuracy = [float("nan")] * m, [float("nan")] * m
        r2 = [float("nan")] * m
        if evaluate and regression:  # R² on the test points (no accuracy, no shifted test set)
            r2 = evaluate_r2(final, mnist.test_images.to(device), mnist.test_labels.to(device), mnist.normalize, fam.name)
        elif evaluate:  # clean test accuracy, and on the shifted test set of SPEC §3
            test_images, test_labels = mnist.test_images.to(device), mnist.test_labels.to(device)
            accuracy = evaluate_accuracy(final, test_images, test_labels, normalise=mnist.normalize, family=fam.name)
            shifted = shifted_test_images(mnist, config.translate_px, eval_shift_seed).to(device)
            shifted_accuracy = evaluate_accuracy(final, shifted, test_labels, normalise=mnist.normalize,
                                                 family=fam.name)
        final_states = [unstack_state(final, i) for i in range(m)]
    seconds = spent_before + time.perf_counter() - t0
    score_name, scores = ("test R²", r2) if regression else ("test accuracy", accuracy)
    progress.done(score_name + " " + ", ".join(f"seed {s}: {a:.4f}" for s, a in zip(seeds, scores)) + f" ({seconds:.1f} s)")
    return TrainedGroup(
        width=width,
        regime=regime,
        seeds=seeds,
        epochs=config.epochs,
        init_states=init_states,
        final_states=final_states,
        checkpoints=checkpoints,
        test_accuracy=accuracy,
        shifted_test_accuracy=shifted_accuracy,
        seconds=seconds,
        device=str(device),
        final_loss=last_loss.tolist(),
        test_r2=r2,
        resumed_epoch=start - 1,
        resumed_seconds=spent_before,
    )
