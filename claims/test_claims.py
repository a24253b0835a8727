"""Every claim of the paper as a pre-registered hypothesis test: one test per (claim, cell).

The claims, their cells and their rules live in :mod:`kag.repro.claims`; this module only asks each
one for its verdict. ``pytest claims -k C5`` selects the scale claim, ``-k "C5 and n=512"`` one
width, ``-k C1-`` the three C1 observables.

A claim's cell passes when it is *supported*; a *contradicted* or *inconclusive* cell fails (or is
xfailed under ``--kag-not-reproduced=xfail``) with a message whose first line names the cell and its
verdict and says in plain words what was expected and what was measured
(:func:`kag.repro.report.words.failure_text`), and whose second line prints the numbers behind it. The control N1 passes only when the machinery says no
(contradicted or inconclusive) on finite, non-degenerate numbers; a control that comes out
supported or invalid always fails.
"""

from __future__ import annotations

import pytest

from kag.repro.report.words import failure_text


def test_claim(claim, cell, results, record_verdict, request):
    verdict = claim.judge(cell, results)
    record_verdict(verdict)
    if verdict.as_expected:
        return
    message = failure_text(claim, verdict.to_dict())
    if not claim.control and request.config.getoption("kag_not_reproduced") == "xfail":
        pytest.xfail(message)
    pytest.fail(message, pytrace=False)
