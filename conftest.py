"""Options shared by the unit tests (``tests/``) and the claims suite (``claims/``)."""

from __future__ import annotations

from kag.repro.profiles import PROFILE_CHOICES
from kag.repro.report.assemble import NOT_REPRODUCED
from kag.repro.studies import STUDY_CHOICES


def pytest_addoption(parser) -> None:
    group = parser.getgroup("kag", "KAG reproduction")
    group.addoption("--kag-profile", choices=PROFILE_CHOICES, default=None,
                    help="run size for the claims: auto (paper on CUDA, quick on CPU), paper, quick or smoke "
                         "(default: $KAG_PROFILE, else auto)")
    group.addoption("--kag-study", choices=STUDY_CHOICES, default=None,
                    help="the setting whose claims are judged: mnist-mlp (the paper's; default: $KAG_STUDY, else "
                         "mnist-mlp) or fashion-mlp; its report goes to reports/studies/<study>/<profile>")
    group.addoption("--kag-device", default=None, help="auto, cpu or cuda[:i] (default: $KAG_DEVICE, else auto)")
    group.addoption("--kag-report-dir", default=None, help="where the report goes (default: reports/<profile>, or "
                                                              "reports/studies/<study>/<profile> for another study)")
    group.addoption("--kag-not-reproduced", choices=NOT_REPRODUCED, default="fail",
                    help="how a cell of a paper claim that is contradicted or inconclusive is reported: fail "
                         "(default; the main job) or xfail (CI: the run proves the pipeline works, the report "
                         "carries the verdicts). The control N1 always fails when it comes out supported or invalid.")
    group.addoption("--kag-no-report", action="store_true", help="judge the claims but write no report")
