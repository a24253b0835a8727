"""The RR ratio's three-source SE, vectorised over replicates, against a loop over them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kag.experiments.analysis import rr_arithmetic_estimate, rr_ratio_estimate, rr_variance_components


def _reference(parts, n_boot, seed, estimate):
    """One replicate at a time: resample one axis (same draws as the vectorised code), then the
    plain estimator: RR per index sample = mean over defined images of aligned / mean over rotations."""
    generator = torch.Generator().manual_seed(seed)
    a_t, q_t, a_i, q_i = parts
    out = {}
    for axis, factor in enumerate(("index samples", "images", "rotations")):
        size = q_t.shape[axis]
        draws = torch.randint(0, size, (n_boot, size), generator=generator)
        estimates = []
        for pick in draws:
            take = [t.index_select(axis, pick) if t.dim() > axis else t for t in parts]
            rr = []
            for a, q in (take[:2], take[2:]):
                v = (a / q.mean(dim=2)).numpy()
                rr.append([float(np.nanmean(row)) if not np.isnan(row).all() else math.nan for row in v])
            estimates.append(estimate(*rr))
        finite = [e for e in estimates if math.isfinite(e)]
        out[factor] = float(np.std(finite, ddof=1))
    return out


@pytest.mark.parametrize("estimate", [rr_ratio_estimate, rr_arithmetic_estimate])
def test_vectorised_components_match_a_loop_over_replicates(estimate):
    g = torch.Generator().manual_seed(3)
    J, B, R = 5, 7, 6
    a_t, a_i = torch.rand(J, B, generator=g, dtype=torch.float64) + 0.5, torch.rand(J, B, generator=g, dtype=torch.float64) + 0.5
    q_t, q_i = torch.rand(J, B, R, generator=g, dtype=torch.float64), torch.rand(J, B, R, generator=g, dtype=torch.float64)
    a_t[1, 2] = math.nan  # an undefined image (all its minors zero) is left out of its mean
    q_t[1, 2] = 0.0
    parts = (a_t, q_t, a_i, q_i)
    got = rr_variance_components(parts, 40, 11, estimate)
    want = _reference(parts, 40, 11, estimate)
    for factor in want:
        assert got[factor] == pytest.approx(want[factor], rel=1e-9), factor
