"""The pre-registered criteria of SPEC §7, as data: the one place where thresholds live.

Tests (``claims/test_claims.py``), the decision rules (``claims/judge.py``) and the report all
read this table. A threshold changes only in a commit of its own whose message says why, never
to turn a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

ALL_PROFILES = ("paper", "paper-cpu", "quick", "smoke")


@dataclass(frozen=True)
class Criterion:
    """One claim (or one observable of a claim) and how it is judged."""

    id: str  # "C1-PR"
    claim: str  # the paper's claim, in our words
    measurement: str  # what is measured, per cell
    rule: str  # the decision rule, in words (numbers come from ``thresholds``)
    thresholds: Mapping[str, float]
    cells: str  # what one test covers, in words
    profiles: tuple[str, ...] = ALL_PROFILES  # profiles under which it is judged; elsewhere "not run"
    xfail: Mapping[str, str] = field(default_factory=dict)  # profile -> stated reason (strict xfail)
    expect_supported: bool = True  # False for the control N1: the machinery must say no
    figure: str | None = None  # figure file stem in the report

    @property
    def group(self) -> str:
        """The claim id without the observable suffix: "C1-PR" -> "C1"."""
        return self.id.split("-")[0]


def _c(**kw) -> Criterion:
    kw["thresholds"] = MappingProxyType(kw.get("thresholds", {}))
    kw["xfail"] = MappingProxyType(kw.get("xfail", {}))
    return Criterion(**kw)


CRITERIA: tuple[Criterion, ...] = (
    _c(id="C1-PR", claim="KAG emerges in training: trained networks concentrate their minors more than at initialisation.",
       measurement="PR ratio = PR(trained)/PR(init), per seed", rule="lower bound (mean - 2 std over seeds) > {min_lower_bound}",
       thresholds={"min_lower_bound": 1.0}, cells="every width n, minor order k, layer; standard regime",
       figure="global_pr_ratio"),
    _c(id="C1-KL", claim="KAG emerges in training: the minor distribution moves away from the initial one.",
       measurement="KL(trained || init) - KL(independent init || init), per seed (seed-paired)",
       rule="lower bound of the difference > {min_lower_bound}", thresholds={"min_lower_bound": 0.0},
       cells="every n, k, layer; standard regime", figure="global_kl"),
    _c(id="C1-RR", claim="KAG emerges in training: minors align with the neuron basis (secondary, noisier).",
       measurement="RR(trained)/RR(init), per seed", rule="lower bound > {min_lower_bound}",
       thresholds={"min_lower_bound": 1.0}, cells="every n, k, layer; standard regime", figure="global_rr"),
    _c(id="C2", claim="Layer 1 shows stronger KAG than layer 2.",
       measurement="PR ratio(L1) - PR ratio(L2), per seed", rule="lower bound > {min_lower_bound}",
       thresholds={"min_lower_bound": 0.0}, cells="every n, k >= 2; standard regime", figure="global_pr_ratio"),
    _c(id="C3", claim="Higher-order minors show stronger KAG.",
       measurement="PR ratio(k=3) - PR ratio(k=1), per seed", rule="lower bound > {min_lower_bound}",
       thresholds={"min_lower_bound": 0.0}, cells="every n, layer; standard regime", figure="global_pr_ratio"),
    _c(id="C4", claim="Larger networks develop stronger KAG.",
       measurement="Spearman rho between width n and the mean PR ratio (L1, k=3)", rule="rho >= {min_rho}",
       thresholds={"min_rho": 0.8}, cells="each regime", figure="global_pr_ratio"),
    _c(id="C5", claim="KAG is scale-agnostic: it appears in Euclidean balls of every radius.",
       measurement="PR ratio with columns restricted to a ball of radius r around random centres, per seed",
       rule="lower bound > {min_lower_bound} at every radius, and max/min of the mean PR ratio over radii <= {max_spread}",
       thresholds={"min_lower_bound": 1.0, "max_spread": 1.5}, cells="each regime, layer, k in {2, 3}; largest width",
       figure="spatial_balls"),
    _c(id="C6", claim="KAG appears in every region of the image.",
       measurement="PR ratio with columns restricted to one 14x14 patch, per seed",
       rule="lower bound > {min_lower_bound} in all five patches", thresholds={"min_lower_bound": 1.0},
       cells="each regime, layer, k in {2, 3}; largest width", figure="spatial_patches"),
    _c(id="C7", claim="KAG persists when the pixels of a minor are far apart.",
       measurement="PR ratio with the k pixels pairwise >= d apart, per seed",
       rule="lower bound > {min_lower_bound} at the largest d, and its mean within +-{max_relative_change} of d = 0",
       thresholds={"min_lower_bound": 1.0, "max_relative_change": 0.30},
       cells="each regime, layer, k in {2, 3}; largest width", figure="spatial_separation"),
    _c(id="C8", claim="Augmentation lowers PR ratios by about 30% but keeps them above 1.",
       measurement="reduction = 1 - mean PR ratio(augmented)/mean PR ratio(standard), averaged over an analysis' conditions",
       rule="reduction in [{min_reduction}, {max_reduction}] and augmented lower bound > {min_lower_bound} in every condition",
       thresholds={"min_reduction": 0.15, "max_reduction": 0.50, "min_lower_bound": 1.0},
       cells="each spatial analysis, layer, k; augmented models on clean and on shifted test images; largest width",
       figure="augmentation"),
    _c(id="C9", claim="All widths reach similar, high test accuracy.",
       measurement="mean test accuracy over seeds", rule="standard >= {min_standard}, augmented >= {min_augmented}",
       thresholds={"min_standard": 0.975, "min_augmented": 0.950}, profiles=("paper", "paper-cpu"),
       cells="each regime and width; augmented models on clean and on shifted test images", figure="accuracy"),
    _c(id="C10", claim="Zero rows appear: trained Jacobians have more (near-)vanishing rows than at initialisation.",
       measurement="zero-row fraction(trained) - fraction(init), threshold = 1st percentile of init row norms, per seed",
       rule="lower bound > {min_lower_bound}", thresholds={"min_lower_bound": 0.0},
       cells="every width; L1; standard regime", figure="zero_rows"),
    _c(id="C11", claim="KAG grows during training.",
       measurement="Spearman rho between checkpoint epoch and the mean PR ratio (L1, k=3)", rule="rho >= {min_rho}",
       thresholds={"min_rho": 0.8}, cells="every width; standard regime", figure="timeline"),
    _c(id="N1", claim="Control: two independent random initialisations show no KAG.",
       measurement="the C1-PR and C1-RR rules applied to independent init vs init",
       rule="must be not supported: neither PR ratio nor RR ratio lower bound > {min_lower_bound}",
       thresholds={"min_lower_bound": 1.0}, expect_supported=False, cells="every n, k, layer", figure=None),
)

BY_ID: Mapping[str, Criterion] = MappingProxyType({c.id: c for c in CRITERIA})


def criterion(cid: str) -> Criterion:
    if cid not in BY_ID:
        raise ValueError(f"criterion={cid!r} is unknown: choose one of {', '.join(BY_ID)}")
    return BY_ID[cid]


def rule_text(c: Criterion) -> str:
    """The rule with its numbers filled in."""
    return c.rule.format(**c.thresholds)
