"""kag: measure Kolmogorov-Arnold geometry (KAG) in neural networks.

The public API, for any network::

    J = kag.jacobian(model, x)                                   # [B, m, d] input Jacobians
    rows, cols = kag.sample_indices(m, k=3, n_samples=10_000, n_cols=d)
    pr = kag.participation_ratio(kag.minors(J, rows, cols))      # [B]
    table = kag.compare_to_init(model, init, x, layer="fc1")     # PR, KL, RR, zero rows per k
    result = kag.measure(model, init, x, layers=["conv", "fc1"])  # many layers: one table, SEs, CSV
    kag.plot_measurement(result).savefig("pr.png")               # PR ratio per layer and k

and :class:`ImageGrid` for pixel pools of any image size, :func:`norm_matched` for the norm-matched
surrogate (how much of an observable the Jacobian's row and column norms alone explain),
:func:`bootstrap_pr_ratio` and :func:`bootstrap_kl` for measurement errors. The core modules: ``kag.jacobians``,
``kag.determinants`` (index sampling and k-minors), ``kag.metrics`` (observables),
``kag.rotations`` and ``kag.rr`` (RR's rotations and estimator), ``kag.measurement`` (the one
measurement path of the library and the pipeline), ``kag.spatial``, ``kag.compare``, ``kag.field`` (effective rank, column-norm PR and KL, KL against
uniform, and kag-core's definitions of PR, KL and RR as named variants); ``kag.experiments.data``, ``kag.experiments.model``, ``kag.experiments.families`` (the model families:
the paper's MLP, a deeper MLP, a small CNN), ``kag.experiments.train``, ``kag.experiments.store``, ``kag.experiments.analysis`` and
``kag.experiments.table`` for the trained networks of the studies and their results. The reproduction of
arXiv 2511.21626 is a client of this core: ``kag.repro``.
"""

from kag.compare import KAGComparison, compare_to_init
from kag.measurement import Measurement, measure, measure_jacobians
from kag.determinants import minors, sample_indices
from kag.jacobians import hidden_jacobians, jacobian
from kag.metrics import (
    bootstrap_kl,
    bootstrap_pr_ratio,
    js_divergence,
    kl_divergence,
    participation_ratio,
    rotation_ratio,
    rotation_ratios,
    zero_row_fraction,
)
from kag.experiments.model import MLP
from kag.plots import plot_measurement
from kag.spatial import ImageGrid
from kag.surrogate import norm_matched
from kag.experiments.table import ResultTable, Row

__version__ = "0.1.0"

__all__ = [
    "ImageGrid",
    "KAGComparison",
    "MLP",
    "Measurement",
    "ResultTable",
    "Row",
    "bootstrap_kl",
    "bootstrap_pr_ratio",
    "compare_to_init",
    "hidden_jacobians",
    "jacobian",
    "js_divergence",
    "kl_divergence",
    "measure",
    "measure_jacobians",
    "minors",
    "norm_matched",
    "participation_ratio",
    "plot_measurement",
    "rotation_ratio",
    "rotation_ratios",
    "sample_indices",
    "zero_row_fraction",
]
