"""A trained network against its initialisation, on the representation of one layer (SPEC §4-5).

:func:`compare_to_init` is the whole measurement in one call: the Jacobians of the chosen layer's
output with respect to the input for both networks (:func:`kag.jacobians.jacobian`), measured by
:func:`kag.measurement.measure_jacobians` (the one path of :func:`kag.measure` and the pipeline),
as one :class:`KAGComparison` per k.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from kag.jacobians import Layer, _batch_function, _output_size, _Representation, _resolve_layer, jacobian
from kag.measurement import DEFAULT_MEMORY_BUDGET, DEFAULTS, check_fits, check_options, measure_jacobians

@dataclass(frozen=True)
class KAGComparison:
    """The observables of one k, trained vs init (means over images; NaN where undefined).

    ``pr_*``: mean participation ratio of the k-minors; ``kl`` / ``js``: KL and Jensen-Shannon
    divergence of the trained log-minor histogram from the init one; ``rr_*``: the rotation ratio
    (:mod:`kag.rr`: each network's RR averaged over index samples, the ratio their geometric mean);
    ``*_se``: measurement SEs (bootstrap; RR's from index samples, images and rotations); ``zero_rows_*``:
    zero-row fractions (the same for every k; a row is zero when its norm is at most the threshold,
    see :func:`kag.metrics.zero_row_fraction`); ``zero_minors_*``: the share of sampled k-minors
    that are exactly 0 (PR scales like 1/√(non-zero minors), so read it beside PR). Ratios are
    trained / init.
    """

    k: int
    pr_trained: float
    pr_init: float
    pr_ratio: float
    kl: float
    rr_trained: float
    rr_init: float
    rr_ratio: float
    zero_rows_trained: float
    zero_rows_init: float
    zero_minors_trained: float
    zero_minors_init: float
    pr_ratio_se: float = math.nan
    kl_se: float = math.nan
    js: float = math.nan
    js_se: float = math.nan
    rr_ratio_se: float = math.nan

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def compare_to_init(
    trained: nn.Module,
    init: nn.Module,
    x: torch.Tensor,
    *,
    layer: Layer = None,
    ks: Sequence[int] = DEFAULTS["ks"],
    n_samples: int = DEFAULTS["n_samples"],
    n_rotations: int = DEFAULTS["n_rotations"],
    rotation_images: int | None = DEFAULTS["rotation_images"],
    rr_index_samples: int = DEFAULTS["rr_index_samples"],
    rotations: str = "auto",
    rr: bool = True,
    n_bootstrap: int = DEFAULTS["n_bootstrap"],
    kl_bins: int = DEFAULTS["kl_bins"],
    kl_smoothing: float = DEFAULTS["kl_smoothing"],
    zero_row_percentile: float = DEFAULTS["zero_row_percentile"],
    seed: int = DEFAULTS["seed"],
    dtype: torch.dtype | None = torch.float64,
    max_bytes: int | None = None,
    sampling: str = "uniform",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> list[KAGComparison]:
    """KAG of ``trained`` relative to ``init`` on the representation of ``layer``: one result per k.

    ``x [B, *in_shape]`` are the inputs both networks are measured on. ``layer`` picks the
    representation whose Jacobian ``[B, m, d]`` (``d = prod(in_shape)``) is measured:

    * None: the network's output;
    * a name from ``dict(trained.named_modules())``, e.g. ``"fc1"`` or ``"features.2"``: that
      submodule's output (captured by a forward hook while the whole network runs);
    * a submodule of ``trained``: the same-named submodule of ``init``;
    * a callable ``(model, x) -> representation [B, ...]``.

    The measurement, its defaults (the paper pipeline's) and every other argument are those of
    :func:`kag.measure` (:func:`kag.measurement.measure_jacobians` for one layer): per k one index
    sample ``sample_indices(m, k, n_samples, n_cols=d, seed=seed)`` serves both networks and every
    image; RR uses ``rr_index_samples`` index samples, the first ``rotation_images`` images and
    ``n_rotations`` rotations (``rr=False``: no RR, NaN). ``sampling="support"`` is for local layers
    (convolutions), whose uniformly drawn minors are nearly all exactly 0: each sample's columns are
    drawn from where its rows are non-zero in either network (:func:`kag.determinants.jacobian_support`),
    so PR, KL and RR describe the minors that local structure allows, not all minors. A warning says
    when most minors of a result are exactly 0. Jacobians are computed in ``dtype`` (None = as given;
    see :func:`kag.jacobians.jacobian` for ``max_bytes``). What the layer needs at once (both
    Jacobians, RR's rotations, the minors) is estimated first: beyond ``memory_budget`` bytes (4 GiB)
    the call is refused before any work. Networks with dropout or batch norm must be in eval mode.

    Example::

        init = copy.deepcopy(model)                 # before training
        train(model)                                # your training loop
        table = compare_to_init(model.eval(), init.eval(), x, layer="features.2")
        for row in table:
            print(row.k, row.pr_ratio, row.kl, row.rr_ratio)
    """
    options = check_options(ks=ks, n_samples=n_samples, rr=rr, n_rotations=n_rotations,
                            rotation_images=rotation_images, rr_index_samples=rr_index_samples, rotations=rotations,
                            sampling=sampling, n_bootstrap=n_bootstrap, kl_bins=kl_bins, kl_smoothing=kl_smoothing,
                            zero_row_percentile=zero_row_percentile, seed=seed)
    for name, net in (("trained", trained), ("init", init)):
        if not isinstance(net, nn.Module):
            raise ValueError(f"{name} must be an nn.Module, got {type(net).__name__}")
    rep_trained, rep_init = (_Representation(net, *_resolve_layer(layer, trained, net)) for net in (trained, init))

    # shapes and memory first: a k that cannot fit, or a need beyond the budget, fails before any Jacobian
    fn, x_cast = _batch_function(rep_trained, x, dtype)
    d, m = x_cast[0].numel(), _output_size(fn, x_cast)
    check_fits("this layer", x_cast.shape[0], d, m, options, x_cast.element_size(), memory_budget)
    J = {name: jacobian(rep, x, dtype=dtype, max_bytes=max_bytes)
         for name, rep in (("trained", rep_trained), ("init", rep_init))}
    if J["trained"].shape != J["init"].shape:
        raise ValueError(f"trained and init give Jacobians {list(J['trained'].shape)} and {list(J['init'].shape)}: "
                         "the two networks must have the same architecture")
    result = measure_jacobians(J["trained"], J["init"], options=options)
    return [_comparison(k, result) for k in options.ks]


def _comparison(k: int, result) -> KAGComparison:
    """The :class:`KAGComparison` of one k from a :class:`~kag.measurement.Measurement` of one layer."""
    def row(observable: str, role: str = "trained", of_k: int | None = k):
        found = result.select(k=of_k, observable=observable, role=role)
        return found[0] if found else None

    def value(observable: str, role: str = "trained", of_k: int | None = k) -> float:
        found = row(observable, role, of_k)
        return found.value if found else math.nan

    def se(observable: str) -> float:
        found = row(observable)
        return found.se if found else math.nan

    rr_trained, rr_init = value("rr"), value("rr", "init")
    return KAGComparison(
        k=k,
        pr_trained=value("pr"),
        pr_init=value("pr", "init"),
        pr_ratio=value("pr_ratio"),
        kl=value("kl"),
        rr_trained=rr_trained,
        rr_init=rr_init,
        rr_ratio=value("rr_ratio"),
        zero_rows_trained=value("zero_row_fraction", of_k=None),
        zero_rows_init=value("zero_row_fraction", "init", of_k=None),
        zero_minors_trained=row("pr").zero_fraction,
        zero_minors_init=row("pr", "init").zero_fraction,
        pr_ratio_se=se("pr_ratio"),
        kl_se=se("kl"),
        js=value("js"),
        js_se=se("js"),
        rr_ratio_se=se("rr_ratio"),
    )
