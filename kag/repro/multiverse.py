"""The pre-registered multiverse (docs/SPEC.md §7): every claim's estimator variants, judged beside
its primary verdict.

A claim's primary verdict comes from its primary estimator and never changes by this module. Each
claim also declares, before any run, the variants it is judged under: one factor at a time around
the primary (no full factorial). The metric tables hold every variant's own rows
(:mod:`kag.experiments.analysis`: ``PR_VARIANTS``, :func:`kag.experiments.analysis.rr_variants`); the divergence variants of
C1-KL map rows that are measured anyway (:data:`kag.repro.results.DIVERGENCE_VARIANTS`). A claim is
**robust** when its status is the same under every variant, **fragile** otherwise (naming the
variants that disagree).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kag.experiments.analysis import PR_VARIANTS, RR_ARITHMETIC, fewer_samples, rr_variants
from kag.errors import MissingResults
from kag.repro.claims import CLAIMS
from kag.repro.criteria import Claim
from kag.repro.profiles import Profile
from kag.repro.results import DIVERGENCE_VARIANTS, Results

ROBUST, FRAGILE, NO_VARIANTS = "robust", "fragile", "no variants"

@dataclass(frozen=True)
class Variant:
    """One estimator variant: its name, the estimator family it varies, and its sizes in words."""

    name: str
    family: str  # "PR", "RR" or "divergence"
    description: str
    sizes: str


def variants(profile: Profile) -> dict[str, Variant]:
    """Every variant measured under ``profile``, with the sizes it uses (stated in the report)."""
    m = profile.metrics
    out = {
        "nonzero-matched": Variant("nonzero-matched", "PR", "PR over the non-zero minors only, trained and init "
                                   "each subsampled to the same count per image (zeros neither inflate nor deflate PR)",
                                   f"S = {m.n_samples:,} (spatial {m.n_spatial_samples:,}) before removing zeros"),
        "fewer-minors": Variant("fewer-minors", "PR", "PR over the first part of each index sample",
                                f"S = {fewer_samples(m):,} (spatial {fewer_samples(m, True):,})"),
        "more-minors": Variant("more-minors", "PR", "PR over the index sample plus an independent one",
                               f"S = {m.variant_sample_multiple * m.n_samples:,} "
                               f"(spatial {m.variant_sample_multiple * m.n_spatial_samples:,})"),
        "rr-fewer-minors": Variant("rr-fewer-minors", "RR", "RR's maxima over the first part of each index sample",
                                   f"S = {fewer_samples(m):,}"),
        "rr-more-images": Variant("rr-more-images", "RR", "RR averaged over more test images",
                                  f"{m.rr_variant_images} images"),
        RR_ARITHMETIC: Variant(RR_ARITHMETIC, "RR", "arithmetic instead of geometric mean of the RR ratios over "
                               "index samples", f"{m.rr_index_samples} index samples"),
    }
    for r in m.rr_variant_rotations:
        out[f"rr-rotations-{r}"] = Variant(f"rr-rotations-{r}", "RR", "RR over more Haar rotations",
                                           f"{r} rotations")
    words = {"js-vs-null": "Jensen-Shannon divergence instead of KL, against the null",
             "kl-vs-surrogate": "KL against that of the norm-matched surrogate instead of the null",
             "js-vs-surrogate": "Jensen-Shannon divergence against that of the norm-matched surrogate"}
    for name in DIVERGENCE_VARIANTS:
        out[name] = Variant(name, "divergence", words[name], f"{m.kl_bins} bins")
    return out


def claim_variants(claim: Claim, profile: Profile) -> list[str]:
    """The variants ``claim`` is judged under (pre-registered; docs/SPEC.md §7): those of each estimator family
    it declares (``Claim.estimators``); a claim with one estimator (C9, C10, C11) has none."""
    by_family = {"PR": list(PR_VARIANTS), "RR": list(rr_variants(profile.metrics)),
                 "divergence": list(DIVERGENCE_VARIANTS)}
    return [name for family in claim.estimators for name in by_family[family]]


def judge_variants(results: Results, verdicts: dict[str, list[dict[str, Any]]]) -> None:
    """Judge every judged cell under each of its claim's variants, in place: each row gets
    ``"variants"``: variant -> ``{"verdict", "values"}`` (a variant whose tables lack its rows is
    left out)."""
    by_id = {c.id: c for c in CLAIMS}
    for claim_id, rows in verdicts.items():
        claim = by_id[claim_id]
        cells = {cell.id: cell for cell in claim.cells(results.profile)}
        for row in rows:
            row.setdefault("variants", {})
            if row.get("verdict") is None or row["cell"] not in cells:
                continue
            for name in claim_variants(claim, results.profile):
                try:
                    v = claim.judge(cells[row["cell"]], results.under(name))
                except (MissingResults, LookupError):
                    continue
                row["variants"][name] = {"verdict": v.verdict, "values": v.values}


def robustness(claim: Claim, rows: list[dict[str, Any]], primary_status: str, profile: Profile,
               status_of) -> dict[str, Any]:
    """The claim's robustness: its status under every variant (``status_of(claim, rows)`` gives a
    status from cell rows), "robust" when all equal the primary's, else "fragile" with the variants
    that disagree."""
    names = claim_variants(claim, profile)
    if not names:
        return {"status": NO_VARIANTS, "disagree": [], "variants": []}
    described = variants(profile)
    out, disagree = [], []
    for name in names:
        under = [dict(r, verdict=r.get("variants", {}).get(name, {}).get("verdict"),
                      values=r.get("variants", {}).get(name, {}).get("values", {})) for r in rows]
        if not any(r["verdict"] for r in under):
            continue
        status = status_of(claim, under)
        counts: dict[str, int] = {}
        for r in under:
            counts[r["verdict"] or "not judged"] = counts.get(r["verdict"] or "not judged", 0) + 1
        out.append({"name": name, "description": described[name].description, "sizes": described[name].sizes,
                    "status": status, "counts": counts})
        if status != primary_status:
            disagree.append(name)
    if not out:
        return {"status": "not run", "disagree": [], "variants": []}
    return {"status": FRAGILE if disagree else ROBUST, "disagree": disagree, "variants": out}
