"""Fake results for unit tests of the claims and the report: a results table built from a function."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from kag.errors import MissingResults
from kag.table import ResultTable, Row


class FakeResults:
    """A results table built from ``value(**row identity) -> float`` for every row a profile's
    claims read; ``table(n, regime, eval_images)`` filters it exactly as the real :class:`Results`."""

    store = SimpleNamespace(root=Path("/nonexistent/fake-store"))
    mnist = SimpleNamespace(sha256="0" * 64, source="fake")

    def __init__(self, profile, value):
        self.profile = profile
        m, rows = profile.metrics, []
        for n in profile.widths:
            for regime, ev in (("standard", "clean"), ("augmented", "clean"), ("augmented", "augmented")):
                if ev == "augmented" and n not in profile.spatial_widths:
                    continue
                for seed in profile.seeds:
                    def add(analysis, observable, *, layer=None, k=None, condition=None, role="trained"):
                        ident = dict(width=n, seed=seed, regime=regime, eval_images=ev, layer=layer, k=k,
                                     analysis=analysis, condition=condition, role=role, observable=observable)
                        rows.append(Row(**ident, value=float(value(**ident))))

                    for cond in ("clean", "shifted"):
                        add("accuracy", "test_accuracy", condition=cond)
                    for layer in ("L1", "L2"):
                        for role in ("trained", "init", "null"):
                            add("zero_rows", "zero_row_fraction", layer=layer, role=role)
                        for k in m.ks:
                            for obs in ("pr_ratio", "kl", "rr_ratio"):
                                for role in ("trained", "null"):
                                    add("global", obs, layer=layer, k=k, role=role)
                        if n in profile.spatial_widths:
                            for k in m.spatial_ks:
                                for analysis, conds in (("balls", m.radii), ("patches", ("top-left", "centre")),
                                                        ("separation", m.separations)):
                                    for c in conds:
                                        add(analysis, "pr_ratio", layer=layer, k=k, condition=str(c))
                                        add(analysis, "pool_size", layer=layer, k=k, condition=str(c), role="none")
                    if regime == "standard":
                        for epoch in range(5):
                            add("timeline", "pr_ratio", layer="L1", k=3, condition=str(epoch))
        self._table = ResultTable(rows)

    def table(self, width, regime, eval_images="clean"):
        return self._table.select(width=width, regime=regime, eval_images=eval_images)

    def available(self, groups=None):
        return self._table

    def entries(self, width, regime, eval_images="clean"):
        raise MissingResults("fake results keep no store entries")


def kag_like(width, seed, regime, eval_images, layer, k, analysis, condition, role, observable):
    """Trained networks concentrate (more in L1, at higher k, at larger widths), inits do not;
    augmentation lowers PR ratios by 25%; accuracy is high; KAG grows with the epoch."""
    if observable == "test_accuracy":
        return 0.99 if condition == "clean" else 0.96
    if observable == "zero_row_fraction":
        return {"trained": 0.05 + 0.001 * seed, "init": 0.01, "null": 0.01}[role]
    if observable == "pool_size":
        return 100.0
    if analysis == "timeline":
        return 1 + 0.1 * int(condition)
    if role == "null":
        return [0.9, 1.0, 1.1][seed] if observable != "kl" else 0.1
    if observable == "kl":
        return 1.0 + 0.1 * seed
    if observable == "rr_ratio":
        return 1.5 + 0.01 * seed
    base = 1.2 + width / 512 + (k or 2) / 3 + (0.3 if layer == "L1" else 0) + 0.001 * seed
    return base * (0.75 if regime == "augmented" else 1.0)
