"""C9: all widths reach similar, high test accuracy."""

from __future__ import annotations

from typing import Any


from kag.repro.criteria import Cell, Claim, Rule, make_cell
from kag.repro.judges import cell_se, own_regime, per_seed_values, se_per_seed
from kag.repro.prose import as_num, cells_text, misses, pct, tally_text
from kag.repro.profiles import Profile
from kag.repro.results import Results
from kag.repro.rules import rule_mean_at_least


RULE = Rule.of("standard >= {min_standard}, augmented >= {min_augmented}", min_standard=0.975, min_augmented=0.950)


def c9_cells(p: Profile) -> list[Cell]:
    return [make_cell("C9", regime=rg, n=n, eval=e) for rg, e in (("standard", "clean"), ("augmented", "clean"),
                                                               ("augmented", "augmented")) for n in p.widths]


def judge_c9(c: Claim, cell: Cell, r: Results):
    p, t = cell.p, c.thresholds
    images = "shifted" if p["eval"] == "augmented" else "clean"
    accuracy = per_seed_values(r, p["n"], p["regime"], analysis="accuracy", observable="test_accuracy",
                               condition=images)
    se = cell_se(se_per_seed(r, p["n"], p["regime"], observable="test_accuracy", analysis="accuracy",
                               condition=images))
    verdict, v = rule_mean_at_least(accuracy, t["min_standard"] if p["regime"] == "standard" else t["min_augmented"],
                                    se)
    return verdict, v, None


def explain_c9(c: Claim, rows: list[dict[str, Any]]) -> str:
    miss = [r for r in rows if misses(c, r)]
    by_threshold: dict[float, list[dict[str, Any]]] = {}
    regimes: dict[float, list[str]] = {}
    for r in rows:
        if r.get("verdict"):
            t = as_num(r["values"].get("threshold"))
            regimes.setdefault(t, [])
            if r["params"].get("regime") not in regimes[t]:
                regimes[t].append(r["params"].get("regime"))
            if r in miss:
                by_threshold.setdefault(t, []).append(r)
    goal = " and ".join(f"{pct([t], '.1f')} ({', '.join(map(str, rg))})" for t, rg in regimes.items())
    parts = [f"{cells_text(sub, rows)} it was {pct((r['values'].get('mean') for r in sub), '.1f')} against "
             f"{pct([t], '.1f')}" for t, sub in by_threshold.items()]
    return f"Expected a mean test accuracy of at least {goal}, but " + "; ".join(parts) + f"; {tally_text(miss)}"


CLAIMS_HERE = (
    Claim(
        id="C9",
        rule=RULE,
        order=12,
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
)
