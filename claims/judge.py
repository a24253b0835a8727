"""Decision rules: from seed-level metric tables to a verdict per claim and cell (SPEC §7).

``cells(criterion, profile)`` lists what one test covers (known before any model exists, so
pytest can parametrize); ``judge(criterion, cell, results)`` reads the tables and applies the
rule with the thresholds of :mod:`claims.criteria`. The rules themselves (``rule_*``) are pure
functions of numbers, unit-tested on both sides of every threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from claims.criteria import BY_ID, Criterion
from kag.profiles import Profile
from kag.stats import at_least, exceeds, lower_bound, mean_std, spearman

LAYERS = ("L1", "L2")
REGIMES = ("standard", "augmented")
ANALYSES = ("balls", "patches", "separation")


@dataclass(frozen=True)
class Cell:
    criterion: str
    params: tuple[tuple[str, Any], ...]

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def id(self) -> str:
        """Readable test id, e.g. ``n=256-k=3-L1`` (bare values for regime, layer, analysis)."""
        parts = []
        for name, value in self.params:
            parts.append(str(value) if name in ("regime", "layer", "analysis") else f"{name}={value}")
        return "-".join(parts)


@dataclass
class Verdict:
    criterion: str
    cell: str
    params: dict[str, Any]
    supported: bool
    values: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def as_expected(self) -> bool:
        return self.supported == BY_ID[self.criterion].expect_supported

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.criterion, "cell": self.cell, "params": self.params, "supported": self.supported,
                "as_expected": self.as_expected, "values": self.values, "detail": self.detail}


# -- pure rules ---------------------------------------------------------------------------------
def seed_summary(values: Sequence[float]) -> dict[str, Any]:
    mean, std = mean_std(values)
    return {"seeds": [float(v) for v in values], "mean": mean, "std": std, "lower_bound": lower_bound(values)}


def rule_lower_bound_above(values: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    """Supported iff mean - 2 std over seeds > threshold."""
    s = seed_summary(values)
    return exceeds(s["lower_bound"], threshold), {**s, "threshold": threshold}


def rule_rho_at_least(x: Sequence[float], y: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    rho = spearman(x, y)
    return at_least(rho, threshold), {"x": [float(v) for v in x], "y": [float(v) for v in y], "rho": rho, "threshold": threshold}


def rule_scale_agnostic(per_condition: Mapping[str, Sequence[float]], min_lb: float, max_spread: float) -> tuple[bool, dict]:
    """C5: every condition's lower bound > min_lb, and max/min of the condition means <= max_spread."""
    summaries = {c: seed_summary(v) for c, v in per_condition.items()}
    means = np.array([s["mean"] for s in summaries.values()])
    spread = float(means.max() / means.min()) if means.min() > 0 else float("inf")
    all_above = all(exceeds(s["lower_bound"], min_lb) for s in summaries.values())
    ok = all_above and np.isfinite(spread) and spread <= max_spread
    return bool(ok), {"conditions": summaries, "spread": spread, "min_lower_bound": min_lb, "max_spread": max_spread}


def rule_all_above(per_condition: Mapping[str, Sequence[float]], min_lb: float) -> tuple[bool, dict]:
    """C6: every condition's lower bound > min_lb."""
    summaries = {c: seed_summary(v) for c, v in per_condition.items()}
    ok = all(exceeds(s["lower_bound"], min_lb) for s in summaries.values())
    return ok, {"conditions": summaries, "min_lower_bound": min_lb}


def rule_persists(near: Sequence[float], far: Sequence[float], min_lb: float, max_change: float) -> tuple[bool, dict]:
    """C7: far lower bound > min_lb and |mean(far)/mean(near) - 1| <= max_change."""
    s_near, s_far = seed_summary(near), seed_summary(far)
    change = s_far["mean"] / s_near["mean"] - 1.0 if s_near["mean"] else float("inf")
    ok = exceeds(s_far["lower_bound"], min_lb) and bool(np.isfinite(change)) and abs(change) <= max_change
    return ok, {"near": s_near, "far": s_far, "relative_change": change, "min_lower_bound": min_lb,
                "max_relative_change": max_change}


def rule_reduction(standard: Mapping[str, Sequence[float]], augmented: Mapping[str, Sequence[float]],
                   lo: float, hi: float, min_lb: float) -> tuple[bool, dict]:
    """C8: 1 - mean(aug)/mean(std) in [lo, hi] (means over conditions and seeds), aug lower bounds > min_lb."""
    mean_std_ = float(np.mean([np.mean(v) for v in standard.values()]))
    mean_aug = float(np.mean([np.mean(v) for v in augmented.values()]))
    reduction = 1.0 - mean_aug / mean_std_ if mean_std_ else float("nan")
    aug = {c: seed_summary(v) for c, v in augmented.items()}
    aug_above = all(exceeds(s["lower_bound"], min_lb) for s in aug.values())
    ok = bool(np.isfinite(reduction)) and lo <= reduction <= hi and aug_above
    return ok, {"mean_standard": mean_std_, "mean_augmented": mean_aug, "reduction": reduction, "range": [lo, hi],
                "augmented_conditions": aug, "augmented_all_above": aug_above, "min_lower_bound": min_lb}


def rule_mean_at_least(values: Sequence[float], threshold: float) -> tuple[bool, dict[str, Any]]:
    s = seed_summary(values)
    return at_least(s["mean"], threshold), {**s, "threshold": threshold}


# -- cells ---------------------------------------------------------------------------------------
def _cell(cid: str, **params: Any) -> Cell:
    return Cell(cid, tuple(params.items()))


def cells(c: Criterion, profile: Profile) -> list[Cell]:
    """The cells one criterion is judged on under ``profile`` (from the profile alone)."""
    widths, ks, m = profile.widths, profile.metrics.ks, profile.metrics
    n_sp = max(profile.spatial_widths)
    g = c.group
    if g in ("C1", "N1"):
        return [_cell(c.id, n=n, k=k, layer=layer) for n in widths for k in ks for layer in LAYERS]
    if g == "C2":
        return [_cell(c.id, n=n, k=k) for n in widths for k in ks if k >= 2]
    if g == "C3":
        return [_cell(c.id, n=n, layer=layer) for n in widths for layer in LAYERS] if len(ks) > 1 else []
    if g == "C4":
        return [_cell(c.id, regime=r) for r in REGIMES]
    if g in ("C5", "C6", "C7"):
        return [_cell(c.id, regime=r, layer=layer, k=k, n=n_sp) for r in REGIMES for layer in LAYERS for k in m.spatial_ks]
    if g == "C8":
        return [_cell(c.id, analysis=a, layer=layer, k=k, eval=e, n=n_sp)
                for e in ("clean", "augmented") for a in ANALYSES for layer in LAYERS for k in m.spatial_ks]
    if g == "C9":
        return [_cell(c.id, regime=r, n=n, eval=e) for r, e in (("standard", "clean"), ("augmented", "clean"),
                                                                 ("augmented", "augmented")) for n in widths]
    if g == "C10":
        return [_cell(c.id, n=n, layer="L1") for n in widths]
    if g == "C11":
        return [_cell(c.id, n=n) for n in widths]
    raise ValueError(f"criterion={c.id!r} has no cell definition")


# -- judging -------------------------------------------------------------------------------------
def _per_seed(tables: list[dict], get: Callable[[dict], float]) -> list[float]:
    return [float(get(t)) for t in tables]


def _spatial(tables: list[dict], analysis: str, layer: str, k: int) -> dict[str, list[float]]:
    """Condition -> per-seed PR ratios of one spatial analysis."""
    conditions = tables[0]["spatial"][analysis][layer][str(k)]
    return {cond: [t["spatial"][analysis][layer][str(k)][cond]["pr_ratio"] for t in tables] for cond in conditions}


def _fmt(values: Mapping[str, Any]) -> str:
    def num(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    keys = ("seeds", "mean", "std", "lower_bound", "threshold", "rho", "spread", "relative_change", "reduction")
    out = []
    for k in keys:
        if k in values:
            v = values[k]
            out.append(f"{k} {'[' + ', '.join(num(x) for x in v) + ']' if isinstance(v, list) else num(v)}")
    return ", ".join(out)


def judge(c: Criterion, cell: Cell, results) -> Verdict:
    """Apply criterion ``c`` to ``cell``, reading tables from ``results`` (a :class:`kag.results.Results`)."""
    p, t, g = cell.p, c.thresholds, c.group
    if g == "C1" or g == "N1":
        tables = results.tables(p["n"], "standard")
        row = lambda tb: tb["global"][p["layer"]][str(p["k"])]  # noqa: E731
        if c.id == "C1-PR":
            ok, v = rule_lower_bound_above(_per_seed(tables, lambda tb: row(tb)["pr_ratio"]), t["min_lower_bound"])
        elif c.id == "C1-KL":
            ok, v = rule_lower_bound_above(_per_seed(tables, lambda tb: row(tb)["kl"] - row(tb)["kl_null"]),
                                           t["min_lower_bound"])
            v["kl"] = _per_seed(tables, lambda tb: row(tb)["kl"])
            v["kl_null"] = _per_seed(tables, lambda tb: row(tb)["kl_null"])
        elif c.id == "C1-RR":
            ok, v = rule_lower_bound_above(_per_seed(tables, lambda tb: row(tb)["rr_ratio"]), t["min_lower_bound"])
        else:  # N1: the C1-PR and C1-RR rules on independent init vs init
            ok_pr, v_pr = rule_lower_bound_above(_per_seed(tables, lambda tb: row(tb)["pr_ratio_null"]), t["min_lower_bound"])
            ok_rr, v_rr = rule_lower_bound_above(_per_seed(tables, lambda tb: row(tb)["rr_ratio_null"]), t["min_lower_bound"])
            ok, v = ok_pr or ok_rr, {"pr_ratio_null": v_pr, "rr_ratio_null": v_rr}
            detail = f"PR ratio null: {_fmt(v_pr)}; RR ratio null: {_fmt(v_rr)}"
            return Verdict(c.id, cell.id, p, ok, v, detail)
    elif g == "C2":
        tables = results.tables(p["n"], "standard")
        k = str(p["k"])
        ok, v = rule_lower_bound_above(
            _per_seed(tables, lambda tb: tb["global"]["L1"][k]["pr_ratio"] - tb["global"]["L2"][k]["pr_ratio"]),
            t["min_lower_bound"])
    elif g == "C3":
        tables = results.tables(p["n"], "standard")
        lo, hi = str(min(results.profile.metrics.ks)), str(max(results.profile.metrics.ks))
        layer = p["layer"]
        ok, v = rule_lower_bound_above(
            _per_seed(tables, lambda tb: tb["global"][layer][hi]["pr_ratio"] - tb["global"][layer][lo]["pr_ratio"]),
            t["min_lower_bound"])
        v["orders"] = [int(lo), int(hi)]
    elif g == "C4":
        widths = sorted(results.profile.widths)
        k = str(max(results.profile.metrics.ks))
        means = [float(np.mean(_per_seed(results.tables(n, p["regime"]), lambda tb: tb["global"]["L1"][k]["pr_ratio"])))
                 for n in widths]
        ok, v = rule_rho_at_least(widths, means, t["min_rho"])
    elif g in ("C5", "C6", "C7"):
        tables = results.tables(p["n"], p["regime"])
        analysis = {"C5": "balls", "C6": "patches", "C7": "separation"}[g]
        per = _spatial(tables, analysis, p["layer"], p["k"])
        if g == "C5":
            ok, v = rule_scale_agnostic(per, t["min_lower_bound"], t["max_spread"])
            v["pool_size"] = {r: tables[0]["spatial"]["balls"][p["layer"]][str(p["k"])][r]["pool_size"] for r in per}
            detail = "; ".join(f"r={r}: {_fmt(s)}" for r, s in v["conditions"].items()) + f"; spread {v['spread']:.4g}"
        elif g == "C6":
            ok, v = rule_all_above(per, t["min_lower_bound"])
            detail = "; ".join(f"{name}: {_fmt(s)}" for name, s in v["conditions"].items())
        else:
            ds = sorted(per, key=float)
            ok, v = rule_persists(per[ds[0]], per[ds[-1]], t["min_lower_bound"], t["max_relative_change"])
            v["conditions"] = {d: seed_summary(per[d]) for d in ds}
            v["d_near"], v["d_far"] = float(ds[0]), float(ds[-1])
            detail = f"d={ds[-1]}: {_fmt(v['far'])}; d={ds[0]}: mean {v['near']['mean']:.4g}; change {v['relative_change']:+.3f}"
        return Verdict(c.id, cell.id, p, ok, v, detail)
    elif g == "C8":
        std = _spatial(results.tables(p["n"], "standard"), p["analysis"], p["layer"], p["k"])
        aug = _spatial(results.tables(p["n"], "augmented", p["eval"]), p["analysis"], p["layer"], p["k"])
        ok, v = rule_reduction(std, aug, t["min_reduction"], t["max_reduction"], t["min_lower_bound"])
        detail = (f"reduction {v['reduction']:.3f} (standard mean {v['mean_standard']:.4g}, augmented mean "
                  f"{v['mean_augmented']:.4g}); augmented lower bounds all > {t['min_lower_bound']}: {v['augmented_all_above']}")
        return Verdict(c.id, cell.id, p, ok, v, detail)
    elif g == "C9":
        tables = results.tables(p["n"], p["regime"])
        field_ = "shifted_test_accuracy" if p["eval"] == "augmented" else "test_accuracy"
        thr = t["min_standard"] if p["regime"] == "standard" else t["min_augmented"]
        ok, v = rule_mean_at_least(_per_seed(tables, lambda tb: tb[field_]), thr)
    elif g == "C10":
        tables = results.tables(p["n"], "standard")
        z = lambda tb: tb["zero_rows"][p["layer"]]  # noqa: E731
        ok, v = rule_lower_bound_above(_per_seed(tables, lambda tb: z(tb)["trained"] - z(tb)["init"]), t["min_lower_bound"])
        v["trained"] = _per_seed(tables, lambda tb: z(tb)["trained"])
        v["init"] = _per_seed(tables, lambda tb: z(tb)["init"])
    elif g == "C11":
        tables = results.tables(p["n"], "standard")
        epochs = tables[0]["timeline"]["epochs"]
        curve = np.mean([tb["timeline"]["pr_ratio"] for tb in tables], axis=0)
        ok, v = rule_rho_at_least(epochs, curve.tolist(), t["min_rho"])
        v["per_seed"] = [tb["timeline"]["pr_ratio"] for tb in tables]
    else:  # pragma: no cover - cells() already rejects unknown groups
        raise ValueError(f"criterion={c.id!r} has no decision rule")
    return Verdict(c.id, cell.id, p, ok, v, _fmt(v))


def needs(cell: Cell, profile: Profile) -> list[tuple[int, str, str]]:
    """The (width, regime, eval images) groups of metric tables that judging ``cell`` reads."""
    p, g = cell.p, cell.criterion.split("-")[0]
    if g == "C4":
        return [(n, p["regime"], "clean") for n in profile.widths]
    if g in ("C5", "C6", "C7", "C9"):
        return [(p["n"], p["regime"], "clean")]
    if g == "C8":
        return [(p["n"], "standard", "clean"), (p["n"], "augmented", p["eval"])]
    return [(p["n"], "standard", "clean")]
