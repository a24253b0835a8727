"""What a claim is: its cells and verdicts, a pre-registered decision :class:`Rule` and the
:class:`Claim` object that ties a claim's rule, judge, headline and prose together. Each claim is one
module of :mod:`kag.repro.claims` (its rule, judge, plain words and registry entry); the helpers its
judge reads the results table with are :mod:`kag.repro.judges`, the shared words :mod:`kag.repro.prose`.
A threshold changes only in a commit of its own whose message says why, never to turn a verdict.
"""


from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping


from kag.repro.profiles import Profile
from kag.repro.results import Group, Results
from kag.repro.rules import (
    CONTRADICTED,
    INCONCLUSIVE,
    SUPPORTED,
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


def make_cell(claim: str, **params: Any) -> Cell:
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


# -- decision rules (SPEC §7) -------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A pre-registered decision rule: its words (with ``{placeholders}``) and its thresholds."""

    text: str
    thresholds: Mapping[str, float]

    def __str__(self) -> str:
        return self.text.format(**self.thresholds)

    @classmethod
    def of(cls, text: str, **thresholds: float) -> "Rule":
        """A rule whose thresholds cannot be changed after registration."""
        return cls(text, MappingProxyType(thresholds))


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
    rule: Rule  # its pre-registered decision rule and thresholds (SPEC §7)
    order: int  # its place in the registry, the tests and the report (the paper's order; ours after)
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
    beyond_paper: bool = False  # ours, not the paper's (as N2): listed, never counted in the outcome
    min_layers: int = 0  # studies whose networks have fewer hidden layers do not judge it (see studies.why_not_judged)
    studies: tuple[str, ...] = ()  # the only studies it applies to (none: every study; see studies.does_not_apply)
    # every cell row (judged or not) -> one sentence on why the claim did not reproduce (see plain());
    # None: a generic sentence built from the rule and the verdicts
    explain: ExplainFn | None = None
    # the estimator families its multiverse varies ("PR", "RR", "divergence"; kag.repro.multiverse); none: one estimator
    estimators: tuple[str, ...] = ()

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
                       format_values(values) if detail is None else detail)

    def key_number(self, judged_rows: list[dict[str, Any]]) -> str:
        """One headline number for the summary table, from the judged cells' rows."""
        if not judged_rows:
            return ""
        try:
            return self.headline(judged_rows)
        except (KeyError, TypeError, ValueError):
            return ""


def format_values(values: Mapping[str, Any]) -> str:
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
