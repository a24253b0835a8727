"""The paper's claims, one :class:`~kag.repro.criteria.Claim` object each: the registry behind the
tests and the report.

A claim owns its id, its statement, the cells it is judged on under a profile, the groups of
metric tables it reads, its pre-registered rule (from :data:`~kag.repro.criteria.CRITERIA`, SPEC §7),
how it turns the results table into a :class:`~kag.repro.criteria.Verdict` (its judge,
:mod:`kag.repro.judges`), its headline number, its figure and its plain words
(:mod:`kag.repro.prose`). The pytest layer (``claims/``) and the report iterate over :data:`CLAIMS`.

Adding a claim means one entry in ``CRITERIA``, a judge, and one :class:`Claim` below (plus a
figure function in :mod:`kag.repro.report.figures` if it needs a new figure).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from kag.repro.criteria import Claim, _cell
from kag.repro.judges import (N2_OBSERVABLES, c8_cells, c9_cells, global_cells, judge_c1_kl, judge_c1_pr,
                              judge_c1_rr, judge_c2, judge_c2_depth, judge_c3, judge_c4, judge_c5, judge_c6,
                              judge_c7, judge_c8, judge_c9, judge_c10, judge_c11, judge_n1, judge_n2, lower_bounds,
                              null_lower_bounds, own_images, own_regime, patch_lower_bounds, rhos, spatial_cells)
from kag.repro.prose import (explain_c7, explain_c8, explain_c9, explain_lower_bound, explain_n1, explain_n2,
                             explain_rho, explain_spatial)
from kag.repro.results import REGIMES, Group
from kag.repro.studies import layers_of


# -- the registry ----------------------------------------------------------------------------------
CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="C1-PR",
        statement="KAG emerges in training: trained networks concentrate their minors more than at initialisation.",
        measurement="PR ratio = PR(trained)/PR(init), per seed",
        cells_description="every width n, minor order k, layer; standard regime",
        cells_of=global_cells("C1-PR"),
        evaluate=judge_c1_pr,
        headline=lower_bounds,
        figure="global_pr_ratio",
        explain=explain_lower_bound("the PR ratio PR(trained)/PR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
    Claim(
        id="C1-KL",
        statement="KAG emerges in training: the minor distribution moves away from the initial one.",
        measurement="KL(trained || init) - KL(independent init || init), per seed (seed-paired)",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("C1-KL"),
        evaluate=judge_c1_kl,
        headline=lower_bounds,
        figure="global_kl",
        explain=explain_lower_bound(
                "KL(trained‖init) to exceed KL(independent init‖init)",
                "the trained network was no farther from its init than an independent init (difference {mean})",
                "the seeds could not tell the two apart (difference {mean}, error bars {bounds})"),
    ),
    Claim(
        id="C1-RR",
        statement="KAG emerges in training: minors align with the neuron basis (secondary, noisier).",
        measurement="RR(trained)/RR(init), per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("C1-RR"),
        evaluate=judge_c1_rr,
        headline=lower_bounds,
        figure="global_rr",
        explain=explain_lower_bound("the RR ratio RR(trained)/RR(init) above {t}",
                                     "it was at or below {t} (mean {mean})"),
    ),
    Claim(
        id="C2",
        statement="Layer 1 shows stronger KAG than layer 2.",
        measurement="PR ratio(L1) - PR ratio(L2), per seed",
        cells_description="every n, k >= 2; standard regime",
        cells_of=lambda p: [_cell("C2", n=n, k=k) for n in p.widths for k in p.metrics.ks if k >= 2],
        evaluate=judge_c2,
        headline=lower_bounds,
        figure="c2_layer_gap",
        explain=explain_lower_bound(
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
        evaluate=judge_c2_depth,
        headline=rhos,
        figure="c2_depth",
        min_layers=3,
        beyond_paper=True,
        explain=explain_rho("the mean PR ratio to fall with depth", "layer {}", "rose with depth", relation="<="),
    ),
    Claim(
        id="C3",
        statement="Higher-order minors show stronger KAG.",
        measurement="PR ratio(k=3) - PR ratio(k=1), per seed",
        cells_description="every n, layer; standard regime",
        cells_of=lambda p: ([_cell("C3", n=n, layer=layer) for n in p.widths for layer in layers_of(p)]
                            if len(p.metrics.ks) > 1 else []),
        evaluate=judge_c3,
        headline=lower_bounds,
        figure="c3_order_gap",
        explain=explain_lower_bound(
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
        evaluate=judge_c4,
        headline=rhos,
        needs_of=lambda cell, p: [Group(n, cell.p["regime"]) for n in p.widths],
        figure="c4_width",
        explain=explain_rho("the mean PR ratio to rise with width", "n = {}", "fell with width"),
    ),
    Claim(
        id="C5",
        statement="KAG is scale-agnostic: it appears in Euclidean balls of every radius.",
        measurement="PR ratio with columns restricted to a ball of radius r around random centres, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C5"),
        evaluate=judge_c5,
        headline=lambda rows: "spread " + ", ".join(f"{r['values']['spread']:.2f}" for r in rows[:8]),
        needs_of=own_images,
        figure="spatial_balls",
        explain=explain_spatial("at every radius", spread=True),
    ),
    Claim(
        id="C6",
        statement="KAG appears in every region of the image.",
        measurement="PR ratio with columns restricted to one 14x14 patch, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C6"),
        evaluate=judge_c6,
        headline=patch_lower_bounds,
        needs_of=own_images,
        figure="spatial_patches",
        explain=explain_spatial("in every patch"),
    ),
    Claim(
        id="C7",
        statement="KAG persists when the pixels of a minor are far apart.",
        measurement="PR ratio with the k pixels pairwise >= d apart, per seed",
        cells_description="each regime, layer, k in {2, 3}; largest width",
        cells_of=spatial_cells("C7"),
        evaluate=judge_c7,
        headline=lambda rows: "change at far d: " + ", ".join(f"{r['values']['relative_change']:+.2f}"
                                                              for r in rows[:8]),
        needs_of=own_images,
        figure="spatial_separation",
        explain=explain_c7,
    ),
    Claim(
        id="C8",
        statement="Augmentation lowers PR ratios by about 30% but keeps them above 1.",
        measurement="reduction = 1 - mean PR ratio(augmented)/mean PR ratio(standard), averaged over an analysis' "
                    "conditions",
        cells_description="each spatial analysis, layer, k; augmented models on clean and on shifted test images; "
                          "largest width",
        cells_of=c8_cells,
        evaluate=judge_c8,
        headline=lambda rows: "reduction {:.2f} to {:.2f}".format(min(r["values"]["reduction"] for r in rows),
                                                         max(r["values"]["reduction"] for r in rows)),
        needs_of=lambda cell, p: [Group(cell.p["n"], "standard"), Group(cell.p["n"], "augmented", cell.p["eval"])],
        figure="augmentation",
        explain=explain_c8,
    ),
    Claim(
        id="C9",
        statement="All widths reach similar, high test accuracy.",
        measurement="mean test accuracy over seeds",
        cells_description="each regime and width; augmented models on clean and on shifted test images",
        cells_of=c9_cells,
        evaluate=judge_c9,
        headline=lambda rows: "mean accuracy " + ", ".join(f"{r['cell']}: {r['values']['mean']:.4f}" for r in rows[:4]),
        needs_of=own_regime,
        figure="accuracy",
        profiles=("paper",),
        explain=explain_c9,
    ),
    Claim(
        id="C10",
        statement="Zero rows appear: trained Jacobians have more (near-)vanishing rows than at initialisation.",
        measurement="zero-row fraction(trained) - fraction(init), threshold = 1st percentile of init row norms, "
                    "per seed",
        cells_description="every width; L1; standard regime",
        cells_of=lambda p: [_cell("C10", n=n, layer="L1") for n in p.widths],
        evaluate=judge_c10,
        headline=lower_bounds,
        figure="zero_rows",
        explain=explain_lower_bound(
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
        evaluate=judge_c11,
        headline=rhos,
        figure="timeline",
        explain=explain_rho("the mean PR ratio to grow during training", "epoch {}", "fell during training"),
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
        evaluate=judge_n2,
        headline=lower_bounds,
        figure="surrogate",
        explain=explain_n2,
    ),
    Claim(
        id="N1",
        statement="Control: two independent random initialisations show no KAG.",
        measurement="the C1-PR, C1-KL and C1-RR rules applied to an independent init vs the init: PR ratio and RR "
                    "ratio of the null, and KL(null‖init) - KL(null2‖init) with a second independent init, "
                    "per seed",
        cells_description="every n, k, layer; standard regime",
        cells_of=global_cells("N1"),
        evaluate=judge_n1,
        headline=null_lower_bounds,
        control=True,
        explain=explain_n1,
    ),
)

BY_ID: Mapping[str, Claim] = MappingProxyType({c.id: c for c in CLAIMS})
def get_claim(claim_id: str) -> Claim:
    """The registered claim ``claim_id``, with a one-line error naming the valid ids."""
    if claim_id not in BY_ID:
        raise ValueError(f"claim={claim_id!r} is unknown: choose one of {', '.join(BY_ID)}")
    return BY_ID[claim_id]

