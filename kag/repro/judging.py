"""The one loop that judges every claim on every cell: used by ``kag report`` (the reproduction
report from cached tables), the assumption sweep and, through their reports, the cross-study report.

Each cell comes out judged (a :class:`~kag.repro.criteria.Verdict`), skipped (the claim is not judged
under this profile or does not apply to its study: :func:`kag.repro.studies.why_not_judged`), or
not run (its metric tables are missing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from kag.errors import MissingResults
from kag.repro.claims import CLAIMS
from kag.repro.criteria import Cell, Claim, Verdict
from kag.repro.profiles import Profile
from kag.repro.results import Results
from kag.repro.studies import why_not_judged


@dataclass(frozen=True)
class Judged:
    """One cell's outcome: ``"judged"`` (with its verdict), ``"skipped"`` or ``"not run"`` (with the reason)."""

    claim: Claim
    cell: Cell
    outcome: str
    verdict: Verdict | None = None
    reason: str = ""


def judge_every_cell(results: Results, profile: Profile | None = None) -> Iterator[Judged]:
    """Every cell of every claim under ``results.profile``; ``profile`` (default: the same) decides
    which claims are judged (the sweep judges a reduced-fidelity point as the profile it stands for)."""
    rule_profile = profile or results.profile
    for claim in CLAIMS:
        reason = why_not_judged(claim, rule_profile)
        for cell in claim.cells(results.profile):
            if reason is not None:
                yield Judged(claim, cell, "skipped", reason=reason)
                continue
            try:
                verdict = claim.judge(cell, results)
            except MissingResults as exc:
                yield Judged(claim, cell, "not run", reason=str(exc))
                continue
            yield Judged(claim, cell, "judged", verdict)
