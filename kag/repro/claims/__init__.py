"""The registry of claims: every claim of the paper, and ours beyond it, one module each.

A claim module in this package defines its pre-registered :class:`~kag.repro.criteria.Rule` (SPEC §7),
its judge (how it reads the results table of a profile and applies the rule to one cell, with the
helpers of :mod:`kag.repro.judges`), its plain words when they are its own, and lists its
:class:`~kag.repro.criteria.Claim` objects in ``CLAIMS_HERE``. Every module here is imported when
this package is, so adding a claim is adding one file (plus a figure function in
:mod:`kag.repro.report.figures` if it draws a new figure, and its line in SPEC §7). The pytest
layer (``claims/``), the report, the sweep and the cross-study report iterate over :data:`CLAIMS`,
in the claims' registered ``order``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

from kag.discovery import first_repeat, listed_in_modules
from kag.repro.criteria import Claim, Rule


def _discover() -> tuple[Claim, ...]:
    found: list[Claim] = listed_in_modules(__name__, __path__, "CLAIMS_HERE")
    for attribute in ("id", "order"):
        repeated = first_repeat(getattr(c, attribute) for c in found)
        if repeated is not None:
            raise RuntimeError(f"two claims share the {attribute} {repeated!r}: each claim's {attribute} is its own")
    return tuple(sorted(found, key=lambda c: c.order))


CLAIMS: tuple[Claim, ...] = _discover()
BY_ID: Mapping[str, Claim] = MappingProxyType({c.id: c for c in CLAIMS})
# The pre-registered criteria table (SPEC §7), one rule per claim, read from the claims themselves.
CRITERIA: Mapping[str, Rule] = MappingProxyType({c.id: c.rule for c in CLAIMS})


def get_claim(claim_id: str) -> Claim:
    """The registered claim ``claim_id``, with a one-line error naming the valid ids."""
    if claim_id not in BY_ID:
        raise ValueError(f"claim={claim_id!r} is unknown: choose one of {', '.join(BY_ID)}")
    return BY_ID[claim_id]
