"""Every claim of the paper as a parametrized hypothesis test (criteria: ``claims/criteria.py``).

One test function per claim, one test per cell (``pytest claims -k "C5 and n=512"``). A claim
that does not hold fails and prints the numbers that failed it; the control N1 passes only when
the machinery says "not supported".
"""

from __future__ import annotations

import pytest

from claims.criteria import criterion
from claims.judge import judge


def claim(cid: str):
    """Mark a test function as the test of criterion ``cid`` (cells are generated in conftest)."""

    def mark(fn):
        fn.kag_criterion = cid
        return fn

    return mark


def check(cell, results, record_verdict, request) -> None:
    c = criterion(cell.criterion)
    verdict = judge(c, cell, results)
    record_verdict(verdict)
    if verdict.supported != c.expect_supported:
        said = "supported" if verdict.supported else "not supported"
        message = (f"{c.id} [{cell.id}] {said}, expected {'supported' if c.expect_supported else 'not supported'}: "
                   f"{verdict.detail}")
        if c.expect_supported and request.config.getoption("kag_not_reproduced") == "xfail":
            pytest.xfail(f"not reproduced: {message}")
        pytest.fail(message, pytrace=False)


@claim("C1-PR")
def test_C1_PR_kag_emerges(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C1-KL")
def test_C1_KL_kag_emerges(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C1-RR")
def test_C1_RR_kag_emerges(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C2")
def test_C2_layer1_stronger(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C3")
def test_C3_higher_order_stronger(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C4")
def test_C4_larger_networks_stronger(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C5")
def test_C5_scale_agnostic(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C6")
def test_C6_every_region(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C7")
def test_C7_far_apart(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C8")
def test_C8_augmentation_lowers(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C9")
def test_C9_similar_accuracy(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C10")
def test_C10_zero_rows(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("C11")
def test_C11_grows_in_training(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)


@claim("N1")
def test_N1_control_no_kag_between_inits(cell, results, record_verdict, request):
    check(cell, results, record_verdict, request)
