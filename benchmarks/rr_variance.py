"""Pilot study for the rotation-ratio estimator's sizes (SPEC §5): where RR's measurement error
comes from, per width, and which sizes bring it to at most a third of the between-seed SD.

For seed 0 of every width (standard regime, models of ``--profile``, trained if missing) it
measures the rotation maxima on ``--index-samples`` index samples x ``--images`` images x
``--rotations`` rotations, splits the RR-ratio estimator's SE into its three sources (bootstrap of
one source with the other two fixed, :func:`kag.rr.rr_variance_components`), and compares
the combined SE, rescaled to candidate sizes (SE_source ~ 1/sqrt(size)), with the SD of the RR
ratio between the profile's seeds. It prints one table per width and the cheapest candidate
(cost ~ index samples x images x rotations) that meets SE <= SD/3 at every width.

    python benchmarks/rr_variance.py --profile quick
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch

from kag.experiments.analysis import _rotation_samples, evaluation_inputs
from kag.rr import per_sample_rr, rr_variance_components
from kag.experiments.data import load_mnist
from kag.jacobians import jacobians_from_weights
from kag.metrics import rotation_maxima
from kag.experiments.pipeline import ensure_models
from kag.repro.profiles import get_profile

CANDIDATES = {"index samples": (4, 8, 16, 32), "images": (8, 16, 32, 64), "rotations": (5, 10, 20)}


def maxima(state: dict, x: torch.Tensor, layer: str, samples: list, rotations: int, seed: int):
    J1, J2 = jacobians_from_weights(*(state[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")), x,
                                    dtype=torch.float64)
    J = J1 if layer == "L1" else J2
    return rotation_maxima(J.to(torch.float32), samples, n_rotations=rotations, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--index-samples", type=int, default=8)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rotations", type=int, default=20)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--boot", type=int, default=100)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    config = profile.metrics
    mnist = load_mnist()
    x = evaluation_inputs(mnist, config, "standard", args.images, torch.device("cpu"))
    worst: dict[tuple, float] = {}
    t0 = time.perf_counter()
    for width in profile.widths:
        records = ensure_models(width, profile.seeds, "standard", profile.train, mnist=mnist, device="cpu")
        cfg = type(config)(**{**config.__dict__, "rr_index_samples": args.index_samples})
        samples = [smp for _, k, smp in _rotation_samples(width, x.shape[1], cfg) if k == args.k]
        for layer in ("L1", "L2"):
            ratios = []
            for i, record in enumerate(records):
                trained = maxima(record.final_state, x, layer, samples, args.rotations, config.index_seed)
                init = maxima(record.init_state, x, layer, samples, args.rotations, config.index_seed)
                ratios.append(float(np.nanmean(per_sample_rr(*trained, *init)[2])))
                if i == 0:
                    se = rr_variance_components((*trained, *init), args.boot, config.index_seed)
            sd = float(np.std(ratios, ddof=1))
            sizes = {"index samples": args.index_samples, "images": args.images, "rotations": args.rotations}
            print(f"n={width:>4} {layer} k={args.k}: RR ratio per seed {', '.join(f'{r:.3f}' for r in ratios)}; "
                  f"SD between seeds {sd:.3f}; SE at {sizes}: "
                  + ", ".join(f"{f} {v:.3f}" for f, v in se.items())
                  + f"; combined {math.sqrt(sum(v * v for v in se.values())):.3f} (SE/SD "
                  f"{math.sqrt(sum(v * v for v in se.values())) / sd:.2f})")
            for candidate in itertools.product(*CANDIDATES.values()):
                combined = math.sqrt(sum((se[f] * math.sqrt(sizes[f] / c)) ** 2 for f, c in zip(CANDIDATES, candidate)))
                worst[candidate] = max(worst.get(candidate, 0.0), combined / sd)
    feasible = sorted((math.prod(c), c, r) for c, r in worst.items() if r <= 1 / 3)
    print(f"{time.perf_counter() - t0:.0f} s")
    if feasible:
        cost, candidate, ratio = feasible[0]
        print("cheapest sizes meeting SE <= SD/3 at every width and layer: "
              + ", ".join(f"{f} {c}" for f, c in zip(CANDIDATES, candidate)) + f" (worst SE/SD {ratio:.2f})")
    else:
        best = min(worst.items(), key=lambda kv: kv[1])
        print("no candidate meets SE <= SD/3 everywhere; the best: "
              + ", ".join(f"{f} {c}" for f, c in zip(CANDIDATES, best[0])) + f" (worst SE/SD {best[1]:.2f})")


if __name__ == "__main__":
    main()
