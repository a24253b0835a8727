"""Studies: a setting is data (a dataset and a model family), chosen by --kag-study, reported apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kag.experiments.datasets import pinned_digest
from kag.repro.profiles import QUICK, get_profile
from kag.repro.report import default_out_dir
from kag.repro.studies import DEFAULT_STUDY, STUDIES, get_study

ROOT = Path(__file__).resolve().parents[1]


def test_every_study_names_a_known_dataset_and_the_default_is_the_papers():
    assert DEFAULT_STUDY == "mnist-mlp" and get_study().name == "mnist-mlp"
    for study in STUDIES.values():
        assert len(pinned_digest(study.dataset)) == 64  # known to kag.experiments.datasets, digest pinned without a download
    assert pinned_digest("mnist") != pinned_digest("fashion-mnist")  # so their models never share a cache key
    with pytest.raises(ValueError, match="study='cifar-cnn' is unknown: choose one of mnist-mlp, fashion-mlp, mnist-deep, mnist-cnn"):
        get_study("cifar-cnn")


def test_a_studys_regimes_and_spatial_analyses_follow_its_dataset_as_loaded():
    """Whether a study has the augmented regime and the spatial claims is read from its dataset's class,
    without loading; the loaded data agrees (xor3d: 3 numbers per point, no pixels, no augmentation)."""
    from kag.experiments.datasets import load_dataset

    for name in ("mnist", "xor3d"):
        data = load_dataset(name)
        studies = [s for s in STUDIES.values() if s.dataset == name]
        assert studies
        for study in studies:
            assert study.spatial is (data.grid is not None)
            assert study.regimes == (("standard", "augmented") if data.augmentable else ("standard",))
    assert get_study("xor3d").regimes == ("standard",) and not get_study("xor3d").spatial
    assert all(get_study(s).spatial and len(get_study(s).regimes) == 2
               for s in ("mnist-mlp", "fashion-mlp", "mnist-deep", "mnist-cnn"))


def test_a_profile_carries_its_study_and_reports_apart(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAG_STUDY", raising=False)
    assert get_profile("quick") is QUICK and QUICK.study == "mnist-mlp"
    fashion = get_profile("quick", study="fashion-mlp")
    assert fashion.study == "fashion-mlp" and (fashion.train, fashion.metrics) == (QUICK.train, QUICK.metrics)
    assert default_out_dir(QUICK) == tmp_path / "reports" / "quick"  # where the paper's reports always were
    assert default_out_dir(fashion) == tmp_path / "reports" / "studies" / "fashion-mlp" / "quick"
    monkeypatch.setenv("KAG_STUDY", "fashion-mlp")
    assert get_profile("smoke").study == "fashion-mlp"


def test_a_claim_that_does_not_apply_to_a_study_says_why():
    reason = get_study("fashion-mlp").not_applicable["C9"]
    assert "MNIST" in reason and "Fashion-MNIST" in reason


@pytest.mark.slow  # runs a whole pytest session
def test_an_unknown_study_is_one_line_from_pytest():
    proc = subprocess.run([sys.executable, "-m", "pytest", "claims", "--kag-study", "cifar", "--collect-only", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "argument --kag-study: invalid choice: 'cifar' (choose from 'mnist-mlp', 'fashion-mlp', 'mnist-deep', 'mnist-cnn', 'xor3d')" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.mark.slow  # runs a whole pytest session
def test_the_fashion_study_skips_c9_with_its_reason(tmp_path):
    env = {**os.environ, "KAG_HOME": str(tmp_path)}  # an empty store: nothing is judged or trained
    proc = subprocess.run([sys.executable, "-m", "pytest", "claims", "--kag-study", "fashion-mlp", "--kag-profile",
                           "smoke", "-q", "-rs", "-k", "C9", "--kag-no-report", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "C9 does not apply to the fashion-mlp study: its accuracy thresholds" in proc.stdout
    assert "6 skipped, 139 deselected" in proc.stdout  # C9: 3 evaluations x 2 smoke widths


def _report(tmp: Path, study: str, statuses: dict[str, str], figures_data: dict | None = None) -> None:
    """A study's results.json as the reproduction writes it, reduced to what the cross-study report reads."""
    folder = get_study(study).report_dir("quick", tmp)
    folder.mkdir(parents=True)
    summary = [{"id": cid, "claim": f"claim {cid}", "status": status, "label": status, "control": cid == "N1",
                "key_number": f"key {cid} {study}", "robustness": {"status": "robust", "disagree": []}}
               for cid, status in statuses.items()]
    data = {"profile": {"name": "quick", "reductions": ["3 seeds instead of 5"]}, "summary": summary,
            "n2_statement": f"N2 in {study}.", "figures_data": figures_data or {},
            "provenance": {"generated": "2026-12-06", "git": {"commit": "abc", "dirty": False}, "device": "cpu",
                           "data": {"name": get_study(study).dataset}}}
    (folder / "results.json").write_text(json.dumps(data))


def test_the_cross_study_report_puts_every_claim_beside_every_study(tmp_path):
    from kag.repro.report.studies import assemble_studies, write_studies_report

    _report(tmp_path, "mnist-mlp", {"C2": "contradicted", "C4": "reproduced", "C9": "not run", "N2": "inconclusive",
                                    "N1": "reproduced"})
    _report(tmp_path, "fashion-mlp", {"C2": "reproduced", "C4": "reproduced", "C9": "skipped", "N2": "inconclusive",
                                      "N1": "reproduced"})
    data = assemble_studies("quick", tmp_path)
    assert data["present"] == ["mnist-mlp", "fashion-mlp"]
    assert [r["id"] for r in data["rows"]] == ["C2", "C4", "C9", "N2", "N1"]
    assert "The control N1: reproduced in every study." in data["summary"]  # the label, here the status itself
    assert not any(s.startswith("Reproduced") and "N1" in s for s in data["summary"])
    assert data["rows"][0]["cells"]["fashion-mlp"]["key_number"] == "key C2 fashion-mlp"
    assert "Reproduced in every study (mnist-mlp, fashion-mlp): C4." in data["summary"]
    assert "Inconclusive in every study (mnist-mlp, fashion-mlp): N2." in data["summary"]
    assert "C2 differs between studies (mnist-mlp: contradicted; fashion-mlp: reproduced)." in data["summary"]
    assert not any("C9" in s for s in data["summary"])  # judged in neither: no claim about it
    assert [n["study"] for n in data["n2"]] == ["mnist-mlp", "fashion-mlp"]
    out = write_studies_report("quick", tmp_path)
    assert out == tmp_path / "studies" / "quick"
    readme = (out / "README.md").read_text()
    assert "| **C2** claim C2 | **contradicted** (robust)<br>key C2 mnist-mlp | **reproduced** (robust)" in readme
    assert "Not applicable: **C9**" in readme and "N2 in fashion-mlp." in readme
    assert (out / "matrix.png").stat().st_size > 2_000 and "data:image/png;base64," in (out / "index.html").read_text()


def test_the_cross_study_report_says_what_is_missing(tmp_path):
    from kag.repro.report.studies import assemble_studies, main

    assert main(["--profile", "quick", "--reports", str(tmp_path)]) == 1  # no study has a report: one line, exit 1
    _report(tmp_path, "mnist-mlp", {"C4": "reproduced"})
    data = assemble_studies("quick", tmp_path)
    assert data["summary"] == ["Only mnist-mlp has a report for this profile: nothing can be compared yet."]
    assert [s["available"] for s in data["studies"]] == [True, False, False, False, False]


def _global(layers: list[str], value: float) -> dict:
    cell = {"3": {"pr_ratio": [value, value + 0.1, value - 0.1]}}
    return {"standard": {str(n): {layer: cell for layer in layers} for n in (64, 512)}}


def test_the_cross_study_report_draws_one_figure_per_question_and_names_partly_judged_claims(tmp_path):
    from kag.repro.report.studies import assemble_studies, write_studies_report

    surrogate = {"k": 3, "layers": {"L1": {"pr": {"surrogate": {"512": [0.98, 1.0, 1.01]}}}}}
    _report(tmp_path, "mnist-mlp", {"C2": "inconclusive", "C2-depth": "skipped"},
            {"global": _global(["L1", "L2"], 2.0), "surrogate": surrogate})
    _report(tmp_path, "mnist-deep", {"C2": "inconclusive", "C2-depth": "contradicted"},
            {"global": _global(["L1", "L2", "L3", "L4"], 3.0)})
    data = assemble_studies("quick", tmp_path)
    assert "C2-depth is judged in mnist-deep only (mnist-deep: contradicted)." in data["summary"]
    assert not any(s.startswith("C2-depth differs") for s in data["summary"])
    by_id = {q["id"]: q for q in data["questions"]}
    assert by_id["emergence"]["studies"]["mnist-deep"]["x"] == ["L1", "L2", "L3", "L4"]
    assert by_id["emergence"]["studies"]["mnist-mlp"]["seeds"][0] == [2.0, 2.1, 1.9]
    assert by_id["width"]["studies"]["mnist-mlp"]["x"] == [64, 512]
    assert list(by_id["norms"]["studies"]) == ["mnist-mlp"]  # the deep world has no surrogate rows
    out = write_studies_report("quick", tmp_path)
    for q in ("emergence", "width", "norms"):
        assert (out / f"question_{q}.png").stat().st_size > 2_000
        assert f"![{by_id[q]['question']}](question_{q}.png)" in (out / "README.md").read_text()


def test_the_cross_study_report_names_reports_as_the_repository_does_and_each_studys_own_choices(tmp_path):
    from kag.repro.report.studies import assemble_studies

    base = tmp_path / "reports"
    _report(base, "mnist-mlp", {"C2": "inconclusive"})
    _report(base, "mnist-cnn", {"C2": "inconclusive"})
    studies = {s["name"]: s for s in assemble_studies("quick", base)["studies"]}
    assert studies["mnist-mlp"]["fidelity"]["report"] == "reports/quick"  # not this machine's absolute path
    assert studies["mnist-cnn"]["fidelity"]["report"] == "reports/studies/mnist-cnn/quick"
    assert studies["mnist-cnn"]["metric_changes"] == {"sampling": "support"} and not studies["mnist-mlp"]["metric_changes"]
