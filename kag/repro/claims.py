"""The paper's claims, one :class:`Claim` object each: the registry behind the tests and the report.

A claim owns its id, its statement, the cells it is judged on under a profile, the groups of
metric tables it reads, its pre-registered rule (from :data:`CRITERIA`, SPEC §7: the one place
where thresholds live), how it turns the results table into a :class:`Verdict`, its headline
number and its figure. The pytest layer (``claims/``) and the report iterate over :data:`CLAIMS`.

Adding a claim means adding one entry to :data:`CRITERIA` and one :class:`Claim` below (plus a
figure function in :mod:`kag.repro.report.figures` if it needs a new figure). A threshold changes
only in a commit of its own whose message says why, never to turn a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from kag.analysis import SPATIAL_ANALYSES, replicate_key
from kag.repro.profiles import Profile
from kag.repro.results import REGIMES, Group, Results
from kag.repro.studies import layers_of
from kag.repro.rules import (
    CONTRADICTED,
    INCONCLUSIVE,
    INVALID,
    SUPPORTED,
    control_verdict,
    degeneracies,
    difference_se,
    measurement_se,
    rho_measurement_se,
    rule_all_above,
    rule_lower_bound_above,
    rule_mean_at_least,
    rule_persists,
    rule_reduction,
    rule_rho_at_least,
    rule_rho_at_most,
    rule_scale_agnostic,
    seed_summary,
)

ALL_PROFILES = ("paper", "quick", "smoke")


# -- cells and verdicts -------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One judged unit of a claim, e.g. C5 at (standard, L1, k=2, n=512)."""

    claim: str
    params: tuple[tuple[str, Any], ...]

    @property
    def p(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def id(self) -> str:
        """Readable test id, e.g. ``n=256-k=3-L1`` (bare values for regime, layer, analysis)."""
        return "-".join(str(v) if name in ("regime", "layer", "analysis") else f"{name}={v}" for name, v in self.params)


def _cell(claim: str, **params: Any) -> Cell:
    return Cell(claim, tuple(params.items()))


CONTROL_SHOWS_EFFECT = "the control shows KAG"  # a control cell that came out supported
CONTROL_SAYS_NO = "the control says no"  # a control whose every cell is contradicted or inconclusive, and valid


@dataclass
class Verdict:
    """What judging one cell found: the verdict word and the numbers behind it.

    ``verdict`` is "supported", "contradicted" or "inconclusive" (:mod:`kag.repro.rules`), or, for
    a control only, "invalid" when an input is NaN, Inf or constant over seeds (``problems`` says
    which). A claim's cell is as expected when supported; a control's when contradicted or
    inconclusive (the machinery says no, on numbers that can say no).
    """

    claim: str
    cell: str
    params: dict[str, Any]
    verdict: str
    control: bool = False
    values: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def problems(self) -> list[str]:
        return list(self.values.get("problems", []))

    @property
    def as_expected(self) -> bool:
        if self.control:
            return self.verdict in (CONTRADICTED, INCONCLUSIVE)
        return self.verdict == SUPPORTED

    @property
    def message(self) -> str:
        """One line for a failure: ``C2 [n=64-k=3] contradicted: <numbers>``."""
        said = f" ({CONTROL_SHOWS_EFFECT})" if self.control and self.verdict == SUPPORTED else ""
        return f"{self.claim} [{self.cell}] {self.verdict}{said}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.claim, "cell": self.cell, "params": self.params, "verdict": self.verdict,
                "control": self.control, "as_expected": self.as_expected, "problems": self.problems,
                "values": self.values, "detail": self.detail}


# -- the criteria table (SPEC §7) -----------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A pre-registered decision rule: its words (with ``{placeholders}``) and its thresholds."""

    text: str
    thresholds: Mapping[str, float]

    def __str__(self) -> str:
        return self.text.format(**self.thresholds)


def _rule(text: str, **thresholds: float) -> Rule:
    return Rule(text, MappingProxyType(thresholds))


_CRITERIA: dict[str, Rule] = {
    "C1-PR": _rule("lower bound (mean - 2 std over seeds) > {min_lower_bound}", min_lower_bound=1.0),
    "C1-KL": _rule("lower bound of the difference > {min_lower_bound}", min_lower_bound=0.0),
    "C1-RR": _rule("lower bound > {min_lower_bound}", min_lower_bound=1.0),
    "C2": _rule("lower bound > {min_lower_bound}", min_lower_bound=0.0),
    "C2-depth": _rule("rho <= {max_rho}", max_rho=-0.8),
    "C3": _rule("lower bound > {min_lower_bound}", min_lower_bound=0.0),
    "C4": _rule("rho >= {min_rho}", min_rho=0.8),
    "C5": _rule("lower bound > {min_lower_bound} at every radius, and max/min of the mean PR ratio over radii "
                "<= {max_spread}", min_lower_bound=1.0, max_spread=1.5),
    "C6": _rule("lower bound > {min_lower_bound} in all five patches", min_lower_bound=1.0),
    "C7": _rule("lower bound > {min_lower_bound} at the largest d, and its mean within +-{max_relative_change} of "
                "d = 0", min_lower_bound=1.0, max_relative_change=0.30),
    "C8": _rule("reduction in [{min_reduction}, {max_reduction}] and augmented lower bound > {min_lower_bound} in "
                "every condition", min_reduction=0.15, max_reduction=0.50, min_lower_bound=1.0),
    "C9": _rule("standard >= {min_standard}, augmented >= {min_augmented}", min_standard=0.975, min_augmented=0.950),
    "C10": _rule("lower bound > {min_lower_bound}", min_lower_bound=0.0),
    "C11": _rule("rho >= {min_rho}", min_rho=0.8),
    "N2": _rule("per observable, the lower bound of PR(trained)/PR(surrogate) > {pr_min_lower_bound}, of "
                "KL(trained‖init) - KL(surrogate‖init) > {kl_min_lower_bound}, of RR(trained)/RR(surrogate) > "
                "{rr_min_lower_bound} (surrogate: norm-matched)",
                pr_min_lower_bound=1.0, kl_min_lower_bound=0.0, rr_min_lower_bound=1.0),
}
# N1 is the C1 machinery on a null: its thresholds are C1's, read from C1's rules, never repeated.
_CRITERIA["N1"] = _rule(
    "the C1-PR, C1-KL and C1-RR rules (lower bound > {pr_min_lower_bound}, > {kl_min_lower_bound}, > "
    "{rr_min_lower_bound}) must not be supported on the null, and its values must be finite and vary over seeds",
    **{f"{obs}_min_lower_bound": _CRITERIA[f"C1-{obs.upper()}"].thresholds["min_lower_bound"]
       for obs in ("pr", "kl", "rr")})
CRITERIA: Mapping[str, Rule] = MappingProxyType(_CRITERIA)


# -- the claim object ---------------------------------------------------------------------------
CellsFn = Callable[[Profile], "list[Cell]"]
NeedsFn = Callable[[Cell, Profile], "list[Group]"]
JudgeFn = Callable[["Claim", Cell, Results], "tuple[str, dict[str, Any], str | None]"]
KeyNumberFn = Callable[["list[dict[str, Any]]"], str]
ExplainFn = Callable[["Claim", "list[dict[str, Any]]"], str]


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim of the paper (or one observable of it, as C1-PR) and everything needed to judge it."""

    id: str
    statement: str  # the paper's claim, in our words
    measurement: str  # what is measured, per cell
    cells_description: str  # what one cell covers, in words
    cells_of: CellsFn
    evaluate: JudgeFn  # -> (verdict word, values, detail or None for the default summary)
    headline: KeyNumberFn  # judged cell rows -> one summary number
    needs_of: NeedsFn = lambda cell, profile: [Group(cell.p["n"], "standard")]
    figure: str | None = None  # figure stem in the report (kag.repro.report.figures.FIGURES)
    profiles: tuple[str, ...] = ALL_PROFILES  # profiles under which it is judged; elsewhere "not run"
    xfail: Mapping[str, str] = field(default_factory=dict)  # profile -> stated reason (strict xfail)
    control: bool = False  # True for the control N1: the machinery must say no, on valid numbers
    min_layers: int = 0  # studies whose networks have fewer hidden layers do not judge it (see studies.why_not_judged)
    # every cell row (judged or not) -> one sentence on why the claim did not reproduce (see plain());
    # None: a generic sentence built from the rule and the verdicts
    explain: ExplainFn | None = None

    @property
    def rule(self) -> Rule:
        return CRITERIA[self.id]

    @property
    def thresholds(self) -> Mapping[str, float]:
        return self.rule.thresholds

    @property
    def group(self) -> str:
        """The claim id without the observable suffix: "C1-PR" -> "C1"."""
        return self.id.split("-")[0]

    def judged_under(self, profile: Profile) -> bool:
        return profile.name in self.profiles

    def cells(self, profile: Profile) -> list[Cell]:
        """The cells this claim is judged on under ``profile`` (known before any model exists)."""
        return self.cells_of(profile)

    def needs(self, cell: Cell, profile: Profile) -> list[Group]:
        """The groups of metric tables that judging ``cell`` reads."""
        return self.needs_of(cell, profile)

    def judge(self, cell: Cell, results: Results) -> Verdict:
        """Apply the pre-registered rule to ``cell``, reading the results table."""
        verdict, values, detail = self.evaluate(self, cell, results)
        return Verdict(self.id, cell.id, cell.p, verdict, self.control, values,
                       _fmt(values) if detail is None else detail)

    def key_number(self, judged_rows: list[dict[str, Any]]) -> str:
        """One headline number for the summary table, from the judged cells' rows."""
        if not judged_rows:
            return ""
        try:
            return self.headline(judged_rows)
        except (KeyError, TypeError, ValueError):
            return ""

    def plain(self, rows: list[dict[str, Any]]) -> str:
        """One sentence in plain words on why the claim did not reproduce, from its cell rows (the
        report's, judged or not): what was expected, what was measured (the range over the cells
        that missed) and in how many cells. Empty when every cell came out as expected, or when no
        cell was judged (the status says "not run")."""
        judged = [r for r in rows if r.get("verdict")]
        unjudged = len(rows) - len(judged)
        if not judged or not any(_misses(self, r) for r in judged) and not unjudged:
            return ""
        if not any(_misses(self, r) for r in judged):
            held = "the control said no" if self.control else "the rule held"
            return (f"In all {len(judged)} judged cells {held}, but {unjudged} of {len(rows)} cells were not judged "
                    "(not run, or an error before judging).")
        try:
            text = (self.explain or _explain_generic)(self, rows)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError):
            text = _explain_generic(self, rows)  # values of an unexpected shape: the rule and the verdicts
        more = f"; {unjudged} of {len(rows)} cells were not judged" if unjudged else ""
        return f"{text}{more}."


# -- reading the results table ------------------------------------------------------------------
def _per_seed(results: Results, width: int, regime: str, eval_images: str = "clean", **where: Any) -> list[float]:
    """One value per seed (the profile's seed order) of the rows matching ``where``."""
    return results.table(width, regime, eval_images).seed_values(results.profile.seeds, **where)


def _global(results: Results, n: int, layer: str, k: int, observable: str, role: str = "trained") -> list[float]:
    return _per_seed(results, n, "standard", analysis="global", layer=layer, k=k, observable=observable, role=role)


def _spatial(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
             ) -> dict[str, list[float]]:
    """Condition -> per-seed PR ratios of one spatial analysis (conditions in measured order)."""
    t = results.table(n, regime, eval_images).select(analysis=analysis, layer=layer, k=k, observable="pr_ratio",
                                                     role="trained")
    return {cond: t.seed_values(results.profile.seeds, condition=cond) for cond in t.unique("condition")}


def _se_per_seed(results: Results, width: int, regime: str, eval_images: str = "clean",
                 observable: str = "pr_ratio", role: str = "trained", **where: Any) -> list[float] | None:
    """Per-seed measurement SEs (rows "<observable>_se") at ``where``; None unless every seed has one."""
    found = results.table(width, regime, eval_images).by_seed(observable=f"{observable}_se", role=role, **where)
    return [found[s] for s in results.profile.seeds] if all(s in found for s in results.profile.seeds) else None


def _global_se(results: Results, n: int, layer: str, k: int, observable: str = "pr_ratio", role: str = "trained"
               ) -> list[float] | None:
    return _se_per_seed(results, n, "standard", observable=observable, role=role, analysis="global", layer=layer, k=k)


def _difference_of_se(se_a: list[float] | None, se_b: list[float] | None) -> float | None:
    """Measurement SE of a seed-paired difference a - b whose parts have per-seed SEs (None if either lacks them)."""
    return None if se_a is None or se_b is None else measurement_se(difference_se(se_a, se_b))


def _mean_se(per_seed_se: list[float] | None) -> float:
    """Measurement SE of a mean over seeds measured independently: sqrt(sum SE²) / n_seeds."""
    if per_seed_se is None:
        return math.nan
    return math.sqrt(sum(se * se for se in per_seed_se)) / len(per_seed_se)


def _spatial_se(results: Results, n: int, regime: str, eval_images: str, analysis: str, layer: str, k: int
                ) -> dict[str, float]:
    """Condition -> measurement SE of the mean PR ratio over seeds, for the conditions whose every seed has an SE."""
    t = results.table(n, regime, eval_images).select(analysis=analysis, layer=layer, k=k, observable="pr_ratio_se",
                                                     role="trained")
    out = {}
    for cond in t.unique("condition"):
        found = t.by_seed(condition=cond)
        if all(s in found for s in results.profile.seeds):
            out[cond] = measurement_se([found[s] for s in results.profile.seeds])
    return out


def _cell_se(per_seed: list[float] | None) -> float | None:
    return None if per_seed is None else measurement_se(per_seed)


def _paired_se(per_seed_a: list[np.ndarray] | None, per_seed_b: list[np.ndarray] | None,
               combine: Callable[[np.ndarray, np.ndarray], np.ndarray] = np.subtract) -> float | None:
    """Measurement SE of a seed-paired comparison from bootstrap replicates drawn with the same draws
    on both sides (same images and index-sample columns): per seed, the SD of ``combine(a, b)`` over
    replicates; the cell's SE is their mean (:func:`measurement_se`). Shared images are accounted
    for, unlike SEs added in quadrature. None when either side has no replicates."""
    if per_seed_a is None or per_seed_b is None:
        return None
    per_seed = []
    for a, b in zip(per_seed_a, per_seed_b):
        with np.errstate(divide="ignore", invalid="ignore"):
            values = combine(np.asarray(a), np.asarray(b))
        values = values[np.isfinite(values)]
        per_seed.append(float(values.std(ddof=1)) if values.size > 1 else math.nan)
    return measurement_se(per_seed)


def _global_replicates(r: Results, n: int, layer: str, k: int) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of the PR ratio (trained/init) at (layer, k), under r's variant."""
    return r.replicates(n, "standard", "clean", replicate_key("global", layer, k, None, "trained", r.variant))


def _difference(a: list[float], b: list[float]) -> list[float]:
    return [x - y for x, y in zip(a, b)]


def _fmt(values: Mapping[str, Any]) -> str:
    def num(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    keys = ("seeds", "mean", "std", "rho", "measurement_se", "lower_bound", "upper_bound", "threshold", "spread",
            "min_spread", "relative_change", "change_interval", "reduction", "reduction_interval")
    out = []
    for k in keys:
        if k in values:
            v = values[k]
            label = "measurement SE" if k == "measurement_se" else k
            out.append(f"{label} {'[' + ', '.join(num(x) for x in v) + ']' if isinstance(v, list) else num(v)}")
    return ", ".join(out)


def _lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [r["values"]["lower_bound"] for r in rows]
    return f"lower bound {min(lbs):.3g} to {max(lbs):.3g} (threshold {rows[0]['values']['threshold']:g})"


def _rhos(rows: list[dict[str, Any]]) -> str:
    return "rho " + ", ".join(f"{r['cell']}: {r['values']['rho']:.2f}" for r in rows[:4])


# -- C1 and N1: KAG emerges; two inits show none --------------------------------------------------
def _global_cells(claim: str) -> CellsFn:
    return lambda p: [_cell(claim, n=n, k=k, layer=layer) for n in p.widths for k in p.metrics.ks
                      for layer in layers_of(p)]


def _judge_c1_pr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = _cell_se(_global_se(r, p["n"], p["layer"], p["k"]))
    verdict, v = rule_lower_bound_above(_global(r, p["n"], p["layer"], p["k"], "pr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


def _judge_c1_kl(c: Claim, cell: Cell, r: Results):
    p = cell.p
    kl = _global(r, p["n"], p["layer"], p["k"], "kl")
    kl_null = _global(r, p["n"], p["layer"], p["k"], "kl", role="null")
    se = _difference_of_se(_global_se(r, p["n"], p["layer"], p["k"], "kl"),
                           _global_se(r, p["n"], p["layer"], p["k"], "kl", role="null"))
    verdict, v = rule_lower_bound_above(_difference(kl, kl_null), c.thresholds["min_lower_bound"], se)
    v["kl"], v["kl_null"] = kl, kl_null
    return verdict, v, None


def _judge_c1_rr(c: Claim, cell: Cell, r: Results):
    p = cell.p
    se = _cell_se(_global_se(r, p["n"], p["layer"], p["k"], "rr_ratio"))
    verdict, v = rule_lower_bound_above(_global(r, p["n"], p["layer"], p["k"], "rr_ratio"),
                                        c.thresholds["min_lower_bound"], se)
    return verdict, v, None


# observable -> (key of its summary in a verdict's values, its name in messages)
N1_INPUTS = {"pr": ("pr_ratio_null", "PR ratio (null)"),
             "kl": ("kl_null_difference", "KL(null‖init) - KL(null2‖init)"),
             "rr": ("rr_ratio_null", "RR ratio (null)")}


def _judge_n1(c: Claim, cell: Cell, r: Results):
    """The C1-PR, C1-KL and C1-RR rules on an independent init against the init: the PR and RR
    ratios of the null, and KL(null‖init) - KL(null2‖init) with a second independent init.
    Any NaN, Inf or constant input makes the cell invalid."""
    p, t, seeds = cell.p, c.thresholds, r.profile.seeds
    at = dict(n=p["n"], layer=p["layer"], k=p["k"])
    kl_null = _global(r, **at, observable="kl", role="null")
    raw = {"PR ratio (null)": _global(r, **at, observable="pr_ratio", role="null"),
           "RR ratio (null)": _global(r, **at, observable="rr_ratio", role="null"), "KL(null‖init)": kl_null}
    missing = []
    try:
        kl_null2 = _global(r, **at, observable="kl", role="null2")
        raw["KL(null2‖init)"] = kl_null2
    except LookupError:
        kl_null2 = [float("nan")] * len(seeds)
        missing.append("KL(null2‖init) is missing from the metric tables (no second independent initialisation)")
    inputs = {"pr": raw["PR ratio (null)"], "kl": _difference(kl_null, kl_null2), "rr": raw["RR ratio (null)"]}
    se = {"pr": _cell_se(_global_se(r, **at, observable="pr_ratio", role="null")),
          "kl": _difference_of_se(_global_se(r, **at, observable="kl", role="null"),
                                  _global_se(r, **at, observable="kl", role="null2")),
          "rr": _cell_se(_global_se(r, **at, observable="rr_ratio", role="null"))}
    with np.errstate(invalid="ignore"):  # an Inf input is named below, not warned about
        judged = {obs: rule_lower_bound_above(x, t[f"{obs}_min_lower_bound"], se[obs]) for obs, x in inputs.items()}
    judged_inputs = {N1_INPUTS[obs][1]: x for obs, x in inputs.items() if not (obs == "kl" and missing)}
    # NaN/Inf anywhere; a zero std where it is judged (KL(null‖init) alone may be constant over seeds)
    problems = missing + degeneracies(raw, seeds, varying=False) + degeneracies(judged_inputs, seeds, finite=False)
    verdict = control_verdict([v for v, _ in judged.values()], problems)
    values = {N1_INPUTS[obs][0]: v for obs, (_, v) in judged.items()} | {
        "verdicts": {obs: v for obs, (v, _) in judged.items()}, "kl_null": kl_null, "kl_null2": kl_null2,
        "problems": problems}
    detail = "; ".join(f"{N1_INPUTS[obs][1]} {verdict_}: {_fmt(v)}" for obs, (verdict_, v) in judged.items())
    return verdict, values, (f"{'; '.join(problems)}; {detail}" if problems else detail)


def _null_lower_bounds(rows: list[dict[str, Any]]) -> str:
    parts = []
    for obs in ("pr", "kl", "rr"):
        lbs = [r["values"][N1_INPUTS[obs][0]]["lower_bound"] for r in rows]
        parts.append(f"{obs.upper()} {min(lbs):.3g} to {max(lbs):.3g}")
    return "null lower bounds: " + ", ".join(parts)


# -- C2, C3, C4: where KAG is stronger ------------------------------------------------------------
def _judge_c2(c: Claim, cell: Cell, r: Results):
    n, k = cell.p["n"], cell.p["k"]
    diff = _difference(_global(r, n, "L1", k, "pr_ratio"), _global(r, n, "L2", k, "pr_ratio"))
    se = _paired_se(_global_replicates(r, n, "L1", k), _global_replicates(r, n, "L2", k))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    return verdict, v, None


def _judge_c2_depth(c: Claim, cell: Cell, r: Results):
    """Spearman ρ between layer depth (1, 2, ...) and the mean PR ratio over seeds, every hidden layer."""
    n, k = cell.p["n"], cell.p["k"]
    layers = layers_of(r.profile)
    depth = list(range(1, len(layers) + 1))
    means = [float(np.mean(_global(r, n, layer, k, "pr_ratio"))) for layer in layers]
    mean_se = [_mean_se(_global_se(r, n, layer, k)) for layer in layers]
    verdict, v = rule_rho_at_most(depth, means, c.thresholds["max_rho"], rho_measurement_se(depth, means, mean_se))
    v["layers"] = list(layers)
    return verdict, v, None


def _judge_c3(c: Claim, cell: Cell, r: Results):
    n, layer = cell.p["n"], cell.p["layer"]
    lo, hi = min(r.profile.metrics.ks), max(r.profile.metrics.ks)
    diff = _difference(_global(r, n, layer, hi, "pr_ratio"), _global(r, n, layer, lo, "pr_ratio"))
    se = _paired_se(_global_replicates(r, n, layer, hi), _global_replicates(r, n, layer, lo))
    verdict, v = rule_lower_bound_above(diff, c.thresholds["min_lower_bound"], se)
    v["orders"] = [lo, hi]
    return verdict, v, None


def _judge_c4(c: Claim, cell: Cell, r: Results):
    widths = sorted(r.profile.widths)
    k = max(r.profile.metrics.ks)
    at = dict(analysis="global", layer="L1", k=k)
    means = [float(np.mean(_per_seed(r, n, cell.p["regime"], observable="pr_ratio", role="trained", **at)))
             for n in widths]
    mean_se = [_mean_se(_se_per_seed(r, n, cell.p["regime"], **at)) for n in widths]
    verdict, v = rule_rho_at_least(widths, means, c.thresholds["min_rho"], rho_measurement_se(widths, means, mean_se))
    return verdict, v, None


# -- C5, C6, C7: spatial analyses at the largest width --------------------------------------------
def _spatial_cells(claim: str) -> CellsFn:
    def cells(p: Profile) -> list[Cell]:
        n = max(p.spatial_widths)
        return [_cell(claim, regime=rg, layer=layer, k=k, n=n) for rg in REGIMES for layer in layers_of(p)
                for k in p.metrics.spatial_ks]
    return cells


def _own_regime(cell: Cell, profile: Profile) -> list[Group]:
    return [Group(cell.p["n"], cell.p["regime"])]


def measured_on(profile: Profile, regime: str) -> str:
    """The test images a C5-C7 cell of ``regime`` reads: the profile's ``eval_images`` for augmented
    models, clean ones for standard models (SPEC §3). Every named profile says "clean"; the sweep's
    ``eval_images=shifted`` point says "augmented". C8 and C9 name their images per cell instead."""
    return profile.metrics.eval_images if regime == "augmented" else "clean"


def _own_images(cell: Cell, profile: Profile) -> list[Group]:
    return [Group(cell.p["n"], cell.p["regime"], measured_on(profile, cell.p["regime"]))]


def _spatial_with_se(r: Results, cell: Cell, analysis: str, regime: str | None = None, eval_images: str | None = None
                     ) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per-condition seeds and SEs of one spatial analysis; ``eval_images`` None: the images of :func:`measured_on`."""
    p = cell.p
    regime = regime or p["regime"]
    at = (p["n"], regime, eval_images or measured_on(r.profile, regime), analysis, p["layer"], p["k"])
    return _spatial(r, *at), _spatial_se(r, *at)


def _spatial_replicates(r: Results, cell: Cell, analysis: str, condition: str, regime: str | None = None,
                        eval_images: str | None = None) -> list[np.ndarray] | None:
    """Per-seed bootstrap replicates of one spatial condition's PR ratio, under r's variant."""
    p = cell.p
    regime = regime or p["regime"]
    images = eval_images or measured_on(r.profile, regime)
    return r.replicates(p["n"], regime, images, replicate_key(analysis, p["layer"], p["k"], condition, "trained",
                                                               r.variant))


def _on_images(r: Results, cell: Cell, detail: str) -> str:
    """A C5-C7 cell's detail, saying so when its models were measured on shifted test images."""
    shifted = measured_on(r.profile, cell.p["regime"]) == "augmented"
    return f"on shifted test images: {detail}" if shifted else detail


def _judge_c5(c: Claim, cell: Cell, r: Results):
    p = cell.p
    per, se = _spatial_with_se(r, cell, "balls")
    verdict, v = rule_scale_agnostic(per, c.thresholds["min_lower_bound"], c.thresholds["max_spread"], se)
    sizes = r.table(p["n"], p["regime"], measured_on(r.profile, p["regime"])).select(
        analysis="balls", layer=p["layer"], k=p["k"], observable="pool_size", seed=r.profile.seeds[0])
    v["pool_size"] = {row.condition: row.value for row in sizes}
    detail = ("; ".join(f"r={rad}: {_fmt(s)}" for rad, s in v["conditions"].items())
              + f"; spread {v['spread']:.4g} (smallest consistent with the error bars {v['min_spread']:.4g})")
    return verdict, v, _on_images(r, cell, detail)


def _judge_c6(c: Claim, cell: Cell, r: Results):
    per, se = _spatial_with_se(r, cell, "patches")
    verdict, v = rule_all_above(per, c.thresholds["min_lower_bound"], se)
    return verdict, v, _on_images(r, cell, "; ".join(f"{name}: {_fmt(s)}" for name, s in v["conditions"].items()))


def _judge_c7(c: Claim, cell: Cell, r: Results):
    per, se = _spatial_with_se(r, cell, "separation")
    ds = sorted(per, key=float)
    reps = {d: _spatial_replicates(r, cell, "separation", d) for d in (ds[0], ds[-1])}
    change_se = _paired_se(reps[ds[-1]], reps[ds[0]], lambda far, near: far / near - 1.0)
    verdict, v = rule_persists(per[ds[0]], per[ds[-1]], c.thresholds["min_lower_bound"],
                               c.thresholds["max_relative_change"], se.get(ds[0]), se.get(ds[-1]), change_se)
    v["conditions"] = {d: seed_summary(per[d], se.get(d)) for d in ds}
    v["d_near"], v["d_far"] = float(ds[0]), float(ds[-1])
    lo, hi = v["change_interval"]
    detail = (f"d={ds[-1]}: {_fmt(v['far'])}; d={ds[0]}: mean {v['near']['mean']:.4g}; "
              f"change {v['relative_change']:+.3f} (interval {lo:+.3f} to {hi:+.3f})")
    return verdict, v, _on_images(r, cell, detail)


def _patch_lower_bounds(rows: list[dict[str, Any]]) -> str:
    lbs = [s["lower_bound"] for r in rows for s in r["values"]["conditions"].values()]
    return f"patch lower bounds {min(lbs):.3g} to {max(lbs):.3g}"


# -- C8: augmentation -----------------------------------------------------------------------------
def _c8_cells(p: Profile) -> list[Cell]:
    n = max(p.spatial_widths)
    return [_cell("C8", analysis=a, layer=layer, k=k, eval=e, n=n)
            for e in ("clean", "augmented") for a in SPATIAL_ANALYSES for layer in layers_of(p)
            for k in p.metrics.spatial_ks]


def _judge_c8(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    std = _spatial(r, p["n"], "standard", "clean", p["analysis"], p["layer"], p["k"])
    aug, se = _spatial_with_se(r, cell, p["analysis"], "augmented", p["eval"])
    verdict, v = rule_reduction(std, aug, t["min_reduction"], t["max_reduction"], t["min_lower_bound"], se,
                                _reduction_se(r, cell, list(std)))
    lo, hi = v["reduction_interval"]
    detail = (f"reduction {v['reduction']:.3f} (standard mean {v['mean_standard']:.4g}, augmented mean "
              f"{v['mean_augmented']:.4g}; per-seed interval {lo:.3f} to {hi:.3f}); augmented lower bounds all > "
              f"{t['min_lower_bound']}: {v['augmented_all_above']}")
    return verdict, v, detail


def _reduction_se(r: Results, cell: Cell, conditions: list[str]) -> float | None:
    """Measurement SE of C8's per-seed reduction 1 - mean(aug)/mean(std) over the conditions, from the
    two regimes' bootstrap replicates (same images, index samples and draws: paired)."""
    p = cell.p
    sides = []
    for regime, images in (("standard", "clean"), ("augmented", p["eval"])):
        reps = [_spatial_replicates(r, cell, p["analysis"], cond, regime, images) for cond in conditions]
        if any(x is None for x in reps):
            return None
        sides.append([np.mean([reps[c][s] for c in range(len(conditions))], axis=0) for s in range(len(r.profile.seeds))])
    return _paired_se(sides[1], sides[0], lambda aug, std: 1.0 - aug / std)


# -- C9, C10, C11 ---------------------------------------------------------------------------------
def _c9_cells(p: Profile) -> list[Cell]:
    return [_cell("C9", regime=rg, n=n, eval=e) for rg, e in (("standard", "clean"), ("augmented", "clean"),
                                                               ("augmented", "augmented")) for n in p.widths]


def _judge_c9(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    images = "shifted" if p["eval"] == "augmented" else "clean"
    accuracy = _per_seed(r, p["n"], p["regime"], analysis="accuracy", observable="test_accuracy", condition=images)
    se = _cell_se(_se_per_seed(r, p["n"], p["regime"], observable="test_accuracy", analysis="accuracy",
                               condition=images))
    verdict, v = rule_mean_at_least(accuracy, t["min_standard"] if p["regime"] == "standard" else t["min_augmented"],
                                    se)
    return verdict, v, None


def _judge_c10(c: Claim, cell: Cell, r: Results):
    p = cell.p
    at = dict(analysis="zero_rows", layer=p["layer"])
    zero = {role: _per_seed(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
            for role in ("trained", "init")}
    se = _difference_of_se(*(_se_per_seed(r, p["n"], "standard", observable="zero_row_fraction", role=role, **at)
                             for role in ("trained", "init")))
    verdict, v = rule_lower_bound_above(_difference(zero["trained"], zero["init"]), c.thresholds["min_lower_bound"],
                                        se)
    v["trained"], v["init"] = zero["trained"], zero["init"]
    return verdict, v, None


def _judge_c11(c: Claim, cell: Cell, r: Results):
    timeline = r.table(cell.p["n"], "standard").select(analysis="timeline")
    t = timeline.select(observable="pr_ratio")
    epochs = t.unique("condition")
    per_seed = [[t.value(seed=s, condition=e) for e in epochs] for s in r.profile.seeds]
    se_rows = timeline.select(observable="pr_ratio_se")
    found = [se_rows.by_seed(condition=e) for e in epochs]
    mean_se = [_mean_se([f[s] for s in r.profile.seeds] if all(s in f for s in r.profile.seeds) else None)
               for f in found]
    x, y = [int(e) for e in epochs], np.mean(per_seed, axis=0).tolist()
    verdict, v = rule_rho_at_least(x, y, c.thresholds["min_rho"], rho_measurement_se(x, y, mean_se))
    v["per_seed"] = per_seed
    return verdict, v, None


# -- N2: more than norms ------------------------------------------------------------------------
N2_OBSERVABLES = ("PR", "KL", "RR")
# observable -> (the judged per-seed value, its measurement SE): rows of role "surrogate" (kag.analysis)
_N2_ROWS = {"PR": ("pr_trained_over", "pr_trained_over_se"), "KL": ("kl_minus_surrogate", "kl_minus_surrogate_se"),
            "RR": ("rr_trained_over", "rr_trained_over_se")}


def _judge_n2(c: Claim, cell: Cell, r: Results):
    """PR(trained)/PR(surrogate), KL(trained‖init) - KL(surrogate‖init) or RR(trained)/RR(surrogate),
    each SE from a seed-paired bootstrap of that comparison itself (kag.analysis)."""
    p = cell.p
    obs = p.get("obs", "PR")
    value, se_name = _N2_ROWS[obs]
    values = _global(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    per_seed_se = _global_se(r, p["n"], p["layer"], p["k"], value, role="surrogate")
    verdict, v = rule_lower_bound_above(values, c.thresholds[f"{obs.lower()}_min_lower_bound"], _cell_se(per_seed_se))
    return verdict, v, None


# -- plain words: why a claim did not reproduce ---------------------------------------------------
# An explainer takes the claim and every cell row of the report (dicts with "cell", "params",
# "verdict" and the judge's "values"; a NaN may arrive as None from JSON) and returns one sentence:
# what was expected, what was measured in the cells that missed (the range over them) and in how
# many cells. Every number comes from the values; none is written here.
def _x(v: Any) -> float:
    """A number from a verdict's values; None (JSON's NaN) and non-numbers are NaN."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _n(v: Any, spec: str = ".3g") -> str:
    x = _x(v)
    return "n/a" if math.isnan(x) else format(x, spec)


def _span(values: Any, spec: str = ".3g", unit: str = "") -> str:
    """The range of ``values``: "0.38–0.85", "-0.31 to -0.05", or one number when both ends read alike."""
    # a difference of equal values can carry 1e-17 of rounding: that is a zero
    xs = sorted(0.0 if abs(x) < 1e-12 else x for x in map(_x, values) if not math.isnan(x))
    if not xs:
        return "n/a"
    lo, hi = format(xs[0], spec), format(xs[-1], spec)
    if lo == hi:
        return lo + unit
    return f"{lo}–{hi}{unit}" if xs[0] >= 0 else f"{lo}{unit} to {hi}{unit}"


def _pct(values: Any, spec: str | None = None) -> str:
    """Fractions as a range of percents: [0.26, 1.02] -> "26–102%"."""
    xs = [100.0 * _x(v) for v in values]
    finite = [abs(x) for x in xs if math.isfinite(x)]
    return _span(xs, spec or (".0f" if finite and max(finite) >= 10 else ".2g"), "%")


def _misses(c: Claim, row: dict[str, Any]) -> bool:
    """A judged cell that is not as expected: not supported (a claim); supported or invalid (a control)."""
    v = row.get("verdict")
    return v in (SUPPORTED, INVALID) if c.control else v is not None and v != SUPPORTED


def _with(rows: list[dict[str, Any]], verdict: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("verdict") == verdict]


def _cells(sub: list[dict[str, Any]], rows: list[dict[str, Any]], where: bool = True) -> str:
    """"in all 8 cells", "in 2 of 8 cells (n=256-k=2, n=512-k=2)"; beyond three cells, the
    parameter values they are found at ("at n=256, 512") where those are not every value."""
    if len(sub) == len(rows):
        return {1: "in its one cell", 2: "in both cells"}.get(len(rows), f"in all {len(rows)} cells")
    out = f"in {len(sub)} of {len(rows)} cells"
    if not where:
        return out
    if len(sub) <= 3:
        return f"{out} ({', '.join(str(r['cell']) for r in sub)})"
    parts = []
    for key in sub[0].get("params") or {}:
        mine = list(dict.fromkeys(str(r["params"].get(key)) for r in sub))
        if len(mine) < len({str(r["params"].get(key)) for r in rows}):
            parts.append(f"{key}={', '.join(mine)}")
    return f"{out} (at {'; '.join(parts)})" if parts else out


def _tally(miss: list[dict[str, Any]]) -> str:
    """"2 contradicted, 6 inconclusive"."""
    return ", ".join(f"{len(_with(miss, w))} {w}" for w in (CONTRADICTED, INCONCLUSIVE, INVALID) if _with(miss, w))


def _bounds(values: list[dict[str, Any]]) -> str:
    """Lowest lower bound to highest upper bound: where the error bars of these cells reach."""
    lbs = [x for x in (_x(v.get("lower_bound")) for v in values) if not math.isnan(x)]
    ubs = [x for x in (_x(v.get("upper_bound")) for v in values) if not math.isnan(x)]
    return f"{_n(min(lbs))} to {_n(max(ubs))}" if lbs and ubs else "n/a"


def _explain_generic(c: Claim, rows: list[dict[str, Any]]) -> str:
    """The fallback: the rule's own words, the verdicts of the cells that missed, and their means."""
    miss = [r for r in rows if _misses(c, r)]
    means = [r["values"]["mean"] for r in miss if isinstance(r.get("values"), dict) and "mean" in r["values"]]
    measured = f", mean {_span(means)}" if means else ""
    expected = f"the control to say no ({c.rule})" if c.control else f"{c.rule} in every cell"
    return f"Expected {expected}, but {_cells(miss, rows)} it did not ({_tally(miss)}{measured})"


_UNCLEAR = "the seeds could not tell it from {t} (mean {mean}, error bars {bounds})"


def _explain_lower_bound(goal: str, below: str, unclear: str = _UNCLEAR) -> ExplainFn:
    """For a rule "lower bound > t": ``goal`` is what was expected, ``below`` what a contradicted
    cell shows (upper bound at or below t), ``unclear`` what an inconclusive one shows. Each may use
    {t} (the threshold), {mean} (the range of the cells' means), {gap} (of minus the means: by how
    much the other side led), {bounds} (where their error bars reach) and {lo}, {hi} (C3's orders)."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        first = next(r["values"] for r in rows if r.get("verdict"))
        orders = first.get("orders") or ["the lowest k", "the highest k"]

        def words(text: str, sub: list[dict[str, Any]]) -> str:
            values = [r["values"] for r in sub]
            return text.format(t=_n(first.get("threshold"), "g"), mean=_span(v.get("mean") for v in values),
                               gap=_span(0.0 - _x(v.get("mean")) for v in values), bounds=_bounds(values),
                               lo=orders[0], hi=orders[-1])

        parts = [f"{_cells(sub, rows)} {words(text, sub)}"
                 for sub, text in ((_with(rows, CONTRADICTED), below), (_with(rows, INCONCLUSIVE), unclear)) if sub]
        return f"Expected {words(goal, rows)} in every cell, but " + ", and ".join(parts)
    return explain


def _explain_rho(goal: str, x_name: str, fell: str, relation: str = ">=") -> ExplainFn:
    """For a rule "Spearman rho >= t" (or "<= t", ``relation``) over a few cells: ``goal`` is what was
    expected, ``x_name`` formats one x ("n = {}"), ``fell`` what the mirror (rho <= -t) means. Each
    missed cell is named with its rho and the mean PR ratio at the first and last x."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        miss = [r for r in rows if _misses(c, r)]

        def one(r: dict[str, Any]) -> str:
            v = r["values"]
            x, y = v.get("x") or [], v.get("y") or []
            rho = "undefined" if math.isnan(_x(v.get("rho"))) else _n(v.get("rho"), "+.2f")
            trend = (f", mean PR ratio {_n(y[0])} at {x_name.format(_n(x[0], 'g'))} and {_n(y[-1])} at "
                     f"{x_name.format(_n(x[-1], 'g'))}") if x and y else ""
            return f"{r['cell']}: rho {rho}{trend}"

        clauses = ((_with(rows, CONTRADICTED), fell), (_with(rows, INCONCLUSIVE), "showed no clear trend"))
        parts = [f"{text} {_cells(sub, rows, where=False)}" for sub, text in clauses if sub]
        shown = "; ".join(one(r) for r in miss[:4]) + ("; ..." if len(miss) > 4 else "")
        t = _n(miss[0]["values"].get("threshold"), "g")
        return f"Expected {goal} (Spearman rho {relation} {t}), but it " + " and ".join(parts) + f" ({shown})"
    return explain


def _conditions(r: dict[str, Any], key: str = "conditions") -> list[dict[str, Any]]:
    return list((r["values"].get(key) or {}).values())


def _explain_spatial(where: str, spread: bool = False) -> ExplainFn:
    """C5 and C6: the PR ratio above t in every condition (``where``: "at every radius"), and for
    C5 (``spread``) at most a factor max_spread between the conditions' means."""
    def explain(c: Claim, rows: list[dict[str, Any]]) -> str:
        miss = [r for r in rows if _misses(c, r)]
        v0 = miss[0]["values"]
        t = _x(v0.get("min_lower_bound"))
        low = [r for r in miss if any(_x(s.get("upper_bound")) <= t for s in _conditions(r))]
        unclear = [r for r in miss if r not in low and not all(_x(s.get("lower_bound")) > t for s in _conditions(r))]
        wide = [r for r in miss if spread and not _x(r["values"].get("spread")) <= _x(v0.get("max_spread"))]
        lowest = lambda sub, key: _span(min(_x(s.get(key)) for s in _conditions(r)) for r in sub)  # noqa: E731
        some = where.replace("every", "some")
        parts = []
        if low:
            parts.append(f"{_cells(low, rows)} it was at or below {t:g} {some} (lowest mean {lowest(low, 'mean')})")
        if unclear:
            parts.append(f"{_cells(unclear, rows)} the seeds could not tell it from {t:g} {some} (lowest lower "
                         f"bound {lowest(unclear, 'lower_bound')})")
        if wide:
            parts.append(f"{_cells(wide, rows)} it varied by a factor {_span(r['values'].get('spread') for r in wide)} "
                         "between them")
        if not parts:
            return _explain_generic(c, rows)
        limit = f", varying by at most a factor {_n(v0.get('max_spread'), 'g')} between them" if spread else ""
        return f"Expected the PR ratio above {t:g} {where}{limit}, but " + "; ".join(parts) + f"; {_tally(miss)}"
    return explain


def _explain_c7(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if _misses(c, r)]
    v0 = miss[0]["values"]
    t, most = _x(v0.get("min_lower_bound")), _x(v0.get("max_relative_change"))
    near, far = _n(v0.get("d_near"), "g"), _n(v0.get("d_far"), "g")
    low = [r for r in miss if _x(r["values"]["far"].get("upper_bound")) <= t]
    unclear = [r for r in miss if r not in low and not _x(r["values"]["far"].get("lower_bound")) > t]
    moved = [r for r in miss if not abs(_x(r["values"].get("relative_change"))) <= most]
    parts = []
    if low:
        parts.append(f"{_cells(low, rows)} it was at or below {t:g} at d = {far} "
                     f"(mean {_span(r['values']['far'].get('mean') for r in low)})")
    if unclear:
        parts.append(f"{_cells(unclear, rows)} the seeds could not tell it from {t:g} at d = {far} "
                     f"(lower bound {_span(r['values']['far'].get('lower_bound') for r in unclear)})")
    if moved:
        change = [_x(r["values"].get("relative_change")) for r in moved]
        how = (f"fell by {_pct(-x for x in change)}" if all(x < 0 for x in change) else
               f"rose by {_pct(change)}" if all(x > 0 for x in change) else f"changed by {_pct(change)}")
        parts.append(f"{_cells(moved, rows)} it {how} from d = {near} to d = {far}")
    if not parts:
        return _explain_generic(c, rows)
    return (f"Expected the PR ratio at d = {far} above {t:g} and within ±{_pct([most])} of its value at d = {near}, "
            "but " + "; ".join(parts) + f"; {_tally(miss)}")


def _explain_c8(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if _misses(c, r)]
    v0 = miss[0]["values"]
    lo, hi = (_x(x) for x in v0.get("range") or (math.nan, math.nan))
    t = _x(v0.get("min_lower_bound"))
    red = {id(r): _x(r["values"].get("reduction")) for r in miss}
    groups = (([r for r in miss if red[id(r)] < 0], "raised them by {}", lambda x: -x),
              ([r for r in miss if 0 <= red[id(r)] < lo], "lowered them by only {}", lambda x: x),
              ([r for r in miss if red[id(r)] > hi], f"lowered them by {{}}, more than {_pct([hi])}", lambda x: x))
    parts = [f"{_cells(sub, rows)} it {text.format(_pct(sign(red[id(r)]) for r in sub))}"
             for sub, text, sign in groups if sub]
    undefined = [r for r in miss if math.isnan(red[id(r)])]
    if undefined:
        parts.append(f"{_cells(undefined, rows)} the reduction was undefined")
    aug = {id(r): _conditions(r, "augmented_conditions") for r in miss}
    low = [r for r in miss if any(_x(s.get("upper_bound")) <= t for s in aug[id(r)])]
    if low:
        means = [min(_x(s.get("mean")) for s in aug[id(r)]) for r in low]
        parts.append(f"{_cells(low, rows)} the augmented PR ratio was at or below {t:g} in some condition "
                     f"(lowest mean {_span(means)})")
    unclear = [r for r in miss if r not in low and r["values"].get("augmented_all_above") is False]
    if unclear:
        lbs = [min(_x(s.get("lower_bound")) for s in aug[id(r)]) for r in unclear]
        parts.append(f"{_cells(unclear, rows)} the seeds could not tell the augmented PR ratio from {t:g} in some "
                     f"condition (lowest lower bound {_span(lbs)})")
    if not parts:
        return _explain_generic(c, rows)
    return (f"Expected augmentation to lower the PR ratios by {_pct([lo, hi])} and keep them above {t:g}, but "
            + "; ".join(parts) + f"; {_tally(miss)}")


def _explain_c9(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if _misses(c, r)]
    by_threshold: dict[float, list[dict[str, Any]]] = {}
    regimes: dict[float, list[str]] = {}
    for r in rows:
        if r.get("verdict"):
            t = _x(r["values"].get("threshold"))
            regimes.setdefault(t, [])
            if r["params"].get("regime") not in regimes[t]:
                regimes[t].append(r["params"].get("regime"))
            if r in miss:
                by_threshold.setdefault(t, []).append(r)
    goal = " and ".join(f"{_pct([t], '.1f')} ({', '.join(map(str, rg))})" for t, rg in regimes.items())
    parts = [f"{_cells(sub, rows)} it was {_pct((r['values'].get('mean') for r in sub), '.1f')} against "
             f"{_pct([t], '.1f')}" for t, sub in by_threshold.items()]
    return f"Expected a mean test accuracy of at least {goal}, but " + "; ".join(parts) + f"; {_tally(miss)}"


def _explain_n1(c: Claim, rows: list[dict[str, Any]]) -> str:
    shows, invalid = _with(rows, SUPPORTED), _with(rows, INVALID)
    parts = []
    if shows:
        which = []
        for obs, (key, name) in N1_INPUTS.items():
            hit = [r for r in shows if (r["values"].get("verdicts") or {}).get(obs) == SUPPORTED]
            if hit:
                which.append(f"{name}: lower bound {_span(r['values'][key].get('lower_bound') for r in hit)} above "
                             f"{_n(hit[0]['values'][key].get('threshold'), 'g')} in {len(hit)}")
        parts.append(f"{_cells(shows, rows)} it showed KAG ({'; '.join(which)})")
    if invalid:
        # one problem per line, however many cells share it
        problems = list(dict.fromkeys(p for r in invalid
                                      for p in r.get("problems") or r["values"].get("problems") or []))
        first = problems[0] if problems else "invalid values"
        more = f", and {len(problems) - 1} more problems" if len(problems) > 1 else ""
        parts.append(f"{_cells(invalid, rows)} its numbers could not be judged ({first}{more})")
    if not parts:
        return _explain_generic(c, rows)
    return "Expected two independent initialisations to show no KAG, but " + "; and ".join(parts)


def _explain_n2(c: Claim, rows: list[dict[str, Any]]) -> str:
    """N2 judges three observables on different scales (PR and RR ratios, a KL difference): one
    sentence per observable with missed cells, each counted among that observable's cells."""
    explain = {obs: _explain_lower_bound(f"{subject} above {{t}}", below)
               for obs, (subject, below) in _N2_WORDS.items()}
    parts = []
    for obs in N2_OBSERVABLES:
        mine = [r for r in rows if (r.get("params") or {}).get("obs") == obs]
        if any(_misses(c, r) for r in mine):
            text = explain[obs](c, mine)
            parts.append(text if not parts else "e" + text[1:])  # "Expected ...; expected ..."
    return "; ".join(parts) or _explain_generic(c, rows)


_N2_WORDS = {"PR": ("PR(trained)/PR(norm-matched surrogate)", "the surrogate reached the trained PR (ratio {mean})"),
             "KL": ("KL(trained‖init) − KL(surrogate‖init)",
                    "the surrogate was as far from the init as the trained network (difference {mean})"),
             "RR": ("RR(trained)/RR(norm-matched surrogate)", "the surrogate reached the trained RR (ratio {mean})")}


# -- the registry ----------------------------------------------------------------------------------
CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C1-PR",
        statement="KAG emerges in training: trained networks concentrate their minors more than at initialisation.",
        measurement="PR ratio = PR(trained)/PR(init), per seed",
        cells_description="every width n, minor order k, layer; standard regime",
        cells_of=_global_cells("C1-PR"),
        evaluate=_judge_c1_pr,
        headline=_lower_bounds,
        figure="global_pr_ratio",
        explain=_explain_lower_bound("the PR ratio PR(trained)/PR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
    Claim(
        id="C1-KL",
        statement="KAG emerges in training: the minor distribution moves away from the initial one.",
        measurement="KL(trained || init) - KL(independent init || init), per seed (seed-paired)",
        cells_description="every n, k, layer; standard regime",
        cells_of=_global_cells("C1-KL"),
        evaluate=_judge_c1_kl,
        headline=_lower_bounds,
        figure="global_kl",
        explain=_explain_lower_bound(
                "KL(trained‖init) to exceed KL(independent init‖init)",
                "the trained network was no farther from its init than an independent init (difference {mean})",
                "the seeds could not tell the two apart (difference {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C1-RR",
        statement="KAG emerges in training: minors align with the neuron basis (secondary, noisier).",
        measurement="RR(trained)/RR(init), per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=_global_cells("C1-RR"),
        evaluate=_judge_c1_rr,
        headline=_lower_bounds,
        figure="global_rr",
        explain=_explain_lower_bound("the RR ratio RR(trained)/RR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
    Claim(
        id="C2",
        statement="Layer 1 shows stronger KAG than layer 2.",
        measurement="PR ratio(L1) - PR ratio(L2), per seed",
        cells_description="every n, k >= 2; standard regime",
        cells_of=lambda p: [_cell("C2", n=n, k=k) for n in p.widths for k in p.metrics.ks if k >= 2],
        evaluate=_judge_c2,
        headline=_lower_bounds,
        figure="c2_layer_gap",
        explain=_explain_lower_bound(
                "layer 1's PR ratio to exceed layer 2's", "layer 2's was at least as large (by {gap})",
                "the seeds could not tell the layers apart (L1 - L2 {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C2-depth",
        statement="Beyond the paper (a 2026 talk of the same group: the geometry is highest in early layers and "
                  "falls with depth): in a deeper network the PR ratio falls from layer to layer.",
        measurement="Spearman rho between layer depth (1, 2, ...) and the mean PR ratio over seeds, every hidden layer",
        cells_description="every n, k >= 2; standard regime; networks of 3 or more hidden layers",
        cells_of=lambda p: [_cell("C2-depth", n=n, k=k) for n in p.widths for k in p.metrics.ks if k >= 2],
        evaluate=_judge_c2_depth,
        headline=_rhos,
        figure="c2_depth",
        min_layers=3,
        explain=_explain_rho("the mean PR ratio to fall with depth", "layer {}", "rose with depth", relation="<="),
    ),
    Claim(
        id="C3",
        statement="Higher-order minors show stronger KAG.",
        measurement="PR ratio(k=3) - PR ratio(k=1), per seed",
        cells_description="every n, layer; standard regime",
        cells_of=lambda p: ([_cell("C3", n=n, layer=layer) for n in p.widths for layer in layers_of(p)]
                            if len(p.metrics.ks) > 1 else []),
        evaluate=_judge_c3,
        headline=_lower_bounds,
        figure="c3_order_gap",
        explain=_explain_lower_bound(
                "the PR ratio at k = {hi} to exceed the one at k = {lo}",
                "the one at k = {lo} was at least as large (by {gap})",
                "the seeds could not tell the orders apart (difference {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C4",
        statement="Larger networks develop stronger KAG.",
        measurement="Spearman rho between width n and the mean PR ratio (L1, k=3)",
        cells_description="each regime",
        cells_of=lambda p: [_cell("C4", regime=rg) for rg in REGIMES],
        evaluate=_judge_c4,
        headline=_rhos,
        needs_of=lambda cell, p: [Group(n, cell.p["regime"]) for n in p.widths],
        figure="c4_width",
        explain=_explain_rho("the mean PR ratio to rise with width", "n = {}", "fell with width"),
    ),
    Claim(
        id="C5",
        statement="KAG is scale-agnostic: it appears in Euclidean balls of every radius.",
        measurement="PR ratio with columns restricted to a ball of radius r around random centres, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=_spatial_cells("C5"),
        evaluate=_judge_c5,
        headline=lambda rows: "spread " + ", ".join(f"{r['values']['spread']:.2f}" for r in rows[:8]),
        needs_of=_own_images,
        figure="spatial_balls",
        explain=_explain_spatial("at every radius", spread=True),
    ),
    Claim(
        id="C6",
        statement="KAG appears in every region of the image.",
        measurement="PR ratio with columns restricted to one 14x14 patch, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=_spatial_cells("C6"),
        evaluate=_judge_c6,
        headline=_patch_lower_bounds,
        needs_of=_own_images,
        figure="spatial_patches",
        explain=_explain_spatial("in every patch"),
    ),
    Claim(
        id="C7",
        statement="KAG persists when the pixels of a minor are far apart.",
        measurement="PR ratio with the k pixels pairwise >= d apart, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=_spatial_cells("C7"),
        evaluate=_judge_c7,
        headline=lambda rows: "change at far d: " + ", ".join(f"{r['values']['relative_change']:+.2f}"
                                                              for r in rows[:8]),
        needs_of=_own_images,
        figure="spatial_separation",
        explain=_explain_c7,
    ),
    Claim(
        id="C8",
        statement="Augmentation lowers PR ratios by about 30% but keeps them above 1.",
        measurement="reduction = 1 - mean PR ratio(augmented)/mean PR ratio(standard), averaged over an analysis' "
                    "conditions",
        cells_description="each spatial analysis, layer, k; augmented models on clean and on shifted test images; "
                          "largest width",
        cells_of=_c8_cells,
        evaluate=_judge_c8,
        headline=lambda rows: "reduction {:.2f} to {:.2f}".format(min(r["values"]["reduction"] for r in rows),
                                                         max(r["values"]["reduction"] for r in rows)),
        needs_of=lambda cell, p: [Group(cell.p["n"], "standard"), Group(cell.p["n"], "augmented", cell.p["eval"])],
        figure="augmentation",
        explain=_explain_c8,
    ),
    Claim(
        id="C9",
        statement="All widths reach similar, high test accuracy.",
        measurement="mean test accuracy over seeds",
        cells_description="each regime and width; augmented models on clean and on shifted test images",
        cells_of=_c9_cells,
        evaluate=_judge_c9,
        headline=lambda rows: "mean accuracy " + ", ".join(f"{r['cell']}: {r['values']['mean']:.4f}" for r in rows[:4]),
        needs_of=_own_regime,
        figure="accuracy",
        profiles=("paper",),
        explain=_explain_c9,
    ),
    Claim(
        id="C10",
        statement="Zero rows appear: trained Jacobians have more (near-)vanishing rows than at initialisation.",
        measurement="zero-row fraction(trained) - fraction(init), threshold = 1st percentile of init row norms, "
                    "per seed",
        cells_description="every width; L1; standard regime",
        cells_of=lambda p: [_cell("C10", n=n, layer="L1") for n in p.widths],
        evaluate=_judge_c10,
        headline=_lower_bounds,
        figure="zero_rows",
        explain=_explain_lower_bound(
                "trained Jacobians to have more zero rows than at initialisation",
                "they had no more (zero-row fraction trained - init {mean})",
                "the seeds could not tell the fractions apart (difference {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C11",
        statement="KAG grows during training.",
        measurement="Spearman rho between checkpoint epoch and the mean PR ratio (L1, k=3)",
        cells_description="every width; standard regime",
        cells_of=lambda p: [_cell("C11", n=n) for n in p.widths],
        evaluate=_judge_c11,
        headline=_rhos,
        figure="timeline",
        explain=_explain_rho("the mean PR ratio to grow during training", "epoch {}", "fell during training"),
    ),
    Claim(
        id="N2",
        statement="Beyond the paper: KAG is more than row and column norms.",
        measurement="PR(trained)/PR(norm-matched surrogate), KL(trained‖init) - KL(surrogate‖init) and "
                    "RR(trained)/RR(surrogate), per seed: the surrogate is the initial Jacobian rescaled to the "
                    "trained row and column norms (SPEC §5); a PR or RR ratio of 1 (a KL difference of 0) means the "
                    "norms alone explain it",
        cells_description="every n, k >= 2, layer and observable (PR, KL, RR); standard regime",
        cells_of=lambda p: [_cell("N2", n=n, k=k, layer=layer, obs=obs) for n in p.widths
                            for k in p.metrics.ks if k >= 2 for layer in layers_of(p) for obs in N2_OBSERVABLES],
        evaluate=_judge_n2,
        headline=_lower_bounds,
        figure="surrogate",
        explain=_explain_n2,
    ),
    Claim(
        id="N1",
        statement="Control: two independent random initialisations show no KAG.",
        measurement="the C1-PR, C1-KL and C1-RR rules applied to an independent init vs the init: PR ratio and RR "
                    "ratio of the null, and KL(null‖init) - KL(null2‖init) with a second independent init, "
                    "per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=_global_cells("N1"),
        evaluate=_judge_n1,
        headline=_null_lower_bounds,
        control=True,
        explain=_explain_n1,
    ),
)

BY_ID: Mapping[str, Claim] = MappingProxyType({c.id: c for c in CLAIMS})
# N2 reads the surrogate rows of kag.analysis; what a verdict means is said in the report (SPEC §7).
N2_READING = ("N2 asks whether PR sees more than which units and which pixels are active. If it is not supported, "
              "that does not refute KA geometry, whose definition includes zero rows (inactive units): it says that "
              "PR and KL see nothing beyond the row and column norms of the Jacobian.")


def get_claim(claim_id: str) -> Claim:
    """The registered claim ``claim_id``, with a one-line error naming the valid ids."""
    if claim_id not in BY_ID:
        raise ValueError(f"claim={claim_id!r} is unknown: choose one of {', '.join(BY_ID)}")
    return BY_ID[claim_id]
