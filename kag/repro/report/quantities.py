"""The one number each claim is judged on, read from a cell's verdict values.

The headline ("our value"), the plain-words failure lines and the specification curves all need
the same thing from a cell: its key number with its error bars and threshold. A verdict's
``values`` come in a few shapes (see :mod:`kag.repro.rules`); :func:`key_quantity` maps each shape
to one :class:`Key`. Pure functions over JSON-like dicts (a NaN may arrive as None), so they work
on a live verdict and on a ``results.json`` alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

# claim id -> the judged quantity, in a few words (the headline's and the figures' label)
QUANTITY: Mapping[str, str] = {
    "C1-PR": "PR ratio (trained / init)",
    "C1-KL": "KL(trained‖init) − KL(independent init‖init)",
    "C1-RR": "RR ratio (trained / init)",
    "C2": "PR ratio, layer 1 − layer 2",
    "C3": "PR ratio, highest k − lowest k",
    "C4": "Spearman ρ(width, mean PR ratio)",
    "C5": "PR ratio in balls, weakest radius",
    "C6": "PR ratio per patch, weakest patch",
    "C7": "PR ratio at the largest separation d",
    "C8": "reduction 1 − PR ratio(aug) / PR ratio(std)",
    "C9": "test accuracy",
    "C10": "zero-row fraction, trained − init",
    "C11": "Spearman ρ(epoch, mean PR ratio)",
    "N1": "PR ratio of the null (independent init / init)",
    "N2": "trained against the norm-matched surrogate (PR and RR: ratio; KL: difference)",
}


@dataclass(frozen=True)
class Key:
    """A cell's key number: its value (``mean``), error bars, spread, measurement SE and what it
    is compared with (``threshold``, or for an interval rule the ``band`` it must fall in).
    Unknown numbers are NaN; ``kind`` says which shape of values it was read from."""

    kind: str  # "summary" (mean ± 2 SD over seeds), "rho", "reduction" or "condition"
    mean: float
    lower: float = math.nan
    upper: float = math.nan
    sd: float = math.nan
    se: float = math.nan
    threshold: float = math.nan
    band: tuple[float, float] | None = None
    where: str = ""  # which condition it was read from (C5-C7), e.g. "r=7"


def num(v: Any) -> float:
    """A number from a verdict's values; None (JSON's NaN) and non-numbers are NaN."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _sd(values: Iterable[Any]) -> float:
    xs = [x for x in map(num, values or []) if math.isfinite(x)]
    if len(xs) < 2:
        return math.nan
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _from_summary(s: Mapping[str, Any], threshold: Any, kind: str = "summary", where: str = "") -> Key:
    return Key(kind, num(s.get("mean")), num(s.get("lower_bound")), num(s.get("upper_bound")), num(s.get("std")),
               num(s.get("measurement_se")), num(threshold), None, where)


def _weakest(conditions: Mapping[str, Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]] | None:
    """The condition with the lowest mean (NaN means count as lowest: they can never pass)."""
    if not conditions:
        return None
    return min(conditions.items(), key=lambda kv: (math.isfinite(num(kv[1].get("mean"))), num(kv[1].get("mean"))))


def key_quantity(values: Mapping[str, Any] | None) -> Key | None:
    """The key number of one cell, by the shape of its verdict values (None when it has none):

    * C8 (``reduction``): the reduction, its per-seed interval ``reduction_interval`` as error bars
      and the claim's ``range`` as the band;
    * C4, C11 (``rho``): Spearman ρ, with ρ ∓ 2 measurement SE as error bars where the SE is known;
    * C7 (``far``): the PR ratio at the largest separation, which the rule's lower bound reads;
    * C5, C6 (``conditions``): the weakest condition (lowest mean PR ratio), the one the rule's
      "in every condition" hinges on;
    * N1 (``pr_ratio_null``): the null's PR ratio (the KL and RR parts live on other scales);
    * every other rule (``mean``, ``lower_bound``...): the summary itself, with its threshold.
    """
    if not values:
        return None
    if "reduction" in values:
        lo, hi = (list(values.get("reduction_interval") or []) + [None, None])[:2]
        band = values.get("range")
        return Key("reduction", num(values["reduction"]), num(lo), num(hi), _sd(values.get("seed_reductions")),
                   band=(num(band[0]), num(band[1])) if band and len(band) == 2 else None)
    if "rho" in values:
        rho, se = num(values["rho"]), num(values.get("measurement_se"))
        lower, upper = (rho - 2 * se, rho + 2 * se) if math.isfinite(se) else (math.nan, math.nan)
        return Key("rho", rho, lower, upper, se=se, threshold=num(values.get("threshold")))
    if isinstance(values.get("far"), Mapping):
        d = values.get("d_far")
        return _from_summary(values["far"], values.get("min_lower_bound"), "condition",
                             f"d={num(d):g}" if d is not None else "largest d")
    if isinstance(values.get("conditions"), Mapping):
        found = _weakest(values["conditions"])
        if found is None:
            return None
        name, s = found
        return _from_summary(s, values.get("min_lower_bound"), "condition", name)
    if isinstance(values.get("pr_ratio_null"), Mapping):
        s = values["pr_ratio_null"]
        return _from_summary(s, s.get("threshold"))
    if "mean" in values:
        return _from_summary(values, values.get("threshold"))
    return None


# -- words for numbers ------------------------------------------------------------------------------
def fmt(x: Any, spec: str = ".3g") -> str:
    """One number, "n/a" when undefined; a minus sign, not a hyphen, for negatives."""
    v = num(x)
    if not math.isfinite(v):
        return "n/a" if math.isnan(v) else ("∞" if v > 0 else "−∞")
    v = 0.0 if abs(v) < 1e-12 else v  # a difference of equal values can carry 1e-17 of rounding
    return format(v, spec).replace("-", "−")


def span(values: Iterable[Any], spec: str = ".3g") -> str:
    """The range of ``values``: "0.38–0.85", "−0.31 to −0.05", one number when both ends read alike,
    "n/a" when none is finite."""
    xs = sorted(x for x in map(num, values) if math.isfinite(x))
    if not xs:
        return "n/a"
    lo, hi = fmt(xs[0], spec), fmt(xs[-1], spec)
    if lo == hi:
        return lo
    return f"{lo}–{hi}" if xs[0] >= 0 else f"{lo} to {hi}"


def _one(k: Key) -> str:
    """One cell's value: "1.23 ± 0.05 (SE 0.01)", "ρ = 0.95 (SE 0.02)", "−0.25 (per-seed interval ...)"."""
    if k.kind == "rho":
        return f"ρ = {fmt(k.mean, '.2f')}" + (f" (SE {fmt(k.se, '.2g')})" if math.isfinite(k.se) else "")
    if k.kind == "reduction":
        return f"{fmt(k.mean)} (per-seed interval {fmt(k.lower)} to {fmt(k.upper)})"
    se = f", SE {fmt(k.se, '.2g')}" if math.isfinite(k.se) else ""
    at = f" at {k.where}" if k.where else ""
    return f"{fmt(k.mean)} ± {fmt(k.sd, '.2g')}{at} (SD over seeds{se})"


def claim_value(rows: Sequence[Mapping[str, Any]]) -> str:
    """The headline's "our value" of a claim from its cell rows (judged ones only): :func:`value_text`
    over all of them, or, where cells judge different observables (N2's ``obs`` parameter: PR, KL,
    RR, on different scales), one :func:`value_text` per observable: "PR: ...; KL: ...; RR: ..."."""
    groups: dict[str, list[Key]] = {}
    for r in rows:
        if r.get("verdict"):
            key = key_quantity(r.get("values"))
            if key is not None:
                groups.setdefault(str((r.get("params") or {}).get("obs", "")), []).append(key)
    if len(groups) <= 1:
        return value_text([k for keys in groups.values() for k in keys])
    return "; ".join(f"{obs}: {value_text(keys)}" for obs, keys in groups.items())


def value_text(keys: Sequence[Key]) -> str:
    """The headline's "our value" over a claim's judged cells: one cell in full (mean ± SD over seeds,
    SE), several as ranges over the cells ("1.06–2.73 over 24 cells (SD 0.01–0.09, SE ...)")."""
    keys = [k for k in keys if k is not None]
    if not keys:
        return "—"
    if len(keys) == 1:
        return _one(keys[0])
    n = f"{len(keys)} cells"
    if all(k.kind == "rho" for k in keys):
        return f"ρ = {span((k.mean for k in keys), '.2f')} over {n}"
    extra = []
    if any(math.isfinite(k.sd) for k in keys):
        extra.append(f"SD {span((k.sd for k in keys), '.2g')}")
    if any(math.isfinite(k.se) for k in keys):
        extra.append(f"SE {span((k.se for k in keys), '.2g')}")
    return f"{span(k.mean for k in keys)} over {n}" + (f" ({', '.join(extra)})" if extra else "")
