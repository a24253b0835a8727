"""One picture of a measurement: an observable per layer and k, one panel per network (issue 18 item 8).

:func:`plot_measurement` draws what :func:`kag.measure` returned: the layers in the order they were
measured on the x axis, one line per k with its measurement SE as error bars, and the no-change
line at 1 for ratios. It builds a :class:`matplotlib.figure.Figure` directly (no pyplot, so no
display or backend is needed); save it with ``figure.savefig(path)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from kag.measurement import Measurement

RATIOS = ("pr_ratio", "rr_ratio")  # observables whose no-change value is 1


def plot_measurement(results: Measurement | Mapping[str, Measurement], observable: str = "pr_ratio",
                     role: str = "trained"):
    """A figure of ``observable`` (of ``role``) per layer and k: one panel per network of ``results``
    (a :class:`~kag.measurement.Measurement`, or a mapping name -> Measurement)."""
    from matplotlib.figure import Figure

    named = {"": results} if isinstance(results, Measurement) else dict(results)
    if not named or not all(isinstance(m, Measurement) for m in named.values()):
        raise ValueError("results must be a Measurement or a non-empty mapping of names to Measurements")
    known = {r.observable for m in named.values() for r in m.rows}
    if observable not in known:
        raise ValueError(f"observable={observable!r} is not in the results: they hold {', '.join(sorted(known))}")
    figure = Figure(figsize=(4.2 * len(named), 3.4), layout="constrained")
    axes = figure.subplots(1, len(named), squeeze=False)[0]
    for ax, (name, result) in zip(axes, named.items()):
        rows = result.select(observable=observable, role=role)
        layers = list(dict.fromkeys(r.layer for r in result.rows))  # the order measured
        for k in sorted({r.k for r in rows}, key=lambda k: -1 if k is None else k):
            of_k = {r.layer: r for r in rows if r.k == k}
            xs = [i for i, layer in enumerate(layers) if layer in of_k]
            values = [of_k[layers[i]].value for i in xs]
            errors = [of_k[layers[i]].se if math.isfinite(of_k[layers[i]].se) else 0.0 for i in xs]
            ax.errorbar(xs, values, yerr=errors, marker="o", capsize=3, label="all" if k is None else f"k = {k}")
        if observable in RATIOS:
            ax.axhline(1.0, color="0.6", linewidth=0.8, linestyle="--")
        ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
        ax.set_title(name or observable)
        ax.set_ylabel(f"{observable} ({role})" if role != "trained" else observable)
        ax.legend(fontsize="small")
    return figure
