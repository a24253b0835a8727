"""Golden values: what each versioned algorithm computes on fixed inputs, recorded under its version.

Cache keys hold version constants, not source text, so a behaviour change made without a version
bump would serve stale models and tables. ``tests/test_versions.py`` recomputes every fingerprint
below and compares it with ``tests/golden/values.json`` (and, for the trained width-8 model,
``tests/golden/trainer.safetensors``); a mismatch names the constant to bump.

After a deliberate change, bump the constant and re-record::

    python tests/golden.py --record
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

HERE = Path(__file__).resolve().parent / "golden"
VALUES = HERE / "values.json"
TRAINER_WEIGHTS = HERE / "trainer.safetensors"


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _summary(t: torch.Tensor) -> list[float]:
    """A float fingerprint of a tensor: sum, sum of squares, and a few entries spread over it."""
    flat = t.detach().to(torch.float64).flatten()
    picks = flat[torch.linspace(0, flat.numel() - 1, 5).long()]
    return [float(flat.sum()), float((flat * flat).sum()), *map(float, picks)]


def _random_jacobian(b: int = 3, n: int = 8, d: int = 40, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(b, n, d, generator=g, dtype=torch.float64)
    J[:, ::3] *= 5.0  # a few dominant rows, so observables are away from their isotropic values
    return J


# -- one fingerprint per versioned algorithm ------------------------------------------------------
def data_fingerprint() -> dict[str, Any]:
    from kag.experiments.data import load_mnist, normalize

    mnist = load_mnist()
    x = normalize(mnist.test_images[:4])
    return {"sha256": mnist.sha256, "shape": list(x.shape), "normalized": _summary(x),
            "labels": mnist.test_labels[:10].tolist()}


def model_fingerprint() -> dict[str, Any]:
    from kag.experiments.train import initial_state

    state = initial_state(8, 0)
    return {"names": list(state), "shapes": [list(v.shape) for v in state.values()],
            "init": {k: _summary(v) for k, v in state.items()}}


def augment_fingerprint() -> dict[str, Any]:
    from kag.experiments.augment import sample_shifts, shift_images

    shifts = sample_shifts(16, 4, torch.Generator().manual_seed(0))
    images = torch.arange(16 * 28 * 28, dtype=torch.int64).remainder(251).view(16, 28, 28).to(torch.uint8)
    return {"shifts": shifts.tolist(), "shifted": _digest(shift_images(images, shifts))}


def trained_width8() -> dict[str, torch.Tensor]:
    """Seed 0 of width 8, 2 epochs on the first 2,048 training images (the smoke training)."""
    from kag.experiments.config import TrainConfig
    from kag.experiments.data import load_mnist
    from kag.experiments.train import train_seeds

    config = TrainConfig(epochs=2, train_subset=2_048, checkpoint_every=1)
    group = train_seeds(8, (0,), "augmented", config, load_mnist(), "cpu")
    return {f"final.{k}": v for k, v in group.final_states[0].items()}


def trainer_fingerprint() -> dict[str, Any]:
    weights = trained_width8()
    return {"final": {k: _summary(v) for k, v in weights.items()}, "weights_sha256": _digest(torch.cat(
        [v.flatten() for v in weights.values()]))}


def jacobians_fingerprint() -> dict[str, Any]:
    from kag.experiments.data import load_mnist, normalize
    from kag.jacobians import jacobians_from_weights
    from kag.experiments.train import initial_state

    s = initial_state(8, 0)
    x = normalize(load_mnist().test_images[:4])
    J1, J2 = jacobians_from_weights(s["fc1.weight"], s["fc1.bias"], s["fc2.weight"], s["fc2.bias"], x,
                                    dtype=torch.float64)
    return {"J1": _summary(J1), "J2": _summary(J2)}


def minors_fingerprint() -> dict[str, Any]:
    from kag.determinants import minors, sample_indices
    from kag.spatial import ImageGrid

    grid = ImageGrid(28, 28)
    rows, cols = sample_indices(8, 3, 200, n_cols=784, seed=42)
    srows, scols = sample_indices(8, 2, 200, grid=grid, pool=grid.ball(10, 400), min_separation=5.0, seed=42)
    J = _random_jacobian(d=784)
    return {"indices": _digest(torch.cat([rows, cols], 1)), "separated": _digest(torch.cat([srows, scols], 1)),
            "first": [rows[0].tolist(), cols[0].tolist()], "minors": _summary(minors(J, rows, cols))}


def observables_fingerprint() -> dict[str, Any]:
    from kag.metrics import kl_divergence, participation_ratio, rotation_ratio, zero_row_fraction
    from kag.determinants import minors, sample_indices

    J, J0 = _random_jacobian(seed=1), _random_jacobian(seed=2)
    J0[:, ::3] /= 5.0
    rows, cols = sample_indices(8, 2, 300, n_cols=40, seed=42)
    m, m0 = minors(J, rows, cols), minors(J0, rows, cols)
    zero = zero_row_fraction(J, J0, 10.0)
    return {"pr": participation_ratio(m).tolist(), "kl": kl_divergence(m, m0, 20, 1e-10),
            "rr": rotation_ratio(J, rows, cols, n_rotations=5, seed=42).tolist(),
            "zero_rows": [zero.trained, zero.init, zero.threshold]}


def spatial_fingerprint() -> dict[str, Any]:
    from kag.spatial import ImageGrid

    grid = ImageGrid(28, 28)
    rgb = ImageGrid(32, 32, channels=3)
    return {"ball": grid.ball(7, 400).tolist(), "patches": {k: [int(v.numel()), int(v.sum())] for k, v in
                                                           grid.patches().items()},
            "centres": grid.random_centres(4, seed=42).tolist(), "rgb_ball": _digest(rgb.ball(5, (3, 30)))}


def analysis_fingerprint() -> dict[str, Any]:
    """The rows of one smoke metric table (their identity: the layout; their values: the recipe)."""
    from kag.experiments.analysis import compute_table
    from kag.experiments.data import load_mnist
    from kag.experiments.pipeline import ModelRecord
    from kag.repro.profiles import SMOKE
    from kag.experiments.train import initial_state

    init, trained = initial_state(8, 0), initial_state(8, 1)
    ckpts = {e: {k: s[k] for k in ("fc1.weight", "fc1.bias")} for e, s in ((0, init), (1, trained))}
    record = ModelRecord("0" * 64, 8, 0, "standard", init, trained, ckpts,
                         {"test_accuracy": 0.5, "shifted_test_accuracy": 0.25, "epochs": 1}, True)
    table, _ = compute_table(record, SMOKE.train, SMOKE.metrics, load_mnist(), torch.device("cpu"), spatial=True)
    identity = json.dumps([list(r[:-1]) for r in table])
    values = np.array([r.value for r in table], dtype=np.float64)
    finite = values[np.isfinite(values)]
    return {"rows": len(table), "layout": hashlib.sha256(identity.encode()).hexdigest(),
            "values": [float(finite.sum()), float((finite * finite).sum()), int(np.isnan(values).sum())]}


# algorithm -> (the version constant that covers it, its fingerprint, relative tolerance)
GOLDEN: dict[str, tuple[str, Callable[[], dict[str, Any]], float]] = {
    "data": ("kag.experiments.data.DATA_VERSION", data_fingerprint, 1e-6),
    "model": ("kag.experiments.model.MODEL_VERSION", model_fingerprint, 1e-6),
    "augment": ("kag.experiments.augment.AUGMENT_VERSION", augment_fingerprint, 0.0),
    "trainer": ("kag.experiments.train.TRAINER_VERSION", trainer_fingerprint, 1e-4),
    "jacobians": ("kag.jacobians.JACOBIAN_VERSION", jacobians_fingerprint, 1e-9),
    "minors": ("kag.determinants.MINORS_VERSION", minors_fingerprint, 1e-9),
    "observables": ("kag.metrics.OBSERVABLES_VERSION", observables_fingerprint, 1e-9),
    "spatial": ("kag.spatial.SPATIAL_VERSION", spatial_fingerprint, 0.0),
    "analysis": ("kag.experiments.analysis.ANALYSIS_VERSION", analysis_fingerprint, 1e-6),
}
# Exact strings that vary with float round-off between machines: recorded, shown, never compared.
INFORMATIVE = {"weights_sha256"}


def version_of(constant: str) -> int:
    module, name = constant.rsplit(".", 1)
    return getattr(__import__(module, fromlist=[name]), name)


def record() -> None:
    from safetensors.torch import save_file

    from kag.experiments.table import TABLE_VERSION

    HERE.mkdir(exist_ok=True)
    out: dict[str, Any] = {}
    for name, (constant, fingerprint, _) in GOLDEN.items():
        out[name] = {"constant": constant, "version": version_of(constant), "values": fingerprint()}
    out["analysis"]["table_version"] = TABLE_VERSION
    VALUES.write_text(json.dumps(out, indent=1) + "\n")
    save_file({k: v.contiguous() for k, v in trained_width8().items()}, str(TRAINER_WEIGHTS))
    print(f"recorded {', '.join(out)} into {VALUES} and {TRAINER_WEIGHTS}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="recompute and write every golden value")
    if parser.parse_args().record:
        record()
    else:
        parser.print_help()
