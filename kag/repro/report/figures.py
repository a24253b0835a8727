"""The report's figures, mirroring the paper's: one function ``figures_data -> Figure | None`` per stem.

Every function reads the seed-level numbers of ``data["figures_data"]`` (see
:func:`kag.repro.report.assemble.figure_data`), draws mean ± 2 std over seeds (the paper's error bars and
the claims' lower bounds) and returns ``None`` when the numbers it needs are absent, so a run that
deselected some tests still renders. Figures are built on :class:`matplotlib.figure.Figure`
directly: no pyplot, no global backend state. :data:`SWEEP_FIGURES` are the sweep report's, drawn the
same way from its own ``figures_data`` (:func:`kag.repro.sweep.report.figures_data`). :func:`spec_curve`
is drawn once per claim from the claim's report entry (its cells under every pre-registered variant).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from kag.experiments.families import by_depth
from kag.repro.claims import CRITERIA
from kag.repro.report.quantities import QUANTITY, Key, key_quantity
from kag.repro.stats import spearman

REGIME_STYLE = {"standard": "-", "augmented": "--"}
LABELS = ("standard", "augmented", "augmented (shifted test images)")
LABEL_COLOR = {"standard": "tab:blue", "augmented": "tab:orange", "augmented (shifted test images)": "tab:green"}
K_COLOR = {"1": "tab:blue", "2": "tab:orange", "3": "tab:green", "4": "tab:red"}
PATCH_ORDER = ("top-left", "top-right", "centre", "bottom-left", "bottom-right")

FigureFn = Callable[[dict], "Figure | None"]  # figures_data -> a figure, or None without its numbers


# -- helpers --------------------------------------------------------------------------------------
def mean_2std(values: Any) -> tuple[float, float] | None:
    """Seed values (None = NaN) -> (mean, 2 std with ddof 1), or None when no finite value is left."""
    v = np.array([x for x in (values or []) if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return float(v.mean()), (float(2 * v.std(ddof=1)) if v.size > 1 else 0.0)


def _num_sorted(keys: Any) -> list[str]:
    def key(s: str) -> tuple[int, float, str]:
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)
    return sorted(keys, key=key)


def _k_color(k: str) -> str:
    return K_COLOR.get(k, "tab:purple")


def _figure(ncols: int, nrows: int = 1, width: float = 8.0, height: float = 3.5) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    return fig, axes


def _unity(ax) -> None:
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":", zorder=0)


def _width_axis(ax, widths: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, [str(n) for n in widths])
    ax.minorticks_off()
    ax.set_xlabel("width n")


def _dodge(widths: list[int], i: int, n_lines: int) -> float:
    """Multiplicative x offset of line i of n_lines on a log2 width axis, so error bars do not overlap."""
    octaves = math.log2(max(widths) / min(widths)) if widths and min(widths) > 0 else 1.0
    return 2 ** (0.12 * max(octaves, 1.0) * (i / max(1, n_lines - 1) - 0.5))


def _errorline(ax, xs: list[float], seeds: list[Any], offset: float = 1.0, **kw) -> bool:
    """Plot mean ± 2 std at each x (x multiplied by ``offset`` so error bars do not overlap)."""
    pts = [(x * offset, s) for x, vals in zip(xs, seeds) if (s := mean_2std(vals)) is not None]
    if not pts:
        return False
    ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts],
                capsize=2, lw=1.2, ms=3.5, marker="o", elinewidth=0.8, **kw)
    return True


def _legend(fig: Figure, axes: np.ndarray, ncol: int = 6) -> None:
    handles, labels, seen = [], [], set()
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in seen:
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(ncol, len(handles)), fontsize=7, frameon=False)


def _widths(section: dict) -> list[int]:
    return sorted({int(n) for per_regime in section.values() for n in (per_regime or {})})


def _layers_in(section: dict) -> list[str]:
    """The layers ("L1", "L2", ...) named under a regime -> width -> layer section, input side first."""
    found = {layer for per_regime in section.values() for per_n in (per_regime or {}).values()
             for layer in (per_n or {})}
    return by_depth(found)


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth")
LAYER_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _largest_spatial(fd: dict) -> tuple[str, dict] | None:
    sp = fd.get("spatial") or {}
    if not sp:
        return None
    n = max(sp, key=int)
    return n, sp[n] or {}


# -- global observables vs width ------------------------------------------------------------------
def _global_vs_width(fd: dict, series: list[tuple[str, str]], ylabel: str, title: str,
                     regimes: tuple[str, ...], unity: bool) -> Figure | None:
    """One panel per layer; a line per (regime, k, observable); series = (key, label suffix), a suffix marks a null."""
    g = fd.get("global") or {}
    regimes = tuple(r for r in regimes if g.get(r))
    if not regimes:
        return None
    widths = _widths({r: g[r] for r in regimes})
    ks = _num_sorted({k for r in regimes for n in g[r].values() for layer in (n or {}).values() for k in (layer or {})})
    layers = _layers_in({r: g[r] for r in regimes})
    fig, axes = _figure(len(layers))
    drawn = False
    n_lines = len(regimes) * len(ks) * len(series)
    for index, (ax, layer) in enumerate(zip(axes, layers)):
        i = 0
        for regime in regimes:
            for k in ks:
                for key, suffix in series:
                    seeds = [((g[regime].get(str(n)) or {}).get(layer) or {}).get(k, {}).get(key) for n in widths]
                    offset = _dodge(widths, i, n_lines)
                    i += 1
                    label = f"k={k}" + (f", {regime}" if len(regimes) > 1 else "") + suffix
                    drawn |= _errorline(ax, widths, seeds, offset, color=_k_color(k),
                                        ls=":" if suffix else REGIME_STYLE.get(regime, "-"),
                                        alpha=0.6 if suffix else 1.0, label=label, mfc="white" if suffix else None)
        if unity:
            _unity(ax)
        _width_axis(ax, widths)
        ax.set_title(f"{layer} ({ORDINALS[index] if index < len(ORDINALS) else ''} hidden layer)", fontsize=9)
        ax.set_ylabel(ylabel)
    if not drawn:
        return None
    fig.suptitle(title, fontsize=10)
    _legend(fig, axes)
    return fig


def global_pr_ratio(fd: dict) -> Figure | None:
    """PR ratio vs width per layer and k; standard solid, augmented dashed (C1-PR, C2-C4)."""
    return _global_vs_width(fd, [("pr_ratio", "")], "PR ratio (trained / init)",
                            "Participation-ratio ratio vs width (mean ± 2 std over seeds)",
                            ("standard", "augmented"), unity=True)


def global_kl(fd: dict) -> Figure | None:
    """KL(trained ‖ init) vs width beside the null KL of two independent initialisations (C1-KL)."""
    return _global_vs_width(fd, [("kl", ""), ("kl_null", " null")], "KL divergence",
                            "KL(trained ‖ init) vs null KL(init ‖ independent init), standard regime",
                            ("standard",), unity=False)


def global_rr(fd: dict) -> Figure | None:
    """RR(trained)/RR(init) vs width beside its null (C1-RR)."""
    return _global_vs_width(fd, [("rr_ratio", ""), ("rr_ratio_null", " null")],
                            "RR ratio (trained / init)",
                            "Rotation-ratio ratio vs width, and its null (independent init), standard regime",
                            ("standard",), unity=True)


# -- where KAG is stronger: the quantities C2, C3 and C4 are judged on -----------------------------
def _seed_difference(a: Any, b: Any) -> list[float | None]:
    """Per-seed a - b (seed-paired, as C2 and C3 judge it); None where either side is missing."""
    return [None if x is None or y is None else x - y for x, y in zip(a or [], b or [])]


def _at(g: dict, n: int, layer: str, k: str, key: str = "pr_ratio") -> Any:
    return (((g.get(str(n)) or {}).get(layer) or {}).get(k) or {}).get(key)


def _threshold_line(ax, y: float, label: str) -> None:
    ax.axhline(y, color="tab:red", lw=0.9, ls="--", zorder=0, label=label)


def _difference_vs_width(fd: dict, lines: list[tuple[str, Callable[[dict, int], Any]]], ylabel: str, title: str,
                         threshold: float, colors: list[str]) -> Figure | None:
    """One panel: a line per ``(label, per-seed values of a width)`` against width, mean ± 2 std over
    seeds, and the claim's threshold (the difference must lie wholly above it)."""
    g = (fd.get("global") or {}).get("standard") or {}
    widths = sorted(int(n) for n in g)
    if not widths or not lines:
        return None
    fig, axes = _figure(1, width=6.5, height=3.6)
    ax = axes[0]
    drawn = False
    for i, (label, seeds_at) in enumerate(lines):
        seeds = [seeds_at(g, n) for n in widths]
        drawn |= _errorline(ax, widths, seeds, _dodge(widths, i, len(lines)), color=colors[i % len(colors)],
                            label=label)
    if not drawn:
        return None
    _threshold_line(ax, threshold, f"threshold {threshold:g} (the lower bound must lie above it)")
    _width_axis(ax, widths)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return fig


def _ks(g: dict) -> list[str]:
    return _num_sorted({k for n in g.values() for layer in (n or {}).values() for k in (layer or {})})


def c2_layer_gap(fd: dict) -> Figure | None:
    """C2's judged quantity: PR ratio(L1) - PR ratio(L2) per seed, against width, one line per k >= 2
    (mean ± 2 std over seeds), with the threshold the lower bound must clear."""
    g = (fd.get("global") or {}).get("standard") or {}
    ks = [k for k in _ks(g) if float(k) >= 2]
    lines = [(f"k={k}", lambda g, n, k=k: _seed_difference(_at(g, n, "L1", k), _at(g, n, "L2", k))) for k in ks]
    return _difference_vs_width(fd, lines, "PR ratio L1 − PR ratio L2",
                                "C2: layer 1's PR ratio minus layer 2's (mean ± 2 std over seeds), standard regime",
                                CRITERIA["C2"].thresholds["min_lower_bound"], [_k_color(k) for k in ks])


def c3_order_gap(fd: dict) -> Figure | None:
    """C3's judged quantity: PR ratio(highest k) - PR ratio(lowest k) per seed, against width, one
    line per layer (mean ± 2 std over seeds), with the threshold the lower bound must clear."""
    g = (fd.get("global") or {}).get("standard") or {}
    ks = _ks(g)
    if len(ks) < 2:
        return None
    lo, hi = ks[0], ks[-1]
    layers = _layers_in({"standard": g})
    lines = [(layer, lambda g, n, layer=layer: _seed_difference(_at(g, n, layer, hi), _at(g, n, layer, lo)))
             for layer in layers]
    return _difference_vs_width(fd, lines, f"PR ratio k={hi} − PR ratio k={lo}",
                                f"C3: PR ratio at k={hi} minus at k={lo} (mean ± 2 std over seeds), standard regime",
                                CRITERIA["C3"].thresholds["min_lower_bound"], list(LAYER_COLORS[:len(layers)]))


def c4_width(fd: dict) -> Figure | None:
    """C4's judged quantity: the mean PR ratio (L1, largest k) against width in each regime (error
    bars: ± 2 std over seeds), with Spearman ρ between width and the mean, the number C4 judges."""
    g = fd.get("global") or {}
    regimes = [r for r in ("standard", "augmented") if g.get(r)]
    if not regimes:
        return None
    ks = _ks({r: n for rg in regimes for r, n in g[rg].items()})
    if not ks:
        return None
    k = ks[-1]
    fig, axes = _figure(1, width=6.5, height=3.6)
    ax = axes[0]
    drawn, widths = False, _widths({r: g[r] for r in regimes})
    for i, regime in enumerate(regimes):
        seeds = [_at(g[regime], n, "L1", k) for n in widths]
        stats = [mean_2std(s) for s in seeds]
        pts = [(n, s[0]) for n, s in zip(widths, stats) if s is not None]
        rho = spearman([p[0] for p in pts], [p[1] for p in pts]) if len(pts) > 1 else math.nan
        rho_text = "undefined" if not math.isfinite(rho) else f"{rho:+.2f}"
        drawn |= _errorline(ax, widths, seeds, _dodge(widths, i, len(regimes)), color=LABEL_COLOR[regime],
                            ls=REGIME_STYLE[regime], label=f"{regime}: ρ = {rho_text}")
    if not drawn:
        return None
    _unity(ax)
    _width_axis(ax, widths)
    ax.set_ylabel(f"PR ratio, L1, k={k}")
    ax.set_title(f"C4: PR ratio against width (mean ± 2 std over seeds); C4 needs Spearman ρ ≥ "
                 f"{CRITERIA['C4'].thresholds['min_rho']:g}", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return fig


def c2_depth(fd: dict) -> Figure | None:
    """C2-depth's judged quantity: the PR ratio against layer depth, one panel per k >= 2 and one line
    per width (mean ± 2 std over seeds), standard regime; needs 3 or more hidden layers."""
    g = (fd.get("global") or {}).get("standard") or {}
    layers = _layers_in({"standard": g})
    ks = [k for k in _ks(g) if float(k) >= 2]
    if len(layers) < 3 or not ks:
        return None
    widths = sorted(int(n) for n in g)
    depth = list(range(1, len(layers) + 1))
    fig, axes = _figure(len(ks), width=4.0 * len(ks), height=3.5)
    drawn = False
    for ax, k in zip(axes, ks):
        for i, n in enumerate(widths):
            seeds = [_at(g, n, layer, k) for layer in layers]
            drawn |= _errorline(ax, depth, seeds, 1.0 + 0.02 * (i - len(widths) / 2),
                                color=LAYER_COLORS[i % len(LAYER_COLORS)], label=f"n={n}")
        _unity(ax)
        ax.set_xticks(depth, [f"{layer}" for layer in layers])
        ax.set_xlabel("hidden layer (input side first)")
        ax.set_ylabel(f"PR ratio, k={k}")
        ax.set_title(f"k={k}", fontsize=9)
    if not drawn:
        return None
    fig.suptitle(f"C2-depth: PR ratio against depth (mean ± 2 std), standard regime; needs Spearman ρ ≤ "
                 f"{CRITERIA['C2-depth'].thresholds['max_rho']:g}", fontsize=9)
    _legend(fig, axes)
    return fig


# -- spatial analyses -----------------------------------------------------------------------------
def _spatial_panels(fd: dict, analysis: str) -> tuple[str, dict, list[tuple[str, str]]] | None:
    """(largest spatial width, {label: layer -> k -> cond -> ...}, panels [(layer, k)]) or None."""
    found = _largest_spatial(fd)
    if found is None:
        return None
    n, per_label = found
    by_label = {lab: (per_label.get(lab) or {}).get(analysis) or {} for lab in LABELS}
    by_label = {lab: v for lab, v in by_label.items() if v}
    if not by_label:
        return None
    panels = sorted({(layer, k) for v in by_label.values() for layer, ks in v.items() for k in (ks or {})},
                    key=lambda p: (p[0], float(p[1])))
    return n, by_label, panels


def _panel_grid(panels: list[tuple[str, str]]) -> tuple[Figure, np.ndarray]:
    """Rows = layers, columns = k, for the (layer, k) panels of a spatial analysis (row-major order)."""
    layers = sorted({layer for layer, _ in panels})
    ks = sorted({k for _, k in panels}, key=float)
    if len(layers) * len(ks) != len(panels):  # a ragged set: one row
        return _figure(len(panels), width=max(8.0, 2.4 * len(panels)), height=3.4)
    return _figure(len(ks), len(layers), width=max(8.0, 3.4 * len(ks)), height=2.4 * len(layers) + 0.9)


def _outer_labels(axes: np.ndarray, xlabel: str | None, ylabel: str) -> None:
    for ax in axes:
        spec = ax.get_subplotspec()
        if xlabel and spec.is_last_row():
            ax.set_xlabel(xlabel)
        if spec.is_first_col():
            ax.set_ylabel(ylabel)


def _conditions(by_label: dict, layer: str, k: str) -> list[str]:
    conds = {c for v in by_label.values() for c in ((v.get(layer) or {}).get(k) or {})}
    ordered = [c for c in PATCH_ORDER if c in conds]
    return ordered + _num_sorted(conds - set(ordered))


def _spatial_lines(fd: dict, analysis: str, xlabel: str, title: str, pool_ticks: bool) -> Figure | None:
    found = _spatial_panels(fd, analysis)
    if found is None:
        return None
    n, by_label, panels = found
    fig, axes = _panel_grid(panels)
    drawn = False
    for ax, (layer, k) in zip(axes, panels):
        conds = _conditions(by_label, layer, k)
        xs = [float(c) for c in conds]
        for i, (lab, v) in enumerate(by_label.items()):
            entries = ((v.get(layer) or {}).get(k) or {})
            seeds = [(entries.get(c) or {}).get("pr_ratio") for c in conds]
            span = (max(xs) - min(xs)) or 1.0
            shifted = [x + 0.012 * span * (i - 1) for x in xs]
            pts = [(x, s) for x, vals in zip(shifted, seeds) if (s := mean_2std(vals)) is not None]
            if pts:
                drawn = True
                ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts], capsize=2,
                            lw=1.2, ms=3.5, marker="o", elinewidth=0.8, color=LABEL_COLOR.get(lab), label=lab)
        ticks = []
        for c in conds:
            pools = [(((v.get(layer) or {}).get(k) or {}).get(c) or {}).get("pool_size") for v in by_label.values()]
            pools = [p for p in pools if p is not None]
            ticks.append(f"{c}\n(~{np.mean(pools):.0f})" if pool_ticks and pools else c)
        ax.set_xticks(xs, ticks, fontsize=7)
        ax.margins(x=0.08)
        _unity(ax)
        ax.set_title(f"{layer}, k={k}", fontsize=9)
    if not drawn:
        return None
    _outer_labels(axes, xlabel, "PR ratio (trained / init)")
    fig.suptitle(f"{title}, width n={n} (mean ± 2 std over seeds)", fontsize=10)
    _legend(fig, axes)
    return fig


def spatial_balls(fd: dict) -> Figure | None:
    """PR ratio vs ball radius (mean pool size under each tick), three model/image conditions (C5)."""
    return _spatial_lines(fd, "balls", "radius r (mean pool size, pixels)", "PR ratio in Euclidean balls",
                          pool_ticks=True)


def spatial_separation(fd: dict) -> Figure | None:
    """PR ratio vs minimum pairwise pixel distance d (C7)."""
    return _spatial_lines(fd, "separation", "minimum pixel distance d", "PR ratio for well-separated pixels",
                          pool_ticks=False)


def _bars(ax, groups: list[str], series: dict[str, list[Any]], colors: dict[str, str]) -> bool:
    """Grouped bars: series label -> one seed list per group; mean with ± 2 std error bars."""
    width = 0.8 / max(1, len(series))
    drawn = False
    for i, (lab, per_group) in enumerate(series.items()):
        stats = [mean_2std(s) for s in per_group]
        xs = [j + (i - (len(series) - 1) / 2) * width for j, s in enumerate(stats) if s is not None]
        ok = [s for s in stats if s is not None]
        if ok:
            drawn = True
            ax.bar(xs, [s[0] for s in ok], width * 0.92, yerr=[s[1] for s in ok], capsize=2,
                   color=colors.get(lab), label=lab, error_kw={"elinewidth": 0.8})
    ax.set_xticks(range(len(groups)), groups, fontsize=7)
    return drawn


def spatial_patches(fd: dict) -> Figure | None:
    """PR ratio per 14x14 patch, grouped bars for the three model/image conditions (C6)."""
    found = _spatial_panels(fd, "patches")
    if found is None:
        return None
    n, by_label, panels = found
    fig, axes = _panel_grid(panels)
    drawn = False
    for ax, (layer, k) in zip(axes, panels):
        conds = _conditions(by_label, layer, k)
        series = {lab: [(((v.get(layer) or {}).get(k) or {}).get(c) or {}).get("pr_ratio") for c in conds]
                  for lab, v in by_label.items()}
        drawn |= _bars(ax, [c.replace("-", "\n") for c in conds], series, LABEL_COLOR)
        _unity(ax)
        ax.set_title(f"{layer}, k={k}", fontsize=9)
    if not drawn:
        return None
    _outer_labels(axes, None, "PR ratio (trained / init)")
    fig.suptitle(f"PR ratio per image patch, width n={n} (mean ± 2 std over seeds)", fontsize=10)
    _legend(fig, axes)
    return fig


def _mean_over_conditions(entries: dict) -> list[float | None]:
    """Per-seed PR ratio averaged over an analysis's conditions (the C8 reduction's unit)."""
    per_cond = [np.array([np.nan if x is None else x for x in (e or {}).get("pr_ratio") or []], dtype=float)
                for e in (entries or {}).values()]
    per_cond = [a for a in per_cond if a.size]
    if not per_cond or len({a.size for a in per_cond}) != 1:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed without any finite condition: NaN, then None
        m = np.nanmean(np.stack(per_cond), axis=0)
    return [float(x) if math.isfinite(x) else None for x in m]


def augmentation(fd: dict) -> Figure | None:
    """Standard vs augmented PR ratios per spatial analysis, averaged over conditions, with the reduction (C8)."""
    found = _largest_spatial(fd)
    if found is None:
        return None
    n, per_label = found
    analyses = [a for a in ("balls", "patches", "separation")
                if any((per_label.get(lab) or {}).get(a) for lab in LABELS)]
    if not analyses or not per_label.get("standard"):
        return None
    fig, axes = _figure(len(analyses), width=max(8.0, 3.0 * len(analyses)), height=3.4)
    drawn = False
    for ax, analysis in zip(axes, analyses):
        by_label = {lab: (per_label.get(lab) or {}).get(analysis) or {} for lab in LABELS if per_label.get(lab)}
        panels = sorted({(layer, k) for v in by_label.values() for layer, ks in v.items() for k in (ks or {})},
                        key=lambda p: (p[0], float(p[1])))
        series = {lab: [_mean_over_conditions((v.get(layer) or {}).get(k)) for layer, k in panels]
                  for lab, v in by_label.items()}
        drawn |= _bars(ax, [f"{layer}\nk={k}" for layer, k in panels], series, LABEL_COLOR)
        std = [mean_2std(s) for s in series.get("standard", [])]
        aug = [mean_2std(s) for s in series.get("augmented", [])]
        for j, (s, a) in enumerate(zip(std, aug)):
            if s and a and s[0]:
                top = max(s[0] + s[1], a[0] + a[1])
                ax.annotate(f"{1 - a[0] / s[0]:+.0%}", (j, top), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=6.5, color="0.25")
        _unity(ax)
        ax.set_title(f"{analysis} (mean over conditions)", fontsize=9)
    if not drawn:
        return None
    axes[0].set_ylabel("PR ratio (trained / init)")
    fig.suptitle(f"Augmentation: PR ratios at width n={n}; reduction 1 - aug/std above each group", fontsize=10)
    _legend(fig, axes)
    return fig


# -- accuracy, zero rows, timeline ----------------------------------------------------------------
def accuracy(fd: dict) -> Figure | None:
    """Test accuracy vs width: standard and augmented models on clean and shifted test images (C9)."""
    acc = fd.get("accuracy") or {}
    if not acc:
        return None
    widths = _widths(acc)
    lines = [("standard", "clean", "standard, clean", "tab:blue", "-"),
             ("standard", "shifted", "standard, shifted", "tab:blue", ":"),
             ("augmented", "clean", "augmented, clean", "tab:orange", "--"),
             ("augmented", "shifted", "augmented, shifted", "tab:green", "--")]
    fig, axes = _figure(1, width=6.0, height=3.5)
    ax = axes[0]
    drawn = False
    for i, (regime, images, label, color, ls) in enumerate(lines):
        seeds = [((acc.get(regime) or {}).get(str(n)) or {}).get(images) for n in widths]
        drawn |= _errorline(ax, widths, seeds, _dodge(widths, i, len(lines)), color=color, ls=ls, label=label)
    if not drawn:
        return None
    _width_axis(ax, widths)
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy vs width (mean ± 2 std over seeds)", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return fig


def zero_rows(fd: dict) -> Figure | None:
    """Zero-row fraction of trained, initial and independent-initial Jacobians vs width, L1 and L2 (C10)."""
    z = fd.get("zero_rows") or {}
    regimes = [r for r in ("standard", "augmented") if z.get(r)]
    if not regimes:
        return None
    widths = _widths({r: z[r] for r in regimes})
    colors = {"trained": "tab:red", "init": "tab:gray", "null": "tab:purple"}
    layers = _layers_in({r: z[r] for r in regimes})
    fig, axes = _figure(len(layers))
    drawn = False
    for ax, layer in zip(axes, layers):
        i = 0
        n_lines = 3 * len(regimes)
        for regime in regimes:
            for state in ("trained", "init", "null"):
                seeds = [(((z[regime].get(str(n)) or {}).get(layer)) or {}).get(state) for n in widths]
                label = f"{state}" + (f", {regime}" if len(regimes) > 1 else "")
                drawn |= _errorline(ax, widths, seeds, _dodge(widths, i, n_lines), color=colors[state],
                                    ls=REGIME_STYLE.get(regime, "-"), label=label)
                i += 1
        _width_axis(ax, widths)
        ax.set_title(layer, fontsize=9)
        ax.set_ylabel("zero-row fraction")
    if not drawn:
        return None
    fig.suptitle("Zero rows: share of Jacobian rows below the init's 1st-percentile norm", fontsize=10)
    _legend(fig, axes)
    return fig


def timeline(fd: dict) -> Figure | None:
    """PR ratio (L1) vs training epoch, one line per width, mean ± 2 std band (C11)."""
    tl = fd.get("timeline") or {}
    regimes = [r for r in tl if tl[r]]
    if not regimes:
        return None
    fig, axes = _figure(len(regimes), width=8.0 if len(regimes) > 1 else 6.0)
    drawn = False
    cmap = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for ax, regime in zip(axes, regimes):
        for i, n in enumerate(sorted(tl[regime], key=int)):
            entry = tl[regime][n] or {}
            epochs = entry.get("epochs") or []
            per_seed = entry.get("pr_ratio") or []
            stats = [mean_2std([s[e] if e < len(s) else None for s in per_seed]) for e in range(len(epochs))]
            pts = [(ep, s) for ep, s in zip(epochs, stats) if s is not None]
            if not pts:
                continue
            drawn = True
            x = np.array([p[0] for p in pts], dtype=float)
            m = np.array([p[1][0] for p in pts])
            e = np.array([p[1][1] for p in pts])
            color = cmap[i % len(cmap)]
            ax.plot(x, m, color=color, lw=1.2, marker="o" if len(x) <= 12 else None, ms=3, label=f"n={n}")
            ax.fill_between(x, m - e, m + e, color=color, alpha=0.15, lw=0)
        _unity(ax)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("PR ratio (trained / init)")
        ax.set_title(f"{regime} regime", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    if not drawn:
        return None
    fig.suptitle("PR ratio during training, L1 (mean ± 2 std over seeds)", fontsize=10)
    return fig


# -- beyond the paper: the norm-matched surrogate, and the sampling of PR --------------------------
SURROGATE_LABELS = {"surrogate": "rows + columns matched", "surrogate_rows": "rows only",
                    "surrogate_cols": "columns only"}
SURROGATE_COLOR = {"surrogate": "tab:red", "surrogate_rows": "tab:purple", "surrogate_cols": "tab:olive"}


def surrogate(fd: dict) -> Figure | None:
    """X(trained)/X(surrogate) for PR, KL and RR against width, per layer and surrogate variant (N2)."""
    sd = fd.get("surrogate") or {}
    layers = by_depth(layer for layer, v in (sd.get("layers") or {}).items() if v)
    if not layers:
        return None
    observables = ("pr", "kl", "rr")
    fig, axes = _figure(len(observables), nrows=len(layers), width=9.0, height=2.8 * len(layers))
    drawn = False
    for row, layer in enumerate(layers):
        for col, obs in enumerate(observables):
            ax = axes[row * len(observables) + col]
            per_variant = (sd["layers"][layer].get(obs) or {})
            widths = sorted({int(n) for v in per_variant.values() for n in v})
            for i, (role, per_width) in enumerate(per_variant.items()):
                seeds = [per_width.get(str(n)) for n in widths]
                drawn |= _errorline(ax, widths, seeds, _dodge(widths, i, len(per_variant)),
                                    color=SURROGATE_COLOR.get(role), label=SURROGATE_LABELS.get(role, role))
            _unity(ax)
            if widths:
                _width_axis(ax, widths)
            ax.set_title(f"{layer}: {obs.upper()}(trained) / {obs.upper()}(surrogate)", fontsize=8)
    if not drawn:
        return None
    fig.suptitle(f"How much the row and column norms explain, k={sd.get('k')} (1 = all of it; mean ± 2 std)",
                 fontsize=10)
    _legend(fig, axes)
    return fig


def sampling(fd: dict) -> Figure | None:
    """PR ratio against the number S of sampled minors, one line per width, per layer (SPEC §5)."""
    sp = fd.get("sampling") or {}
    layers = by_depth(layer for layer, v in sp.items() if v)
    if not layers:
        return None
    fig, axes = _figure(len(layers))
    drawn = False
    cmap = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for ax, layer in zip(axes, layers):
        for i, n in enumerate(sorted(sp[layer], key=int)):
            entry = sp[layer][n]
            drawn |= _errorline(ax, entry["sizes"], entry["pr_ratio"], color=cmap[i % len(cmap)], label=f"n={n}")
        ax.set_xscale("log")
        ax.set_xlabel("sampled minors S")
        ax.set_ylabel("PR ratio (trained / init)")
        ax.set_title(layer, fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    if not drawn:
        return None
    fig.suptitle("PR ratio against the number of sampled minors (mean ± 2 std over seeds)", fontsize=10)
    return fig


FIGURES: dict[str, FigureFn] = {
    "global_pr_ratio": global_pr_ratio,
    "global_kl": global_kl,
    "global_rr": global_rr,
    "c2_layer_gap": c2_layer_gap,
    "c3_order_gap": c3_order_gap,
    "c4_width": c4_width,
    "c2_depth": c2_depth,
    "spatial_balls": spatial_balls,
    "spatial_patches": spatial_patches,
    "spatial_separation": spatial_separation,
    "augmentation": augmentation,
    "accuracy": accuracy,
    "zero_rows": zero_rows,
    "timeline": timeline,
    "surrogate": surrogate,
    "sampling": sampling,
}
"""Figure stem (the PNG's file name and a criterion's ``figure``) -> function of ``figures_data``."""



# -- the multiverse: one specification curve per claim ----------------------------------------------
PRIMARY = "primary"
VERDICT_COLOR = {"supported": "#1a7f37", "contradicted": "#cf222e", "inconclusive": "#bf8700", "invalid": "#6e7781"}


Spec = tuple[str, str, str, Key]  # (cell id, estimator, verdict, key number)


def specifications(entry: dict) -> dict[str, list[Spec]]:
    """(cell id, estimator, verdict, key number) for every judged cell of a claim under its primary
    estimator and under every variant its rows carry (``row["variants"]``: name -> {"verdict",
    "values"}), grouped by the observable a cell judges (N2's ``obs`` parameter; "" for the other
    claims, whose cells share one scale); cells whose values have no key number
    (:func:`~kag.repro.report.quantities.key_quantity`) or a NaN one are left out."""
    out: dict[str, list[Spec]] = {}
    for row in entry.get("cells") or []:
        group = str((row.get("params") or {}).get("obs", ""))
        under = [(PRIMARY, row.get("verdict"), row.get("values"))]
        under += [(name, (v or {}).get("verdict"), (v or {}).get("values")) for name, v in
                  (row.get("variants") or {}).items()]
        for name, verdict, values in under:
            key = key_quantity(values) if verdict else None
            if key is not None and math.isfinite(key.mean):
                out.setdefault(group, []).append((str(row.get("cell")), name, str(verdict), key))
    return {g: sorted(specs, key=lambda s: s[3].mean) for g, specs in out.items()}


def _variant_order(entry: dict, specs: list[Spec]) -> list[str]:
    """The primary first, then the claim's declared variants, then any other name found (only those used)."""
    used = {s[1] for s in specs}
    names = [PRIMARY] + [str(n) for n in entry.get("variant_names") or []] + [s[1] for s in specs]
    return [n for n in dict.fromkeys(names) if n in used]


def _spec_panel(top, bottom, specs: list[Spec], names: list[str], ylabel: str) -> None:
    """One specification curve: the sorted key numbers with their error bars (top) and which
    estimator each used (bottom), with the threshold (or C8's band) of the first.

    One artist per (verdict, primary or variant) instead of three per specification: a claim with
    hundreds of specifications (N2, C8) draws in a fraction of the time, and looks the same."""
    by_color: dict[str, list[tuple[int, str, Key]]] = {}
    for x, (_, name, verdict, key) in enumerate(specs):
        by_color.setdefault(VERDICT_COLOR.get(verdict, "0.5"), []).append((x, name, key))
    for color, points in by_color.items():
        bars = [(x, key.lower, key.upper) for x, _, key in points
                if math.isfinite(key.lower) and math.isfinite(key.upper)]
        if bars:
            top.vlines(*zip(*bars), color=color, lw=1.0, alpha=0.8)
        for primary in (True, False):
            mine = [(x, key.mean) for x, name, key in points if (name == PRIMARY) == primary]
            if mine:
                top.plot(*zip(*mine), ls="", marker="o", ms=3.2, color=color, mfc=color if primary else "white",
                         mew=0.9)
        bottom.plot([x for x, _, _ in points], [names.index(name) for _, name, _ in points], ls="", marker="|", ms=6,
                    color=color)
    first = specs[0][3]
    if first.band is not None:
        top.axhspan(*first.band, color="0.85", alpha=0.6, lw=0, zorder=0)
    elif math.isfinite(first.threshold):
        top.axhline(first.threshold, color="0.3", lw=0.9, ls="--", zorder=0)
    top.set_ylabel(ylabel, fontsize=7)
    bottom.set_yticks(range(len(names)), names, fontsize=6.5)
    bottom.set_ylim(len(names) - 0.5, -0.5)
    bottom.set_xlabel(f"{len(specs)} specifications (cell × estimator), sorted", fontsize=8)
    bottom.tick_params(axis="x", labelsize=6)


def spec_curve(entry: dict) -> Figure | None:
    """A claim's specification curve: every (cell, estimator) pair's key number, sorted, as an error
    bar (its lower to upper bound; for C8 the per-seed interval of the reduction, for ρ ± 2
    measurement SE) around its value, coloured by its verdict, with the claim's threshold (C8: its
    band); below it, which estimator each point used. The key number is the one the rule judges
    (:func:`kag.repro.report.quantities.key_quantity`: the weakest condition for C5/C6, the far
    separation for C7, the null's PR ratio for N1); N2's observables (PR, KL, RR) get a curve each.
    None when no cell carries variants: without a multiverse there is nothing to add to the claim's
    own figure."""
    if not any((r or {}).get("variants") for r in entry.get("cells") or []):
        return None
    groups = specifications(entry)
    if not groups:
        return None
    names = {g: _variant_order(entry, specs) for g, specs in groups.items()}
    rows = max(len(n) for n in names.values())
    fig = Figure(figsize=(8.0 if len(groups) == 1 else 4.0 * len(groups), 3.0 + 0.16 * rows), layout="constrained")
    axes = fig.subplots(2, len(groups), squeeze=False, sharex="col",
                        gridspec_kw={"height_ratios": [3.0, 0.35 + 0.2 * rows]})
    quantity = QUANTITY.get(str(entry.get("id")), "key number")
    for col, (group, specs) in enumerate(groups.items()):
        _spec_panel(axes[0, col], axes[1, col], specs, names[group], group or quantity)
        if group:
            axes[0, col].set_title(group, fontsize=9)
    every = [s for specs in groups.values() for s in specs]
    handles = [Line2D([], [], color=c, marker="o", ls="", ms=4, label=v) for v, c in VERDICT_COLOR.items()
               if any(s[2] == v for s in every)]
    handles += [Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="0.3", label="primary estimator"),
                Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="white", label="a variant")]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=6.5, frameon=False)
    rob = (entry.get("robustness") or {}).get("status")
    fig.suptitle(f"{entry.get('id')}: its key number under the primary estimator and every pre-registered variant"
                 + (f" ({rob})" if rob else ""), fontsize=9)
    return fig


# -- the assumption sweep (kag.repro.sweep.report): one figure per question ------------------------
# Each reads ``figures_data`` of the sweep report: per grid point, the numbers its judged cells (or,
# for accuracy, its results tables) gave; only the points that vary the figure's axes are in it.
def _ticks(values: list[str], default: str | None) -> list[str]:
    return [f"{v}\n(default)" if v == default else v for v in values]


def _offsets(n_lines: int, spread: float = 0.24) -> list[float]:
    """x offsets of n_lines markers sharing a categorical x, so their bars do not overlap."""
    return [0.0] if n_lines <= 1 else [spread * (i / (n_lines - 1) - 0.5) for i in range(n_lines)]


SWEEP_IMAGES = {"clean": "clean test images", "shifted": "shifted test images"}


def sweep_c8_reduction(fd: dict) -> Figure | None:
    """C8's reduction 1 - PR ratio(aug)/PR ratio(std) per grid point: the mean over its judged cells
    (bar: their range), against the augmentation, one line per weight decay; the claim's band shaded."""
    d = fd.get("c8") or {}
    points = [p for p in d.get("points") or [] if any(p.get("reduction", {}).get(im) for im in SWEEP_IMAGES)]
    if len(points) < 2:
        return None
    xs, lines = d["x_values"], d["line_values"]
    images = [im for im in SWEEP_IMAGES if any(p["reduction"].get(im) for p in points)]
    fig, axes = _figure(len(images), width=max(6.0, 4.2 * len(images)), height=3.6)
    cmap = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    offsets = _offsets(len(lines))
    for ax, images_ in zip(axes, images):
        lo, hi = d.get("band") or (None, None)
        if lo is not None and hi is not None:
            ax.axhspan(lo, hi, color="0.85", alpha=0.6, lw=0, zorder=0, label=f"claim: {lo:.0%} to {hi:.0%}")
        for i, line in enumerate(lines):
            pts = []
            for p in points:
                r = [x for x in p["reduction"].get(images_) or [] if x is not None and math.isfinite(x)]
                if p["line"] == line and r:
                    pts.append((xs.index(p["x"]) + offsets[i], float(np.mean(r)), min(r), max(r)))
            if not pts:
                continue
            pts.sort()
            m = np.array([q[1] for q in pts])
            yerr = [m - np.array([q[2] for q in pts]), np.array([q[3] for q in pts]) - m]
            ax.errorbar([q[0] for q in pts], m, yerr=yerr, capsize=2, lw=1.2, ms=4, marker="o", elinewidth=0.8,
                        color=cmap[i % len(cmap)], label=f"{d['line_axis']} {line}"
                        + (" (default)" if line == d.get("line_default") else ""))
        ax.axhline(0.0, color="0.4", lw=0.8, ls=":", zorder=0)
        ax.set_xticks(range(len(xs)), _ticks(xs, d.get("x_default")), fontsize=7)
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_xlabel(d["x_axis"])
        ax.set_title(f"augmented models on {SWEEP_IMAGES[images_]}", fontsize=9)
    axes[0].set_ylabel("reduction 1 - PR ratio(aug) / PR ratio(std)")
    fig.suptitle("C8: how much augmentation lowers the spatial PR ratios (mean over cells; bar: their range)",
                 fontsize=10)
    _legend(fig, axes)
    return fig


def sweep_c2_gap(fd: dict) -> Figure | None:
    """C2's L1 - L2 PR ratio per grid point (mean ± 2 std over seeds), against the learning rate and
    the weight decay (one column each), one row per width, one line per k."""
    d = fd.get("c2") or {}
    panels = [p for p in d.get("panels") or [] if len({q["x"] for q in p.get("points") or []}) >= 2]
    widths = sorted({int(c["n"]) for p in panels for q in p["points"] for c in q.get("cells") or []})
    if not panels or not widths:
        return None
    ks = sorted({str(c["k"]) for p in panels for q in p["points"] for c in q.get("cells") or []}, key=float)
    fig, axes = _figure(len(panels), len(widths), width=max(6.0, 4.2 * len(panels)), height=2.6 * len(widths) + 0.8)
    offsets = _offsets(len(ks))
    drawn = False
    for row, n in enumerate(widths):
        for col, panel in enumerate(panels):
            ax = axes[row * len(panels) + col]
            xs = panel["x_values"]
            for i, k in enumerate(ks):
                pts = sorted((xs.index(q["x"]) + offsets[i], c) for q in panel["points"] for c in q.get("cells") or []
                             if int(c["n"]) == n and str(c["k"]) == k and c.get("mean") is not None)
                if not pts:
                    continue
                drawn = True
                m = np.array([c["mean"] for _, c in pts], dtype=float)
                low = np.array([np.nan if c.get("lower_bound") is None else c["lower_bound"] for _, c in pts])
                high = np.array([np.nan if c.get("upper_bound") is None else c["upper_bound"] for _, c in pts])
                ax.errorbar([x for x, _ in pts], m, yerr=[np.nan_to_num(m - low), np.nan_to_num(high - m)], capsize=2,
                            lw=1.2, ms=3.5, marker="o", elinewidth=0.8, color=_k_color(k), label=f"k={k}")
            ax.axhline(d.get("threshold", 0.0), color="0.4", lw=0.8, ls=":", zorder=0)
            ax.set_xticks(range(len(xs)), _ticks(xs, panel.get("x_default")), fontsize=7)
            ax.set_xlim(-0.5, len(xs) - 0.5)
            ax.set_title(f"width n={n}", fontsize=9)
            if row == len(widths) - 1:
                ax.set_xlabel(panel["axis"])
            if col == 0:
                ax.set_ylabel("PR ratio L1 - L2")
    if not drawn:
        return None
    fig.suptitle("C2: layer 1's PR ratio minus layer 2's (mean ± 2 std over seeds; C2 holds above the line)",
                 fontsize=10)
    _legend(fig, axes)
    return fig


def sweep_accuracy(fd: dict) -> Figure | None:
    """Test accuracy of the augmented models per grid point (mean ± 2 std over seeds), against the
    augmentation, one line per width: clean test images solid, shifted dashed; the paper's figure marked."""
    d = fd.get("accuracy") or {}
    points = d.get("points") or []
    if len(points) < 2:
        return None
    xs = d["x_values"]
    widths = sorted({int(n) for p in points for n in p.get("widths") or {}})
    fig, axes = _figure(1, width=6.5, height=3.6)
    ax = axes[0]
    cmap = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    series = [(n, im) for n in widths for im in SWEEP_IMAGES]
    offsets = _offsets(len(series))
    drawn = False
    for i, (n, images_) in enumerate(series):
        pts = sorted((xs.index(p["x"]) + offsets[i], s) for p in points
                     if (s := mean_2std(((p.get("widths") or {}).get(str(n)) or {}).get(images_))) is not None)
        if not pts:
            continue
        drawn = True
        ax.errorbar([x for x, _ in pts], [s[0] for _, s in pts], yerr=[s[1] for _, s in pts], capsize=2, lw=1.2,
                    ms=3.5, marker="o" if images_ == "clean" else "s", elinewidth=0.8,
                    color=cmap[widths.index(n) % len(cmap)], ls="-" if images_ == "clean" else "--",
                    mfc=None if images_ == "clean" else "white", label=f"n={n}, {SWEEP_IMAGES[images_]}")
    if not drawn:
        return None
    paper, tol = d.get("paper"), d.get("tolerance")
    if paper is not None:
        if tol:
            ax.axhspan(paper - tol, paper + tol, color="0.85", alpha=0.6, lw=0, zorder=0)
        ax.axhline(paper, color="tab:red", lw=1.0, ls=":", zorder=1, label=f"paper: {paper:.0%}"
                   + (f" (± {tol * 100:g} pp shaded)" if tol else ""))
    ax.set_xticks(range(len(xs)), _ticks(xs, d.get("x_default")), fontsize=7)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_xlabel(d.get("x_axis", "augmentation"))
    ax.set_ylabel("test accuracy of the augmented models")
    ax.set_title("Augmented models' test accuracy (mean ± 2 std over seeds)", fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    return fig


SWEEP_FIGURES: dict[str, FigureFn] = {
    "sweep_c8_reduction": sweep_c8_reduction,
    "sweep_c2_gap": sweep_c2_gap,
    "sweep_accuracy": sweep_accuracy,
}
"""The sweep report's figures (stem -> function of its ``figures_data``)."""
