"""A trained network against its initialisation, on the representation of one layer (SPEC §4-5).

:func:`compare_to_init` is the whole measurement in one call: the Jacobians of the chosen layer's
output with respect to the input for both networks (:func:`kag.jacobians.jacobian`), one shared
index sample per k, and the observables of :mod:`kag.metrics`, as one :class:`KAGComparison` per k.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from kag.jacobians import Layer, _batch_function, _output_size, _Representation, _resolve_layer, jacobian
from kag.metrics import kl_divergence, mean_ignoring_undefined, participation_ratio, rotation_ratios, zero_row_fraction
from kag.determinants import check_int, jacobian_support, minors, sample_indices

DEFAULT_MEMORY_BUDGET = 4 * 2**30  # bytes one layer's measurement may need at once


def memory_estimate(B: int, d: int, m: int, *, ks: Sequence[int], n_samples: int, rr: bool, n_rotations: int,
                    itemsize: int) -> dict[str, int]:
    """Bytes one layer needs at once: both networks' Jacobians, the RR rotations ``[R, m, m]`` float64,
    and the minors of both networks for every k."""
    out = {"Jacobians": 2 * B * m * d * itemsize, "minors": 2 * B * n_samples * 8 * len(ks)}
    if rr:
        out["rotations"] = n_rotations * m * m * 8
    return out


def gib(n: float) -> str:
    """Bytes as a person reads them: "1.25 GiB", "3.4 MiB"."""
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def refuse_beyond_budget(subject: str, need: dict[str, int], memory_budget: int, advice: str) -> None:
    """One-line ValueError when ``need`` (a :func:`memory_estimate`) exceeds ``memory_budget`` bytes:
    ``"<subject> needs about 1.2 GiB at once (Jacobians ..., ...), more than memory_budget=...: <advice>"``."""
    total = sum(need.values())
    if total > memory_budget:
        raise ValueError(f"{subject} needs about {gib(total)} at once "
                         f"({', '.join(f'{p} {gib(v)}' for p, v in need.items())}), more than memory_budget="
                         f"{gib(memory_budget)}: {advice}")


@dataclass(frozen=True)
class KAGComparison:
    """The observables of one k, trained vs init (means over images; NaN where undefined).

    ``pr_*``: mean participation ratio of the k-minors; ``kl``: KL divergence of the trained
    log-minor histogram from the init one; ``rr_*``: mean rotation ratio; ``zero_rows_*``:
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

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def compare_to_init(
    trained: nn.Module,
    init: nn.Module,
    x: torch.Tensor,
    *,
    layer: Layer = None,
    ks: Sequence[int] = (1, 2, 3),
    n_samples: int = 10_000,
    n_rotations: int = 100,
    rotation_images: int | None = None,
    kl_bins: int = 100,
    kl_smoothing: float = 1e-10,
    zero_row_percentile: float = 1.0,
    seed: int = 42,
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

    Per k, one index sample ``sample_indices(m, k, n_samples, n_cols=d, seed=seed)`` serves
    both networks and every image. ``sampling="support"`` is for local layers (convolutions), whose
    uniformly drawn minors are nearly all exactly 0: each sample's columns are drawn from where its
    rows are non-zero in either network (:func:`kag.determinants.jacobian_support`), so PR, KL and RR
    describe the minors that local structure allows, not all minors (see ``sample_indices``). A
    warning says when most minors of a result are exactly 0. PR and KL use all images; RR the first ``rotation_images``
    (None = all), with the same ``n_rotations`` Haar rotations for every k; the zero-row
    threshold is the ``zero_row_percentile``-th percentile of init's row norms. Jacobians are
    computed in ``dtype`` (None = as given; see :func:`kag.jacobians.jacobian` for ``max_bytes``).
    What the layer needs at once (both Jacobians, RR's ``[n_rotations, m, m]`` rotations, the minors)
    is estimated first: beyond ``memory_budget`` bytes (4 GiB) the call is refused before any work.
    Networks with dropout or batch norm must be in eval mode.

    Example::

        init = copy.deepcopy(model)                 # before training
        train(model)                                # your training loop
        table = compare_to_init(model.eval(), init.eval(), x, layer="features.2")
        for row in table:
            print(row.k, row.pr_ratio, row.kl, row.rr_ratio)
    """
    if sampling not in SAMPLINGS:  # every argument is checked before any Jacobian is computed
        raise ValueError(f"sampling={sampling!r} is not allowed: use {' or '.join(map(repr, SAMPLINGS))}")
    for name, net in (("trained", trained), ("init", init)):
        if not isinstance(net, nn.Module):
            raise ValueError(f"{name} must be an nn.Module, got {type(net).__name__}")
    if isinstance(ks, (int, bool)) or not isinstance(ks, Sequence) or len(ks) == 0:
        raise ValueError(f"ks={ks!r} is not allowed: expected a non-empty sequence of integers >= 1, e.g. (1, 2, 3)")
    ks = [check_int("k", k, 1) for k in ks]
    n_samples = check_int("n_samples", n_samples, 1)
    n_rotations = check_int("n_rotations", n_rotations, 1)
    seed = check_int("seed", seed, 0)
    rep_trained, rep_init = (_Representation(net, *_resolve_layer(layer, trained, net)) for net in (trained, init))

    # shapes first: a k that cannot fit fails before any Jacobian is computed
    fn, x_cast = _batch_function(rep_trained, x, dtype)
    d, m = x_cast[0].numel(), _output_size(fn, x_cast)
    for k in ks:
        if k > min(m, d):
            side = f"the layer's {m} outputs" if k > m else f"the input's {d} values"
            raise ValueError(f"k={k} exceeds {side}: a k-minor needs k rows and k columns")
    n_rr = x_cast.shape[0] if rotation_images is None else min(check_int("rotation_images", rotation_images, 1),
                                                                 x_cast.shape[0])

    need = memory_estimate(x_cast.shape[0], d, m, ks=ks, n_samples=n_samples, rr=True, n_rotations=n_rotations,
                           itemsize=x_cast.element_size())
    # refused before any Jacobian
    refuse_beyond_budget(f"this layer (m={m})", need, check_int("memory_budget", memory_budget, 1),
                         "lower n_rotations (RR's rotations are [n_rotations, m, m]) or the number of images, "
                         "or raise memory_budget")
    J = {name: jacobian(rep, x, dtype=dtype, max_bytes=max_bytes)
         for name, rep in (("trained", rep_trained), ("init", rep_init))}
    if J["trained"].shape != J["init"].shape:
        raise ValueError(f"trained and init give Jacobians {list(J['trained'].shape)} and {list(J['init'].shape)}: "
                         "the two networks must have the same architecture")
    support = jacobian_support(J["trained"], J["init"]) if sampling == "support" else None
    samples = [sample_indices(m, k, n_samples, n_cols=d, seed=seed, support=support) for k in ks]
    rr = {name: rotation_ratios(J[name][:n_rr], samples, n_rotations=n_rotations, seed=seed) for name in J}  # [K, B]
    zero = zero_row_fraction(J["trained"], J["init"], zero_row_percentile)

    out = []
    for i, (k, (rows, cols)) in enumerate(zip(ks, samples)):
        minor = {name: minors(J[name], rows, cols) for name in J}  # [B, S]
        zero_minors = {name: float((minor[name] == 0).double().mean()) for name in J}
        _warn_if_mostly_zero(k, zero_minors, sampling)
        pr = {name: mean_ignoring_undefined(participation_ratio(minor[name]))[0] for name in J}
        rr_mean = {name: mean_ignoring_undefined(rr[name][i])[0] for name in J}
        out.append(KAGComparison(
            k=k,
            pr_trained=pr["trained"],
            pr_init=pr["init"],
            pr_ratio=_ratio(pr["trained"], pr["init"]),
            kl=_kl(minor["trained"], minor["init"], kl_bins, kl_smoothing),
            rr_trained=rr_mean["trained"],
            rr_init=rr_mean["init"],
            rr_ratio=_ratio(rr_mean["trained"], rr_mean["init"]),
            zero_rows_trained=zero.trained,
            zero_rows_init=zero.init,
            zero_minors_trained=zero_minors["trained"],
            zero_minors_init=zero_minors["init"],
        ))
    return out


SAMPLINGS = ("uniform", "support")
MOSTLY_ZERO = 0.5  # warn when more than this share of a result's minors are exactly 0


def _warn_if_mostly_zero(k: int, shares: dict[str, float], sampling: str) -> None:
    """Warn when more than :data:`MOSTLY_ZERO` of a network's sampled minors (``shares``: network ->
    exact-zero share) are exactly 0."""
    worst = max(shares, key=shares.get)
    if shares[worst] > MOSTLY_ZERO:
        hint = " (a local layer? try sampling='support')" if sampling == "uniform" else ""
        warnings.warn(f"k={k}: {shares[worst]:.0%} of the sampled minors of {worst} are exactly 0, so PR, KL and RR "
                      f"describe few minors{hint}", RuntimeWarning, stacklevel=3)


def _ratio(a: float, b: float) -> float:
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


def _kl(m_trained: torch.Tensor, m_init: torch.Tensor, bins: int, smoothing: float) -> float:
    """KL of log-minor histograms; NaN (undefined) when neither side has a positive minor (no bin
    can be placed), the rule of the reproduction's pipeline (``kag.analysis``): a side whose minors
    are all exactly 0 has all its mass in the underflow bin, and its KL is defined."""
    if not ((m_trained > 0).any() or (m_init > 0).any()):
        return math.nan
    return kl_divergence(m_trained, m_init, bins, smoothing)
